"""What every queue kind shares, whatever its engine.

Waiting (getters and putters woken by this process at once, and by other
processes through a cheap poll), timeouts with :mod:`queue` semantics, task
accounting for ``task_done``/``join``, and the ``statistics()`` record.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.lowlevel

from ..engines._threads import Lock
from ..errors import QueueClosed

__all__ = ("QueueStatistics", "TaskCounter", "Waiters", "caller_key", "make_deadline")

DEFAULT_POLL_INTERVAL = 0.025
"""Seconds between checks for items put (or taken) by other processes."""


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


def caller_key() -> tuple[str, int]:
    """Identify the calling task, to match a ``task_done`` with its ``get``."""
    return ("task", anyio.get_current_task().id)


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


class TaskCounter:
    """Items got and not yet marked done, for ``task_done()`` and ``join()``.

    Thread-safe: blocking callers mark items done from their own threads.
    """

    def __init__(self) -> None:
        self.outstanding = 0
        # A real lock even under gevent/eventlet: blocking callers use it from
        # their own threads while the loop thread does too.
        self._lock = Lock()

    def got(self, n: int) -> None:
        """Count ``n`` items handed out by a get (negative: give back)."""
        with self._lock:
            self.outstanding += n

    def check_done(self) -> None:
        """Raise ``ValueError`` if no got item is left to mark done."""
        if self.outstanding <= 0:
            raise ValueError("task_done() called too many times")

    def done(self) -> int:
        """Count one item marked done; return how many remain."""
        with self._lock:
            self.check_done()
            self.outstanding -= 1
            return self.outstanding


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
