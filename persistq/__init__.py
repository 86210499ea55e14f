"""persistq: persistent, disk-backed queues that survive crashes and restarts.

Layers, each importing only the ones below it:

* ``persistq`` (this module) and ``persistq.sync``: the public names;
* ``persistq.queues``: queue kinds (order, waiting, maxsize, task accounting);
* ``persistq.engines``: storage (SQLite …): bytes, transactions, durability;
* ``persistq.serializers`` and ``persistq.errors``: shared by all of them.

Every queue here is async and runs on asyncio and trio; ``persistq.sync`` has
blocking, thread-safe twins with the same names.
"""

from . import admin as admin
from . import serializers as serializers
from .errors import CorruptionError as CorruptionError
from .errors import Empty as Empty
from .errors import Full as Full
from .errors import InvalidName as InvalidName
from .errors import ItemNotFound as ItemNotFound
from .errors import KeyTooLong as KeyTooLong
from .errors import MissingDependencyError as MissingDependencyError
from .errors import PersistQError as PersistQError
from .errors import PortalError as PortalError
from .errors import QueueClosed as QueueClosed
from .errors import QueueLocked as QueueLocked
from .errors import SerializationError as SerializationError
from .errors import SerializerMismatch as SerializerMismatch
from .errors import StorageError as StorageError
from .pdict import PDict as PDict
from .queues._base import AckRecord as AckRecord
from .queues._base import FailedItem as FailedItem
from .queues._base import QueueRecord as QueueRecord
from .queues._base import QueueStatistics as QueueStatistics
from .queues._base import RawItem as RawItem
from .queues.ack import AckQueue as AckQueue
from .queues.ack import AckStatus as AckStatus
from .queues.ack import FIFOSQLiteAckQueue as FIFOSQLiteAckQueue
from .queues.ack import FILOAckQueue as FILOAckQueue
from .queues.ack import FILOSQLiteAckQueue as FILOSQLiteAckQueue
from .queues.ack import PriorityAckQueue as PriorityAckQueue
from .queues.ack import SQLiteAckQueue as SQLiteAckQueue
from .queues.ack import UniqueAckQ as UniqueAckQ
from .queues.fifo import FIFOQueue as FIFOQueue
from .queues.fifo import FIFOSQLiteQueue as FIFOSQLiteQueue
from .queues.fifo import FILOQueue as FILOQueue
from .queues.fifo import FILOSQLiteQueue as FILOSQLiteQueue
from .queues.fifo import SQLiteQueue as SQLiteQueue
from .queues.file import Queue as Queue
from .queues.mysql import MySQLQueue as MySQLQueue
from .queues.mysql_ack import MySQLAckQueue as MySQLAckQueue
from .queues.priority import PriorityQueue as PriorityQueue
from .queues.unique import UniqueQ as UniqueQ

AsyncQueue = Queue
AsyncSQLiteQueue = SQLiteQueue
AsyncFIFOSQLiteQueue = SQLiteQueue
AsyncFILOSQLiteQueue = FILOSQLiteQueue
AsyncUniqueQ = UniqueQ

__version__ = "0.1.0"

__all__ = (
    "AckQueue",
    "AckRecord",
    "AckStatus",
    "AsyncFIFOSQLiteQueue",
    "AsyncFILOSQLiteQueue",
    "AsyncQueue",
    "AsyncSQLiteQueue",
    "AsyncUniqueQ",
    "CorruptionError",
    "Empty",
    "FailedItem",
    "FIFOQueue",
    "FIFOSQLiteAckQueue",
    "FIFOSQLiteQueue",
    "FILOAckQueue",
    "FILOQueue",
    "FILOSQLiteAckQueue",
    "FILOSQLiteQueue",
    "Full",
    "InvalidName",
    "ItemNotFound",
    "KeyTooLong",
    "MissingDependencyError",
    "MySQLAckQueue",
    "MySQLQueue",
    "PDict",
    "PersistQError",
    "PortalError",
    "PriorityAckQueue",
    "PriorityQueue",
    "Queue",
    "QueueClosed",
    "QueueLocked",
    "QueueRecord",
    "QueueStatistics",
    "RawItem",
    "SQLiteAckQueue",
    "SQLiteQueue",
    "SerializationError",
    "SerializerMismatch",
    "StorageError",
    "UniqueAckQ",
    "UniqueQ",
    "serializers",
)
