"""Storage workers: job lists run in batches by a small pool of storage threads.

Each storage connection (or file set) has one :class:`Worker`: a job list and
the right to use the connection, which only one thread holds at a time.
Callers on any event loop (asyncio or trio), or on a plain thread, hand it a
:class:`Job` and wait for it without blocking their loop. A worker with jobs
is run by a thread of the process's storage pool: the thread takes every job
waiting and gives the whole list to the engine's ``execute`` function, which
can run them in one transaction with one fsync (group commit), and repeats
until the list is empty. Results go back in one hand-off per batch and per
event loop, not one per job.

The pool: a worker does not own a thread. Threads are started when workers
with jobs outnumber idle threads (up to :data:`MAX_THREADS`), hand themselves
the next worker directly, and exit after :data:`IDLE_SECONDS` without work, so
a thousand idle queues cost no thread at all. A connection may run on
different pool threads over time, never on two at once.

Inline batches: on a thread marked with :func:`allow_inline` (persistq.sync's
portal loop), jobs are gathered until the loop's current iteration ends and then
executed right there, under the worker's lock, without any thread hop: one
hand-off per blocking call instead of two. If the worker is busy, or the
database's write lock is held by another connection (``execute`` returns
False), the batch goes to the worker thread instead, so the loop never waits
for another process.

Cancellation: a job that has reached the worker always runs to its end. A
caller cancelled meanwhile waits for that end (the wait is shielded), then runs
the job's undo, if it has one, and re-raises the cancellation, so either the
call returns or it raises and nothing changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

# Real OS threads and locks even under gevent/eventlet; the threading names otherwise.
from .. import _runtime as threading
from .._runtime import NOT_NOW as NOT_NOW
from .._runtime import allow_inline as allow_inline
from .._runtime import inline_allowed
from ..errors import QueueClosed

T = TypeVar("T")

__all__ = (
    "IDLE_SECONDS",
    "MAX_THREADS",
    "Job",
    "Worker",
    "allow_inline",
    "checked_worker",
    "pool_threads",
    "run_job",
    "run_job_asyncio",
    "stop_worker",
    "try_now",
    "NOT_NOW",
)

_CONCURRENCY_WINDOW = 0.05
"""Seconds after a batch of several jobs during which batches go to the thread."""

MAX_THREADS = 32
"""Most storage threads the pool runs at once; more busy workers wait their turn."""

IDLE_SECONDS = 5.0
"""A storage thread without work for this long exits."""


def _loop_has_ready_callbacks(loop: asyncio.AbstractEventLoop) -> bool:
    # asyncio's base loop keeps callbacks due this iteration in `_ready`; a loop
    # without it is treated as busy (the batch is then gathered as usual).
    ready = getattr(loop, "_ready", None)
    if ready is None:
        return True
    for handle in ready:
        # The loop's own self-pipe reader (queued when another thread woke the
        # loop) never submits storage jobs: it cannot join a batch.
        if not handle._cancelled and getattr(handle._callback, "__name__", "") != "_read_from_self":
            return True
    return False


class Job(Generic[T]):
    """One storage operation: ``fn(*args)`` run by the worker's ``execute``.

    Attributes set by the worker: ``result``, ``error`` and ``done``.
    ``kind`` tells ``execute`` how to run the job: ``"write"`` (inside a write
    transaction, possibly batched with others), ``"read"`` or ``"bare"`` (alone,
    outside any transaction: open, close, vacuum).
    """

    __slots__ = (
        "_event",
        "_fut",
        "_loop",
        "_thread_event",
        "_token",
        "args",
        "done",
        "error",
        "fn",
        "kind",
        "owner",
        "result",
    )

    def __init__(self, fn: Callable[..., T], *args: Any, kind: str = "write") -> None:
        self.fn = fn
        self.args = args
        self.kind = kind
        self.owner: Any = None
        """The store that submitted the job, for engines whose workers serve several (or ``None``)."""
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._fut: asyncio.Future[None] | None = None
        self._token: Any = None
        self._event: Any = None
        self._thread_event: threading.Event | None = None

    def value(self) -> T:
        """Return the job's result, or raise its error."""
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[no-any-return]


def _wake_asyncio(jobs: list[Job[Any]]) -> None:
    for job in jobs:
        fut = job._fut
        if fut is not None and not fut.done():
            fut.set_result(None)


def _wake_trio(jobs: list[Job[Any]]) -> None:
    for job in jobs:
        job._event.set()


