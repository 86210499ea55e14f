"""``task_done()`` from anywhere: the getter, another task, another thread.

A caller that holds items got and not done finishes its own oldest one; a
caller that holds none finishes the oldest one the queue object handed out
(persist-queue's counting); with none left it raises ``ValueError``. Checked
on the file ``Queue`` and on ``SQLiteQueue(auto_commit=False)``, where
``task_done`` changes what is stored, on asyncio, trio and threads.
"""

from __future__ import annotations

import asyncio
import queue as stdqueue
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from conftest import drain, run_threads

import persistq
import persistq.sync

# kind -> (async factory, sync factory)
KINDS: dict[str, tuple[Callable[[str], Any], Callable[[str], Any]]] = {
    "file": (lambda p: persistq.Queue(p), lambda p: persistq.sync.Queue(p)),
    "sqlite": (
        lambda p: persistq.SQLiteQueue(p, auto_commit=False),
        lambda p: persistq.sync.SQLiteQueue(p, auto_commit=False),
    ),
    "filo": (
        lambda p: persistq.FILOSQLiteQueue(p, auto_commit=False),
        lambda p: persistq.sync.FILOSQLiteQueue(p, auto_commit=False),
    ),
}
ITEMS = [f"item-{i}" for i in range(12)]


def _order(kind: str, items: list[str]) -> list[str]:
    return items[::-1] if kind == "filo" else list(items)


async def _left_after_reopen(kind: str, path: str) -> list[Any]:
    async with KINDS[kind][0](path) as q:
        left = await drain(q)
        for _ in left:
            await q.task_done()
    return left


@pytest.fixture(params=list(KINDS))
def kind(request: pytest.FixtureRequest) -> str:
    """The queue kinds whose task_done changes what is stored."""
    return str(request.param)


@pytest.mark.anyio
async def test_task_done_from_other_tasks_finishes_each_item_once(qpath: str, kind: str) -> None:
    """task_done in tasks that got nothing (a task group of them) finishes every item once; join returns."""
    async with KINDS[kind][0](qpath) as q:
        await q.put_many(ITEMS)
        got = [await q.get() for _ in ITEMS]
        assert got == _order(kind, ITEMS)
        async with anyio.create_task_group() as tg:
            for _ in ITEMS:
                tg.start_soon(q.task_done)
        assert q.statistics().pending == 0
        assert q.statistics().unfinished_tasks == 0
        with anyio.fail_after(5):
            await q.join()
        with pytest.raises(ValueError, match="too many times"):
            await q.task_done()
    assert await _left_after_reopen(kind, qpath) == []


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_asyncio_gather_of_task_done(qpath: str, kind: str) -> None:
    """await asyncio.gather(*[q.task_done() for _ in items]) works (it raised KeyError on the file queue)."""
    async with KINDS[kind][0](qpath) as q:
        await q.put_many(ITEMS)
        for _ in ITEMS:
            await q.get()
        await asyncio.gather(*[q.task_done() for _ in ITEMS])
        with anyio.fail_after(5):
            await q.join()
        results = await asyncio.gather(q.task_done(), return_exceptions=True)
        assert isinstance(results[0], ValueError)
    assert await _left_after_reopen(kind, qpath) == []


@pytest.mark.anyio
async def test_partial_task_done_from_other_tasks_then_reopen(qpath: str, kind: str) -> None:
    """Four keyless task_done calls finish the four oldest items; exactly the others come back."""
    async with KINDS[kind][0](qpath) as q:
        await q.put_many(ITEMS)
        got = [await q.get() for _ in ITEMS]
        async with anyio.create_task_group() as tg:
            for _ in range(4):
                tg.start_soon(q.task_done)
        assert q.statistics().pending == len(ITEMS) - 4
    assert await _left_after_reopen(kind, qpath) == got[4:]


@pytest.mark.anyio
async def test_own_item_first_then_the_oldest_of_others(qpath: str, kind: str) -> None:
    """A task that holds items finishes its own; a task holding none finishes the oldest handed out."""
    async with KINDS[kind][0](qpath) as q:
        await q.put_many(["a", "b", "c"])
        first = [await q.get(), await q.get()]  # this task holds two
        other: list[Any] = []

        async def getter_then_done() -> None:
            other.append(await q.get())
            await q.task_done()  # its own item, not the older ones this task holds

        async with anyio.create_task_group() as tg:
            tg.start_soon(getter_then_done)
        assert q.statistics().pending == 2
        async with anyio.create_task_group() as tg:
            tg.start_soon(q.task_done)  # holds none: the oldest handed out, first[0]
        assert q.statistics().pending == 1
    assert await _left_after_reopen(kind, qpath) == [first[1]]


@pytest.mark.anyio
async def test_cancelled_task_done_finishes_nothing(qpath: str, kind: str) -> None:
    """A task_done cancelled before it runs finishes no item; the next one finishes the oldest."""
    async with KINDS[kind][0](qpath) as q:
        await q.put_many(["a", "b"])
        got = [await q.get(), await q.get()]
        with anyio.CancelScope() as scope:
            scope.cancel()
            await q.task_done()
        assert scope.cancelled_caught
        assert q.statistics().pending == 2
        await q.task_done()
    assert await _left_after_reopen(kind, qpath) == got[1:]


