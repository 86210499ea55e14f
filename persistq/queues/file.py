"""The file-based FIFO queue: ``Queue`` (alias ``AsyncQueue``).

The queue kind (waiting, ``maxsize``, task accounting, serialization, which
caller holds which item) composed with the file engine
(:mod:`persistq.engines.file`), which stores bytes in checksummed segment
files. One process at a time: the directory is locked while the queue is open.

With ``autosave=False`` (the default) an item stays on disk until
``task_done()`` acknowledges it. The persisted read position is the oldest
item not yet done together with the ranges of items done after it, so after a
crash exactly the items not done come back, in order — also those done while
an older one was still held elsewhere stay done.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Sequence
from typing import Any, Generic, Literal, TypeVar

import anyio
import anyio.lowlevel

from .. import serializers as _serializers
from ..engines.file import Durability as Durability
from ..engines.file import FileEngine, Position, Record, validate_durability
from ..engines.file import Skipped as Skipped
from ..engines.locations import parse_location
from ..errors import Empty, Full, QueueClosed, QueueLocked, SerializationError
from ._base import (
    HeldItems,
    Key,
    QueueStatistics,
    Waiters,
    caller_key,
    check_maxsize,
    check_timeout,
    make_deadline,
)

__all__ = ("AsyncQueue", "Queue")

OnCorruption = Literal["raise", "quarantine"]

# Single process: nothing outside this object changes the queue, so waiters are
# only ever woken by this object. The "poll" merely bounds each wait.
_NO_POLL_INTERVAL = 3600.0
_LOCK_RETRY = 0.05


async def _no_poll() -> bool:
    return False


_T = TypeVar("_T")


class Queue(Generic[_T]):
    """A persistent FIFO queue in a directory of segment files (async; asyncio and trio).

    Successor of persist-queue's file ``Queue`` / ``AsyncQueue`` (same
    constructor), with checksummed records, per-item ``task_done``, a
    directory lock, durability modes, ``put_many``/``get_many``, ``close()``
    and ``async with``.

    Durability (``durability="full"``, the default): ``put`` returns after
    its record is fsync'd; ``get`` with ``autosave=True`` and ``task_done``
    return after the new read position is (written in place into the spare
    slot of the position file and fdatasync'd: no rename). Concurrent calls
    share one fsync.

    Args:
        path: the queue directory (created owner-only if missing).
        maxsize: ``> 0`` bounds the number of waiting items; ``put`` then
            blocks (or raises :class:`~persistq.errors.Full`). Not stored.
        chunksize: records per segment file, for a new queue. An existing
            queue keeps the value it was created with (``self.chunksize``
            shows it after :meth:`open`), as persist-queue does.
        tempdir: accepted for compatibility and ignored: temporary files are
            always created in the queue directory, so the rename that
            publishes them is atomic.
        serializer: ``persistq.serializers.pickle`` (default), ``json``,
            ``msgpack``, ``cbor2``, or any object with ``dump``/``load``
            (persist-queue's file-queue protocol) or ``dumps``/``loads``.
            Each record is framed by the queue, so ``load`` gets exactly
            one record's bytes. It is recorded on creation; reopening with another raises
            :class:`~persistq.errors.SerializerMismatch`.
        autosave: ``False``: a got item is acknowledged by ``task_done()``
            (items not done come back after a restart). ``True``: ``get``
            acknowledges it at once.
        durability: ``"full"``, ``"normal"`` (no fsync per call; survives a
            process crash, a power loss may lose the last moments) or
            ``"off"`` (never fsync).
        on_corruption: ``"raise"`` (default): a damaged record makes ``get``
            raise :class:`~persistq.errors.CorruptionError` naming the file
            and offset, until :meth:`skip_corrupt` is called. ``"quarantine"``:
            such records are moved to a quarantine file and skipped.
        lock_timeout: seconds to wait for another holder of the directory
            lock; ``0`` (default) fails at once with
            :class:`~persistq.errors.QueueLocked`, ``None`` waits forever.
    """

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
        if serializer is None:
            serializer = _serializers.pickle
        self._codec = _serializers.Codec(serializer)
        if isinstance(chunksize, bool) or not isinstance(chunksize, int) or chunksize < 1:
            raise ValueError(f"'chunksize' must be a positive int, not {chunksize!r}")
        if on_corruption not in ("raise", "quarantine"):
            raise ValueError(f"on_corruption must be 'raise' or 'quarantine', not {on_corruption!r}")
        self.path = os.fspath(path)
        location = parse_location(self.path)
        if location.is_server:
            raise ValueError(
                f"the file Queue stores its items in a directory, not at {location.display}: "
                "use FIFOQueue (or another SQL kind) for a server location"
            )
        self.maxsize = check_maxsize(maxsize)
        self.chunksize = chunksize
        self.tempdir = tempdir
        self.serializer = serializer
        self.autosave = bool(autosave)
        self.durability = validate_durability(durability)
        self.on_corruption: OnCorruption = on_corruption
        self.lock_timeout = check_timeout(lock_timeout)
        self._engine = FileEngine(
            self.path,
            chunksize,
            _serializers.serializer_name(serializer),
            self.durability,
            quarantine=on_corruption == "quarantine",
        )
        self._getters = Waiters()
        self._putters = Waiters()
        self._joiners = Waiters()
        self._unfinished = 0
        self._done_in_flight = 0
        # Items got and not yet done (autosave=False), per caller, so one
        # caller's task_done never acknowledges another's item.
        self._held: HeldItems[Position] = HeldItems()
        self._state = "new"
        self._open_lock: anyio.Lock | None = None

    # ----------------------------------------------------------- life cycle

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._state == "closed"

    @property
    def unfinished_tasks(self) -> int:
        """Items put (or found at open) and not yet marked ``task_done``."""
        return self._unfinished

    async def open(self) -> None:
        """Open the queue now (otherwise the first operation does).

        Locks the directory, reads the metadata and recovers the last
        segment: a torn append at its end (a crash mid-write) is truncated.

        Raises:
            QueueLocked: another queue object or process holds the directory
                (after waiting ``lock_timeout``).
            StorageError: the path cannot be used, or is a persist-queue
                directory (the message names ``python -m persistq migrate``).
            CorruptionError: the metadata or a segment header is damaged.
            SerializerMismatch: the queue was created with another serializer.
        """
        await anyio.lowlevel.checkpoint_if_cancelled()
        await self._ensure_open()

    async def _ensure_open(self) -> None:
        if self._state == "open":
            return
        if self._state == "closed":
            raise QueueClosed("the queue is closed")
        if self._open_lock is None:
            self._open_lock = anyio.Lock()
        async with self._open_lock:
            if self._state != "new":
                if self._state == "closed":
                    raise QueueClosed("the queue is closed")
                return
            deadline = None if self.lock_timeout is None else anyio.current_time() + self.lock_timeout
            try:
                while True:
                    try:
                        await self._engine.open()
                        break
                    except QueueLocked:
                        if deadline is not None and anyio.current_time() >= deadline:
                            raise
                    # Lock waits happen here, not on the storage thread, so they
                    # stay cancellable.
                    await anyio.sleep(_LOCK_RETRY)
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await self._engine.close()
                raise
            self.chunksize = self._engine.chunksize
            self._unfinished = self._engine.waiting
            self._state = "open"

    async def close(self) -> None:
        """Close the queue: wake waiters with ``QueueClosed``, release files and lock.

        Items got and not ``task_done`` stay unacknowledged: they come back
        when the queue is opened again. Idempotent.
        """
        if self._state == "closed":
            return
        self._state = "closed"
        self._getters.wake_all()
        self._putters.wake_all()
        self._joiners.wake_all()
        with anyio.CancelScope(shield=True):
            await self._engine.close()

    async def aclose(self) -> None:
        """Same as :meth:`close`."""
        await self.close()

    async def __aenter__(self) -> Queue[_T]:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __del__(self) -> None:
        if getattr(self, "_state", "closed") == "open" and self._engine.is_open:
            # Clean up before warning: a warnings filter may turn the warning into an error.
            self._engine.close_nowait()
            warnings.warn(f"persistq file queue {self.path!r} was not closed", ResourceWarning, stacklevel=2)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} path={self.path!r} durability={self.durability!r} {self._state}>"

    # -------------------------------------------------------------- helpers

    def _encode(self, item: Any) -> bytes:
        return self._codec.encode(item)

    def _decode(self, record: Record) -> Any:
        try:
            return self._codec.decode(record[1])
        except Exception as exc:
            (seg, off) = record[0]
            raise SerializationError(
                f"the item at offset {off} of segment {seg} in {self.path!r} cannot be decoded with "
                f"{self._codec.name}: {exc}"
            ) from exc

    def _check_open(self) -> None:
        if self._state == "closed":
            raise QueueClosed("the queue is closed")

    # ------------------------------------------------------------------ put

    async def put(self, item: _T, block: bool = True, timeout: float | None = None) -> None:
        """Put ``item`` at the tail.

        With ``durability="full"`` the item is fsync'd when this returns. If
        the queue holds ``maxsize`` items, waits for room (``block``,
        ``timeout`` as in :meth:`queue.Queue.put`). A put never acknowledges
        an item got and not done.

        Raises:
            Full: no room before the timeout (at once with ``block=False``).
            SerializationError: the item cannot be encoded; nothing was written.
            ValueError: a negative timeout.
        """
        await self._put_data([self._encode(item)], block, timeout)

    async def put_nowait(self, item: _T) -> None:
        """``put(item, block=False)``."""
        await self.put(item, block=False)

    async def put_many(self, items: Iterable[_T], block: bool = True, timeout: float | None = None) -> None:
        """Put several items with one write and one fsync; all or none.

        Raises:
            ValueError: more items than ``maxsize`` (they could never fit).
        """
        datas = [self._encode(item) for item in items]
        if not datas:
            await anyio.lowlevel.checkpoint()
            return
        if 0 < self.maxsize < len(datas):
            raise ValueError(f"put_many of {len(datas)} items can never fit in maxsize={self.maxsize}")
        await self._put_data(datas, block, timeout)

    async def _put_data(self, datas: Sequence[bytes], block: bool, timeout: float | None) -> None:
        await anyio.lowlevel.checkpoint_if_cancelled()
        deadline = make_deadline(block, timeout)
        await self._ensure_open()
        while True:
            # Count the items before the append: a consumer may get one and call
            # task_done before this task runs again.
            self._unfinished += len(datas)
            try:
                appended = await self._engine.append(datas, self.maxsize)
            except BaseException:
                self._uncount(len(datas))
                raise
            if appended:
                break
            self._uncount(len(datas))
            if self.maxsize > 0 and self._engine.waiting + len(datas) <= self.maxsize:
                continue  # a get freed room while our append ran
            if deadline is not None and anyio.current_time() >= deadline:
                raise Full
            await self._putters.wait(deadline, _NO_POLL_INTERVAL, _no_poll)
            self._check_open()
        self._getters.wake(len(datas))

    def _uncount(self, n: int) -> None:
        self._unfinished -= n
        if self._unfinished == 0:
            self._joiners.wake_all()

    # ------------------------------------------------------------------ get

    async def get(self, block: bool = True, timeout: float | None = None) -> _T:
        """Remove and return the next item.

        Waits for an item (``block``, ``timeout`` as in
        :meth:`queue.Queue.get`). With ``autosave=True`` the new read position
        is durable when this returns; otherwise the item stays on disk until
        :meth:`task_done`. If the call is cancelled, the item stays first in
        the queue.

        Raises:
            Empty: no item before the timeout (at once with ``block=False``).
            CorruptionError: the next record is damaged (see
                :meth:`skip_corrupt`); nothing was taken.
            SerializationError: the record cannot be decoded; it stays in the
                queue.
        """
        return await self._get(block, timeout, None)  # type: ignore[no-any-return]

    async def get_nowait(self) -> _T:
        """``get(block=False)``."""
        return await self._get(False, None, None)  # type: ignore[no-any-return]

    async def get_many(self, max_items: int, block: bool = True, timeout: float | None = None) -> list[_T]:
        """Take up to ``max_items`` items in queue order, in one storage call.

        Waits (as :meth:`get`) until at least one item is there, then returns
        every item available up to ``max_items``. Each one needs its own
        :meth:`task_done`.

        Raises:
            Empty: no item before the timeout.
        """
        return await self._get_many(max_items, block, timeout, None)

    async def _get(self, block: bool, timeout: float | None, key: Key | None) -> Any:
        records = await self._take(1, block, timeout, key)
        return (await self._deliver(records))[0]

    async def _get_many(
        self, max_items: int, block: bool, timeout: float | None, key: Key | None
    ) -> list[Any]:
        if isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 1:
            raise ValueError(f"max_items must be a positive int, not {max_items!r}")
        records = await self._take(max_items, block, timeout, key)
        return await self._deliver(records)

    async def _take(self, n: int, block: bool, timeout: float | None, key: Key | None) -> list[Record]:
        await anyio.lowlevel.checkpoint_if_cancelled()
        deadline = make_deadline(block, timeout)
        await self._ensure_open()
        while True:
            records = await self._engine.read(n, self.autosave)
            if records:
                break
            if self._engine.waiting > 0:
                continue  # a put landed while our read ran
            if deadline is not None and anyio.current_time() >= deadline:
                raise Empty
            await self._getters.wait(deadline, _NO_POLL_INTERVAL, _no_poll)
            self._check_open()
        if not self.autosave:
            self._held.add(key if key is not None else caller_key(), [pos for pos, _ in records])
        self._putters.wake(len(records))
        return records

    async def _deliver(self, records: list[Record]) -> list[Any]:
        try:
            return [self._decode(r) for r in records]
        except SerializationError:
            # Never lose an item we cannot decode: it goes back to its place.
            for pos, _ in records:
                self._held.discard(pos)
            with anyio.CancelScope(shield=True):
                await self._engine.unread(records)
            self._getters.wake(len(records))
            raise

    # ------------------------------------------------------------ accounting

    async def task_done(self) -> None:
        """Mark one item as done (as :meth:`queue.Queue.task_done`).

        With ``autosave=False`` this acknowledges the oldest item this task
        (or thread) got and has not marked done — never an item another task
        is working on while this one holds any. A task or thread that holds
        none (a worker the getter handed the item to, or ``asyncio.gather``
        of ``task_done`` calls) acknowledges the oldest item this queue
        object handed out and nobody marked done. The acknowledgement is on
        disk when this returns (with ``durability="full"``; a process crash
        cannot undo it with ``"normal"``): the item never comes back, even
        if older items are still held and come back after a crash.
        Concurrent calls never acknowledge the same item, and share one
        position write. Once the acknowledgement reached the storage thread it
        completes even if the caller is cancelled; one that fails
        acknowledges nothing.

        Raises:
            ValueError: called more times than there were items.
        """
        await self._task_done(None)

    async def _task_done(self, key: Key | None) -> None:
        await anyio.lowlevel.checkpoint_if_cancelled()
        self._check_open()
        if self._unfinished - self._done_in_flight <= 0:
            raise ValueError("task_done() called too many times")
        # Taken before the await, so a concurrent task_done picks another item.
        held = self._held.claim(key if key is not None else caller_key())
        if held is not None:
            self._done_in_flight += 1
            try:
                # The engine cannot take an ack back (the segments before the
                # new position are deleted), so the call is not abandoned midway.
                with anyio.CancelScope(shield=True):
                    await self._engine.ack([held.item])
            except BaseException:
                self._held.restore(held)
                raise
            finally:
                self._done_in_flight -= 1
        self._unfinished -= 1
        if self._unfinished == 0:
            self._joiners.wake_all()

    async def join(self) -> None:
        """Wait until every item put (or found at open) was marked done."""
        await anyio.lowlevel.checkpoint_if_cancelled()
        await self._ensure_open()
        while self._unfinished > 0:
            await self._joiners.wait(None, _NO_POLL_INTERVAL, _no_poll)
            self._check_open()

    async def skip_corrupt(self) -> Skipped | None:
        """Skip the damaged record at the read position, if there is one.

        Its bytes (up to the next valid record) are copied to
        ``quarantine-<segment>-<offset>.bin`` in the queue directory and
        fsync'd; then the read position moves past it (durably with
        ``durability="full"``). Wrong data is never returned.

        Returns:
            What was skipped (file, offset, size, quarantine file), or ``None``
            if the next record is intact.
        """
        await anyio.lowlevel.checkpoint_if_cancelled()
        await self._ensure_open()
        skipped = await self._engine.skip_corrupt()
        if skipped is not None:
            self._unfinished = max(0, self._unfinished - 1)
            if self._unfinished == 0:
                self._joiners.wake_all()
            self._putters.wake(1)
        return skipped

    # ------------------------------------------------------------ inspection

    async def qsize(self) -> int:
        """Number of items waiting to be got (not counting items got and not done)."""
        await anyio.lowlevel.checkpoint_if_cancelled()
        await self._ensure_open()
        return self._engine.waiting

    async def empty(self) -> bool:
        """Whether no item is waiting."""
        return await self.qsize() == 0

    async def full(self) -> bool:
        """Whether ``maxsize`` items (or more) are waiting; always ``False`` without ``maxsize``."""
        return self.maxsize > 0 and await self.qsize() >= self.maxsize

    def statistics(self) -> QueueStatistics:
        """Return a snapshot of this object's waiters and task counts."""
        return QueueStatistics(
            tasks_waiting_get=len(self._getters),
            tasks_waiting_put=len(self._putters),
            unfinished_tasks=self._unfinished,
            pending=len(self._held),
            maxsize=self.maxsize,
            durability=self.durability,
        )


AsyncQueue = Queue
