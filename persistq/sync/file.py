"""Blocking, thread-safe twin of the file queue: ``persistq.sync.Queue``.

A drop-in for persist-queue's file ``Queue``. It holds no storage logic: every
method forwards to :class:`persistq.queues.file.Queue` on the portal loop, one
hand-off per call; ``get`` and ``task_done`` pass the calling thread's key, so
one thread's ``task_done`` acknowledges that thread's items.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, ClassVar, Generic, TypeVar

from .. import serializers as _serializers
from ..queues._base import QueueStatistics
from ..queues.file import Durability, OnCorruption, Skipped
from ..queues.file import Queue as _AsyncQueue
from .queues import _SyncTwin, _thread_key

__all__ = ("Queue",)


_T = TypeVar("_T")


class Queue(_SyncTwin, Generic[_T]):
    """Blocking, thread-safe twin of :class:`persistq.Queue` (the file queue).

    Same constructor and guarantees as the async class: with
    ``durability="full"``, ``put`` returns after its record is fsync'd and
    ``task_done`` (or ``get`` with ``autosave=True``) after the read position
    is. The constructor opens (and locks) the directory, so a bad path or a
    directory held by another process fails here. See the async class for
    each parameter.
    """

    _async_cls: ClassVar[type[Any]] = _AsyncQueue

    def __init__(
        self,
        path: str | os.PathLike[str],
        maxsize: int = 0,
        chunksize: int = 100,
        tempdir: str | None = None,
        serializer: Any = _serializers.pickle,
        autosave: bool = False,
        durability: Durability = "full",
        *,
        on_corruption: OnCorruption = "raise",
        lock_timeout: float | None = 0,
    ) -> None:
        self._open_twin(
            path,
            maxsize,
            chunksize,
            tempdir,
            serializer,
            autosave,
            durability,
            on_corruption=on_corruption,
            lock_timeout=lock_timeout,
        )
        q = self._q
        self.path: str = q.path
        self.maxsize: int = q.maxsize
        self.chunksize: int = q.chunksize
        self.tempdir: str | None = q.tempdir
        self.serializer: Any = q.serializer
        self.autosave: bool = q.autosave
        self.durability: str = q.durability
        self.on_corruption: str = q.on_corruption
        self.lock_timeout: float | None = q.lock_timeout

    def open(self) -> None:
        """Open the queue (the constructor already did; idempotent)."""
        self._call("open")

    def __enter__(self) -> Queue[_T]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def unfinished_tasks(self) -> int:
        """Items put (or found at open) and not yet marked ``task_done``."""
        return self._q.unfinished_tasks  # type: ignore[no-any-return]

    def put(self, item: _T, block: bool = True, timeout: float | None = None) -> None:
        """Put ``item`` at the tail (fsync'd on return with ``durability="full"``)."""
        self._call("put", item, block, timeout)

    def put_nowait(self, item: _T) -> None:
        """``put(item, block=False)``."""
        self._call("put_nowait", item)

    def put_many(self, items: Iterable[_T], block: bool = True, timeout: float | None = None) -> None:
        """Put several items with one write and one fsync; all or none."""
        self._call("put_many", list(items), block, timeout)

    def get(self, block: bool = True, timeout: float | None = None) -> _T:
        """Remove and return the next item; see the async ``get``."""
        return self._call("_get", block, timeout, _thread_key())  # type: ignore[no-any-return]

    def get_nowait(self) -> _T:
        """``get(block=False)``."""
        return self._call("_get", False, None, _thread_key())  # type: ignore[no-any-return]

    def get_many(self, max_items: int, block: bool = True, timeout: float | None = None) -> list[_T]:
        """Take up to ``max_items`` items in queue order, in one storage call."""
        return self._call("_get_many", max_items, block, timeout, _thread_key())  # type: ignore[no-any-return]

    def task_done(self) -> None:
        """Mark one item this thread got as done (see the async ``task_done``)."""
        self._call("_task_done", _thread_key())

    def join(self) -> None:
        """Block until every item put (or found at open) was marked done."""
        self._call("join")

    def skip_corrupt(self) -> Skipped | None:
        """Quarantine and skip the damaged record at the read position, if any."""
        return self._call("skip_corrupt")  # type: ignore[no-any-return]

    def qsize(self) -> int:
        """Number of items waiting to be got."""
        return self._call("qsize")  # type: ignore[no-any-return]

    def empty(self) -> bool:
        """Whether no item is waiting."""
        return self._call("empty")  # type: ignore[no-any-return]

    def full(self) -> bool:
        """Whether ``maxsize`` items are waiting."""
        return self._call("full")  # type: ignore[no-any-return]

    def statistics(self) -> QueueStatistics:
        """Return a snapshot of the queue object's waiters and task counts."""
        return self._q.statistics()  # type: ignore[no-any-return]
