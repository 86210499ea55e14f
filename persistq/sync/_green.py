"""Cooperative waiting for blocking calls in a gevent or eventlet process.

Only imported when :data:`persistq._runtime.GREEN` names a library
(the process was monkey-patched before persistq was imported); a normal
process never loads this module.

The portal's loop runs on a real OS thread; a caller is a greenlet (gevent) or
green thread (eventlet) that must not block its hub while it waits. Each
waiting call borrows a :class:`Waiter`: a real OS pipe. The portal thread
writes one byte when the call's result is ready (a plain ``os.write``,
safe from any thread); the caller waits for the read end with its library's
own cooperative fd wait (``gevent.socket.wait_read`` /
``eventlet.hubs.trampoline``), so other greenlets keep running, then reads
the byte. Pipes are reused (a small pool), so a call costs two tiny syscalls
and one hub wake-up, and no fd is created per call.

A waiter is never closed while the portal may still write to it: a caller
that gives up (killed twice) marks it abandoned and the portal thread closes
it after its write would have happened.
"""

from __future__ import annotations

import _socket
import asyncio
import contextlib
import importlib
import os
from collections.abc import Callable
from typing import Any

from .. import _runtime as _threads

__all__ = ("Waiter", "new_event_loop", "take", "wait_readable")

_POOL_MAX = 32


class _TimedOut(Exception):
    """Raised by the libraries' fd waits when their timeout passes."""


def _wait_function(library: str | None) -> Callable[[int, float | None], bool]:
    if library == "gevent":
        wait_read = importlib.import_module("gevent.socket").wait_read

        def wait_gevent(fd: int, timeout: float | None = None) -> bool:
            try:
                wait_read(fd, timeout, _TimedOut)
            except _TimedOut:
                return False
            return True

        return wait_gevent
    if library == "eventlet":
        trampoline = importlib.import_module("eventlet.hubs").trampoline

        def wait_eventlet(fd: int, timeout: float | None = None) -> bool:
            try:
                trampoline(fd, read=True, timeout=timeout, timeout_exc=_TimedOut)
            except _TimedOut:
                return False
            return True

        return wait_eventlet
    raise RuntimeError("persistq.sync._green is only for a gevent or eventlet process")


#: Waits, cooperatively, until the fd is readable (or ``timeout`` passes: ``False``).
wait_readable = _wait_function(_threads.GREEN)


class Waiter:
    """A reusable wake-up pipe between the portal thread and one green caller."""

    __slots__ = ("_guard", "abandoned", "r", "signalled", "w")

    def __init__(self) -> None:
        self.r, self.w = os.pipe()
        # Held only for a few instructions, never across a wait: a real lock.
        self._guard = _threads.Lock()
        self.signalled = False
        self.abandoned = False

    def release(self) -> None:
        """Wake the caller (called by the portal thread, like ``Lock.release``)."""
        with self._guard:
            self.signalled = True
            if not self.abandoned:
                os.write(self.w, b"\0")
                return
        self._close()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait cooperatively for :meth:`release` and consume its byte; ``False`` on timeout."""
        if not wait_readable(self.r, timeout):
            return False
        os.read(self.r, 1)
        return True

    def abandon(self) -> None:
        """Give the waiter up without waiting: whoever finishes last closes it."""
        with self._guard:
            if not self.signalled:
                self.abandoned = True
                return
        self._close()

    def recycle(self) -> None:
        """Return a signalled, drained waiter to the pool."""
        self.signalled = False
        if len(_pool) < _POOL_MAX:
            _pool.append(self)
        else:
            self._close()

    def _close(self) -> None:
        for fd in (self.r, self.w):
            with contextlib.suppress(OSError):
                os.close(fd)


_pool: list[Waiter] = []


def take() -> Waiter:
    """A free waiter from the pool, or a new one."""
    try:
        return _pool.pop()
    except IndexError:
        return Waiter()


def _after_fork_in_child() -> None:
    # The parent's portal may still write to these pipes: the child must not
    # read them. Forget them (closing our copies does not affect the parent).
    global _pool
    pool, _pool = _pool, []
    for waiter in pool:
        waiter._close()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """The portal's loop: made on the portal thread, with a real self-pipe.

    Under both patchers ``asyncio.new_event_loop()`` gets a green selector
    (gevent's ``GeventSelector``, eventlet's green ``SelectSelector``) and a
    green socketpair for its self-pipe. The self-pipe is the one thing other
    OS threads touch (``call_soon_threadsafe`` writes to it), so it must be a
    real socketpair: this loop makes it with ``_socket.socketpair()``.

    The selector stays the library's cooperative one, bound to the hub of the
    portal thread (the loop is made there), which no other thread uses: the
    loop's wait is that hub's wait. It has to be: code run on the loop may
    start "threads" that are greenlets of this thread (anyio's
    ``to_thread.run_sync``, used by the engines' ``close``, starts
    ``threading.Thread`` subclasses, i.e. greenlets here). With the original
    ``select.select`` nothing would ever switch to this thread's hub and such
    a call would hang forever.
    """

    class RealSelfPipeLoop(asyncio.SelectorEventLoop):
        def _make_self_pipe(self) -> None:
            # As asyncio's own (3.10-3.13), with a socketpair no patcher replaced.
            loop: Any = self
            loop._ssock, loop._csock = _socket.socketpair()
            loop._ssock.setblocking(False)
            loop._csock.setblocking(False)
            loop._internal_fds += 1
            loop._add_reader(loop._ssock.fileno(), loop._read_from_self)

    if not hasattr(_socket, "socketpair"):  # no real socketpair here: asyncio's own
        return asyncio.SelectorEventLoop()
    return RealSelfPipeLoop()
