"""The portal: one private asyncio event loop thread per process.

``persistq.sync`` runs the async queues on this loop. A blocking call hands one
coroutine to the loop (one ``call_soon_threadsafe``) and sleeps on a plain lock
until the loop hands the result back: one hand-off each way, no
``concurrent.futures`` machinery.

The thread is started by the first open sync queue and stopped when the last
one closes (each queue holds a lease from open to close). It is re-created in a
child process after ``os.fork()``. Under gevent or eventlet monkey-patching the
loop still runs on a real OS thread, and blocking calls wait cooperatively
(see :mod:`._green`).

Process exit: programs written for persist-queue never call ``close()``. An
:mod:`atexit` hook (registered when this module is imported, so it runs after
the program's own hooks, and after Python has joined every non-daemon thread)
closes every open queue in one call to the loop, bounded by
:data:`EXIT_TIMEOUT`, then stops the loop. From then on a call from any other
thread — a daemon worker blocked in ``get()``, or one that calls again — parks
that thread silently instead of raising into it; the interpreter ends it. Once
the interpreter is finalizing nothing here blocks on the loop: it may no longer
run.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import contextvars
import os
import sys
import threading
import weakref
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, NoReturn, Protocol, TypeVar

from .. import _runtime as _threads
from .._runtime import allow_inline
from ..errors import PortalError
from ..queues._base import NOT_NOW, Continue

T = TypeVar("T")
_CoroFn = Callable[..., Coroutine[Any, Any, Any]]

__all__ = (
    "EXIT_TIMEOUT",
    "Portal",
    "acquire",
    "close_collected",
    "park_if_exiting",
    "release",
    "track",
    "untrack",
)

_THREAD_NAME = "persistq-portal"

EXIT_TIMEOUT = 10.0
"""Seconds the exit hook waits for open queues to close (a server that stopped
answering must not keep a finished program alive)."""


class _Call:
    """One blocking call's rendezvous between a caller thread and the loop."""

    __slots__ = ("args", "error", "fast", "fn", "lock", "result", "task")

    def __init__(self, fn: _CoroFn, args: tuple[Any, ...], fast: Callable[..., Any] | None = None) -> None:
        self.fn = fn
        self.args = args
        self.fast = fast
        self.lock: Any = threading.Lock()
        self.lock.acquire()
        self.result: Any = None
        self.error: BaseException | None = None
        self.task: asyncio.Task[Any] | None = None


async def _run_call(call: _Call, coro: Coroutine[Any, Any, Any] | None = None) -> None:
    # The caller is released here, in the step that finishes the coroutine,
    # not by a done-callback one loop iteration later.
    try:
        call.result = await (coro if coro is not None else call.fn(*call.args))
    except asyncio.CancelledError:
        call.error = PortalError("the call was cancelled (the portal is stopping)")
    except BaseException as exc:  # noqa: BLE001 - handed to the caller
        call.error = exc
    finally:
        call.lock.release()


_EAGER_TASKS = sys.version_info >= (3, 12)


