"""What every queue kind shares, whatever its engine.

Waiting (getters and putters woken by this process at once, and by other
processes through a cheap poll), timeouts with :mod:`queue` semantics, task
accounting for ``task_done``/``join``, and the ``statistics()`` record.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import math
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Hashable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypedDict, TypeVar

import anyio
import anyio.lowlevel

from .._runtime import NOT_NOW as NOT_NOW
from .._runtime import Lock
from ..engines.base import Durability as Durability
from ..errors import QueueClosed

__all__ = ("Held", "HeldItems", "QueueStatistics", "TaskCounter", "Waiters", "caller_key", "make_deadline")

Key = tuple[str, int]
"""Who called: ``("task", id)`` for a task, ``("thread", ident)`` for a blocking caller."""
_T = TypeVar("_T", bound=Hashable)

DEFAULT_POLL_INTERVAL = 0.025
"""Seconds between checks for items put (or taken) by other processes."""

SERVER_MAX_POLL_GAP = 0.2
"""Seconds: how far a waiting queue's polling of a database server backs off while nothing changes."""

NOTIFIED_MAX_POLL_GAP = 2.0
"""Seconds: the safety re-check of a queue whose server notifies changes (a lost notification)."""


def thread_safe_caller() -> Callable[[Callable[[], None]], None]:
    """A function that runs a callback soon on the calling event loop, callable from any thread.

    Call it on the loop (asyncio or trio). Once the loop has ended the
    callback is dropped: there is nobody left to wake.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        import trio

        token = trio.lowlevel.current_trio_token()

        def call_trio(fn: Callable[[], None]) -> None:
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(fn)

        return call_trio

    def call_asyncio(fn: Callable[[], None]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed
            loop.call_soon_threadsafe(fn)

    return call_asyncio


def check_timeout(timeout: object) -> float | None:
    """Validate a ``timeout`` argument as :mod:`queue` does."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"'timeout' must be a number or None, not {type(timeout).__name__}")
    if math.isnan(timeout) or timeout < 0:
        raise ValueError("'timeout' must be a non-negative number")
    return float(timeout)


def make_deadline(block: bool, timeout: object) -> float | None:
    """Return the absolute deadline of a call, or ``None`` to wait forever.

    ``block=False`` means "now" whatever ``timeout`` says (as :mod:`queue`).
    """
    t = check_timeout(timeout)
    if not block:
        return -math.inf
    if t is None:
        return None
    return anyio.current_time() + t


def check_maxsize(maxsize: object) -> int:
    """Validate ``maxsize`` (an int; ``<= 0`` means unbounded)."""
    if isinstance(maxsize, bool) or not isinstance(maxsize, int):
        raise TypeError(f"'maxsize' must be an int, not {type(maxsize).__name__}")
    return maxsize


def check_poll_interval(value: object) -> float:
    """Validate the cross-process poll interval (seconds, > 0)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"'poll_interval' must be a positive number of seconds, not {value!r}")
    return float(value)


async def storage_cancel_point() -> None:
    """The cancel point at the start of a call whose storage operation follows.

    On trio this is trio's own cheap check. On asyncio nothing is done here: a
    pending cancellation is raised by the storage call's await, which then
    undoes the operation, and anyio's generic check (a backend lookup per
    call) would cost a tenth of a fast operation.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        import trio

        await trio.lowlevel.checkpoint_if_cancelled()


def caller_key() -> Key:
    """Identify the calling task, to match a ``task_done`` with its ``get``."""
    return ("task", anyio.get_current_task().id)


_V = TypeVar("_V")


class RawItem(TypedDict, Generic[_V]):
    """An item as ``get(raw=True)`` returns it (persist-queue's raw dict)."""

    pqid: int
    data: _V
    timestamp: float


class QueueRecord(TypedDict, Generic[_V]):
    """A waiting item as ``queue()`` lists it."""

    id: int
    data: _V
    timestamp: float


class AckRecord(TypedDict, Generic[_V]):
    """A row of an ack queue as ``queue()`` lists it (``status`` is an :class:`AckStatus` value)."""

    id: int
    data: _V
    timestamp: float
    status: int
    attempts: int


class FailedItem(TypedDict, Generic[_V]):
    """A dead letter as ``failed()`` lists it."""

    pqid: int
    data: _V
    timestamp: float
    attempts: int


class Waiters:
    """Tasks waiting for a change (items to get, or room to put).

    A change made in this process wakes exactly as many waiters as it can
    satisfy; a change made by another process is found by the ``poll``
    callback, at most once per ``poll_interval`` for the whole queue, and wakes
    everybody.
    """

    def __init__(self) -> None:
        self._events: deque[anyio.Event] = deque()
        self.changes = 0
        """Counts wake-ups: a caller notes it before trying, and passes it to
        :meth:`wait` so a wake-up that came in between is not lost."""

    def __len__(self) -> int:
        return len(self._events)

    def wake(self, n: int = 1) -> None:
        """Wake up to ``n`` waiters, oldest first."""
        self.changes += 1
        events = self._events
        while n > 0 and events:
            events.popleft().set()
            n -= 1

    def wake_all(self) -> None:
        """Wake every waiter."""
        self.wake(max(1, len(self._events)))

    async def wait(
        self,
        deadline: float | None,
        poll_interval: float,
        poll: Callable[[], Awaitable[bool]],
        since: int | None = None,
    ) -> None:
        """Return when woken, when ``poll()`` finds a change, or at ``deadline``.

        With ``since`` (a value of :attr:`changes` noted before the caller's
        last attempt), return at once if a wake-up happened after it.
        """
        if since is not None and since != self.changes:
            await anyio.lowlevel.checkpoint()
            return
        event = anyio.Event()
        self._events.append(event)
        try:
            while True:
                remaining = math.inf if deadline is None else deadline - anyio.current_time()
                if remaining <= 0:
                    return
                with anyio.move_on_after(min(poll_interval, remaining)):
                    await event.wait()
                    return
                if await poll():
                    return
        except BaseException:
            # Cancelled after being woken: hand the wake-up to the next waiter so a
            # put's item does not sit until the next poll.
            if event.is_set():
                self.wake(1)
            raise
        finally:
            with contextlib.suppress(ValueError):
                self._events.remove(event)


