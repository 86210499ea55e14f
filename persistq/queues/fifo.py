"""The FIFO and FILO queue kinds: ``FIFOQueue`` and ``FILOQueue``.

The queue kind (order, waiting, ``maxsize``, task accounting, serialization)
is composed with a storage engine chosen by the location (a directory: SQLite;
``mysql://…``, ``postgresql://…``: a server), which stores bytes. A get claims
its item with one atomic operation, so any number of queue objects, threads
and processes can share one database without duplicates or losses.
persist-queue's names ``SQLiteQueue``, ``FIFOSQLiteQueue`` and
``FILOSQLiteQueue`` are the same classes.
"""

from __future__ import annotations

import asyncio
import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar, Generic, Literal, TypeVar, overload

import anyio
import anyio.lowlevel

from .. import serializers as _serializers
from .._owner import new_owner, owner_alive, release_owner
from ..engines.base import (
    Durability,
    QueueStore,
    Row,
    TableSpec,
    Watchable,
    now,
    validate_durability,
    validate_name,
)
from ..engines.locations import Location as Location
from ..engines.locations import parse_location, queue_store
from ..errors import Empty, Full, QueueClosed, SerializationError
from ._base import (
    DEFAULT_POLL_INTERVAL,
    NOT_NOW,
    NOTIFIED_MAX_POLL_GAP,
    SERVER_MAX_POLL_GAP,
    Continue,
    HeldItems,
    Key,
    QueueRecord,
    QueueStatistics,
    RawItem,
    TaskCounter,
    Waiters,
    caller_key,
    check_maxsize,
    check_poll_interval,
    check_timeout,
    make_deadline,
    storage_cancel_point,
    thread_safe_caller,
)

__all__ = ("FIFOQueue", "FIFOSQLiteQueue", "FILOQueue", "FILOSQLiteQueue", "SQLiteQueue")

_Q = TypeVar("_Q", bound="FIFOQueue[Any]")
_T = TypeVar("_T")


def _item_id(value: object) -> int | None:
    """Accept an id as persist-queue does: an int, or a raw dict with ``pqid``."""
    if value is None:
        return None
    if isinstance(value, dict):
        value = value.get("pqid")
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"an item id must be an int or a raw dict with 'pqid', not {value!r}")
    return value


