"""The runtime helpers shared by the portal, the green-thread support and the engines.

This module sits below both :mod:`persistq.sync` and :mod:`persistq.engines`
(it imports neither). It holds:

* which event-loop threads may run storage work inline (:func:`allow_inline`,
  :func:`inline_allowed`) and the fast paths' :data:`NOT_NOW` answer;
* thread primitives that are real OS threads and locks, even in a green process.

persistq's storage threads and the sync portal's loop thread must be real OS
threads, and the locks and conditions they wait on must be real locks. In a
normal process the names exported here *are* the :mod:`threading` ones (the
same objects: no wrapper, no cost).

In a process monkey-patched by gevent (``gevent.monkey.patch_all()``) or
eventlet (``eventlet.monkey_patch()``) *before* persistq is imported,
:mod:`threading` makes greenlets and green locks. Then this module exports
small equivalents built on the original ``_thread`` functions that both
libraries keep (``gevent.monkey.get_original`` /
``eventlet.patcher.original``). Detection happens once, at import, and only
looks at modules already imported: it never imports gevent or eventlet.

Only the subset persistq uses is provided: ``Thread(target, args, name,
daemon)`` with ``start``/``join``/``is_alive``/``ident``, ``Lock``,
``Condition`` (``with``, ``wait``, ``notify``, ``notify_all``), ``Event``,
``local``, ``current_thread`` (identity with our ``Thread`` objects) and
``get_ident`` (the OS thread id).
"""

from __future__ import annotations

import contextlib
import sys
import threading as _std
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

__all__ = (
    "GREEN",
    "NOT_NOW",
    "allow_inline",
    "inline_allowed",
    "Condition",
    "Event",
    "Lock",
    "Thread",
    "current_thread",
    "get_ident",
    "green_library",
    "local",
)


def green_library() -> str | None:
    """Return ``"gevent"`` or ``"eventlet"`` if that library monkey-patched threading.

    Never imports either library: a process that did not import them is not
    patched, and the answer is ``None`` after two dictionary lookups.
    """
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("threading"):
        return "gevent"
    patcher = sys.modules.get("eventlet.patcher")
    if patcher is not None and patcher.is_monkey_patched("thread"):
        return "eventlet"
    return None


#: ``"gevent"``, ``"eventlet"`` or ``None``, fixed when persistq is imported.
GREEN = green_library()


def _original_thread_functions(library: str) -> tuple[Any, Any, Any, Any]:
    """``start_new_thread``, ``allocate_lock``, ``get_ident``, ``_local`` as before patching."""
    # Both libraries are already imported (they patched the process).
    names = ("start_new_thread", "allocate_lock", "get_ident", "_local")
    if library == "gevent":
        found = sys.modules["gevent.monkey"].get_original("_thread", list(names))
        return found[0], found[1], found[2], found[3]
    real = sys.modules["eventlet.patcher"].original("_thread")
    return real.start_new_thread, real.allocate_lock, real.get_ident, real._local


def _build(library: str) -> tuple[Any, ...]:
    """The real primitives, for a process patched by ``library``."""
    start_new_thread, allocate_lock, real_get_ident, real_local = _original_thread_functions(library)
    running: dict[int, RealThread] = {}

    class RealThread:
        """A real OS thread (always a daemon: nothing waits for it at exit)."""

        def __init__(
            self,
            target: Callable[..., object],
            args: tuple[Any, ...] = (),
            name: str | None = None,
            daemon: bool = True,
        ) -> None:
            self._target = target
            self._args = args
            self.name = name or "persistq-thread"
            self.daemon = daemon
            self.ident: int | None = None
            self._done = allocate_lock()

        def start(self) -> None:
            started = allocate_lock()
            started.acquire()
            self._done.acquire()

            def bootstrap() -> None:
                self.ident = real_get_ident()
                running[self.ident] = self
                started.release()
                try:
                    self._target(*self._args)
                finally:
                    running.pop(self.ident, None)
                    self._done.release()

            start_new_thread(bootstrap, ())
            started.acquire()

        def join(self, timeout: float | None = None) -> None:
            if self._done.acquire(True, -1 if timeout is None else max(timeout, 0)):
                self._done.release()

        def is_alive(self) -> bool:
            return self.ident is not None and self._done.locked()

        def __repr__(self) -> str:
            return f"<persistq real thread {self.name!r} ident={self.ident}>"

    class RealCondition:
        """``threading.Condition`` on real locks (a waiter lock per waiting thread)."""

        def __init__(self, lock: Any = None) -> None:
            self._lock = allocate_lock() if lock is None else lock
            self._waiters: deque[Any] = deque()

        def __enter__(self) -> bool:
            return bool(self._lock.acquire())

        def __exit__(self, *exc: object) -> None:
            self._lock.release()

        def wait(self, timeout: float | None = None) -> bool:
            waiter = allocate_lock()
            waiter.acquire()
            self._waiters.append(waiter)
            self._lock.release()
            got = False
            try:
                got = bool(waiter.acquire(True, -1 if timeout is None else max(timeout, 0)))
                return got
            finally:
                self._lock.acquire()
                if not got:
                    with contextlib.suppress(ValueError):
                        self._waiters.remove(waiter)

        def notify(self, n: int = 1) -> None:
            for _ in range(min(n, len(self._waiters))):
                self._waiters.popleft().release()

        def notify_all(self) -> None:
            self.notify(len(self._waiters))

    class RealEvent:
        """``threading.Event`` on a real condition."""

        def __init__(self) -> None:
            self._cond = RealCondition()
            self._flag = False

        def is_set(self) -> bool:
            return self._flag

        def set(self) -> None:
            with self._cond:
                self._flag = True
                self._cond.notify_all()

        def clear(self) -> None:
            with self._cond:
                self._flag = False

        def wait(self, timeout: float | None = None) -> bool:
            with self._cond:
                if not self._flag:
                    self._cond.wait(timeout)
                return self._flag

    def current_thread() -> Any:
        """Our :class:`RealThread` when called on one, else ``threading.current_thread()``."""
        return running.get(real_get_ident()) or _std.current_thread()

    return RealThread, allocate_lock, RealCondition, RealEvent, real_local, current_thread, real_get_ident


if TYPE_CHECKING or GREEN is None:
    from threading import Condition, Event, Lock, Thread, current_thread, get_ident, local
else:
    Thread, Lock, Condition, Event, local, current_thread, get_ident = _build(GREEN)


_inline_local = _std.local()


def allow_inline() -> None:
    """Let the event loop of the calling thread run storage batches itself.

    Only for a private loop that serves blocking callers (the portal): a batch
    then blocks this loop for the length of a commit.
    """
    _inline_local.inline = True


def inline_allowed() -> bool:
    """Whether the calling thread is a loop thread that may run storage work inline (the portal)."""
    return getattr(_inline_local, "inline", False)


class _NotNow:
    """The answer of a fast path that cannot finish without waiting."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NOT_NOW"


NOT_NOW: Any = _NotNow()
"""What a synchronous fast path (``put_now``, ``claim_now`` …) returns when the call must go async."""
