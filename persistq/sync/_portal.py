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
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from ..engines import _threads
from ..engines._worker import allow_inline
from ..errors import PortalError

T = TypeVar("T")

__all__ = ("Portal", "acquire", "release")

_THREAD_NAME = "persistq-portal"


class _Call:
    """One blocking call's rendezvous between a caller thread and the loop."""

    __slots__ = ("error", "lock", "result", "task")

    def __init__(self) -> None:
        self.lock: Any = threading.Lock()
        self.lock.acquire()
        self.result: Any = None
        self.error: BaseException | None = None
        self.task: asyncio.Task[Any] | None = None


class Portal:
    """A running event loop on a daemon thread, and a way to call into it."""

    loop: asyncio.AbstractEventLoop
    thread_id: int | None = None

    def __init__(self) -> None:
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

    def _start(self, call: _Call, fn: Callable[..., Coroutine[Any, Any, Any]], args: tuple[Any, ...]) -> None:
        try:
            # A fresh context: the caller's context variables (sniffio's "current
            # async library" among them, set when the caller runs trio) must not
            # leak into the portal's asyncio task.
            task = contextvars.Context().run(self.loop.create_task, fn(*args))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            call.error = exc
            call.lock.release()
            return
        call.task = task
        task.add_done_callback(lambda t: self._finish(call, t))

    @staticmethod
    def _finish(call: _Call, task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            call.error = PortalError("the call was cancelled (the portal is stopping)")
        else:
            call.error = task.exception()
            if call.error is None:
                call.result = task.result()
        call.lock.release()

    def call(self, fn: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
        """Run ``fn(*args)`` on the loop and block until it returns.

        If the caller is interrupted (``KeyboardInterrupt``) the coroutine is
        cancelled and awaited first, so a get interrupted this way leaves its
        item in the queue.

        Raises:
            PortalError: called from the portal thread itself.
        """
        if threading.get_ident() == self.thread_id:
            raise PortalError(
                "a blocking persistq.sync call was made from persistq's own event loop "
                "thread (for example from a callback); use the async queue there"
            )
        call = _Call()
        self.loop.call_soon_threadsafe(self._start, call, fn, args)
        try:
            call.lock.acquire()
        except BaseException:
            self.loop.call_soon_threadsafe(self._cancel, call)
            call.lock.acquire()
            raise
        if call.error is not None:
            error, call.error = call.error, None
            raise error
        return call.result  # type: ignore[no-any-return]

    @staticmethod
    def _cancel(call: _Call) -> None:
        if call.task is not None:
            call.task.cancel()

    def stop(self) -> None:
        """Stop the loop and wait for its thread (never from the loop thread)."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        if threading.get_ident() != self.thread_id:
            self._thread.join()


class _GreenCall(_Call):
    """A :class:`_Call` whose ``lock`` is a cooperative :class:`._green.Waiter`."""

    __slots__ = ()

    def __init__(self, waiter: Any) -> None:
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

    def call(self, fn: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
        """Run ``fn(*args)`` on the loop; wait cooperatively until it returns.

        A caller killed or interrupted while waiting (``GreenletExit``, a
        ``Timeout``, ``KeyboardInterrupt``) cancels the coroutine and waits
        for it to end, as :meth:`Portal.call` does.
        """
        if threading.get_ident() == self.thread_id:
            raise PortalError(
                "a blocking persistq.sync call was made from persistq's own event loop "
                "thread (for example from a callback); use the async queue there"
            )
        waiter = _green.take()
        call = _GreenCall(waiter)
        self.loop.call_soon_threadsafe(self._start, call, fn, args)
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
        if call.error is not None:
            error, call.error = call.error, None
            raise error
        return call.result  # type: ignore[no-any-return]


# Chosen once: a normal process never loads ``._green`` nor pays for it.
_portal_class: type[Portal] = Portal
if _threads.GREEN is not None:
    from . import _green

    _portal_class = _GreenPortal
_lock = threading.Lock()
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


def _after_fork_in_child() -> None:
    # The portal thread does not exist in the child: forget it (without touching
    # its loop, whose state is the parent's) so the next lease starts a new one.
    global _portal, _leases, _lock
    _lock = threading.Lock()
    _portal = None
    _leases = 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
