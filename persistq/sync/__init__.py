"""Blocking, thread-safe persistent queues: a drop-in for ``persistqueue``.

``import persistq.sync as persistqueue`` and existing persist-queue code keeps
working. Each class forwards to the async queue of the same name, run on one
private event-loop thread per process (the portal), so every queue is safe to
share between threads without ``multithreading=True``.
"""

from .. import serializers as serializers
from ..errors import CorruptionError as CorruptionError
from ..errors import Empty as Empty
from ..errors import Full as Full
from ..errors import ItemNotFound as ItemNotFound
from ..errors import KeyTooLong as KeyTooLong
from ..errors import PersistQError as PersistQError
from ..errors import QueueClosed as QueueClosed
from ..errors import QueueLocked as QueueLocked
from ..errors import SerializationError as SerializationError
from ..errors import StorageError as StorageError
from ..queues.ack import AckStatus as AckStatus
from . import admin as admin
from .ack import AckQueue as AckQueue
from .ack import FIFOSQLiteAckQueue as FIFOSQLiteAckQueue
from .ack import FILOAckQueue as FILOAckQueue
from .ack import FILOSQLiteAckQueue as FILOSQLiteAckQueue
from .ack import PriorityAckQueue as PriorityAckQueue
from .ack import SQLiteAckQueue as SQLiteAckQueue
from .ack import UniqueAckQ as UniqueAckQ
from .file import Queue as Queue
from .mysql import MySQLQueue as MySQLQueue
from .mysql_ack import MySQLAckQueue as MySQLAckQueue
from .pdict import PDict as PDict
from .queues import FIFOQueue as FIFOQueue
from .queues import FIFOSQLiteQueue as FIFOSQLiteQueue
from .queues import FILOQueue as FILOQueue
from .queues import FILOSQLiteQueue as FILOSQLiteQueue
from .queues import PriorityQueue as PriorityQueue
from .queues import SQLiteQueue as SQLiteQueue
from .queues import UniqueQ as UniqueQ

__all__ = (
    "AckQueue",
    "AckStatus",
    "CorruptionError",
    "Empty",
    "FIFOQueue",
    "FIFOSQLiteAckQueue",
    "FIFOSQLiteQueue",
    "FILOAckQueue",
    "FILOQueue",
    "FILOSQLiteAckQueue",
    "FILOSQLiteQueue",
    "Full",
    "ItemNotFound",
    "KeyTooLong",
    "MySQLAckQueue",
    "MySQLQueue",
    "PDict",
    "PersistQError",
    "PriorityAckQueue",
    "PriorityQueue",
    "Queue",
    "QueueClosed",
    "QueueLocked",
    "SQLiteAckQueue",
    "SQLiteQueue",
    "SerializationError",
    "StorageError",
    "UniqueAckQ",
    "UniqueQ",
    "serializers",
)
