"""SQLite queues shared by several real processes (DESIGN §3, "Multi-process").

Children are started with the ``spawn`` method and run code from
``tests/_children.py``; they report through JSON result files.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import pytest

import persistq
import persistq.sync

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
if TESTS_DIR not in sys.path:  # spawn children get the parent's sys.path
    sys.path.insert(0, TESTS_DIR)

import _children  # noqa: E402

CTX = multiprocessing.get_context("spawn")
JOIN_TIMEOUT = 60.0


def _start(target: Any, *args: Any) -> Any:
    p = CTX.Process(target=target, args=args, daemon=True)
    p.start()
    return p


def _join_all(procs: list[Any], timeout: float = JOIN_TIMEOUT) -> None:
    """Join every process; kill the stragglers and fail if one hangs or fails."""
    deadline = time.monotonic() + timeout
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
    hung = [p for p in procs if p.is_alive()]
    for p in hung:
        p.kill()
        p.join()
    assert not hung, f"child processes hung: {hung}"
    codes = [p.exitcode for p in procs]
    assert codes == [0] * len(procs), f"child exit codes: {codes}"


def _read(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _number(item: str) -> int:
    return int(item.split(":")[1])


def test_two_producers_two_consumers_each_item_exactly_once(qpath: str, tmp_path: Path) -> None:
    """Two producer and two consumer processes (sync and async APIs) deliver 2,000 items exactly once."""
    n = 1000
    barrier = CTX.Barrier(4)
    results = [tmp_path / "c0.json", tmp_path / "c1.json"]
    with persistq.sync.SQLiteQueue(qpath):
        pass  # create the database before the children race to it
    consumers = [
        _start(_children.consume, qpath, "sync", str(results[0]), barrier),
        _start(_children.consume, qpath, "trio", str(results[1]), barrier),
    ]
    producers = [
        _start(_children.produce, qpath, "asyncio", "a", n, barrier),
        _start(_children.produce, qpath, "sync", "b", n, barrier),
    ]
    try:
        _join_all(producers)
        with persistq.sync.SQLiteQueue(qpath) as q:
            q.put(None)
            q.put(None)
        _join_all(consumers)
    finally:
        _join_all([*producers, *consumers], timeout=5)

    got = [_read(r) for r in results]
    everything = got[0] + got[1]
    duplicates = [item for item, k in Counter(everything).items() if k > 1]
    assert duplicates == []
    expected = {f"{tag}:{i}" for tag in "ab" for i in range(n)}
    assert set(everything) == expected
    assert len(everything) == 2 * n
    assert all(got), "each consumer should have received items"
    # One consumer's successive claims take ever-larger ids: per producer, FIFO.
    for items in got:
        for tag in "ab":
            numbers = [_number(i) for i in items if i.startswith(tag + ":")]
            assert numbers == sorted(numbers)
    with persistq.sync.SQLiteQueue(qpath) as q:
        assert q.qsize() == 0


@pytest.mark.parametrize("kind", ["sync", "asyncio", "trio"])
def test_blocked_get_is_woken_by_a_put_from_another_process(kind: str, qpath: str, tmp_path: Path) -> None:
    """A get blocked on an empty queue in another process returns well under 1 s after a put."""
    rounds = 3
    ready = CTX.Event()
    result = tmp_path / "wake.json"
    with persistq.sync.SQLiteQueue(qpath) as q:
        p = _start(_children.wait_and_get, qpath, kind, rounds, ready, str(result))
        try:
            assert ready.wait(JOIN_TIMEOUT), "the consumer process did not start"
            put_done: list[float] = []
            for i in range(rounds):
                time.sleep(0.4)  # the consumer is now blocked in get()
                q.put(i)
                put_done.append(time.time())
        finally:
            _join_all([p])
    got = _read(result)
    assert [item for item, _ in got] == list(range(rounds))
    latencies = [t_get - t_put for (_, t_get), t_put in zip(got, put_done, strict=True)]
    print(
        f"cross-process wake-up latency ({kind}): "
        + ", ".join(f"{lat * 1000:.1f} ms" for lat in latencies)
        + f"; median {statistics.median(latencies) * 1000:.1f} ms"
    )
    assert max(latencies) < 1.0, latencies


@pytest.mark.parametrize("kind", ["sync", "asyncio", "trio"])
def test_items_of_a_killed_consumer_come_back_in_place(kind: str, qpath: str, tmp_path: Path) -> None:
    """auto_commit=False: items a SIGKILLed process got but did not task_done return in their old place."""
    items = [f"item:{i}" for i in range(10)]
    with persistq.sync.SQLiteQueue(qpath, auto_commit=False) as q:
        for item in items:
            q.put(item)
    ready = CTX.Event()
    result = tmp_path / "got.json"
    p = _start(_children.get_and_hang, qpath, kind, 5, 2, ready, str(result))
    try:
        assert ready.wait(JOIN_TIMEOUT), "the consumer process did not get its items"
        assert _read(result) == items[:5]
        # While the consumer lives, its items are its own: another opener does not take them.
        with persistq.sync.SQLiteQueue(qpath, auto_commit=False) as q:
            assert q.qsize() == 5
            assert q.get_nowait() == items[5]
        os.kill(p.pid, signal.SIGKILL)
        p.join(JOIN_TIMEOUT)
        assert p.exitcode == -signal.SIGKILL
    finally:
        if p.is_alive():
            p.kill()
            p.join()
    with persistq.sync.SQLiteQueue(qpath, auto_commit=False) as q:
        # items 0-1 were done (gone for good); 2-4 come back before 5-9; item 5 was
        # got (not done) by the queue closed above, so it is back as well.
        assert q.qsize() == 8
        assert [q.get_nowait() for _ in range(8)] == items[2:]
        with pytest.raises(persistq.Empty):
            q.get_nowait()
        for _ in range(8):
            q.task_done()
    with persistq.sync.SQLiteQueue(qpath) as q:
        assert q.qsize() == 0


@pytest.mark.parametrize("consumer_kinds", [("sync", "asyncio"), ("sync", "trio")], ids=["asyncio", "trio"])
def test_filo_queue_drained_by_two_processes_without_duplicates(
    consumer_kinds: tuple[str, str], qpath: str, tmp_path: Path
) -> None:
    """Two processes draining one FILOSQLiteQueue receive every item once, each newest first."""
    n = 600
    with persistq.sync.FILOSQLiteQueue(qpath) as q:
        q.put_many(range(n))
    barrier = CTX.Barrier(2)
    results = [tmp_path / "d0.json", tmp_path / "d1.json"]
    procs = [
        _start(_children.drain, qpath, kind, True, barrier, str(result))
        for kind, result in zip(consumer_kinds, results, strict=True)
    ]
    _join_all(procs)
    got = [_read(r) for r in results]
    everything = got[0] + got[1]
    assert sorted(everything) == list(range(n))  # no duplicate, no loss
    for items in got:
        assert items == sorted(items, reverse=True)
    with persistq.sync.FILOSQLiteQueue(qpath) as q:
        assert q.qsize() == 0


def test_sync_qsize_reflects_puts_and_gets_of_another_process(qpath: str, tmp_path: Path) -> None:
    """qsize(), empty() and len() of an open sync queue count items put and got by another process."""
    result = tmp_path / "got.json"
    with persistq.sync.SQLiteQueue(qpath) as q:
        assert q.qsize() == 0
        assert q.empty()
        _join_all([_start(_children.put_items, qpath, list(range(7)))])
        assert q.qsize() == 7
        assert len(q) == 7
        assert q.size == 7
        assert not q.empty()
        _join_all([_start(_children.get_items, qpath, 3, str(result))])
        assert _read(result) == [0, 1, 2]
        assert q.qsize() == 4
        assert q.get() == 3
        _join_all([_start(_children.get_items, qpath, 3, str(result))])
        assert _read(result) == [4, 5, 6]
        assert q.qsize() == 0
        assert q.empty()


@pytest.mark.anyio
async def test_async_qsize_reflects_puts_and_gets_of_another_process(qpath: str, tmp_path: Path) -> None:
    """await qsize() of an open async queue counts items put and got by another process."""
    result = tmp_path / "got.json"

    async def run_child(target: Any, *args: Any) -> None:
        p = _start(target, *args)
        await anyio.to_thread.run_sync(_join_all, [p])

    async with persistq.SQLiteQueue(qpath) as q:
        assert await q.qsize() == 0
        await run_child(_children.put_items, qpath, ["x", "y", "z", "w"])
        assert await q.qsize() == 4
        assert not await q.empty()
        await run_child(_children.get_items, qpath, 2, str(result))
        assert _read(result) == ["x", "y"]
        assert await q.qsize() == 2
        assert await q.get() == "z"
        assert await q.qsize() == 1
        await run_child(_children.get_items, qpath, 1, str(result))
        assert _read(result) == ["w"]
        assert await q.empty()


def test_processes_opening_a_new_queue_at_once_all_succeed(tmp_path: Path) -> None:
    """8 processes opening one fresh queue at the same moment all open it (the WAL switch waits its turn)."""
    children, rounds = 8, 25
    barrier = CTX.Barrier(children)
    results = [tmp_path / f"r{i}.json" for i in range(children)]
    procs = [_start(_children.open_fresh_queues, str(tmp_path), rounds, barrier, str(res)) for res in results]
    _join_all(procs, timeout=120)
    assert [e for res in results for e in _read(res)] == []
    for r in range(rounds):
        with persistq.sync.SQLiteQueue(str(tmp_path / f"round{r}")) as q:
            assert q.qsize() == children