class FIFOQueue(Generic[_T]):
    """A persistent FIFO queue (async; asyncio and trio), on SQLite or a database server.

    Drop-in for persist-queue's ``SQLiteQueue`` and ``AsyncSQLiteQueue``
    (whose database files open in place; ``SQLiteQueue`` is this class), plus
    ``maxsize``, ``join``, ``put_many``/``get_many``, durability modes and
    ``async with``.

    Args:
        path: where the queue is stored. A server URL —
            ``mysql://user:password@host:port/database`` (also ``mariadb://``,
            the ``mysql`` extra) or ``postgresql://…`` (also ``postgres://``,
            the ``postgres`` extra), optionally ``?table=NAME`` — stores it
            in tables on that server, shared by every machine that can reach
            it (``db_file_name`` does not apply; durability is the server's).
            Any other ``scheme://`` raises ``ValueError``; a URL whose extra
            is not installed raises
            :class:`~persistq.errors.MissingDependencyError`.
            Otherwise SQLite: an existing SQLite database **file** (as persist-queue's
            ``AsyncSQLiteQueue`` took) is used as the database. Anything else
            is a **directory**, created owner-only if missing, holding
            ``db_file_name`` (persist-queue's ``SQLiteQueue`` meaning): a new
            path is a directory even when it ends in ``.db``, so
            ``SQLiteQueue("my_queue.db")`` makes ``my_queue.db/data.db``. To
            create a database file at a path of your choice, pass its
            directory and ``db_file_name``. ``":memory:"``: a private
            in-memory queue. A file that is not an SQLite database raises
            :class:`~persistq.errors.CorruptionError` at open.
        name: the queue's name (a URL's ``?table=`` gives it too); the table
            is ``queue_{name}``. 1-64 ASCII
            letters, digits, ``_`` or ``-``. In a database holding
            persist-queue's async table (``queue``, ``filo_queue``,
            ``unique_queue``: no suffix; it ignored ``name``) and no
            ``{table}_default``, the queue named ``"default"`` uses that table.
        multithreading: accepted for compatibility; every queue is thread-safe.
        timeout: seconds to wait for another connection's write lock before
            an operation fails with :class:`~persistq.errors.StorageError`
            (persist-queue's ``timeout``; not a get/put timeout).
        auto_commit: ``True``: a get removes the item for good. ``False``: a
            got item stays stored until ``task_done()``; items got but not
            done come back (in their old place) after a restart, a ``close()``
            or a crash of their process.
        serializer: ``persistq.serializers.pickle`` (default), ``json``,
            ``msgpack``, ``cbor2``, or any object with ``dumps``/``loads`` or
            ``dump``/``load`` (see :mod:`persistq.serializers`).
        db_file_name: the database file in the directory ``path`` (default
            ``data.db``); a ``ValueError`` when ``path`` is itself a file.
        maxsize: ``> 0`` bounds the number of waiting items: ``put`` then
            blocks (or raises :class:`~persistq.errors.Full`).
        durability: ``"full"`` (default; fsync'd when a call returns),
            ``"normal"`` (survives a process crash; a power loss may lose the
            last moments) or ``"off"``.
        poll_interval: seconds between checks for changes made by other
            processes while a ``get``/``put`` waits.
    """

    KIND_NAME: ClassVar[str] = "SQLiteQueue"
    """The kind's persist-queue name, as tools (the CLI) show it."""
    _TABLE_PREFIX: ClassVar[str] = "queue"
    _ORDER: ClassVar[Literal["fifo", "filo", "priority"]] = "fifo"
    _UNIQUE: ClassVar[bool] = False
    _ASYNC_LEGACY_TABLE: ClassVar[bool] = True
    """Whether persist-queue had an async class of this kind (its table: ``_TABLE_PREFIX``)."""

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
        location = parse_location(path)
        if location.name is not None and name == "default":
            name = location.name
        validate_name(name)
        self._codec = _serializers.Codec(serializer)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0:
            raise ValueError(f"'timeout' must be a non-negative number of seconds, not {timeout!r}")
        self._location = location
        self.path = location.display
        """Where the queue is stored: the path, or the server URL without its password."""
        self.name = name
        self.multithreading = multithreading
        self.timeout = float(timeout)
        self.auto_commit = bool(auto_commit)
        self.serializer = serializer
        self.maxsize = check_maxsize(maxsize)
        self.durability = validate_durability(durability)
        self.poll_interval = check_poll_interval(poll_interval)
        self._engine: QueueStore = self._make_engine(db_file_name)
        self._owner: str | None = None
        self._getters = Waiters()
        self._putters = Waiters()
        self._joiners = Waiters()
        self._tasks = TaskCounter()
        # auto_commit=False: ids got and not yet done, per caller.
        self._held: HeldItems[int] = HeldItems()
        self._state = "new"
        self._open_lock: anyio.Lock | None = None
        self._data_version: int | None = None
        self._last_poll = -1.0
        # Adaptive polling: the gap between checks doubles while nothing
        # changes, up to _max_poll_gap, and drops back when something does.
        # Kinds on a shared server raise _max_poll_gap (see MySQLQueue).
        self._poll_gap = self._max_poll_gap = self.poll_interval / 2
        if location.is_server:
            # Polling costs a server round trip: back off further while idle.
            self._max_poll_gap = max(self._max_poll_gap, SERVER_MAX_POLL_GAP)
        self._unwatch: Callable[[], None] | None = None

    def _make_engine(self, db_file_name: str | None) -> QueueStore:
        """Build the storage engine for this kind's table at the location."""
        # persist-queue's AsyncSQLiteQueue kinds used the bare prefix as table,
        # whatever their name: a default-named queue finds their items there.
        legacy = self._TABLE_PREFIX if self._ASYNC_LEGACY_TABLE and self.name == "default" else None
        return queue_store(
            self._location,
            TableSpec(f"{self._TABLE_PREFIX}_{self.name}", self._ORDER, self._UNIQUE, legacy),
            _serializers.serializer_name(self.serializer),
            db_file_name=db_file_name,
            durability=self.durability,
            timeout=self.timeout,
        )

    # ----------------------------------------------------------- life cycle

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._state == "closed"

    async def open(self) -> None:
        """Open the storage now (otherwise the first operation does).

        Raises:
            StorageError: the path or database cannot be used.
            SerializerMismatch: the table was written with another serializer.
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
            await self._engine.open()
            try:
                await self._recover()
                # The baseline for noticing other processes' commits is taken
                # before any get can find the queue empty.
                self._data_version = await self._engine.data_version()
            except BaseException:
                await self._engine.close()
                raise
            if not self.auto_commit:
                self._owner = new_owner()
            self._watch()
            self._state = "open"

    def _watch(self) -> None:
        """Wake waiters when the server notifies a change (engines with ``notifies``), instead of polling."""
        engine = self._engine
        if not (getattr(engine, "notifies", False) and isinstance(engine, Watchable)):
            return
        call = thread_safe_caller()
        self._max_poll_gap = max(self._max_poll_gap, NOTIFIED_MAX_POLL_GAP)

        def notified() -> None:
            call(self._changed_elsewhere)

        self._unwatch = engine.watch(notified)

    def _changed_elsewhere(self) -> None:
        # Another connection committed: every waiter tries again now.
        self._poll_gap = self.poll_interval / 2
        self._getters.wake_all()
        self._putters.wake_all()
        self._joiners.wake_all()

    def _stop_watching(self) -> None:
        unwatch, self._unwatch = self._unwatch, None
        if unwatch is not None:
            unwatch()

    async def _recover(self) -> None:
        """At open: give back items whose holder is gone (a hook for other kinds)."""
        await self._engine.recover(owner_alive)

    async def close(self) -> None:
        """Close the queue: wake waiters with ``QueueClosed``, release the storage.

        With ``auto_commit=False``, items got but not ``task_done`` go back to
        the queue. Idempotent.
        """
        if self._state == "closed":
            return
        was_open = self._state == "open"
        self._state = "closed"
        self._stop_watching()
        self._getters.wake_all()
        self._putters.wake_all()
        self._joiners.wake_all()
        try:
            if was_open and self._engine.is_open:
                with anyio.CancelScope(shield=True):
                    await self._release_held()
        finally:
            if self._owner is not None:
                release_owner(self._owner)
            with anyio.CancelScope(shield=True):
                await self._engine.close()

    async def _release_held(self) -> None:
        """At close: give back the items this object holds (``auto_commit=False``)."""
        if self._owner is not None:
            await self._engine.release(self._owner)

    async def aclose(self) -> None:
        """Same as :meth:`close`."""
        await self.close()

    async def __aenter__(self: _Q) -> _Q:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __del__(self) -> None:
        if getattr(self, "_state", "closed") == "open" and self._engine.is_open:
            # Clean up before warning: a warnings filter may turn the warning into an error.
            self._stop_watching()
            self._engine.close_nowait()
            if self._owner is not None:
                release_owner(self._owner)
            warnings.warn(
                f"persistq queue {self.path!r} ({self.name!r}) was not closed",
                ResourceWarning,
                stacklevel=2,
            )

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} path={self.path!r} name={self.name!r} "
            f"durability={self.durability!r} {self._state}>"
        )

    # -------------------------------------------------------------- helpers

    def _encode(self, item: Any) -> bytes:
        return self._codec.encode(item)

    def _decode(self, row: Row) -> Any:
        try:
            return self._codec.decode(row[1])
        except Exception as exc:
            raise SerializationError(
                f"item {row[0]} in {self._engine.db_path} cannot be decoded with {self._codec.name}: {exc}"
            ) from exc

    async def _poll(self) -> bool:
        """Whether another connection changed the database (rate-limited)."""
        current = anyio.current_time()
        if current - self._last_poll < self._poll_gap:
            return False
        self._last_poll = current
        if self._state != "open":
            return True
        version = await self._engine.data_version()
        changed = version != self._data_version
        self._data_version = version
        base = self.poll_interval / 2
        self._poll_gap = base if changed else min(self._poll_gap * 2, max(base, self._max_poll_gap))
        if changed:
            self._getters.wake_all()
            self._putters.wake_all()
            self._joiners.wake_all()
        return changed

    def _check_open(self) -> None:
        if self._state == "closed":
            raise QueueClosed("the queue is closed")

    # ------------------------------------------------------------------ put

    async def put(self, item: _T, block: bool = True, timeout: float | None = None) -> int:
        """Put ``item`` at the tail; return its id.

        With ``durability="full"`` the item is on disk (fsync'd) when this
        returns. If the queue has ``maxsize`` items, waits for room (``block``,
        ``timeout`` as in :meth:`queue.Queue.put`).

        Raises:
            Full: no room before the timeout (or at once with ``block=False``).
            SerializationError: the item cannot be encoded; nothing was written.
        """
        ids = await self._put_data([self._encode(item)], block, timeout, None, [item])
        return ids[0]  # type: ignore[return-value]  # only UniqueQ stores nothing

    async def put_nowait(self, item: _T) -> int:
        """``put(item, block=False)``."""
        return await self.put(item, block=False)

    async def put_many(
        self, items: Iterable[_T], block: bool = True, timeout: float | None = None
    ) -> list[int]:
        """Put several items in one transaction (all or none); return their ids.

        Far faster than one ``put`` per item: one commit, one fsync. With
        ``maxsize``, waits until all of them fit.

        Raises:
            ValueError: more items than ``maxsize``.
        """
        return await self._put_many(items, block, timeout, None)  # type: ignore[return-value]

    async def _put_many(
        self, items: Iterable[Any], block: bool, timeout: float | None, priority: int | None
    ) -> list[int | None]:
        values = list(items)
        datas = [self._encode(item) for item in values]
        if not datas:
            await anyio.lowlevel.checkpoint()
            return []
        if 0 < self.maxsize < len(datas):
            raise ValueError(f"put_many of {len(datas)} items can never fit in maxsize={self.maxsize}")
        return await self._put_data(datas, block, timeout, priority, values)

    def _storage_forms(
        self, datas: Sequence[bytes], items: Sequence[Any] | None
    ) -> tuple[Sequence[bytes], list[bytes | None] | None]:
        """The bytes to store, and other encodings an equal stored item may have
        (unique kinds only)."""
        return datas, None

    async def _put_data(
        self,
        datas: Sequence[bytes],
        block: bool,
        timeout: float | None,
        priority: int | None = None,
        items: Sequence[Any] | None = None,
    ) -> list[int | None]:
        await storage_cancel_point()
        deadline = make_deadline(block, timeout)
        await self._ensure_open()
        stamp = now()
        datas, alts = self._storage_forms(datas, items)
        rows = [(d, stamp, priority) for d in datas]
        while True:
            seen = self._putters.changes
            ids = await (
                self._engine.put(rows, self.maxsize, alts) if alts else self._engine.put(rows, self.maxsize)
            )
            if ids is not None:
                break
            if deadline is not None and anyio.current_time() >= deadline:
                raise Full
            await self._putters.wait(deadline, self.poll_interval, self._poll, seen)
            self._check_open()
        self._getters.wake(sum(i is not None for i in ids))
        return ids

    # ------------------------------------------------- synchronous fast paths
    # For persistq.sync's portal loop: a call that can finish without waiting
    # runs right in the loop callback that received it, with no task and no
    # coroutine; one that cannot answers NOT_NOW (before changing anything)
    # and the portal runs the async method instead. Same checks, same effects.

    def _put_data_now(
        self,
        datas: Sequence[bytes],
        timeout: float | None,
        priority: int | None = None,
        items: Sequence[Any] | None = None,
    ) -> list[int | None]:
        check_timeout(timeout)
        if self._state != "open":
            return NOT_NOW  # type: ignore[no-any-return]
        stamp = now()
        datas, alts = self._storage_forms(datas, items)
        rows = [(d, stamp, priority) for d in datas]
        engine = self._engine
        ids = engine.put_now(rows, self.maxsize, alts) if alts else engine.put_now(rows, self.maxsize)
        if ids is NOT_NOW or ids is None:  # None: full; the async path waits for room
            return NOT_NOW  # type: ignore[no-any-return]
        self._getters.wake(sum(i is not None for i in ids))
        return ids  # type: ignore[no-any-return]

    def _put_now(self, item: Any, block: bool = True, timeout: float | None = None) -> Any:
        """:meth:`put` without waiting, or ``NOT_NOW``."""
        ids = self._put_data_now([self._encode(item)], timeout, None, [item])
        return ids if ids is NOT_NOW else ids[0]

    def _get_now(self, block: bool, timeout: float | None, item: Any, raw: bool, key: Key | None) -> Any:
        """``_get`` without waiting: the item, ``NOT_NOW``, or a :class:`Continue`."""
        check_timeout(timeout)
        item_id = _item_id(item)
        if self._state != "open":
            return NOT_NOW
        self._tasks.got(1)
        try:
            rows = self._engine.claim_now(1, item_id, self._owner)
        except BaseException:
            self._untake(1)
            raise
        if rows is NOT_NOW or not rows:
            self._untake(1)
            if rows is not NOT_NOW:
                if item_id is not None:
                    raise Empty(f"item {item_id} is not waiting in the queue")
                if not block:
                    raise Empty
            return NOT_NOW  # the async path waits for an item
        if self._owner is not None:
            self._held.add(key if key is not None else caller_key(), [row[0] for row in rows])
        self._putters.wake(len(rows))
        try:
            items = [self._decode(row) for row in rows]
        except SerializationError as exc:
            return Continue(self._give_back(rows, exc))
        if raw:
            row = rows[0]
            return {"pqid": row[0], "data": items[0], "timestamp": row[2]}
        return items[0]

    async def _give_back(self, rows: list[Row], error: BaseException) -> Any:
        """Put claimed rows that cannot be decoded back in their places, then raise ``error``."""
        for row in rows:
            self._held.discard(row[0])
        self._untake(len(rows))
        with anyio.CancelScope(shield=True):
            await self._engine.restore(rows, from_pending=self._owner is not None)
        raise error

    # ------------------------------------------------------------------ get

    @overload
    async def get(
        self,
        block: bool = True,
        timeout: float | None = None,
        id: int | RawItem[_T] | None = None,
        raw: Literal[False] = False,
    ) -> _T: ...
    @overload
    async def get(
        self,
        block: bool = True,
        timeout: float | None = None,
        id: int | RawItem[_T] | None = None,
        *,
        raw: Literal[True],
    ) -> RawItem[_T]: ...
    @overload
    async def get(
        self,
        block: bool,
        timeout: float | None,
        id: int | RawItem[_T] | None,
        raw: bool,
    ) -> _T | RawItem[_T]: ...
    async def get(
        self,
        block: bool = True,
        timeout: float | None = None,
        id: int | RawItem[_T] | None = None,  # noqa: A002 - persist-queue's name
        raw: bool = False,
    ) -> _T | RawItem[_T]:
        """Remove and return the next item (or the item with ``id``).

        Waits for an item (``block``, ``timeout`` as in
        :meth:`queue.Queue.get`); woken at once by puts in this process and
        within ``poll_interval`` by puts from other processes. The claim is
        atomic: no other get, in any process, receives the same item. If the
        call is cancelled, the item stays in the queue.

        Args:
            id: take this item (an id from ``put`` or a raw dict); raises
                :class:`Empty` at once if it is not waiting.
            raw: return ``{"pqid": id, "data": item, "timestamp": float}``.

        Raises:
            Empty: no item before the timeout.
            SerializationError: the stored bytes cannot be decoded (the item
                stays in the queue).
        """
        return await self._get(block, timeout, id, raw, None)  # type: ignore[no-any-return]

    @overload
    async def get_nowait(
        self,
        id: int | RawItem[_T] | None = None,
        raw: Literal[False] = False,
    ) -> _T: ...
    @overload
    async def get_nowait(self, id: int | RawItem[_T] | None = None, *, raw: Literal[True]) -> RawItem[_T]: ...
    @overload
    async def get_nowait(self, id: int | RawItem[_T] | None, raw: bool) -> _T | RawItem[_T]: ...
    async def get_nowait(
        self,
        id: int | RawItem[_T] | None = None,  # noqa: A002 - persist-queue's name
        raw: bool = False,
    ) -> _T | RawItem[_T]:
        """``get(block=False)``."""
        return await self._get(False, None, id, raw, None)  # type: ignore[no-any-return]

    @overload
    async def get_many(
        self, max_items: int, block: bool = True, timeout: float | None = None, raw: Literal[False] = False
    ) -> list[_T]: ...
    @overload
    async def get_many(
        self, max_items: int, block: bool = True, timeout: float | None = None, *, raw: Literal[True]
    ) -> list[RawItem[_T]]: ...
    @overload
    async def get_many(
        self, max_items: int, block: bool, timeout: float | None, raw: bool
    ) -> list[_T] | list[RawItem[_T]]: ...
    async def get_many(
        self, max_items: int, block: bool = True, timeout: float | None = None, raw: bool = False
    ) -> list[_T] | list[RawItem[_T]]:
        """Take up to ``max_items`` items in one transaction, in queue order.

        Waits (as :meth:`get`) until at least one item is there, then returns
        every item available up to ``max_items``.

        Raises:
            Empty: no item before the timeout.
        """
        return await self._get_many(max_items, block, timeout, raw, None)

    async def _get_many(
        self, max_items: int, block: bool, timeout: float | None, raw: bool, key: Key | None
    ) -> list[Any]:
        if isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 1:
            raise ValueError(f"max_items must be a positive int, not {max_items!r}")
        rows = await self._claim(max_items, block, timeout, None, key)
        return await self._deliver(rows, raw)

    async def _get(self, block: bool, timeout: float | None, item: Any, raw: bool, key: Key | None) -> Any:
        rows = await self._claim(1, block, timeout, _item_id(item), key)
        return (await self._deliver(rows, raw))[0]

    async def _claim(
        self, n: int, block: bool, timeout: float | None, item_id: int | None, key: Key | None
    ) -> list[Row]:
        await storage_cancel_point()
        deadline = make_deadline(block, timeout)
        await self._ensure_open()
        while True:
            # Count the items as handed out before the claim runs, so a join()
            # that reads the database meanwhile cannot miss them in transit.
            self._tasks.got(n)
            seen = self._getters.changes
            try:
                rows = await self._engine.claim(n, item_id, self._owner)
            except BaseException:
                self._untake(n)
                raise
            self._untake(n - len(rows))
            if rows:
                break
            if item_id is not None:
                raise Empty(f"item {item_id} is not waiting in the queue")
            if deadline is not None and anyio.current_time() >= deadline:
                raise Empty
            await self._getters.wait(deadline, self.poll_interval, self._poll, seen)
            self._check_open()
        if self._owner is not None:
            self._held.add(key if key is not None else caller_key(), [row[0] for row in rows])
        self._putters.wake(len(rows))
        return rows

    def _untake(self, n: int) -> None:
        if n:
            self._tasks.got(-n)
            if self._tasks.outstanding == 0:
                self._joiners.wake_all()

    async def _deliver(self, rows: list[Row], raw: bool) -> list[Any]:
        try:
            items = [self._decode(row) for row in rows]
        except SerializationError as exc:
            # Never lose an item we cannot decode: it goes back to its place.
            await self._give_back(rows, exc)
        if raw:
            return [
                {"pqid": r[0], "data": item, "timestamp": r[2]} for r, item in zip(rows, items, strict=False)
            ]
        return items

    # ------------------------------------------------------------ accounting

    async def task_done(self) -> None:
        """Mark one item got from this queue as done (as :meth:`queue.Queue.task_done`).

        With ``auto_commit=False`` this deletes, for good and durably, the
        oldest item this task (or thread) got and has not marked done — never
        an item another task is still working on. A task that holds none (a
        worker the getter handed the item to, or ``asyncio.gather`` of
        ``task_done`` calls) finishes the oldest item this queue object
        handed out and nobody marked done. Concurrent calls never finish the
        same item; a call that fails or is cancelled finishes none.

        Raises:
            ValueError: called more times than items were got.
        """
        await self._task_done(None)

    async def _task_done(self, key: Key | None) -> None:
        await anyio.lowlevel.checkpoint_if_cancelled()
        self._check_open()
        if self._owner is None:
            if self._tasks.done() == 0:
                self._joiners.wake_all()
            return
        self._tasks.claim()
        # Taken before the await, so a concurrent task_done picks another item.
        held = self._held.claim(key if key is not None else caller_key())
        if held is None:
            # Every item counted is still on its way to its getter: none was handed out yet.
            self._tasks.settle(done=False)
            raise ValueError("task_done() called too many times")
        try:
            await self._engine.finish([held.item])
        except BaseException:
            # Failed, or cancelled (the engine put the row back): nothing was finished.
            self._held.restore(held)
            self._tasks.settle(done=False)
            raise
        if self._tasks.settle(done=True) == 0:
            self._joiners.wake_all()

    def _task_done_from_thread(self, loop: asyncio.AbstractEventLoop) -> bool:
        """``task_done`` for a blocking caller on another thread, without a hand-off.

        With ``auto_commit=True`` marking an item done is bookkeeping only:
        it is done right here, and ``join()`` callers on ``loop`` are woken
        through it. Returns False when the call needs the queue's loop (the
        queue is not open, or items must be deleted from storage).

        Raises:
            ValueError: called more times than items were got.
        """
        if self._state != "open" or self._owner is not None:
            return False
        if self._tasks.done() == 0:
            loop.call_soon_threadsafe(self._joiners.wake_all)
        return True

    async def join(self) -> None:
        """Wait until no item is waiting and every item got here was marked done.

        "Waiting" is counted by the database, so items put by other processes
        count too; items other processes got are theirs to finish.
        """
        await anyio.lowlevel.checkpoint_if_cancelled()
        await self._ensure_open()
        while True:
            seen = self._joiners.changes
            if self._tasks.outstanding == 0:
                waiting = await self._engine.count()
                # Re-read after the hop: a get may have taken an item meanwhile.
                if waiting == 0 and self._tasks.outstanding == 0:
                    return
            await self._joiners.wait(None, self.poll_interval, self._poll, seen)
            self._check_open()

    # ------------------------------------------------------------ inspection

    async def qsize(self) -> int:
        """Number of items waiting, counted by the database (all processes)."""
        await anyio.lowlevel.checkpoint_if_cancelled()
        await self._ensure_open()
        return await self._engine.count()

    async def empty(self) -> bool:
        """Whether no item is waiting."""
        return await self.qsize() == 0

    async def full(self) -> bool:
        """Whether ``maxsize`` items are waiting (always ``False`` without ``maxsize``)."""
        return self.maxsize > 0 and await self.qsize() >= self.maxsize

    @property
    def size(self) -> int:
        """Number of items waiting; a short blocking read (prefer ``await qsize()``)."""
        self._check_open()
        return self._engine.count_blocking()

    def __len__(self) -> int:
        return self.size

    @property
    def total(self) -> int:
        """persist-queue's name for :attr:`size`: items waiting, a short blocking read."""
        return self.size

    @property
    def _serializer(self) -> Any:
        """persist-queue's name for :attr:`serializer` (code written for it reads ``q._serializer``)."""
        return self.serializer

    async def queue(self) -> list[QueueRecord[_T]]:
        """Every waiting item as ``{"id", "data", "timestamp"}``, in get order."""
        await anyio.lowlevel.checkpoint_if_cancelled()
        await self._ensure_open()
        rows = await self._engine.rows()
        return [{"id": r[0], "data": self._decode(r), "timestamp": r[2]} for r in rows]

    async def update(self, item: _T | RawItem[_T], id: int | None = None) -> int:  # noqa: A002
        """Replace the data of a stored item; return its id.

        ``item`` is either a raw dict (``{"pqid": …, "data": …}``, as returned
        by ``get(raw=True)``) or the new value, with ``id`` naming the item.

        Raises:
            ValueError: neither a raw dict nor an ``id``.
            ItemNotFound: no such item is stored.
        """
        if isinstance(item, dict) and "pqid" in item and id is None:
            item_id = _item_id(item)
            value = item.get("data")
        elif id is not None:
            item_id = _item_id(id)
            value = item
        else:
            raise ValueError("Provide an id or raw item")
        data = self._encode(value)
        await anyio.lowlevel.checkpoint_if_cancelled()
        await self._ensure_open()
        assert item_id is not None
        await self._engine.update(item_id, data)
        return item_id

    async def shrink_disk_usage(self) -> None:
        """Give unused pages back to the file system (``VACUUM``)."""
        await anyio.lowlevel.checkpoint_if_cancelled()
        await self._ensure_open()
        await self._engine.vacuum()

    def statistics(self) -> QueueStatistics:
        """Return a snapshot of this object's waiters and task counts."""
        return QueueStatistics(
            tasks_waiting_get=len(self._getters),
            tasks_waiting_put=len(self._putters),
            unfinished_tasks=self._tasks.outstanding,
            pending=len(self._held),
            maxsize=self.maxsize,
            durability=self.durability,
        )


SQLiteQueue = FIFOQueue
"""persist-queue's name for :class:`FIFOQueue` (on any engine, despite the name)."""
FIFOSQLiteQueue = FIFOQueue
"""persist-queue's other name for :class:`FIFOQueue`."""


class FILOQueue(FIFOQueue[_T]):
    """A persistent last-in, first-out queue (table ``filo_queue_{name}``), on any engine.

    Same API as :class:`FIFOQueue`; ``get`` returns the newest item.
    persist-queue's ``FILOSQLiteQueue`` is this class.
    """

    KIND_NAME: ClassVar[str] = "FILOSQLiteQueue"
    _TABLE_PREFIX: ClassVar[str] = "filo_queue"
    _ORDER: ClassVar[Literal["fifo", "filo", "priority"]] = "filo"


FILOSQLiteQueue = FILOQueue
"""persist-queue's name for :class:`FILOQueue`."""