class _PoolThread:
    """One storage thread's hand-off slot: the worker to run next, and the lock it sleeps on."""

    __slots__ = ("lock", "work")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.lock.acquire()
        self.work: Worker | None = None


class _Pool:
    """The process's storage threads (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Most recently idle last: it is handed work first (its caches are warm),
        # and the ones at the bottom time out when the load drops.
        self._idle: list[_PoolThread] = []
        self._waiting: deque[Worker] = deque()
        self.threads = 0

    def schedule(self, worker: Worker) -> None:
        """Have a pool thread run ``worker`` (which has jobs and is not running)."""
        with self._lock:
            if self._idle:
                slot = self._idle.pop()
                slot.work = worker
                slot.lock.release()
                return
            if self.threads >= MAX_THREADS:
                self._waiting.append(worker)
                return
            self.threads += 1
        try:
            threading.Thread(target=self._run, args=(worker,), name="persistq-storage", daemon=True).start()
        except BaseException:
            with self._lock:
                self.threads -= 1
                self._waiting.append(worker)
            raise

    def _run(self, worker: Worker) -> None:
        slot = _PoolThread()
        current: Worker | None = worker
        while current is not None:
            current._drain()
            current = self._next(slot)

    def _next(self, slot: _PoolThread) -> Worker | None:
        with self._lock:
            if self._waiting:
                return self._waiting.popleft()
            slot.work = None
            self._idle.append(slot)
        if not slot.lock.acquire(True, IDLE_SECONDS):
            with self._lock:
                if slot in self._idle:
                    self._idle.remove(slot)
                    self.threads -= 1
                    return None
            # schedule() picked this thread as the timeout passed: it has
            # already set the work and released the lock.
            slot.lock.acquire()
        return slot.work


_pool = _Pool()


def pool_threads() -> int:
    """How many storage threads the pool runs now (busy or idle)."""
    return _pool.threads


def _after_fork_in_child() -> None:
    # The parent's pool threads do not exist in the child.
    global _pool
    _pool = _Pool()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class Worker:
    """The job list of one connection, run by the storage pool.

    Args:
        name: names the worker (shown in ``repr`` and errors).
        execute: runs a batch of jobs on a pool thread, setting each job's
            ``result`` or ``error``; it must not raise.
        on_exit: called on a pool thread when the worker stops (closes the
            connection), after its last jobs; errors are ignored.
        inline: optional ``inline(batch) -> bool``: runs a batch on an event
            loop's thread (see :func:`allow_inline`) without ever waiting for
            another connection's lock; returns False, leaving the jobs
            untouched, when it would have to wait. Engines without it always
            use the pool.
    """

    def __init__(
        self,
        name: str,
        execute: Callable[[list[Job[Any]]], None],
        on_exit: Callable[[], None] | None = None,
        inline: Callable[[list[Job[Any]]], bool] | None = None,
        group_wait: Callable[[list[Job[Any]]], float] | None = None,
    ) -> None:
        self.name = name
        self._group_wait = group_wait
        self._last_batch = 0
        self._want_more = False
        self._execute = execute
        self._inline = inline
        self._on_exit = on_exit
        self._jobs: list[Job[Any]] = []
        # Serialises use of the connection between pool threads and inline batches.
        self._exec_lock = threading.Lock()
        # Inline batches being gathered, per event loop (a shared connection
        # serves queues on several loops: each loop runs only its own callers' jobs).
        self._inline_pending: dict[asyncio.AbstractEventLoop, list[Job[Any]]] = {}
        self._last_concurrent = -_CONCURRENCY_WINDOW
        self._mutex = threading.Lock()
        self._more = threading.Condition(self._mutex)
        # True while the worker waits for, or runs on, a pool thread.
        self._scheduled = False
        self._stopping = False
        self._stopped = threading.Event()
        # Jobs standing for callers waiting on stop(): delivered once on_exit ran.
        self._stop_waiters: list[Job[Any]] = []

    def __repr__(self) -> str:
        return f"<persistq storage worker {self.name!r}{' stopping' if self._stopping else ''}>"

    @property
    def alive(self) -> bool:
        """Whether the worker still accepts jobs."""
        return not self._stopping

    def submit(self, job: Job[Any]) -> None:
        """Queue a job; it runs in the next batch."""
        with self._mutex:
            if self._stopping:
                raise QueueClosed("the queue is closed")
            self._jobs.append(job)
            if self._want_more:
                self._more.notify()
            if self._scheduled:
                return
            self._scheduled = True
        _pool.schedule(self)

    def _submit_batch(self, batch: list[Job[Any]]) -> None:
        # Jobs already accepted (inline ones the loop could not run): queued even while stopping.
        with self._mutex:
            self._jobs.extend(batch)
            if self._want_more:
                self._more.notify()
            if self._scheduled:
                return
            self._scheduled = True
        _pool.schedule(self)

    def stop(self, waiter: Job[Any] | None = None) -> None:
        """Stop accepting jobs; finish the queued ones, then run ``on_exit`` (non-blocking).

        ``waiter``, if given, is delivered (as a finished job) once ``on_exit``
        has run: :func:`stop_worker` waits on it.
        """
        with self._mutex:
            if self._stopped.is_set():
                already = waiter is not None
            else:
                already = False
                if waiter is not None:
                    self._stop_waiters.append(waiter)
                self._stopping = True
                if self._scheduled:
                    return  # the running drain sees the flag when its list is empty
                self._scheduled = True
        if already:
            assert waiter is not None
            self._deliver([waiter])
        else:
            _pool.schedule(self)

    def join(self, timeout: float | None = None) -> None:
        """Wait until the worker has stopped (its last jobs and ``on_exit`` done)."""
        self._stopped.wait(timeout)

    def _drain(self) -> None:
        """Run batches until the job list is empty (on a pool thread)."""
        while True:
            with self._mutex:
                batch, self._jobs = self._jobs, []
                if not batch:
                    stopping = self._stopping
                    if not stopping or self._stopped.is_set():
                        self._scheduled = False
                        return
            if not batch:
                if self._on_exit is not None:
                    # Nothing could report an error here: the worker is ending.
                    with self._exec_lock, contextlib.suppress(Exception):
                        self._on_exit()
                with self._mutex:
                    self._stopped.set()
                    waiters, self._stop_waiters = self._stop_waiters, []
                self._deliver(waiters)
                continue
            if self._group_wait is not None and self._last_batch > 1:
                batch = self._gather_more(batch)
            self._last_batch = len(batch)
            with self._exec_lock:
                self._execute(batch)
            self._deliver(batch)

    def _gather_more(self, batch: list[Job[Any]]) -> list[Job[Any]]:
        """Group commit under load: let callers still on their way join this batch.

        Only after a batch of several jobs (callers are concurrent), and only
        for as long as the engine says the batch may wait (``group_wait``:
        a fraction of what its commit costs, e.g. nothing below ``full``).
        Jobs keep joining while they arrive less than a quarter of that apart.
        Callers whose last job committed are returning with their next one;
        without the wait, those arriving during this commit's first
        microseconds would each pay for another fsync.
        """
        assert self._group_wait is not None
        cap = self._group_wait(batch)
        if cap <= 0:
            return batch
        gap = cap / 4
        deadline = time.monotonic() + cap
        with self._mutex:
            self._want_more = True
            try:
                while not self._stopping:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    before = len(self._jobs)
                    self._more.wait(min(gap, remaining))
                    if len(self._jobs) == before:
                        break  # nobody came within the gap
            finally:
                self._want_more = False
            batch.extend(self._jobs)
            self._jobs = []
        return batch

    def run_now(self, job: Job[Any], loop: asyncio.AbstractEventLoop) -> bool:
        """Run ``job`` on ``loop``'s thread right now if nothing could join its batch; return whether it ran.

        The fast path of a lone caller: no other job of this loop is being
        gathered, nothing else is ready to run on the loop, no burst of
        concurrent callers is under way, and the connection is free. Then
        the job runs here and the caller gets its result without awaiting
        anything (no future, no loop iteration).
        """
        if (
            self._stopping
            or loop in self._inline_pending
            or _loop_has_ready_callbacks(loop)
            or time.monotonic() - self._last_concurrent < _CONCURRENCY_WINDOW
        ):
            return False
        return self.try_inline([job])

    def submit_inline(self, job: Job[Any], loop: asyncio.AbstractEventLoop) -> None:
        """Queue a job to run on ``loop``'s thread at the end of its current iteration."""
        if self._stopping:
            raise QueueClosed("the queue is closed")
        pending = self._inline_pending.get(loop)
        if pending is not None:
            pending.append(job)  # a flush is already scheduled on this loop
            return
        if not _loop_has_ready_callbacks(loop):
            # Nothing else is about to run on this loop, so nothing could join
            # this batch: run it now, and the caller's await finds it done
            # without suspending (two loop iterations fewer per call).
            self._flush_inline([job])
            return
        self._inline_pending[loop] = [job]
        loop.call_soon(self._flush_pending, loop)

    def _flush_pending(self, loop: asyncio.AbstractEventLoop) -> None:
        self._flush_inline(self._inline_pending.pop(loop, []))

    def try_inline(self, batch: list[Job[Any]]) -> bool:
        """Run ``batch`` on the calling thread now if the connection is free; return whether it ran.

        Never waits: not for a pool thread using the connection, not for
        another connection's lock (the engine's ``inline`` refuses then).
        Whoever gets False hands the jobs to the pool instead.
        """
        inline = self._inline
        if inline is None or any(j.kind == "bare" for j in batch):
            return False
        if not self._exec_lock.acquire(blocking=False):
            return False
        try:
            ran = inline(batch)
        finally:
            self._exec_lock.release()
        if ran:
            for job in batch:
                job.done = True
        return ran

    def _flush_inline(self, batch: list[Job[Any]]) -> None:
        if not batch:
            return
        now = time.monotonic()
        if len(batch) > 1:
            self._last_concurrent = now
        # Several callers at once: let a storage thread commit while this loop
        # gathers the next batch, so batches grow with the load (group commit)
        # instead of alternating between one job here and a few on the pool.
        # A lone caller keeps the inline path.
        concurrent = now - self._last_concurrent < _CONCURRENCY_WINDOW
        if concurrent or not self.try_inline(batch):
            # Busy: a pool thread waits for the lock instead of this loop.
            self._submit_batch(batch)
            return
        _wake_asyncio(batch)

    @staticmethod
    def _deliver(batch: Sequence[Job[Any]]) -> None:
        # One hand-off per event loop per batch: a group commit of 50 jobs from
        # one loop wakes that loop once, not 50 times.
        by_loop: dict[int, tuple[Any, list[Job[Any]]]] = {}
        by_token: dict[int, tuple[Any, list[Job[Any]]]] = {}
        for job in batch:
            job.done = True
            if job._loop is not None:
                by_loop.setdefault(id(job._loop), (job._loop, []))[1].append(job)
            elif job._token is not None:
                by_token.setdefault(id(job._token), (job._token, []))[1].append(job)
            elif job._thread_event is not None:
                job._thread_event.set()
        for loop, jobs in by_loop.values():
            # A closed loop (RuntimeError) means nobody waits any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_wake_asyncio, jobs)
        for token, jobs in by_token.values():
            # trio.RunFinishedError (a RuntimeError): the caller's run ended.
            with contextlib.suppress(RuntimeError):
                token.run_sync_soon(_wake_trio, jobs)

    def run_blocking(self, job: Job[T]) -> T:
        """Run a job and block the calling thread until it is done."""
        job._thread_event = threading.Event()
        self.submit(job)
        job._thread_event.wait()
        return job.value()


