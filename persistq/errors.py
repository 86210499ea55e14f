"""The one exception hierarchy of persistq.

Every error persistq raises on purpose derives from :class:`PersistQError`.
:class:`Empty` and :class:`Full` also derive from the standard library's and
asyncio's queue exceptions, so handlers written for :mod:`queue` or
:mod:`asyncio` (or for persist-queue) keep working unchanged.
"""

from __future__ import annotations

import asyncio
import queue

__all__ = (
    "CorruptionError",
    "Empty",
    "Full",
    "InvalidName",
    "ItemNotFound",
    "KeyTooLong",
    "MissingDependencyError",
    "PersistQError",
    "PortalError",
    "QueueClosed",
    "QueueLocked",
    "SerializationError",
    "SerializerMismatch",
    "StorageError",
)


class PersistQError(Exception):
    """Base class of every error raised by persistq."""


class Empty(PersistQError, queue.Empty, asyncio.QueueEmpty):
    """No item was available (non-blocking call, or the timeout passed)."""


class Full(PersistQError, queue.Full, asyncio.QueueFull):
    """The queue held ``maxsize`` items (non-blocking call, or the timeout passed)."""


class QueueClosed(PersistQError):
    """The queue was closed, or was opened in another process before a fork."""


class InvalidName(PersistQError, ValueError):
    """A queue or table name that is not allowed.

    Names may contain ASCII letters, digits, ``_`` and ``-`` (at most 64
    characters), so they can never change the meaning of an SQL statement.
    """

    def __init__(self, name: object, reason: str = "") -> None:
        self.name = name
        detail = f": {reason}" if reason else ""
        super().__init__(f"invalid queue name {name!r}{detail}; use 1-64 ASCII letters, digits, '_' or '-'")


class ItemNotFound(PersistQError, LookupError):
    """No item with the given id is in the queue (or in the required state)."""

    def __init__(self, item_id: object, detail: str = "") -> None:
        self.item_id = item_id
        suffix = f" ({detail})" if detail else ""
        super().__init__(f"no item with id {item_id!r}{suffix}")


class SerializationError(PersistQError, ValueError):
    """The serializer could not encode an item, or could not decode stored bytes.

    When raised by ``put``, nothing was written: the queue is unchanged.
    """


class SerializerMismatch(SerializationError):
    """The queue was created with another serializer than the one given."""

    def __init__(self, where: str, stored: str, given: str) -> None:
        self.stored = stored
        self.given = given
        super().__init__(
            f"{where} was written with serializer {stored!r}, "
            f"but was opened with {given!r}; open it with the same serializer"
        )


class MissingDependencyError(PersistQError, ImportError):
    """An optional package is not installed; the message names the extra."""

    def __init__(self, package: str, extra: str) -> None:
        self.package = package
        self.extra = extra
        super().__init__(
            f"the {package!r} package is needed for this feature: pip install 'persistq[{extra}]'"
        )


class StorageError(PersistQError, OSError):
    """The storage (database file, directory, server) failed.

    The driver's own exception is chained as ``__cause__``.
    """


class CorruptionError(StorageError):
    """Stored data failed an integrity check."""


class PortalError(PersistQError, RuntimeError):
    """A blocking ``persistq.sync`` call was made from persistq's own loop thread."""


class QueueLocked(StorageError):
    """A file queue's directory is held by another queue object or process.

    The file queue is single-process: one open queue object per directory.
    """


class KeyTooLong(PersistQError, ValueError):
    """A ``PDict`` key longer than its engine can index (MySQL: 3,072 UTF-8 bytes)."""

    def __init__(self, key: str, size: int, limit: int, engine: str = "MySQL") -> None:
        self.key = key
        self.size = size
        self.limit = limit
        super().__init__(
            f"a key of {size} UTF-8 bytes is too long for a PDict on {engine} "
            f"(at most {limit}): {key[:40]!r}…"
        )