@pytest.mark.anyio
async def test_task_done_with_nothing_got_is_a_value_error(qpath: str, kind: str) -> None:
    """task_done on a queue whose items were all done (or never got) raises ValueError."""
    async with KINDS[kind][0](qpath) as q:
        if kind != "file":  # the file queue counts puts, as queue.Queue does
            await q.put("x")
            with pytest.raises(ValueError):
                await q.task_done()
        else:
            with pytest.raises(ValueError):
                await q.task_done()
            await q.put("x")
        await q.get()
        await q.task_done()
        with pytest.raises(ValueError):
            await q.task_done()


def test_handoff_to_a_worker_thread(qpath: str, kind: str) -> None:
    """A consumer thread hands items to a worker thread that calls task_done; join returns; all are done."""
    q = KINDS[kind][1](qpath)
    try:
        q.put_many(ITEMS)
        handoff: stdqueue.Queue[Any] = stdqueue.Queue()

        def consumer() -> None:
            for _ in ITEMS:
                handoff.put(q.get(timeout=10))
            handoff.put(None)

        def worker() -> None:
            while handoff.get(timeout=10) is not None:
                q.task_done()

        # join() runs on a thread of its own: run_threads fails if it never returns.
        assert run_threads([consumer, worker, q.join]) == []
        assert q.statistics().pending == 0
        with pytest.raises(ValueError):
            q.task_done()
    finally:
        q.close()
    assert asyncio.run(_left_after_reopen(kind, qpath)) == []


def test_many_threads_calling_task_done_at_once(qpath: str, kind: str) -> None:
    """Eight threads that got nothing call task_done together; each item is finished exactly once."""
    n = 200
    with KINDS[kind][1](qpath) as q:
        q.put_many(range(n))
        for _ in range(n):
            q.get()
        start = threading.Barrier(8)

        def done_some() -> None:
            start.wait()
            for _ in range(n // 8):
                q.task_done()

        assert run_threads([done_some] * 8) == []
        assert q.statistics().pending == 0
        with pytest.raises(ValueError):
            q.task_done()
    assert asyncio.run(_left_after_reopen(kind, qpath)) == []


@pytest.mark.anyio
async def test_failed_finish_gives_the_item_back(qpath: str) -> None:
    """A task_done whose storage call fails (database locked) finishes nothing; the next one finishes it."""
    async with persistq.SQLiteQueue(qpath, auto_commit=False, timeout=0.2) as q:
        await q.put_many(["a", "b"])
        got = [await q.get(), await q.get()]
        locker = sqlite3.connect(f"{qpath}/data.db", isolation_level=None)
        locker.execute("BEGIN IMMEDIATE")
        failures: list[BaseException] = []

        async def done_elsewhere() -> None:
            try:
                await q.task_done()  # this task holds none: it takes the oldest, got[0]
            except persistq.StorageError as exc:
                failures.append(exc)

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(done_elsewhere)
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        assert [type(e) for e in failures] == [persistq.StorageError]
        assert "locked" in str(failures[0])
        assert q.statistics().pending == 2
        assert q.statistics().unfinished_tasks == 2
        async with anyio.create_task_group() as tg:
            tg.start_soon(q.task_done)
        assert q.statistics().pending == 1
    assert await _left_after_reopen("sqlite", qpath) == got[1:]


CRASH_CHILD = textwrap.dedent(
    """
    import os, queue, signal, sys, threading
    import persistq.sync as persistqueue

    kind, path = sys.argv[1], sys.argv[2]
    if kind == "file":
        q = persistqueue.Queue(path)
    else:
        q = persistqueue.SQLiteQueue(path, auto_commit=False)
    q.put_many([f"job-{i}" for i in range(10)])
    handoff = queue.Queue()
    got = [q.get() for _ in range(10)]          # the main thread gets every item
    for item in got[:4]:
        handoff.put(item)

    def worker():
        while True:
            try:
                handoff.get_nowait()
            except queue.Empty:
                return
            q.task_done()                       # a thread that got nothing

    workers = [threading.Thread(target=worker) for _ in range(3)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    print("done", 10 - q.statistics().pending, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)        # no close(): a crash
    """
)


@pytest.mark.parametrize("kind", ["file", "sqlite"])
def test_crash_after_task_done_from_worker_threads(tmp_path: Path, kind: str) -> None:
    """Killed after worker threads task_done 4 of 10 items: exactly the other 6 come back, in order."""
    script = tmp_path / "child.py"
    script.write_text(CRASH_CHILD)
    path = str(tmp_path / "q")
    r = subprocess.run(
        [sys.executable, str(script), kind, path], capture_output=True, text=True, timeout=60, check=False
    )
    assert r.returncode == -signal.SIGKILL, r.stderr
    assert r.stdout == "done 4\n"
    assert asyncio.run(_left_after_reopen(kind, path)) == [f"job-{i}" for i in range(4, 10)]
