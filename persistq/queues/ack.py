"""Ack queues: ``get`` delivers an item, ``ack`` / ``nack`` / ``ack_failed`` settle it.

Beyond persist-queue's API: leases (``visibility_timeout``: an item in flight
longer than that becomes ready again, so a crashed consumer never strands
work), attempts with ``max_attempts`` (an item delivered that many times
without an ack is moved to the failed state, the dead letters, instead of
looping), ``nack(delay=…)``, ``extend()``, and acked rows removed
automatically beyond ``max_acked_length``. Every state lives in the database,
so counts are right across objects and processes.
"""

from __future__ import annotations

import asyncio
import enum
import math
import os
import time
import warnings
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar, Literal, TypeVar, overload

import anyio
import anyio.lowlevel

from .. import serializers as _serializers
from .._owner import new_owner, owner_alive
from ..engines.base import ACK_FAILED, ACKED, AckClaim, AckRow, AckStore, AckTableSpec, Durability
from ..engines.locations import Location, ack_store
from ..errors import Empty, ItemNotFound, SerializationError
from ._base import DEFAULT_POLL_INTERVAL, NOT_NOW, AckRecord, FailedItem, RawItem, make_deadline
from .fifo import FIFOQueue, _item_id
from .priority import _check_priority
from .unique import encode_canonical, unique_storage_forms

__all__ = (
    "AckQueue",
    "AckStatus",
    "FIFOSQLiteAckQueue",
    "FILOAckQueue",
    "FILOSQLiteAckQueue",
    "PriorityAckQueue",
    "SQLiteAckQueue",
    "UniqueAckQ",
)

_DEFAULT: Any = object()
_T = TypeVar("_T")


class AckStatus(enum.IntEnum):
    """The state of an item in an ack queue (persist-queue's values, plus ``delayed``)."""

    inited = 0
    """Put, never delivered."""
    ready = 1
    """Given back (nack, expired lease, resume): will be delivered again."""
    unack = 2
    """Delivered by ``get``; waiting for ``ack``, ``nack`` or ``ack_failed``."""
    delayed = 3
    """Nacked with a delay: ready again once the delay has passed."""
    acked = 5
    """Done."""
    ack_failed = 9
    """Failed for good (``ack_failed``, or ``max_attempts`` deliveries): the dead letters."""