def _start_eagerly(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    """A task for ``coro`` whose first step runs now, inside the calling callback.

    A call that completes without suspending (the usual put or get: its
    storage batch runs inline on this loop) then finishes in the loop
    iteration that received it. Python 3.12 does this itself
    (``eager_start``); before, the step the new task scheduled is taken back
    from the loop's ready queue and run at once.
    """
    if _EAGER_TASKS:
        return asyncio.Task(coro, loop=loop, eager_start=True)  # type: ignore[call-arg,unused-ignore]
    task = loop.create_task(coro)
    ready = getattr(loop, "_ready", None)
    if ready:
        handle = ready[-1]
        if getattr(handle._callback, "__self__", None) is task:
            ready.pop()
            handle._run()
    return task


class Portal:
    """A running event loop on a daemon thread, and a way to call into it."""

    loop: asyncio.AbstractEventLoop
    thread_id: int | None = None

    def __init__(self) -> None:
        # Calls handed over and not yet started; one wake-up of the loop
        # serves every call queued while it is pending.
        self._incoming: deque[_Call] = deque()
        self._wake_pending = False
        self._incoming_lock = _threads.Lock()
        # Real OS thread and event, even under gevent/eventlet (``_threads``).
        started = _threads.Event()
        self._thread = _threads.Thread(target=self._main, args=(started,), name=_THREAD_NAME, daemon=True)
        self._thread.start()
        started.wait()

    @staticmethod
    def _new_loop() -> asyncio.AbstractEventLoop:
        return asyncio.new_event_loop()

    def _main(self, started: _threads.Event) -> None:
        # Made on its own thread: under gevent/eventlet its selector belongs to
        # this thread's hub.
        self.loop = self._new_loop()
        # The id the callers compare with their own ``threading.get_ident()``
        # (the patched function in a green process: measured here, not taken
        # from the thread object).
        self.thread_id = threading.get_ident()
        # Blocking callers wait on this loop anyway: let it run storage batches
        # itself instead of handing them to a storage thread (one hop saved).
        allow_inline()
        asyncio.set_event_loop(self.loop)
        # Tasks start in this context, not the caller's: its context variables
        # (sniffio's "current async library" among them, set when the caller
        # runs trio) must not leak into the portal's asyncio tasks.
        self._context = contextvars.Context()
        self.loop.call_soon(started.set)
        try:
            self.loop.run_forever()
        finally:
            try:
                pending = asyncio.all_tasks(self.loop)
                for task in pending:
                    task.cancel()
                if pending:
                    self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            finally:
                self.loop.close()

    def _drain(self) -> None:
        with self._incoming_lock:
            calls = list(self._incoming)
            self._incoming.clear()
            self._wake_pending = False
        if len(calls) == 1:
            # A lone call runs its first step now; several start as plain
            # tasks, so their storage jobs gather into one batch (group commit).
            self._start(calls[0], eager=True)
            return
        for call in calls:
            self._start(call, eager=False)

    def _start(self, call: _Call, eager: bool) -> None:
        # Runs in the portal's own context (see _submit): the task copies it.
        then: Coroutine[Any, Any, Any] | None = None
        if eager and call.fast is not None:
            # The synchronous fast path: most puts and gets finish right here.
            try:
                result = call.fast(*call.args)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                call.error = exc
                call.lock.release()
                return
            if isinstance(result, Continue):
                then = result.coro
            elif result is not NOT_NOW:
                call.result = result
                call.lock.release()
                return
        coro = _run_call(call, then)
        call.task = _start_eagerly(self.loop, coro) if eager else self.loop.create_task(coro)

    def call_fast(self, fast: Callable[..., Any], fn: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
        """:meth:`call`, trying ``fast(*args)`` on the loop first.

        ``fast`` is a synchronous version of ``fn`` that finishes the call
        when it needs no waiting, or returns ``NOT_NOW`` having changed
        nothing (then ``fn`` runs), or a :class:`Continue` (then its coroutine
        finishes the call). A lone call then costs no task and no coroutine.
        """
        return self.call(fn, *args, fast=fast)

    def call(self, fn: Callable[..., Coroutine[Any, Any, T]], *args: Any, fast: Any = None) -> T:
        """Run ``fn(*args)`` on the loop and block until it returns.

        If the caller is interrupted (``KeyboardInterrupt``) the coroutine is
        cancelled and awaited first, so a get interrupted this way leaves its
        item in the queue.

        Raises:
            PortalError: called from the portal thread itself.
        """
        self._check_caller()
        call = _Call(fn, args, fast)
        self._submit(call)
        try:
            call.lock.acquire()
        except BaseException:
            self.loop.call_soon_threadsafe(self._cancel, call)
            call.lock.acquire()
            raise
        park_if_exiting()
        if call.error is not None:
            error, call.error = call.error, None
            raise error
        return call.result  # type: ignore[no-any-return]

    def _check_caller(self) -> None:
        if threading.get_ident() == self.thread_id:
            raise PortalError(
                "a blocking persistq.sync call was made from persistq's own event loop "
                "thread (for example from a callback); use the async queue there"
            )
        park_if_exiting()

    def _submit(self, call: _Call) -> None:
        with self._incoming_lock:
            self._incoming.append(call)
            if self._wake_pending:
                return
            self._wake_pending = True
        try:
            self.loop.call_soon_threadsafe(self._drain, context=self._context)
        except RuntimeError as exc:  # the loop is closed
            with self._incoming_lock:
                self._wake_pending = False
                with contextlib.suppress(ValueError):
                    self._incoming.remove(call)
            park_if_exiting()
            raise PortalError("persistq's event loop thread has stopped") from exc

    def call_bounded(self, fn: Callable[..., Coroutine[Any, Any, Any]], *args: Any, timeout: float) -> bool:
        """Run ``fn(*args)`` on the loop; wait at most ``timeout`` seconds.

        For the exit hook: returns whether the call finished (its result and
        errors are dropped). A call still running at the deadline is left to
        the loop.
        """
        if threading.get_ident() == self.thread_id:
            return False
        call = _Call(fn, args)
        try:
            self._submit(call)
        except PortalError:
            return False
        return bool(call.lock.acquire(True, timeout))

    @staticmethod
    def _cancel(call: _Call) -> None:
        if call.task is not None:
            call.task.cancel()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the loop and wait (up to ``timeout``) for its thread; never from the loop thread."""
        with contextlib.suppress(RuntimeError):  # already closed
            self.loop.call_soon_threadsafe(self.loop.stop)
        if threading.get_ident() != self.thread_id:
            self._thread.join(timeout)


class _GreenCall(_Call):
    """A :class:`_Call` whose ``lock`` is a cooperative :class:`._green.Waiter`."""

    __slots__ = ()

    def __init__(self, waiter: Any, fn: _CoroFn, args: tuple[Any, ...], fast: Any = None) -> None:
        self.fn = fn
        self.args = args
        self.fast = fast
        self.lock = waiter
        self.result: Any = None
        self.error: BaseException | None = None
        self.task: asyncio.Task[Any] | None = None


class _GreenPortal(Portal):
    """The portal of a gevent or eventlet process.

    The loop runs on a real OS thread, wakes through a real socketpair and
    waits with the library's selector on that thread's own hub; a caller waits
    on a real pipe with its library's cooperative fd wait, so other greenlets
    run meanwhile (see :mod:`._green`).
    """

    @staticmethod
    def _new_loop() -> asyncio.AbstractEventLoop:
        return _green.new_event_loop()

    def call(self, fn: Callable[..., Coroutine[Any, Any, T]], *args: Any, fast: Any = None) -> T:
        """Run ``fn(*args)`` on the loop; wait cooperatively until it returns.

        A caller killed or interrupted while waiting (``GreenletExit``, a
        ``Timeout``, ``KeyboardInterrupt``) cancels the coroutine and waits
        for it to end, as :meth:`Portal.call` does.
        """
        self._check_caller()
        waiter = _green.take()
        call = _GreenCall(waiter, fn, args, fast)
        self._submit(call)
        try:
            waiter.wait()
        except BaseException:
            self.loop.call_soon_threadsafe(self._cancel, call)
            try:
                waiter.wait()
            except BaseException:
                waiter.abandon()
                raise
            waiter.recycle()
            raise
        waiter.recycle()
        park_if_exiting()
        if call.error is not None:
            error, call.error = call.error, None
            raise error
        return call.result  # type: ignore[no-any-return]

    def call_bounded(self, fn: Callable[..., Coroutine[Any, Any, Any]], *args: Any, timeout: float) -> bool:
        """:meth:`Portal.call_bounded`, waiting cooperatively."""
        if threading.get_ident() == self.thread_id:
            return False
        waiter = _green.take()
        call = _GreenCall(waiter, fn, args)
        try:
            self._submit(call)
        except PortalError:
            waiter.recycle()
            return False
        if waiter.wait(timeout):
            waiter.recycle()
            return True
        waiter.abandon()
        return False


# Chosen once: a normal process never loads ``._green`` nor pays for it.
_portal_class: type[Portal] = Portal
if _threads.GREEN is not None:
    from . import _green

    _portal_class = _GreenPortal
# Re-entrant: a queue collected (``__del__``) while this thread is inside
# acquire() or release() gives its lease back through release().
_lock = threading.RLock()
_portal: Portal | None = None
_leases = 0


def acquire() -> Portal:
    """Take a lease on the process's portal, starting it if needed."""
    global _portal, _leases
    with _lock:
        if _portal is None:
            _portal = _portal_class()
        _leases += 1
        return _portal


def release(portal: Portal) -> None:
    """Give a lease back; the last one stops the portal thread."""
    global _portal, _leases
    with _lock:
        if portal is not _portal:
            return  # a portal of the parent process, before a fork
        _leases -= 1
        if _leases > 0:
            return
        _portal = None
    portal.stop()


class Closable(Protocol):
    """A sync twin, as the exit hook sees it."""

    def _detach_for_exit(self) -> Any:
        """Mark the twin closed without calling the loop; return its async queue (or ``None``)."""


# Open twins, by id (PDict twins are unhashable mappings): the exit hook closes them.
_open: dict[int, weakref.ref[Closable]] = {}
_exit_thread: int | None = None
"""The thread running the exit hook, once it has started."""


def track(twin: Closable) -> None:
    """Remember an open twin, for the exit hook."""
    key = id(twin)
    _open[key] = weakref.ref(twin, lambda _ref: _open.pop(key, None))


def untrack(twin: Closable) -> None:
    """Forget a twin that was closed."""
    _open.pop(id(twin), None)


def exiting() -> bool:
    """Whether the exit hook has started (or the interpreter is finalizing)."""
    return _exit_thread is not None or sys.is_finalizing()


def _park() -> NoReturn:
    """Block the calling thread for good, quietly: the program is ending."""
    if _portal_class is _GreenPortal:
        while True:
            _green.take().wait()
    forever = _threads.Lock()
    forever.acquire()
    while True:
        forever.acquire()


def park_if_exiting() -> None:
    """Park the caller if the program is ending and it is not the thread ending it.

    After the exit hook has closed every queue, a daemon thread blocked in
    ``get()`` (or calling again) would otherwise receive ``QueueClosed`` and
    print a traceback while the interpreter shuts down.
    """
    if _exit_thread is not None and threading.get_ident() != _exit_thread:
        _park()


async def _close_all(queues: list[Any]) -> None:
    import anyio

    async def close_quietly(q: Any) -> None:
        # Nobody is left to report a failing close to; what returned is durable already.
        with contextlib.suppress(Exception):
            await q.close()

    async with anyio.create_task_group() as tg:
        for q in queues:
            tg.start_soon(close_quietly, q)


def _at_exit() -> None:
    """Close every open queue and stop the loop (runs at interpreter exit)."""
    global _exit_thread, _portal, _leases
    _exit_thread = threading.get_ident()
    with _lock:
        portal, _portal = _portal, None
        _leases = 0
        twins = [ref() for ref in list(_open.values())]
        _open.clear()
    if portal is None:
        return
    queues = [q for q in (t._detach_for_exit() for t in twins if t is not None) if q is not None]
    if queues:
        portal.call_bounded(_close_all, queues, timeout=EXIT_TIMEOUT)
    portal.stop(timeout=EXIT_TIMEOUT)


atexit.register(_at_exit)


def close_collected(portal: Portal, q: Any) -> None:
    """Close the async queue of a twin collected without ``close()``; give its lease back.

    Blocks until closed when that is safe (so reopening the same path next
    works at once); never blocks on the loop thread itself, nor once the
    program is ending (the exit hook closes what is open; a finalizing
    interpreter may no longer run the loop).
    """
    if exiting():
        return
    if threading.get_ident() == portal.thread_id:

        async def close_then_release() -> None:
            try:
                with contextlib.suppress(Exception):
                    await q.close()
            finally:
                release(portal)

        portal.loop.create_task(close_then_release())
        return
    try:
        # A close that fails has nobody to report to (this is a finalizer).
        with contextlib.suppress(Exception):
            portal.call(q.close)
    finally:
        release(portal)


def _after_fork_in_child() -> None:
    # The portal thread does not exist in the child: forget it (without touching
    # its loop, whose state is the parent's) so the next lease starts a new one.
    global _portal, _leases, _lock
    _lock = threading.RLock()
    _portal = None
    _leases = 0
    _open.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