async def _wait_asyncio(job: Job[Any], loop: asyncio.AbstractEventLoop) -> asyncio.CancelledError | None:
    """Wait for a submitted job; return the cancellation that came meanwhile, if any.

    The first ``CancelledError`` is the one to re-raise: anyio recognises its
    own cancel scopes by that exception's message.
    """
    try:
        await job._fut  # type: ignore[misc]
        return None
    except asyncio.CancelledError as exc:
        cancelled = exc
    # Cancelled while the worker runs the job: wait for its end regardless.
    while not job.done:
        job._fut = loop.create_future()
        try:
            await job._fut
        except asyncio.CancelledError:
            continue
    return cancelled


def checked_worker(worker: Worker | None, pid: int) -> Worker:
    """``worker`` if a store opened in process ``pid`` may use it now, else :class:`QueueClosed`."""
    if pid != os.getpid():
        raise QueueClosed(
            "this queue was opened in another process (before a fork); open it again in this process"
        )
    if worker is None or not worker.alive:
        raise QueueClosed("the queue is closed")
    return worker


def _noop() -> None:
    return None


async def stop_worker(worker: Worker) -> None:
    """Stop ``worker`` and wait, without blocking the event loop, until its ``on_exit`` ran."""
    await run_job(worker, Job(_noop, kind="bare"), submit=worker.stop)