def _check_seconds(name: str, value: object, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or value < 0:
        raise ValueError(f"{name!r} must be a non-negative number of seconds, not {value!r}")
    return float(value)


class AckQueue(FIFOQueue[_T]):
    """A persistent FIFO ack queue (async; asyncio and trio), on SQLite or a database server.

    ``get`` marks the item *in flight* (``AckStatus.unack``) and returns it;
    ``ack`` finishes it, ``nack`` gives it back, ``ack_failed`` fails it for
    good. Drop-in for persist-queue's ``SQLiteAckQueue`` (this class; table
    ``ack_queue_{name}``; its databases open in place). On a server location
    (``mysql://…``, ``postgresql://…``) leases and delays run on the
    server's clock.

    ``path``, ``name``, ``multithreading``, ``timeout``, ``serializer``,
    ``db_file_name``, ``maxsize``, ``durability`` and ``poll_interval`` are as
    in :class:`~persistq.FIFOQueue` (``path``: a directory, an SQLite file or
    a server URL).

    Args:
        auto_resume: at open, give back in-flight items whose lease expired or
            whose consumer process is gone (never those of a live consumer in
            another process).
        auto_commit: accepted for compatibility; ack queues always commit.
        visibility_timeout: seconds an item may stay in flight before it is
            ready again (``None``: until acked, nacked or resumed). ``get``
            can override it per call; ``extend`` prolongs one item's lease.
        max_attempts: ``> 0``: an item delivered that many times without an
            ack goes to ``ack_failed`` instead of being delivered again.
        max_acked_length: how many acked rows to keep (newest first); older
            ones are deleted as new acks come (``0``: delete at once).
    """

    KIND_NAME: ClassVar[str] = "SQLiteAckQueue"
    _TABLE_PREFIX: ClassVar[str] = "ack_queue"
    _ASYNC_LEGACY_TABLE: ClassVar[bool] = False

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
        if not auto_commit:
            warnings.warn("disable auto commit is not supported in ack queue", UserWarning, stacklevel=2)
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 0:
            raise ValueError(f"'max_attempts' must be an int >= 0, not {max_attempts!r}")
        if (
            isinstance(max_acked_length, bool)
            or not isinstance(max_acked_length, int)
            or max_acked_length < 0
        ):
            raise ValueError(f"'max_acked_length' must be an int >= 0, not {max_acked_length!r}")
        self.auto_resume = bool(auto_resume)
        self.visibility_timeout = _check_seconds("visibility_timeout", visibility_timeout, allow_none=True)
        self.max_attempts = max_attempts
        self.max_acked_length = max_acked_length
        super().__init__(
            path,
            name,
            multithreading,
            timeout,
            True,
            serializer,
            db_file_name,
            maxsize=maxsize,
            durability=durability,
            poll_interval=poll_interval,
        )
        self._ack.max_attempts = max_attempts
        # Items this object delivered and has not settled: id -> item, and the
        # item objects' identities -> id (the items are held, so ids stay valid).
        self._inflight: dict[int, Any] = {}
        self._by_identity: dict[int, int] = {}

    def _make_engine(self, db_file_name: str | None) -> Any:
        return ack_store(
            self._location,
            AckTableSpec(f"{self._TABLE_PREFIX}_{self.name}", self._ORDER, self._UNIQUE),
            _serializers.serializer_name(self.serializer),
            db_file_name=db_file_name,
            durability=self.durability,
            timeout=self.timeout,
        )

    @property
    def _ack(self) -> AckStore:
        engine: AckStore = self._engine  # type: ignore[assignment]
        return engine

    async def _recover(self) -> None:
        self._owner = new_owner()
        if self.auto_resume:
            await self._ack.resume(owner_alive, self.max_attempts)

    async def _release_held(self) -> None:
        # Items still in flight here go back to ready (a graceful close is a
        # restart that does not need to wait for the leases).
        if self._inflight and self._owner is not None:
            await self._ack.release(self._owner, self.max_attempts)
            self._inflight.clear()
            self._by_identity.clear()

    # ------------------------------------------------------------------ get

    @overload  # type: ignore[override]
    async def get(
        self,
        block: bool = True,
        timeout: float | None = None,
        id: int | RawItem[_T] | None = None,
        next_in_order: bool = False,
        raw: Literal[False] = False,
        visibility_timeout: float | None = ...,
    ) -> _T: ...
    @overload
    async def get(
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
    async def get(
        self,
        block: bool,
        timeout: float | None,
        id: int | RawItem[_T] | None,
        next_in_order: bool,
        raw: bool,
        visibility_timeout: float | None = ...,
    ) -> _T | RawItem[_T]: ...
    async def get(
        self,
        block: bool = True,
        timeout: float | None = None,
        id: int | RawItem[_T] | None = None,  # noqa: A002 - persist-queue's name
        next_in_order: bool = False,
        raw: bool = False,
        visibility_timeout: float | None = _DEFAULT,
    ) -> _T | RawItem[_T]:
        """Deliver the next ready item (or the item ``id``) and mark it in flight.

        Waits as :meth:`SQLiteQueue.get`. The claim is atomic across processes:
        no other consumer receives the item while it is in flight (while its
        lease lasts). If the call is cancelled, the item stays ready.

        Args:
            id: deliver this item (an int or a raw dict); :class:`Empty` at
                once if it is not ready.
            next_in_order: with ``id``: deliver the first ready item after
                ``id`` in queue order, wrapping around to the start.
            raw: return ``{"pqid", "data", "timestamp"}``.
            visibility_timeout: this delivery's lease (default: the queue's).

        Raises:
            Empty: no item before the timeout.
            ValueError: ``next_in_order`` without ``id``, or not a bool.
        """
        rows = await self._claim_ack(1, block, timeout, id, next_in_order, visibility_timeout)
        return (await self._deliver_ack(rows, raw))[0]  # type: ignore[no-any-return]

    @overload  # type: ignore[override]
    async def get_nowait(
        self,
        id: int | RawItem[_T] | None = None,
        next_in_order: bool = False,
        raw: Literal[False] = False,
    ) -> _T: ...
    @overload
    async def get_nowait(
        self,
        id: int | RawItem[_T] | None = None,
        next_in_order: bool = False,
        *,
        raw: Literal[True],
    ) -> RawItem[_T]: ...
    @overload
    async def get_nowait(
        self,
        id: int | RawItem[_T] | None,
        next_in_order: bool,
        raw: bool,
    ) -> _T | RawItem[_T]: ...
    async def get_nowait(
        self,
        id: int | RawItem[_T] | None = None,  # noqa: A002 - persist-queue's name
        next_in_order: bool = False,
        raw: bool = False,
    ) -> _T | RawItem[_T]:
        """``get(block=False)``."""
        return await self.get(False, None, id, next_in_order, raw)

    @overload
    async def get_many(
        self,
        max_items: int,
        block: bool = True,
        timeout: float | None = None,
        raw: Literal[False] = False,
        visibility_timeout: float | None = ...,
    ) -> list[_T]: ...
    @overload
    async def get_many(
        self,
        max_items: int,
        block: bool = True,
        timeout: float | None = None,
        *,
        raw: Literal[True],
        visibility_timeout: float | None = ...,
    ) -> list[RawItem[_T]]: ...
    @overload
    async def get_many(
        self,
        max_items: int,
        block: bool,
        timeout: float | None,
        raw: bool,
        visibility_timeout: float | None = ...,
    ) -> list[_T] | list[RawItem[_T]]: ...
    async def get_many(
        self,
        max_items: int,
        block: bool = True,
        timeout: float | None = None,
        raw: bool = False,
        visibility_timeout: float | None = _DEFAULT,
    ) -> list[_T] | list[RawItem[_T]]:
        """Deliver up to ``max_items`` ready items in one transaction, in queue order."""
        if isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 1:
            raise ValueError(f"max_items must be a positive int, not {max_items!r}")
        rows = await self._claim_ack(max_items, block, timeout, None, False, visibility_timeout)
        return await self._deliver_ack(rows, raw)

    async def _get(self, block: bool, timeout: float | None, item: Any, raw: bool, key: Any) -> Any:
        return await self.get(block, timeout, item, False, raw)

    async def _claim_ack(
        self,
        n: int,
        block: bool,
        timeout: float | None,
        id: Any,  # noqa: A002
        next_in_order: bool,
        visibility_timeout: float | None,
    ) -> list[AckRow]:
        if not isinstance(next_in_order, bool):
            raise ValueError("'next_in_order' must be a bool")
        item_id = _item_id(id)
        if next_in_order and item_id is None:
            raise ValueError("'next_in_order' requires the preceding 'id' be specified.")
        lease = (
            self.visibility_timeout
            if visibility_timeout is _DEFAULT
            else _check_seconds("visibility_timeout", visibility_timeout, allow_none=True)
        )
        await anyio.lowlevel.checkpoint_if_cancelled()
        deadline = make_deadline(block, timeout)
        await self._ensure_open()
        owner = self._owner
        assert owner is not None
        while True:
            seen = self._getters.changes
            claim: AckClaim = await self._ack.claim(
                n,
                None if next_in_order else item_id,
                item_id if next_in_order else None,
                owner,
                lease,
                self.max_attempts,
            )
            if claim.rows:
                break
            if item_id is not None and not next_in_order:
                raise Empty(f"item {item_id} is not ready in the queue")
            if deadline is not None and anyio.current_time() >= deadline:
                raise Empty
            wait_until = deadline
            if claim.next_due is not None:
                # A delayed item or an expiring lease becomes due at that time.
                due = anyio.current_time() + max(0.0, claim.next_due - time.time()) + 0.001
                wait_until = due if wait_until is None else min(wait_until, due)
            await self._getters.wait(wait_until, self.poll_interval, self._poll, seen)
            self._check_open()
        self._putters.wake(len(claim.rows))
        return claim.rows

    async def _deliver_ack(self, rows: list[AckRow], raw: bool) -> list[Any]:
        try:
            items = [self._decode((r[0], r[1], r[2], r[3])) for r in rows]
        except SerializationError:
            # An item that cannot be decoded is not delivered: it goes back.
            with anyio.CancelScope(shield=True):
                await self._ack.nack([r[0] for r in rows], 0, self.max_attempts)
            raise
        out: list[Any] = []
        for row, item in zip(rows, items, strict=True):
            value = {"pqid": row[0], "data": item, "timestamp": row[2]} if raw else item
            self._inflight[row[0]] = value
            self._by_identity[id(value)] = row[0]
            out.append(value)
        return out

    # ------------------------------------------------------------- settling

    def _resolve(self, item: Any = None, id: Any = None) -> int:  # noqa: A002
        if item is not None and id is not None:
            raise ValueError("Specify an id or an item, not both.")
        if item is None and id is None:
            raise ValueError("Specify an id or an item.")
        if id is not None:
            if isinstance(id, str) and id.isdigit():
                return int(id)
            resolved = _item_id(id)
            assert resolved is not None
            return resolved
        if isinstance(item, dict) and "pqid" in item:
            resolved = _item_id(item)
            assert resolved is not None
            return resolved
        found = self._by_identity.get(_identity(item))
        if found is not None and self._inflight.get(found) is item:
            return found
        # Any object equal to one this queue object delivered will do.
        for pqid, value in self._inflight.items():
            if _same(value, item):
                return pqid
        raise ItemNotFound(
            repr(item)[:80], "not delivered (or already settled) by this queue object; pass id= instead"
        )

    def _forget(self, ids: Iterable[int]) -> None:
        for pqid in ids:
            value = self._inflight.pop(pqid, None)
            if value is not None:
                self._by_identity.pop(_identity(value), None)

    async def _settle(self, ids: list[int], status: int) -> None:
        await anyio.lowlevel.checkpoint_if_cancelled()
        await self._ensure_open()
        await self._ack.set_final(ids, status, self.max_acked_length if status == ACKED else None)
        self._forget(ids)
        self._joiners.wake_all()

    async def ack(self, item: _T | RawItem[_T] | None = None, id: int | str | None = None) -> int:  # noqa: A002
        """Mark an item done (``AckStatus.acked``); return its id. Durable on return.

        ``item`` is any object equal to an item this queue object delivered
        (not only the identical object), or a raw dict; or pass ``id=``.

        Raises:
            ValueError: both or neither of ``item`` and ``id``.
            ItemNotFound: the item is unknown here, or no row has that id.
        """
        pqid = self._resolve(item, id)
        await self._settle([pqid], ACKED)
        return pqid

    async def ack_failed(self, item: _T | RawItem[_T] | None = None, id: int | str | None = None) -> int:  # noqa: A002
        """Mark an item failed for good (``AckStatus.ack_failed``); return its id."""
        pqid = self._resolve(item, id)
        await self._settle([pqid], ACK_FAILED)
        return pqid

    async def nack(
        self,
        item: _T | RawItem[_T] | None = None,
        id: int | str | None = None,  # noqa: A002
        delay: float = 0,
    ) -> int:
        """Give an in-flight item back; it is delivered again (after ``delay`` seconds).

        With ``max_attempts``, an item that was delivered that many times goes
        to ``ack_failed`` instead. An item that is waiting already is left as
        it is. Returns the id.

        Raises:
            ItemNotFound: no such row, or it is acked or failed.
        """
        pqid = self._resolve(item, id)
        d = _check_seconds("delay", delay)
        await anyio.lowlevel.checkpoint_if_cancelled()
        await self._ensure_open()
        await self._ack.nack([pqid], d or 0.0, self.max_attempts)
        self._forget([pqid])
        self._getters.wake(1)
        return pqid

    async def ack_many(self, items: Iterable[_T | RawItem[_T]] = (), ids: Iterable[int] = ()) -> list[int]:
        """Ack several items (objects or raw dicts) and ids in one transaction."""
        resolved = [self._resolve(item=i) for i in items] + [self._resolve(id=i) for i in ids]
        if resolved:
            await self._settle(resolved, ACKED)
        else:
            await anyio.lowlevel.checkpoint()
        return resolved

    async def extend(self, item_or_id: _T | RawItem[_T] | int, seconds: float) -> float:
        """Prolong an in-flight item's lease to end ``seconds`` from now; return that time.

        ``item_or_id``: an id (an int), a raw dict, or an item this object
        delivered. Returns the new lease end (seconds since the epoch).

        Raises:
            ItemNotFound: the item is not in flight.
        """
        s = _check_seconds("seconds", seconds)
        assert s is not None
        if isinstance(item_or_id, int) and not isinstance(item_or_id, bool):
            pqid = item_or_id
        else:
            pqid = self._resolve(item=item_or_id)
        await anyio.lowlevel.checkpoint_if_cancelled()
        await self._ensure_open()
        return await self._ack.extend(pqid, s)

    async def resume_unack_tasks(self) -> int:
        """Give every in-flight item back to ready, whoever holds it; return how many.

        Use it when you know no consumer is working (persist-queue's
        behaviour). ``auto_resume`` is the safe variant, run at open.
        """
        await anyio.lowlevel.checkpoint_if_cancelled()
        await self._ensure_open()
        n = await self._ack.resume(None, self.max_attempts)
        self._inflight.clear()
        self._by_identity.clear()
        self._getters.wake(n)
        return n

    async def requeue_failed(self, ids: Sequence[int] | None = None) -> int:
        """Make failed items (all, or those ``ids``) ready again with fresh attempts."""
        await anyio.lowlevel.checkpoint_if_cancelled()
        await self._ensure_open()
        n = await self._ack.requeue_failed(None if ids is None else list(ids))
        self._getters.wake(n)
        return n

    async def failed(self) -> list[FailedItem[_T]]:
        """The failed items (dead letters): ``{"pqid", "data", "timestamp", "attempts"}``."""
        await anyio.lowlevel.checkpoint_if_cancelled()
        await self._ensure_open()
        rows = await self._ack.rows(ACK_FAILED)
        return [
            {
                "pqid": r[0],
                "data": self._decode((r[0], r[1], r[2], r[3])),
                "timestamp": r[2],
                "attempts": r[5],
            }
            for r in rows
        ]

    async def clear_acked_data(
        self, max_delete: int | None = 1000, keep_latest: int = 1000, clear_ack_failed: bool = False
    ) -> int:
        """Delete acked rows (and failed ones with ``clear_ack_failed``), keeping the newest
        ``keep_latest``; at most ``max_delete`` (``None`` or 0: no limit).

        On a :class:`UniqueAckQ` this is what lets an item equal to a finished
        one in again: the deleted rows, and every fingerprint of acked rows
        trimmed beyond ``max_acked_length``, are forgotten. Returns how many
        rows and fingerprints were deleted.
        """
        await anyio.lowlevel.checkpoint_if_cancelled()
        await self._ensure_open()
        return await self._ack.clear_acked(max_delete, keep_latest, clear_ack_failed)

    async def forget_acked(self, older_than: float) -> int:
        """Forget acked items that were put more than ``older_than`` seconds ago.

        Their rows are deleted and, on a :class:`UniqueAckQ`, their
        fingerprints too, so an equal item can be put again (a crawler that
        revisits what it finished a week ago calls ``forget_acked(7 * 86400)``).
        Failed items stay (see :meth:`requeue_failed` and
        :meth:`clear_acked_data`). The age counts from the put, on this
        machine's clock. Committed on return; returns how many rows and
        fingerprints were deleted.

        Raises:
            ValueError: ``older_than`` is not a non-negative number.
        """
        seconds = _check_seconds("older_than", older_than)
        assert seconds is not None
        await anyio.lowlevel.checkpoint_if_cancelled()
        await self._ensure_open()
        return await self._ack.forget_acked(seconds)

    # ------------------------------------------------------------ inspection

    async def _counts(self) -> dict[int, int]:
        await anyio.lowlevel.checkpoint_if_cancelled()
        await self._ensure_open()
        return await self._ack.counts(self.max_attempts)

    async def counts(self) -> dict[AckStatus, int]:
        """Items per status, counted by the database (every status present)."""
        c = await self._counts()
        return {s: c.get(int(s), 0) for s in AckStatus}

    async def unack_count(self) -> int:
        """Items in flight."""
        return (await self._counts()).get(2, 0)

    async def acked_count(self) -> int:
        """Acked items still kept."""
        return (await self._counts()).get(5, 0)

    async def ready_count(self) -> int:
        """Items given back and ready (status 1 only, as persist-queue)."""
        return (await self._counts()).get(1, 0)

    async def ack_failed_count(self) -> int:
        """Failed items (dead letters)."""
        return (await self._counts()).get(9, 0)

    async def active_size(self) -> int:
        """Items waiting or in flight (all processes)."""
        c = await self._counts()
        return sum(c.get(s, 0) for s in (0, 1, 2, 3))

    async def queue(self) -> list[AckRecord[_T]]:  # type: ignore[override]
        """Every row as ``{"id", "data", "timestamp", "status", "attempts"}``, by id."""
        await anyio.lowlevel.checkpoint_if_cancelled()
        await self._ensure_open()
        rows = await self._ack.rows(None)
        return [
            {
                "id": r[0],
                "data": self._decode((r[0], r[1], r[2], r[3])),
                "timestamp": r[2],
                "status": r[4],
                "attempts": r[5],
            }
            for r in rows
        ]

    async def task_done(self) -> None:
        """Kept for compatibility: ack queues finish items with :meth:`ack` (a no-op)."""
        await anyio.lowlevel.checkpoint_if_cancelled()
        self._check_open()

    async def _task_done(self, key: Any) -> None:
        await self.task_done()

    def _task_done_from_thread(self, loop: asyncio.AbstractEventLoop) -> bool:
        """A no-op for ack queues; False (go through the loop) once closed."""
        return self._state == "open"

    async def join(self) -> None:
        """Wait until no item is waiting or in flight (counted by the database)."""
        await anyio.lowlevel.checkpoint_if_cancelled()
        await self._ensure_open()
        while True:
            seen = self._joiners.changes
            if await self.active_size() == 0:
                return
            await self._joiners.wait(None, self.poll_interval, self._poll, seen)
            self._check_open()

    def statistics(self) -> Any:
        """Return a snapshot of this object's waiters; ``pending`` = items in flight here."""
        base = super().statistics()
        return type(base)(
            tasks_waiting_get=base.tasks_waiting_get,
            tasks_waiting_put=base.tasks_waiting_put,
            unfinished_tasks=len(self._inflight),
            pending=len(self._inflight),
            maxsize=base.maxsize,
            durability=base.durability,
        )


def _identity(obj: Any) -> int:
    return id(obj)


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - objects whose == fails are simply not equal
        return False


SQLiteAckQueue = AckQueue
"""persist-queue's name for :class:`AckQueue` (on any engine, despite the name)."""
FIFOSQLiteAckQueue = AckQueue
"""persist-queue's other name for :class:`AckQueue`."""


class FILOAckQueue(AckQueue[_T]):
    """A persistent ack queue that delivers the newest item first (``ack_filo_queue_{name}``).

    persist-queue's ``FILOSQLiteAckQueue`` is this class.
    """

    KIND_NAME: ClassVar[str] = "FILOSQLiteAckQueue"
    _TABLE_PREFIX: ClassVar[str] = "ack_filo_queue"
    _ORDER: ClassVar[Literal["fifo", "filo", "priority"]] = "filo"


FILOSQLiteAckQueue = FILOAckQueue
"""persist-queue's name for :class:`FILOAckQueue`."""


class UniqueAckQ(AckQueue[_T]):
    """An ack queue that ignores an item equal to one it remembers: waiting, in flight, acked or failed.

    Equality is by value at every depth (as :class:`~persistq.UniqueQ`);
    ``put`` returns ``None`` for a duplicate. Table ``ack_unique_queue_{name}``.

    Finished items are remembered as persist-queue's ``UNIQUE (data)`` does,
    so programs can use the queue as their "already done" set across crashes
    (re-put everything on resume; what was finished is refused). Acked rows
    trimmed beyond ``max_acked_length`` leave a fingerprint (the SHA-256 of the
    stored bytes, not the data) that keeps refusing equal items.
    :meth:`clear_acked_data` and :meth:`forget_acked` forget. A failed item
    stays remembered until :meth:`requeue_failed` makes that same row (same
    id) ready again, or ``clear_acked_data(clear_ack_failed=True)`` deletes
    it; ``nack`` applies to items in flight only.
    """

    KIND_NAME: ClassVar[str] = "UniqueAckQ"
    _TABLE_PREFIX: ClassVar[str] = "ack_unique_queue"
    _UNIQUE: ClassVar[bool] = True

    def _encode(self, item: Any) -> bytes:
        return encode_canonical(self._codec, item)

    def _storage_forms(
        self, datas: Sequence[bytes], items: Sequence[Any] | None
    ) -> tuple[Sequence[bytes], list[bytes | None] | None]:
        return unique_storage_forms(self._engine.legacy_rows_possible, self._codec, datas, items)

    async def put(self, item: _T, block: bool = True, timeout: float | None = None) -> int | None:  # type: ignore[override]
        """Put ``item`` unless an equal item is remembered; return its id or ``None``."""
        return (await self._put_data([self._encode(item)], block, timeout, None, [item]))[0]

    async def put_nowait(self, item: _T) -> int | None:  # type: ignore[override]
        """``put(item, block=False)``."""
        return await self.put(item, block=False)

    async def put_many(  # type: ignore[override]
        self, items: Iterable[_T], block: bool = True, timeout: float | None = None
    ) -> list[int | None]:
        """Put several items in one transaction; ``None`` for each duplicate."""
        return await self._put_many(items, block, timeout, None)


class PriorityAckQueue(AckQueue[_T]):
    """An ack queue delivering the lowest ``priority`` number first, FIFO among equals.

    Table ``ack_priority_queue_{name}`` (persistq's own; persist-queue has no
    priority ack queue). The next item is found through an index.
    """

    KIND_NAME: ClassVar[str] = "PriorityAckQueue"
    _TABLE_PREFIX: ClassVar[str] = "ack_priority_queue"
    _ORDER: ClassVar[Literal["fifo", "filo", "priority"]] = "priority"

    async def put(  # type: ignore[override]
        self, item: _T, priority: int = 0, block: bool = True, timeout: float | None = None
    ) -> int:
        """Put ``item`` with ``priority`` (lower is delivered first); return its id."""
        p = _check_priority(priority)
        ids = await self._put_data([self._encode(item)], block, timeout, p)
        return ids[0]  # type: ignore[return-value]

    def _put_now(  # type: ignore[override]
        self, item: Any, priority: int = 0, block: bool = True, timeout: float | None = None
    ) -> Any:
        """:meth:`put` without waiting, or ``NOT_NOW`` (for persistq.sync)."""
        p = _check_priority(priority)
        ids = self._put_data_now([self._encode(item)], timeout, p)
        return ids if ids is NOT_NOW else ids[0]

    async def put_nowait(self, item: _T, priority: int = 0) -> int:
        """``put(item, priority, block=False)``."""
        return await self.put(item, priority, block=False)

    async def put_many(  # type: ignore[override]
        self, items: Iterable[_T], priority: int = 0, block: bool = True, timeout: float | None = None
    ) -> list[int]:
        """Put several items with one priority in one transaction; return their ids."""
        p = _check_priority(priority)
        return await self._put_many(items, block, timeout, p)  # type: ignore[return-value]
