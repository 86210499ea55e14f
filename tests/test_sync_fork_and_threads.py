"""persistq.sync across fork(), many threads, foreign event loops, and its portal thread."""

from __future__ import annotations

import gc
import os
import signal
import threading
import time
from collections import Counter
from typing import Any

import pytest

import persistq
import persistq.sync
from persistq.sync import _portal

needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork() is not available")
# Python >= 3.12 warns when a process with threads forks; forking one is the point here.
fork_with_threads = pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")


def _fork(child: Any) -> int:
    """Fork; in the child run ``child()`` and leave with ``os._exit`` (0 on success, 1 on error)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            child()
            code = 0
        except BaseException:  # noqa: BLE001 - the exit code reports it
            import traceback

            traceback.print_exc()
        finally:
            os._exit(code)
    return pid


def _wait_child(pid: int, timeout: float = 30.0) -> int:
    """Wait for a forked child; kill it and fail if it hangs. Return its exit code."""
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung")
        time.sleep(0.01)


@needs_fork
@fork_with_threads
def test_queue_opened_in_parent_works_in_forked_child(qpath: str) -> None:
    """A sync queue opened before fork() works in the child; the parent sees the child's items."""
    with persistq.sync.SQLiteQueue(qpath) as q:
        q.put("from parent")
        assert q.qsize() == 1

        def child() -> None:
            assert q.qsize() == 1
            for i in range(5):
                q.put(f"from child {i}")
            assert q.qsize() == 6
            assert q.get() == "from parent"
            q.close()

        assert _wait_child(_fork(child)) == 0
        # The parent's queue (its portal and storage threads) is untouched by the child.
        assert q.qsize() == 5
        assert [q.get_nowait() for _ in range(5)] == [f"from child {i}" for i in range(5)]
        q.put("parent still works")
        assert q.get() == "parent still works"


@needs_fork
@fork_with_threads
def test_new_queue_opened_in_forked_child_works(qpath: str, tmp_path: Any) -> None:
    """A sync queue opened in a forked child (parent's portal running) works; the parent sees its items."""
    other = str(tmp_path / "other")
    with persistq.sync.SQLiteQueue(qpath) as q:
        q.put("parent")

        def child() -> None:
            with persistq.sync.SQLiteQueue(qpath) as cq:
                assert cq.get(timeout=5) == "parent"
                cq.put_many(["c1", "c2"])
            with persistq.sync.FILOSQLiteQueue(other) as fq:
                fq.put_many([1, 2, 3])
                assert fq.get() == 3

        assert _wait_child(_fork(child)) == 0
        assert [q.get_nowait() for _ in range(q.qsize())] == ["c1", "c2"]
    with persistq.sync.FILOSQLiteQueue(other) as fq:
        assert [fq.get_nowait() for _ in range(fq.qsize())] == [2, 1]


def test_sixteen_threads_share_one_sync_queue(qpath: str) -> None:
    """8 producer threads x 500 items and 8 consumer threads on one sync queue: each item got once."""
    producers, per_producer, consumers = 8, 500, 8
    errors: list[BaseException] = []
    received: list[list[Any]] = [[] for _ in range(consumers)]

    with persistq.sync.SQLiteQueue(qpath) as q:

        def produce(p: int) -> None:
            try:
                for i in range(per_producer):
                    q.put((p, i))
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                errors.append(exc)

        def consume(c: int) -> None:
            try:
                while (item := q.get(timeout=60)) is not None:
                    received[c].append(item)
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                errors.append(exc)

        consumer_threads = [threading.Thread(target=consume, args=(c,)) for c in range(consumers)]
        producer_threads = [threading.Thread(target=produce, args=(p,)) for p in range(producers)]
        for t in consumer_threads + producer_threads:
            t.start()
        for t in producer_threads:
            t.join(90)
        for _ in range(consumers):
            q.put(None)
        for t in consumer_threads:
            t.join(90)
        assert not any(t.is_alive() for t in consumer_threads + producer_threads)
        assert errors == []
        assert q.qsize() == 0

    everything = [item for items in received for item in items]
    assert [item for item, k in Counter(everything).items() if k > 1] == []
    assert sorted(everything) == [(p, i) for p in range(producers) for i in range(per_producer)]
    # Within one consumer, each producer's items come in the order they were put.
    for items in received:
        for p in range(producers):
            numbers = [i for pp, i in items if pp == p]
            assert numbers == sorted(numbers)


@pytest.mark.anyio
async def test_sync_queue_works_inside_a_running_event_loop(qpath: str) -> None:
    """Blocking calls of a sync queue work from a coroutine (they block that loop, as documented)."""
    with persistq.sync.SQLiteQueue(qpath) as q:
        q.put({"a": 1})
        q.put_many([2, 3])
        assert q.qsize() == 3
        assert q.get() == {"a": 1}
        assert q.get(timeout=1) == 2
        assert q.get_nowait() == 3
        with pytest.raises(persistq.Empty):
            q.get(timeout=0.05)
        assert q.empty()


def test_sync_call_from_the_portal_thread_raises_portal_error(qpath: str) -> None:
    """A blocking sync call made on the portal's loop thread raises PortalError; the queue stays usable."""
    outcome: list[BaseException | int] = []
    done = threading.Event()
    with persistq.sync.SQLiteQueue(qpath) as q:
        q.put("x")
        portal = _portal._portal
        assert portal is not None

        def on_portal_thread() -> None:
            try:
                outcome.append(q.qsize())
            except BaseException as exc:  # noqa: BLE001 - recorded for the test
                outcome.append(exc)
            finally:
                done.set()

        portal.loop.call_soon_threadsafe(on_portal_thread)
        assert done.wait(10)
        assert len(outcome) == 1
        assert isinstance(outcome[0], persistq.PortalError)
        assert q.qsize() == 1
        assert q.get() == "x"


def test_unclosed_sync_queue_warns_when_collected(qpath: str) -> None:
    """A sync queue dropped unclosed emits ResourceWarning, releases its portal lease, keeps its items."""
    q = persistq.sync.SQLiteQueue(qpath)
    q.put("kept")
    # The warning comes from __del__, on ``del`` or at the latest on collection.
    with pytest.warns(ResourceWarning, match="not closed"):  # noqa: PT031
        del q
        gc.collect()
    assert _portal._leases == 0
    with persistq.sync.SQLiteQueue(qpath) as q2:
        assert q2.get_nowait() == "kept"


@pytest.mark.anyio
async def test_unclosed_async_queue_warns_when_collected(qpath: str) -> None:
    """An opened async queue dropped without close() emits ResourceWarning and keeps its items."""
    q = persistq.SQLiteQueue(qpath)
    await q.open()
    await q.put("kept")
    # The warning comes from __del__, on ``del`` or at the latest on collection.
    with pytest.warns(ResourceWarning, match="not closed"):  # noqa: PT031
        del q
        gc.collect()
    async with persistq.SQLiteQueue(qpath) as q2:
        assert await q2.get_nowait() == "kept"
