"""The blocking twins in persistq.sync, as persist-queue users call them."""

from __future__ import annotations

import queue
import threading
import time

import pytest

import persistq
import persistq.sync as persistqueue


def test_issue_example_drop_in(qpath: str) -> None:
    """The persist-queue calling convention works unchanged (and thread-safe)."""
    q = persistqueue.SQLiteQueue(qpath, auto_commit=True)
    q.put("a")
    assert q.get() == "a"
    q.close()


def test_put_get_task_done_join_and_counts(qpath: str) -> None:
    """The stdlib-style API works: put, get, task_done, join, qsize, len, size."""
    with persistqueue.SQLiteQueue(qpath) as q:
        ids = [q.put(i) for i in range(3)]
        assert ids == sorted(ids)
        assert q.qsize() == len(q) == q.size == 3
        assert not q.empty()
        assert not q.full()
        for i in range(3):
            assert q.get() == i
            q.task_done()
        q.join()
        assert q.empty()


@pytest.mark.parametrize("kind", ["SQLiteQueue", "UniqueQ", "PriorityQueue", "SQLiteAckQueue"])
def test_total_and_serializer_read_the_real_state(kind: str, qpath: str) -> None:
    """``total`` and ``_serializer``, which code written for persist-queue reads, follow the queue."""
    with getattr(persistqueue, kind)(qpath, serializer=persistqueue.serializers.json) as q:
        assert q._serializer is persistqueue.serializers.json
        assert q.total == 0
        q.put({"a": 1})
        q.put({"a": 2})
        assert q.total == 2
        q.get()
        assert q.total == q.qsize() == 1


def test_pdict_serializer_attribute(qpath: str) -> None:
    """A ``PDict``'s ``_serializer`` is the serializer it stores values with (pickle by default)."""
    with persistqueue.PDict(qpath, "pd") as d:
        assert d._serializer is persistqueue.serializers.pickle


@pytest.mark.anyio
async def test_async_total_and_serializer(qpath: str) -> None:
    """The async queue's ``total`` counts waiting items and ``_serializer`` is its serializer."""
    async with persistq.SQLiteQueue(qpath) as q:
        await q.put(1)
        await q.put(2)
        await q.get()
        assert q.total == 1
        assert q._serializer is persistq.serializers.pickle


def test_empty_and_full_are_stdlib_exceptions(qpath: str) -> None:
    """get_nowait/put_nowait raise errors that are queue.Empty / queue.Full."""
    with persistqueue.SQLiteQueue(qpath, maxsize=1) as q:
        with pytest.raises(queue.Empty):
            q.get_nowait()
        q.put_nowait(1)
        with pytest.raises(queue.Full):
            q.put_nowait(2)
        with pytest.raises(queue.Full):
            q.put(2, timeout=0.05)


def test_blocking_get_is_woken_by_another_thread(qpath: str) -> None:
    """A thread blocked in get() wakes when another thread puts."""
    with persistqueue.SQLiteQueue(qpath) as q:
        out: list[object] = []
        t = threading.Thread(target=lambda: out.append(q.get(timeout=10)))
        t.start()
        time.sleep(0.05)
        start = time.monotonic()
        q.put("hello")
        t.join(10)
        assert out == ["hello"]
        assert time.monotonic() - start < 1.0


def test_get_timeout(qpath: str) -> None:
    """get(timeout=…) waits about that long, then raises Empty."""
    with persistqueue.SQLiteQueue(qpath) as q:
        start = time.monotonic()
        with pytest.raises(persistqueue.Empty):
            q.get(timeout=0.2)
        assert time.monotonic() - start >= 0.19


def test_filo_raw_get_keeps_the_item_data(qpath: str) -> None:
    """FILO get(raw=True) returns the item (persist-queue lost it with IndexError)."""
    with persistqueue.FILOSQLiteQueue(qpath) as q:
        q.put("a")
        q.put("b")
        raw = q.get(raw=True)
        assert raw["data"] == "b"
        assert "timestamp" in raw
        assert q.get() == "a"


def test_multithreading_argument_is_accepted(qpath: str) -> None:
    """multithreading=True (persist-queue's flag) is accepted and changes nothing."""
    with persistqueue.SQLiteQueue(qpath, multithreading=True, timeout=5, db_file_name="x.db") as q:
        q.put(1)
        assert q.get() == 1


def test_put_many_get_many_update_queue(qpath: str) -> None:
    """The batch and inspection methods forward to the async queue."""
    with persistqueue.SQLiteQueue(qpath) as q:
        ids = q.put_many(["a", "b", "c"])
        q.update("B", id=ids[1])
        assert [r["data"] for r in q.queue()] == ["a", "B", "c"]
        assert q.get_many(10) == ["a", "B", "c"]
        q.shrink_disk_usage()
        assert q.statistics().unfinished_tasks == 3