async def run_job(
    worker: Worker,
    job: Job[T],
    undo: Callable[[T], Job[Any]] | None = None,
    submit: Callable[[Job[Any]], None] | None = None,
) -> T:
    """Run ``job`` on ``worker`` from async code, on asyncio or trio.

    If the caller is cancelled while the job runs, the job still finishes; then
    ``undo(result)`` (a job reversing it) runs, and the cancellation is raised.
    ``submit`` replaces the worker's own submission (:func:`stop_worker`).
    """
    try:
        loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if loop is not None:
        if submit is None and worker._inline is not None:
            portal = inline_allowed()
            if portal or _cheap(job):
                if not portal:
                    # Running it here completes without suspending: yield first,
                    # so a caller in a loop of puts still lets the other tasks run.
                    await asyncio.sleep(0)
                if worker.run_now(job, loop):
                    return job.value()
                submit = functools.partial(worker.submit_inline, loop=loop)
        if submit is None:
            submit = worker.submit
        # The undo goes to the pool: it must run even while the loop is
        # being torn down.
        return await run_job_asyncio(job, loop, submit, undo, worker.submit)
    return await _run_job_trio(worker, job, undo, submit or worker.submit)


def try_now(worker: Worker | None, job: Job[T]) -> T:
    """Run ``job`` on the calling event-loop thread now, or return :data:`NOT_NOW`.

    For synchronous fast paths called from a callback on a running asyncio
    loop (the portal's): the job runs here when inline batches are allowed
    for it (the portal loop; :func:`_cheap` jobs on a caller's own loop are
    left to :func:`run_job`, which yields first), nothing could join its
    batch and the connection is free. The job's error, if any, is raised.
    """
    if worker is None or worker._inline is None or not inline_allowed():
        return NOT_NOW  # type: ignore[no-any-return]
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return NOT_NOW  # type: ignore[no-any-return]
    if worker.run_now(job, loop):
        return job.value()
    return NOT_NOW  # type: ignore[no-any-return]