class Continue:
    """A fast path's answer: the call continues as this coroutine on the loop (see ``NOT_NOW``)."""

    __slots__ = ("coro",)

    def __init__(self, coro: Coroutine[Any, Any, Any]) -> None:
        self.coro = coro


class TaskCounter:
    """Items got and not yet marked done, for ``task_done()`` and ``join()``.

    Thread-safe: blocking callers mark items done from their own threads. A
    ``task_done`` that must wait for storage first :meth:`claim` s one item
    (so concurrent calls cannot both count the last one), then
    :meth:`settle` s it; ``outstanding`` (what ``join`` waits on) drops only
    when the storage call succeeded.
    """

    def __init__(self) -> None:
        self.outstanding = 0
        self._claimed = 0
        # A real lock even under gevent/eventlet: blocking callers use it from
        # their own threads while the loop thread does too.
        self._lock = Lock()

    def got(self, n: int) -> None:
        """Count ``n`` items handed out by a get (negative: give back)."""
        with self._lock:
            self.outstanding += n

    def _check(self) -> None:
        if self.outstanding - self._claimed <= 0:
            raise ValueError("task_done() called too many times")

    def claim(self) -> None:
        """Reserve one item to mark done; ``ValueError`` if none is left."""
        with self._lock:
            self._check()
            self._claimed += 1

    def settle(self, done: bool) -> int:
        """End a :meth:`claim`: count the item done (or not); return how many remain."""
        with self._lock:
            self._claimed -= 1
            if done:
                self.outstanding -= 1
            return self.outstanding

    def done(self) -> int:
        """Count one item marked done at once; return how many remain."""
        with self._lock:
            self._check()
            self.outstanding -= 1
            return self.outstanding


@dataclass(frozen=True)
class Held(Generic[_T]):
    """One item taken out of :class:`HeldItems` by a ``task_done`` in progress."""

    key: Key
    seq: int
    item: _T


class HeldItems(Generic[_T]):
    """Items got and not yet marked done, per caller (task or thread), in the order they were got.

    ``task_done`` finishes the caller's own oldest item; a caller that holds
    none finishes the oldest one of this queue object (persist-queue counted
    items, whoever got them). It takes the item with :meth:`claim` *before*
    its storage call, so concurrent calls never pick the same item, and puts
    it back with :meth:`restore` if that call fails or is cancelled.
    Bookkeeping of the loop thread (not locked).
    """

    def __init__(self) -> None:
        self._by_key: dict[Key, deque[tuple[int, _T]]] = {}
        self._where: dict[_T, tuple[Key, int]] = {}
        self._seq = 0

    def __len__(self) -> int:
        return len(self._where)

    def add(self, key: Key, items: Iterable[_T]) -> None:
        """Record ``items`` as got by ``key``, in this order."""
        held = self._by_key.setdefault(key, deque())
        for item in items:
            self._seq += 1
            held.append((self._seq, item))
            self._where[item] = (key, self._seq)

    def discard(self, item: _T) -> None:
        """Forget ``item`` (it went back to the queue)."""
        where = self._where.pop(item, None)
        if where is None:
            return
        key, seq = where
        held = self._by_key[key]
        held.remove((seq, item))
        if not held:
            del self._by_key[key]

    def claim(self, key: Key) -> Held[_T] | None:
        """Take ``key``'s oldest item, else the oldest of anyone; ``None`` if nothing is held."""
        held = self._by_key.get(key)
        if not held:
            if not self._by_key:
                return None
            # Each caller's deque is in got order: the oldest overall heads one of them.
            key, held = min(self._by_key.items(), key=lambda kv: kv[1][0][0])
        seq, item = held.popleft()
        if not held:
            del self._by_key[key]
        del self._where[item]
        return Held(key, seq, item)

    def restore(self, taken: Held[_T]) -> None:
        """Put back an item :meth:`claim` took, in its old place."""
        held = self._by_key.setdefault(taken.key, deque())
        bisect.insort(held, (taken.seq, taken.item), key=lambda entry: entry[0])
        self._where[taken.item] = (taken.key, taken.seq)


@dataclass(frozen=True)
class QueueStatistics:
    """A snapshot of a queue object's in-process state.

    Counts of stored items come from the storage: use ``await q.qsize()``.
    """

    tasks_waiting_get: int
    """Tasks (or threads) blocked in ``get``."""
    tasks_waiting_put: int
    """Tasks (or threads) blocked in ``put`` because the queue was full."""
    unfinished_tasks: int
    """Items this object handed out and that were not yet marked ``task_done``."""
    pending: int
    """Items got with ``auto_commit=False`` and not yet ``task_done``."""
    maxsize: int
    durability: str


def closed_error() -> QueueClosed:
    """The error raised by operations on a closed queue."""
    return QueueClosed("the queue is closed")


Poll = Callable[[], Awaitable[bool]]
AnyCallable = Callable[..., Any]