def test_auto_commit_false_task_done_per_thread(qpath: str) -> None:
    """A thread's task_done finishes its own item, not another thread's."""
    with persistqueue.SQLiteQueue(qpath, auto_commit=False) as q:
        q.put_many(["held", "done"])
        got = threading.Event()
        release = threading.Event()

        def holder() -> None:
            assert q.get() == "held"
            got.set()
            release.wait(10)

        t = threading.Thread(target=holder)
        t.start()
        got.wait(10)
        assert q.get() == "done"
        q.task_done()
        release.set()
        t.join(10)
    with persistqueue.SQLiteQueue(qpath, auto_commit=False) as q:
        assert q.get() == "held"
        q.task_done()


def test_operations_after_close_raise_queue_closed(qpath: str) -> None:
    """A closed sync queue raises QueueClosed; close() is idempotent."""
    q = persistqueue.SQLiteQueue(qpath)
    q.close()
    q.close()
    assert q.closed
    with pytest.raises(persistqueue.QueueClosed):
        q.put(1)


def test_bad_path_fails_in_the_constructor(tmp_path: object) -> None:
    """The sync constructor opens the database, so a bad path fails at once."""
    import pathlib

    f = pathlib.Path(str(tmp_path)) / "afile"
    f.write_text("x")
    with pytest.raises(persistqueue.StorageError):
        persistqueue.SQLiteQueue(str(f))


def test_portal_thread_stops_when_last_queue_closes(qpath: str) -> None:
    """The portal thread lives from the first open to the last close."""
    a = persistqueue.SQLiteQueue(qpath, name="a")
    b = persistqueue.SQLiteQueue(qpath, name="b")
    assert any(t.name == "persistq-portal" for t in threading.enumerate())
    a.close()
    assert any(t.name == "persistq-portal" for t in threading.enumerate())
    b.close()
    time.sleep(0.05)
    assert not any(t.name == "persistq-portal" for t in threading.enumerate())


def test_get_many_items_belong_to_the_calling_thread(qpath: str) -> None:
    """Items a thread takes with get_many are finished by that thread's task_done."""
    with persistqueue.SQLiteQueue(qpath, auto_commit=False) as q:
        q.put_many(["held", "mine1", "mine2"])
        got = threading.Event()
        release = threading.Event()

        def holder() -> None:
            assert q.get() == "held"
            got.set()
            release.wait(10)

        t = threading.Thread(target=holder)
        t.start()
        got.wait(10)
        assert q.get_many(2) == ["mine1", "mine2"]
        q.task_done()
        q.task_done()
        release.set()
        t.join(10)
    with persistqueue.SQLiteQueue(qpath, auto_commit=False) as q:
        assert q.get_many(10) == ["held"]
        q.task_done()


def test_task_done_from_another_thread_wakes_join(qpath: str) -> None:
    """task_done on the caller's thread (no hand-off) still wakes a blocked join()."""
    with persistqueue.SQLiteQueue(qpath) as q:
        q.put_many([1, 2])
        assert q.get() == 1
        assert q.get() == 2
        joined = threading.Event()
        t = threading.Thread(target=lambda: (q.join(), joined.set()))
        t.start()
        time.sleep(0.05)
        q.task_done()
        assert not joined.wait(0.1)
        q.task_done()
        assert joined.wait(5)
        t.join(5)
        with pytest.raises(ValueError, match="too many times"):
            q.task_done()


@pytest.mark.parametrize("raw", [False, True])
def test_sync_get_of_undecodable_item_leaves_it_in_place(qpath: str, raw: bool) -> None:
    """A sync get (the portal's fast path) of bytes that cannot be decoded raises; the item stays first."""
    import os
    import sqlite3

    with persistqueue.SQLiteQueue(qpath, serializer=persistq.serializers.json) as q:
        bad = q.put("bad")
        q.put("good")
    con = sqlite3.connect(os.path.join(qpath, "data.db"))
    con.execute('UPDATE "queue_default" SET data=? WHERE _id=?', (b"\xff not json", bad))
    con.commit()
    con.close()
    with persistqueue.SQLiteQueue(qpath, serializer=persistq.serializers.json) as q:
        for _ in range(2):
            with pytest.raises(persistq.SerializationError, match=f"item {bad}"):
                q.get(raw=raw)
            assert q.qsize() == 2
        assert q.get(id=bad + 1) == "good"


def test_lone_sync_calls_start_no_task_on_the_portal(qpath: str) -> None:
    """Sequential sync puts and gets finish in the portal callback that received them (no asyncio task)."""
    import asyncio

    from persistq.sync import _portal

    created: list[object] = []
    with persistqueue.SQLiteQueue(qpath) as q:
        portal = _portal._portal
        assert portal is not None
        factory_set = threading.Event()

        def install() -> None:
            def factory(loop: asyncio.AbstractEventLoop, coro: object, **kw: object) -> asyncio.Task[object]:
                created.append(coro)
                return asyncio.Task(coro, loop=loop, **kw)  # type: ignore[arg-type]

            portal.loop.set_task_factory(factory)  # type: ignore[arg-type]
            factory_set.set()

        portal.loop.call_soon_threadsafe(install)
        assert factory_set.wait(10)
        for i in range(50):
            assert q.put(i) > 0
        assert [q.get() for _ in range(50)] == list(range(50))
        with pytest.raises(persistq.Empty):
            q.get(block=False)
        portal.loop.call_soon_threadsafe(portal.loop.set_task_factory, None)
    assert created == []