def _cheap(job: Job[Any]) -> bool:
    """Whether ``job`` may run on a caller's own event loop: it reads, or commits without an fsync.

    Such a commit costs less than the hop to a storage thread. The store says
    how durable its writes must be (``owner.level``: 2 is ``"full"``); jobs
    of stores that do not say always take the hop.
    """
    if job.kind == "bare":
        return False
    return job.kind == "read" or getattr(job.owner, "level", 2) < 2


async def run_job_asyncio(
    job: Job[T],
    loop: asyncio.AbstractEventLoop,
    submit: Callable[[Job[Any]], None],
    undo: Callable[[T], Job[Any]] | None = None,
    submit_undo: Callable[[Job[Any]], None] | None = None,
) -> T:
    """Hand ``job`` to ``submit`` and wait for it on ``loop``, with :func:`run_job`'s cancel rules.

    Whoever runs the job sets ``done`` and wakes it with :func:`_wake_asyncio`.
    A cancelled caller waits for the job to finish, then for ``undo(result)``
    (handed to ``submit_undo``, by default ``submit``), then re-raises.
    """
    job._loop = loop
    job._fut = loop.create_future()
    submit(job)
    cancelled = await _wait_asyncio(job, loop)
    if cancelled is not None:
        if undo is not None and job.error is None:
            undo_job = undo(job.result)
            undo_job.owner = job.owner
            undo_job._loop = loop
            undo_job._fut = loop.create_future()
            (submit_undo or submit)(undo_job)
            await _wait_asyncio(undo_job, loop)
        raise cancelled
    return job.value()


async def _run_job_trio(
    worker: Worker, job: Job[T], undo: Callable[[T], Job[Any]] | None, submit: Callable[[Job[Any]], None]
) -> T:
    import trio

    if submit == worker.submit and _cheap(job):
        # Inline on trio: the checkpoint comes first (this call would not
        # yield otherwise); then the job runs here if the connection is free.
        await trio.lowlevel.checkpoint()
        if worker.try_inline([job]):
            return job.value()
    token = trio.lowlevel.current_trio_token()
    job._token = token
    job._event = trio.Event()
    submit(job)
    with trio.CancelScope(shield=True):
        await job._event.wait()
    try:
        await trio.lowlevel.checkpoint_if_cancelled()
    except trio.Cancelled:
        if undo is not None and job.error is None:
            undo_job = undo(job.result)
            undo_job.owner = job.owner
            undo_job._token = token
            undo_job._event = trio.Event()
            worker.submit(undo_job)
            with trio.CancelScope(shield=True):
                await undo_job._event.wait()
        raise
    return job.value()
