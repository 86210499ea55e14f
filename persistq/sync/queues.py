"""Blocking, thread-safe twins of the async queues.

Each class here holds no storage logic: it opens the async queue of the same
name on the process's portal loop (:mod:`._portal`) and forwards every method
to it, one hand-off per call. Every method is written out with its real
signature, so editors, type checkers and ``help()`` see them; a test fails when
a twin drifts from its async original.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Iterable
from typing import Any, ClassVar, Generic, Literal, TypeVar, overload

from .. import serializers as _serializers
from ..errors import QueueClosed
from ..queues._base import DEFAULT_POLL_INTERVAL, Durability, QueueRecord, QueueStatistics, RawItem
from ..queues.fifo import FIFOQueue as _AsyncFIFOQueue
from ..queues.fifo import FILOQueue as _AsyncFILOQueue
from ..queues.fifo import Location
from ..queues.priority import PriorityQueue as _AsyncPriorityQueue
from ..queues.unique import UniqueQ as _AsyncUniqueQ
from . import _portal

__all__ = (
    "FIFOQueue",
    "FIFOSQLiteQueue",
    "FILOQueue",
    "FILOSQLiteQueue",
    "PriorityQueue",
    "SQLiteQueue",
    "UniqueQ",
)


_Twin = TypeVar("_Twin", bound="_SyncTwin")
_T = TypeVar("_T")


def _thread_key() -> tuple[str, int]:
    return ("thread", threading.get_ident())


class _SyncTwin:
    """Shared plumbing: the portal lease, fork handling, closing."""

    _async_cls: ClassVar[type[Any]]
    _q: Any
    _portal: _portal.Portal | None = None
    _closed = True

    def _open_twin(self, *args: Any, **kwargs: Any) -> None:
        self._args = args
        self._kwargs = kwargs
        self._pid = os.getpid()
        self._q = self._async_cls(*args, **kwargs)
        portal = _portal.acquire()
        try:
            portal.call(self._q.open)
        except BaseException:
            _portal.release(portal)
            raise
        self._portal = portal
        self._closed = False
        _portal.track(self)

    def _call(self, method: str, *args: Any) -> Any:
        if self._pid != os.getpid():
            self._reopen_after_fork()
        if self._closed:
            # The exit hook closed it under a daemon thread: park, don't raise.
            _portal.park_if_exiting()
            raise QueueClosed("the queue is closed")
        assert self._portal is not None
        return self._portal.call(getattr(self._q, method), *args)

    def _call_fast(self, fast: str, method: str, *args: Any) -> Any:
        # As _call, trying the async queue's synchronous fast path first (Portal.call_fast).
        if self._pid != os.getpid():
            self._reopen_after_fork()
        if self._closed:
            _portal.park_if_exiting()
            raise QueueClosed("the queue is closed")
        assert self._portal is not None
        q = self._q
        return self._portal.call(getattr(q, method), *args, fast=getattr(q, fast))

    def _reopen_after_fork(self) -> None:
        # A queue inherited through fork(): the parent's portal and storage
        # threads do not exist here. Open the storage afresh in this process;
        # the parent's connection is left alone (closing it here could disturb
        # the parent's locks).
        if self._closed:
            self._pid = os.getpid()
            return
        self._portal = None
        self._closed = True
        self._open_twin(*self._args, **self._kwargs)

    def close(self) -> None:
        """Close the queue and release its storage (idempotent)."""
        if self._closed:
            return
        if self._pid != os.getpid():
            self._closed = True
            return
        self._closed = True
        _portal.untrack(self)
        portal, self._portal = self._portal, None
        assert portal is not None
        try:
            portal.call(self._q.close)
        finally:
            _portal.release(portal)

    def _detach_for_exit(self) -> Any:
        """For the exit hook: mark closed without calling the loop; return the async queue."""
        if self._closed or self._pid != os.getpid():
            return None
        self._closed = True
        self._portal = None
        return self._q

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def __del__(self) -> None:
        # Scripts written for persist-queue never close their queues: closing
        # here is normal use. The exit hook closes what is still open at exit.
        if self._closed or getattr(self, "_pid", None) != os.getpid():
            return
        self._closed = True
        _portal.untrack(self)
        portal, self._portal = self._portal, None
        if portal is None:
            return
        _portal.close_collected(portal, self._q)
        if not _portal.exiting():
            warnings.warn(
                f"persistq.sync queue {getattr(self._q, 'path', '?')!r} was not closed",
                ResourceWarning,
                stacklevel=2,
            )

    def __repr__(self) -> str:
        return f"<persistq.sync.{type(self).__name__} {self._q!r}>"


class FIFOQueue(_SyncTwin, Generic[_T]):
    """Blocking, thread-safe twin of :class:`persistq.FIFOQueue` (persist-queue's ``SQLiteQueue``).

    A drop-in for persist-queue's ``SQLiteQueue``: same constructor and
    methods, safe from any number of threads (``multithreading`` is accepted
    and not needed), plus ``maxsize``, ``join``, ``put_many``/``get_many``,
    durability modes, ``close()`` and ``with``. ``path`` is a directory
    (created if missing, also when it ends in ``.db``) or an existing SQLite
    database file, or a server URL (``mysql://…``, ``postgresql://…``). The
    constructor opens the storage, so a bad path fails here. See the async
    class for each parameter.
    """

    _async_cls: ClassVar[type[Any]] = _AsyncFIFOQueue

    def __init__(
        self,
        path: str | os.PathLike[str] | Location,
        name: str = "default",
        multithreading: bool = False,
        timeout: float = 10.0,
        auto_commit: bool = True,
        serializer: Any = _serializers.pickle,
        db_file_name: str | None = None,
        *,
        maxsize: int = 0,
        durability: Durability = "full",
        poll_interval: float = DEFAULT_POLL_INTERVAL,
    ) -> None:
        self._open_twin(
            path,
            name,
            multithreading,
            timeout,
            auto_commit,
            serializer,
            db_file_name,
            maxsize=maxsize,
            durability=durability,
            poll_interval=poll_interval,
        )
        q = self._q
        self.path: str = q.path
        self.name: str = q.name
        self.multithreading: bool = multithreading
        self.timeout: float = q.timeout
        self.auto_commit: bool = q.auto_commit
        self.serializer: Any = q.serializer
        self.maxsize: int = q.maxsize
        self.durability: str = q.durability
        self.poll_interval: float = q.poll_interval

    def open(self) -> None:
        """Open the storage (the constructor already did; idempotent)."""
        self._call("open")

    def __enter__(self: _Twin) -> _Twin:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def put(self, item: _T, block: bool = True, timeout: float | None = None) -> int:
        """Put ``item`` at the tail; return its id (durable on return with ``durability="full"``)."""
        return self._call_fast("_put_now", "put", item, block, timeout)  # type: ignore[no-any-return]

    def put_nowait(self, item: _T) -> int:
        """``put(item, block=False)``."""
        return self._call("put_nowait", item)  # type: ignore[no-any-return]

    def put_many(self, items: Iterable[_T], block: bool = True, timeout: float | None = None) -> list[int]:
        """Put several items in one transaction (all or none); return their ids."""
        return self._call("put_many", list(items), block, timeout)  # type: ignore[no-any-return]

    @overload
    def get(
        self,
        block: bool = True,
        timeout: float | None = None,
        id: int | RawItem[_T] | None = None,
        raw: Literal[False] = False,
    ) -> _T: ...
    @overload
    def get(
        self,
        block: bool = True,
        timeout: float | None = None,
        id: int | RawItem[_T] | None = None,
        *,
        raw: Literal[True],
    ) -> RawItem[_T]: ...
    @overload
    def get(
        self,
        block: bool,
        timeout: float | None,
        id: int | RawItem[_T] | None,
        raw: bool,
    ) -> _T | RawItem[_T]: ...
    def get(
        self,
        block: bool = True,
        timeout: float | None = None,
        id: int | RawItem[_T] | None = None,  # noqa: A002 - persist-queue's name
        raw: bool = False,
    ) -> _T | RawItem[_T]:
        """Remove and return the next item (or the item ``id``); see the async ``get``."""
        return self._call_fast("_get_now", "_get", block, timeout, id, raw, _thread_key())  # type: ignore[no-any-return]

    @overload
    def get_nowait(self, id: int | RawItem[_T] | None = None, raw: Literal[False] = False) -> _T: ...
    @overload
    def get_nowait(self, id: int | RawItem[_T] | None = None, *, raw: Literal[True]) -> RawItem[_T]: ...
    @overload
    def get_nowait(self, id: int | RawItem[_T] | None, raw: bool) -> _T | RawItem[_T]: ...
    def get_nowait(
        self,
        id: int | RawItem[_T] | None = None,  # noqa: A002 - persist-queue's name
        raw: bool = False,
    ) -> _T | RawItem[_T]:
        """``get(block=False)``."""
        return self._call_fast("_get_now", "_get", False, None, id, raw, _thread_key())  # type: ignore[no-any-return]

    @overload
    def get_many(
        self, max_items: int, block: bool = True, timeout: float | None = None, raw: Literal[False] = False
    ) -> list[_T]: ...
    @overload
    def get_many(
        self, max_items: int, block: bool = True, timeout: float | None = None, *, raw: Literal[True]
    ) -> list[RawItem[_T]]: ...
    @overload
    def get_many(
        self, max_items: int, block: bool, timeout: float | None, raw: bool
    ) -> list[_T] | list[RawItem[_T]]: ...
    def get_many(
        self, max_items: int, block: bool = True, timeout: float | None = None, raw: bool = False
    ) -> list[_T] | list[RawItem[_T]]:
        """Take up to ``max_items`` items in one transaction, in queue order."""
        return self._call("_get_many", max_items, block, timeout, raw, _thread_key())  # type: ignore[no-any-return]

    def task_done(self) -> None:
        """Mark one item this thread got as done (see the async ``task_done``)."""
        portal = self._portal
        # Bookkeeping alone needs no hand-off to the loop (auto_commit=True).
        if portal is not None and self._pid == os.getpid() and self._q._task_done_from_thread(portal.loop):
            return
        self._call("_task_done", _thread_key())

    def join(self) -> None:
        """Block until every counted item was marked done."""
        self._call("join")

    def qsize(self) -> int:
        """Number of items waiting, counted by the database."""
        return self._call("qsize")  # type: ignore[no-any-return]

    def empty(self) -> bool:
        """Whether no item is waiting."""
        return self._call("empty")  # type: ignore[no-any-return]

    def full(self) -> bool:
        """Whether ``maxsize`` items are waiting."""
        return self._call("full")  # type: ignore[no-any-return]

    @property
    def size(self) -> int:
        """Number of items waiting (persist-queue's ``size``)."""
        return self.qsize()

    def __len__(self) -> int:
        return self.qsize()

    @property
    def total(self) -> int:
        """Number of items waiting (persist-queue's ``total``), counted by the database."""
        return self.qsize()

    @property
    def _serializer(self) -> Any:
        """persist-queue's name for ``serializer`` (code written for it reads ``q._serializer``)."""
        return self._q.serializer

    def queue(self) -> list[QueueRecord[_T]]:
        """Every waiting item as ``{"id", "data", "timestamp"}``, in get order."""
        return self._call("queue")  # type: ignore[no-any-return]

    def update(self, item: _T | RawItem[_T], id: int | None = None) -> int:  # noqa: A002
        """Replace the data of a stored item; return its id."""
        return self._call("update", item, id)  # type: ignore[no-any-return]

    def shrink_disk_usage(self) -> None:
        """Give unused pages back to the file system (``VACUUM``)."""
        self._call("shrink_disk_usage")

    def statistics(self) -> QueueStatistics:
        """Return a snapshot of the queue object's waiters and task counts."""
        return self._q.statistics()  # type: ignore[no-any-return]


SQLiteQueue = FIFOQueue
"""persist-queue's name for :class:`FIFOQueue`."""
FIFOSQLiteQueue = FIFOQueue
"""persist-queue's other name for :class:`FIFOQueue`."""


class FILOQueue(FIFOQueue[_T]):
    """Blocking, thread-safe twin of :class:`persistq.FILOQueue` (newest first)."""

    _async_cls: ClassVar[type[Any]] = _AsyncFILOQueue


FILOSQLiteQueue = FILOQueue
"""persist-queue's name for :class:`FILOQueue`."""


class _UniquePuts(_SyncTwin, Generic[_T]):
    """The put methods of the unique kinds (``None`` for a duplicate)."""

    def put(self, item: _T, block: bool = True, timeout: float | None = None) -> int | None:
        """Put ``item`` unless an equal item is waiting; return its id or ``None``."""
        return self._call_fast("_put_now", "put", item, block, timeout)  # type: ignore[no-any-return]

    def put_nowait(self, item: _T) -> int | None:
        """``put(item, block=False)``."""
        return self._call("put_nowait", item)  # type: ignore[no-any-return]

    def put_many(
        self, items: Iterable[_T], block: bool = True, timeout: float | None = None
    ) -> list[int | None]:
        """Put several items in one transaction; ``None`` for each duplicate."""
        return self._call("put_many", list(items), block, timeout)  # type: ignore[no-any-return]


class _PriorityPuts(_SyncTwin, Generic[_T]):
    """The put methods of the priority kinds."""

    def put(self, item: _T, priority: int = 0, block: bool = True, timeout: float | None = None) -> int:
        """Put ``item`` with ``priority`` (lower comes out first); return its id."""
        return self._call_fast("_put_now", "put", item, priority, block, timeout)  # type: ignore[no-any-return]

    def put_nowait(self, item: _T, priority: int = 0) -> int:
        """``put(item, priority, block=False)``."""
        return self._call("put_nowait", item, priority)  # type: ignore[no-any-return]

    def put_many(
        self, items: Iterable[_T], priority: int = 0, block: bool = True, timeout: float | None = None
    ) -> list[int]:
        """Put several items with one priority in one transaction; return their ids."""
        return self._call("put_many", list(items), priority, block, timeout)  # type: ignore[no-any-return]


class UniqueQ(_UniquePuts[_T], FIFOQueue[_T]):  # type: ignore[misc]  # put returns None for a duplicate
    """Blocking, thread-safe twin of :class:`persistq.UniqueQ` (no duplicate waiting items)."""

    _async_cls: ClassVar[type[Any]] = _AsyncUniqueQ


class PriorityQueue(_PriorityPuts[_T], FIFOQueue[_T]):  # type: ignore[misc]  # put takes a priority
    """Blocking, thread-safe twin of :class:`persistq.PriorityQueue` (lowest number first)."""

    _async_cls: ClassVar[type[Any]] = _AsyncPriorityQueue
