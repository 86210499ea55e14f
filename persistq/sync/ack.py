"""Blocking, thread-safe twins of the ack queues (forwarding through the portal)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar, Literal, TypeVar, overload

from .. import serializers as _serializers
from ..queues._base import DEFAULT_POLL_INTERVAL, AckRecord, Durability, FailedItem, RawItem
from ..queues.ack import _DEFAULT, AckStatus
from ..queues.ack import AckQueue as _AsyncAckQueue
from ..queues.ack import FILOAckQueue as _AsyncFILOAckQueue
from ..queues.ack import PriorityAckQueue as _AsyncPriorityAckQueue
from ..queues.ack import UniqueAckQ as _AsyncUniqueAckQ
from ..queues.fifo import Location
from .queues import FIFOQueue, _PriorityPuts, _UniquePuts

__all__ = (
    "AckQueue",
    "FIFOSQLiteAckQueue",
    "FILOAckQueue",
    "FILOSQLiteAckQueue",
    "PriorityAckQueue",
    "SQLiteAckQueue",
    "UniqueAckQ",
)


_T = TypeVar("_T")


class AckQueue(FIFOQueue[_T]):
    """Blocking, thread-safe twin of :class:`persistq.AckQueue` (persist-queue's ``SQLiteAckQueue``).

    A drop-in for persist-queue's ``SQLiteAckQueue``; see the async class for
    leases, attempts and dead letters.
    """

    _async_cls: ClassVar[type[Any]] = _AsyncAckQueue

    def __init__(
        self,
        path: str | os.PathLike[str] | Location,
        auto_resume: bool = True,
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
        visibility_timeout: float | None = None,
        max_attempts: int = 0,
        max_acked_length: int = 1000,
    ) -> None:
        self._open_twin(
            path,
            auto_resume,
            name,
            multithreading,
            timeout,
            auto_commit,
            serializer,
            db_file_name,
            maxsize=maxsize,
            durability=durability,
            poll_interval=poll_interval,
            visibility_timeout=visibility_timeout,
            max_attempts=max_attempts,
            max_acked_length=max_acked_length,
        )
        q = self._q
        self.path: str = q.path
        self.name: str = q.name
        self.multithreading: bool = multithreading
        self.timeout: float = q.timeout
        self.auto_commit: bool = True
        self.serializer: Any = q.serializer
        self.maxsize: int = q.maxsize
        self.durability: str = q.durability
        self.poll_interval: float = q.poll_interval
        self.auto_resume: bool = q.auto_resume
        self.visibility_timeout: float | None = q.visibility_timeout
        self.max_attempts: int = q.max_attempts
        self.max_acked_length: int = q.max_acked_length

    @overload  # type: ignore[override]
    def get(
        self,
        block: bool = True,
        timeout: float | None = None,
        id: int | RawItem[_T] | None = None,
        next_in_order: bool = False,
        raw: Literal[False] = False,
        visibility_timeout: float | None = ...,
    ) -> _T: ...
    @overload
    def get(
        self,
        block: bool = True,
        timeout: float | None = None,
        id: int | RawItem[_T] | None = None,
        next_in_order: bool = False,
        *,
        raw: Literal[True],
        visibility_timeout: float | None = ...,
    ) -> RawItem[_T]: ...
    @overload
    def get(
        self,
        block: bool,
        timeout: float | None,
        id: int | RawItem[_T] | None,
        next_in_order: bool,
        raw: bool,
        visibility_timeout: float | None = ...,
    ) -> _T | RawItem[_T]: ...
    def get(
        self,
        block: bool = True,
        timeout: float | None = None,
        id: int | RawItem[_T] | None = None,  # noqa: A002 - persist-queue's name
        next_in_order: bool = False,
        raw: bool = False,
        visibility_timeout: float | None = _DEFAULT,
    ) -> _T | RawItem[_T]:
        """Deliver the next ready item and mark it in flight (see the async ``get``)."""
        return self._call("get", block, timeout, id, next_in_order, raw, visibility_timeout)  # type: ignore[no-any-return]

    @overload  # type: ignore[override]
    def get_nowait(
        self,
        id: int | RawItem[_T] | None = None,
        next_in_order: bool = False,
        raw: Literal[False] = False,
    ) -> _T: ...
    @overload
    def get_nowait(
        self,
        id: int | RawItem[_T] | None = None,
        next_in_order: bool = False,
        *,
        raw: Literal[True],
    ) -> RawItem[_T]: ...
    @overload
    def get_nowait(
        self,
        id: int | RawItem[_T] | None,
        next_in_order: bool,
        raw: bool,
    ) -> _T | RawItem[_T]: ...
    def get_nowait(
        self,
        id: int | RawItem[_T] | None = None,  # noqa: A002 - persist-queue's name
        next_in_order: bool = False,
        raw: bool = False,
    ) -> _T | RawItem[_T]:
        """``get(block=False)``."""
        return self._call("get_nowait", id, next_in_order, raw)  # type: ignore[no-any-return]

    @overload
    def get_many(
        self,
        max_items: int,
        block: bool = True,
        timeout: float | None = None,
        raw: Literal[False] = False,
        visibility_timeout: float | None = ...,
    ) -> list[_T]: ...
    @overload
    def get_many(
        self,
        max_items: int,
        block: bool = True,
        timeout: float | None = None,
        *,
        raw: Literal[True],
        visibility_timeout: float | None = ...,
    ) -> list[RawItem[_T]]: ...
    @overload
    def get_many(
        self,
        max_items: int,
        block: bool,
        timeout: float | None,
        raw: bool,
        visibility_timeout: float | None = ...,
    ) -> list[_T] | list[RawItem[_T]]: ...
    def get_many(
        self,
        max_items: int,
        block: bool = True,
        timeout: float | None = None,
        raw: bool = False,
        visibility_timeout: float | None = _DEFAULT,
    ) -> list[_T] | list[RawItem[_T]]:
        """Deliver up to ``max_items`` ready items in one transaction."""
        return self._call("get_many", max_items, block, timeout, raw, visibility_timeout)  # type: ignore[no-any-return]

    def task_done(self) -> None:
        """Kept for compatibility (a no-op): ack queues finish items with ``ack``."""
        portal = self._portal
        if portal is not None and self._pid == os.getpid() and self._q._task_done_from_thread(portal.loop):
            return
        self._call("task_done")

    def ack(self, item: _T | RawItem[_T] | None = None, id: int | str | None = None) -> int:  # noqa: A002
        """Mark an item done; return its id (durable on return)."""
        return self._call("ack", item, id)  # type: ignore[no-any-return]

    def ack_failed(self, item: _T | RawItem[_T] | None = None, id: int | str | None = None) -> int:  # noqa: A002
        """Mark an item failed for good; return its id."""
        return self._call("ack_failed", item, id)  # type: ignore[no-any-return]

    def nack(
        self,
        item: _T | RawItem[_T] | None = None,
        id: int | str | None = None,  # noqa: A002
        delay: float = 0,
    ) -> int:
        """Give an in-flight item back (ready again after ``delay`` seconds); return its id."""
        return self._call("nack", item, id, delay)  # type: ignore[no-any-return]

    def ack_many(self, items: Iterable[_T | RawItem[_T]] = (), ids: Iterable[int] = ()) -> list[int]:
        """Ack several items and ids in one transaction."""
        return self._call("ack_many", list(items), list(ids))  # type: ignore[no-any-return]

    def extend(self, item_or_id: _T | RawItem[_T] | int, seconds: float) -> float:
        """Prolong an in-flight item's lease to end ``seconds`` from now."""
        return self._call("extend", item_or_id, seconds)  # type: ignore[no-any-return]

    def resume_unack_tasks(self) -> int:
        """Give every in-flight item back to ready, whoever holds it."""
        return self._call("resume_unack_tasks")  # type: ignore[no-any-return]

    def requeue_failed(self, ids: Sequence[int] | None = None) -> int:
        """Make failed items ready again with fresh attempts."""
        return self._call("requeue_failed", None if ids is None else list(ids))  # type: ignore[no-any-return]

    def failed(self) -> list[FailedItem[_T]]:
        """The failed items (dead letters)."""
        return self._call("failed")  # type: ignore[no-any-return]

    def clear_acked_data(
        self, max_delete: int | None = 1000, keep_latest: int = 1000, clear_ack_failed: bool = False
    ) -> int:
        """Delete acked (and optionally failed) rows, keeping the newest ``keep_latest``."""
        return self._call("clear_acked_data", max_delete, keep_latest, clear_ack_failed)  # type: ignore[no-any-return]

    def forget_acked(self, older_than: float) -> int:
        """Forget acked items put more than ``older_than`` seconds ago (rows and fingerprints)."""
        return self._call("forget_acked", older_than)  # type: ignore[no-any-return]

    def counts(self) -> dict[AckStatus, int]:
        """Items per status."""
        return self._call("counts")  # type: ignore[no-any-return]

    def unack_count(self) -> int:
        """Items in flight."""
        return self._call("unack_count")  # type: ignore[no-any-return]

    def acked_count(self) -> int:
        """Acked items still kept."""
        return self._call("acked_count")  # type: ignore[no-any-return]

    def ready_count(self) -> int:
        """Items given back and ready (status 1)."""
        return self._call("ready_count")  # type: ignore[no-any-return]

    def ack_failed_count(self) -> int:
        """Failed items."""
        return self._call("ack_failed_count")  # type: ignore[no-any-return]

    def queue(self) -> list[AckRecord[_T]]:  # type: ignore[override]
        """Every row as ``{"id", "data", "timestamp", "status", "attempts"}``, by id."""
        return self._call("queue")  # type: ignore[no-any-return]

    def active_size(self) -> int:
        """Items waiting or in flight."""
        return self._call("active_size")  # type: ignore[no-any-return]


SQLiteAckQueue = AckQueue
"""persist-queue's name for :class:`AckQueue`."""
FIFOSQLiteAckQueue = AckQueue
"""persist-queue's other name for :class:`AckQueue`."""


class FILOAckQueue(AckQueue[_T]):
    """Blocking twin of :class:`persistq.FILOAckQueue` (newest first)."""

    _async_cls: ClassVar[type[Any]] = _AsyncFILOAckQueue


FILOSQLiteAckQueue = FILOAckQueue
"""persist-queue's name for :class:`FILOAckQueue`."""


class UniqueAckQ(_UniquePuts[_T], AckQueue[_T]):  # type: ignore[misc]  # put returns None for a duplicate
    """Blocking twin of :class:`persistq.UniqueAckQ` (refuses items equal to remembered ones)."""

    _async_cls: ClassVar[type[Any]] = _AsyncUniqueAckQ


class PriorityAckQueue(_PriorityPuts[_T], AckQueue[_T]):  # type: ignore[misc]  # put takes a priority
    """Blocking twin of :class:`persistq.PriorityAckQueue` (lowest number first)."""

    _async_cls: ClassVar[type[Any]] = _AsyncPriorityAckQueue
