"""The async SQLite FIFO/FILO queues: the API, on asyncio and trio."""

from __future__ import annotations

import os
import sqlite3
import stat
from typing import Any

import anyio
import pytest

import persistq
from persistq import serializers

pytestmark = pytest.mark.anyio

SERIALIZERS = [serializers.pickle, serializers.json, serializers.msgpack, serializers.cbor2]


async def test_put_get_roundtrip_in_fifo_order(qpath: str) -> None:
    """Items come out in the order they were put, with their values intact."""
    async with persistq.SQLiteQueue(qpath) as q:
        ids = [await q.put({"n": i}) for i in range(5)]
        assert ids == sorted(ids)
        assert [await q.get() for _ in range(5)] == [{"n": i} for i in range(5)]
        assert await q.empty()


async def test_filo_returns_newest_first(qpath: str) -> None:
    """FILOSQLiteQueue returns the most recently put item first."""
    async with persistq.FILOSQLiteQueue(qpath) as q:
        for i in range(4):
            await q.put(i)
        assert [await q.get() for _ in range(4)] == [3, 2, 1, 0]


@pytest.mark.parametrize("kind", [persistq.SQLiteQueue, persistq.FILOSQLiteQueue])
async def test_reopen_keeps_items_and_order(qpath: str, kind: Any) -> None:
    """Closing and reopening keeps every item, in the kind's order."""
    async with kind(qpath) as q:
        for i in range(10):
            await q.put(i)
        assert await q.get() == (0 if kind is persistq.SQLiteQueue else 9)
    async with kind(qpath) as q:
        assert await q.qsize() == 9
        got = [await q.get() for _ in range(9)]
    assert got == (list(range(1, 10)) if kind is persistq.SQLiteQueue else list(range(8, -1, -1)))


@pytest.mark.parametrize("ser", SERIALIZERS, ids=lambda s: s.NAME)
async def test_every_serializer_roundtrips(qpath: str, ser: Any) -> None:
    """Each built-in serializer stores and returns items unchanged."""
    value = {"text": "héllo\r\n", "n": [1, 2, {"deep": True}], "f": 1.5}
    async with persistq.SQLiteQueue(qpath, serializer=ser) as q:
        await q.put(value)
        assert await q.get() == value


async def test_get_nowait_on_empty_raises_empty_of_every_family(qpath: str) -> None:
    """Empty is raised at once and is also queue.Empty and asyncio.QueueEmpty."""
    import asyncio
    import queue

    async with persistq.SQLiteQueue(qpath) as q:
        for exc in (persistq.Empty, queue.Empty, asyncio.QueueEmpty):
            with pytest.raises(exc):
                await q.get_nowait()
        with pytest.raises(persistq.Empty):
            await q.get(block=False)
        with pytest.raises(persistq.Empty):
            await q.get(timeout=0)


async def test_get_timeout_raises_empty_after_the_timeout(qpath: str) -> None:
    """get(timeout=t) on an empty queue waits about t, then raises Empty."""
    async with persistq.SQLiteQueue(qpath) as q:
        start = anyio.current_time()
        with pytest.raises(persistq.Empty):
            await q.get(timeout=0.2)
        assert anyio.current_time() - start >= 0.19


@pytest.mark.parametrize("bad", [-1, -0.5, float("nan")])
async def test_negative_or_nan_timeout_is_a_value_error(qpath: str, bad: float) -> None:
    """A negative (or NaN) timeout raises ValueError, as queue.Queue does."""
    async with persistq.SQLiteQueue(qpath) as q:
        with pytest.raises(ValueError):
            await q.get(timeout=bad)
        with pytest.raises(ValueError):
            await q.put(1, timeout=bad)
        assert await q.qsize() == 0


async def test_timeout_of_wrong_type_is_a_type_error(qpath: str) -> None:
    """A timeout that is not a number raises TypeError."""
    async with persistq.SQLiteQueue(qpath) as q:
        with pytest.raises(TypeError):
            await q.get(timeout="1")  # type: ignore[arg-type]


async def test_blocked_get_is_woken_by_a_put(qpath: str) -> None:
    """A get waiting on an empty queue returns as soon as another task puts."""
    async with persistq.SQLiteQueue(qpath) as q:
        result: list[Any] = []

        async def getter() -> None:
            result.append(await q.get(timeout=10))

        async with anyio.create_task_group() as tg:
            tg.start_soon(getter)
            await anyio.sleep(0.05)
            assert q.statistics().tasks_waiting_get == 1
            await q.put("x")
        assert result == ["x"]


async def test_maxsize_put_nowait_raises_full(qpath: str) -> None:
    """With maxsize, a put on a full queue raises Full at once without block."""
    import queue

    async with persistq.SQLiteQueue(qpath, maxsize=2) as q:
        await q.put(1)
        await q.put_nowait(2)
        assert await q.full()
        with pytest.raises(persistq.Full):
            await q.put_nowait(3)
        with pytest.raises(queue.Full):
            await q.put(3, timeout=0.05)
        assert await q.qsize() == 2


async def test_maxsize_put_blocks_until_a_get_makes_room(qpath: str) -> None:
    """A put on a full queue waits, and goes in once a get frees a slot."""
    async with persistq.SQLiteQueue(qpath, maxsize=1) as q:
        await q.put("a")
        async with anyio.create_task_group() as tg:
            tg.start_soon(q.put, "b")
            await anyio.sleep(0.05)
            assert q.statistics().tasks_waiting_put == 1
            assert await q.get() == "a"
        assert await q.get_nowait() == "b"


async def test_put_many_larger_than_maxsize_is_rejected(qpath: str) -> None:
    """put_many of more items than maxsize raises ValueError and writes nothing."""
    async with persistq.SQLiteQueue(qpath, maxsize=2) as q:
        with pytest.raises(ValueError):
            await q.put_many([1, 2, 3])
        assert await q.qsize() == 0


async def test_full_is_false_without_maxsize(qpath: str) -> None:
    """full() is always False for an unbounded queue."""
    async with persistq.SQLiteQueue(qpath) as q:
        await q.put(1)
        assert not await q.full()


async def test_put_many_and_get_many_keep_order(qpath: str) -> None:
    """put_many stores all items at once; get_many returns them in order."""
    async with persistq.SQLiteQueue(qpath) as q:
        ids = await q.put_many(range(250))
        assert len(ids) == 250
        assert ids == sorted(ids)
        assert await q.put_many([]) == []
        first = await q.get_many(100)
        rest = await q.get_many(1000)
        assert first + rest == list(range(250))
        with pytest.raises(persistq.Empty):
            await q.get_many(10, block=False)
        with pytest.raises(ValueError):
            await q.get_many(0)


async def test_filo_get_many_returns_newest_first(qpath: str) -> None:
    """get_many on a FILO queue returns the newest items first."""
    async with persistq.FILOSQLiteQueue(qpath) as q:
        await q.put_many(range(5))
        assert await q.get_many(3) == [4, 3, 2]


@pytest.mark.parametrize("kind", [persistq.SQLiteQueue, persistq.FILOSQLiteQueue])
async def test_get_raw_returns_id_data_timestamp(qpath: str, kind: Any) -> None:
    """get(raw=True) returns pqid, data and timestamp, for FIFO and FILO alike."""
    async with kind(qpath) as q:
        item_id = await q.put("v")
        raw = await q.get(raw=True)
        assert raw["pqid"] == item_id
        assert raw["data"] == "v"
        assert isinstance(raw["timestamp"], float)
        assert await q.qsize() == 0


async def test_get_by_id_takes_that_item(qpath: str) -> None:
    """get(id=…) takes exactly the named item (int or raw dict), others stay."""
    async with persistq.SQLiteQueue(qpath) as q:
        a = await q.put("a")
        b = await q.put("b")
        c = await q.put("c")
        assert await q.get(id=b) == "b"
        assert await q.get(id={"pqid": c}) == "c"
        with pytest.raises(persistq.Empty):
            await q.get(id=b)
        with pytest.raises(persistq.Empty):
            await q.get(id=9999)  # never blocks forever on a missing id
        assert await q.get() == "a"
        assert a < b < c


async def test_get_with_bad_id_type_is_a_type_error(qpath: str) -> None:
    """An id that is neither an int nor a raw dict raises TypeError."""
    async with persistq.SQLiteQueue(qpath) as q:
        with pytest.raises(TypeError):
            await q.get(id="1")  # type: ignore[arg-type]


async def test_update_by_raw_item_and_by_id(qpath: str) -> None:
    """update() replaces stored data, by raw dict or by id; errors are typed."""
    async with persistq.SQLiteQueue(qpath) as q:
        i = await q.put("old")
        j = await q.put("other")
        assert await q.update({"pqid": i, "data": "new"}) == i
        assert await q.update("new2", id=j) == j
        with pytest.raises(ValueError, match="Provide an id or raw item"):
            await q.update("x")
        with pytest.raises(persistq.ItemNotFound):
            await q.update("x", id=12345)
        assert await q.get() == "new"
        assert await q.get() == "new2"


async def test_queue_lists_waiting_items_in_order(qpath: str) -> None:
    """queue() lists waiting items as id/data/timestamp dicts in get order."""
    async with persistq.FILOSQLiteQueue(qpath) as q:
        await q.put_many(["a", "b"])
        rows = await q.queue()
        assert [r["data"] for r in rows] == ["b", "a"]
        assert set(rows[0]) == {"id", "data", "timestamp"}


async def test_size_len_and_qsize_agree(qpath: str) -> None:
    """size, len() and qsize() all count the waiting items."""
    async with persistq.SQLiteQueue(qpath) as q:
        await q.put_many([1, 2, 3])
        assert q.size == len(q) == await q.qsize() == 3


async def test_task_done_and_join(qpath: str) -> None:
    """join() returns once every got item is task_done and none is waiting."""
    async with persistq.SQLiteQueue(qpath) as q:
        await q.put_many([1, 2])
        done: list[str] = []

        async def worker() -> None:
            for _ in range(2):
                await q.get()
                await anyio.sleep(0.02)
                await q.task_done()
            done.append("worker")

        async with anyio.create_task_group() as tg:
            tg.start_soon(worker)
            await q.join()
            done.append("join")
        assert done == ["worker", "join"]
        with pytest.raises(ValueError, match="too many times"):
            await q.task_done()


async def test_auto_commit_false_items_come_back_after_reopen(qpath: str) -> None:
    """auto_commit=False: items got but not task_done return, in their old place."""
    async with persistq.SQLiteQueue(qpath, auto_commit=False) as q:
        await q.put_many(["a", "b", "c"])
        assert await q.get() == "a"
        await q.task_done()
        assert await q.get() == "b"
        assert await q.qsize() == 1
        assert q.statistics().pending == 1
    async with persistq.SQLiteQueue(qpath, auto_commit=False) as q:
        assert [await q.get(), await q.get()] == ["b", "c"]
        await q.task_done()
        await q.task_done()
    async with persistq.SQLiteQueue(qpath) as q:
        assert await q.qsize() == 0


async def test_auto_commit_false_filo_keeps_filo_order(qpath: str) -> None:
    """auto_commit=False FILO returns newest first (persist-queue returned FIFO)."""
    async with persistq.FILOSQLiteQueue(qpath, auto_commit=False) as q:
        await q.put_many([1, 2, 3])
        assert await q.get() == 3
        await q.task_done()
        assert await q.get() == 2
    async with persistq.FILOSQLiteQueue(qpath, auto_commit=False) as q:
        assert [await q.get(), await q.get()] == [2, 1]
        await q.task_done()
        await q.task_done()


async def test_auto_commit_false_task_done_finishes_the_callers_own_item(qpath: str) -> None:
    """One task's task_done never finishes an item another task still holds."""
    async with persistq.SQLiteQueue(qpath, auto_commit=False) as q:
        await q.put_many(["slow", "fast"])
        release = anyio.Event()

        async def slow() -> None:
            assert await q.get() == "slow"
            await release.wait()

        async with anyio.create_task_group() as tg:
            tg.start_soon(slow)
            await anyio.sleep(0.05)
            assert await q.get() == "fast"
            await q.task_done()  # must finish "fast", not "slow"
            release.set()
    async with persistq.SQLiteQueue(qpath, auto_commit=False) as q:
        assert await q.get() == "slow"
        await q.task_done()


async def test_auto_commit_false_get_by_id(qpath: str) -> None:
    """auto_commit=False get(id=…) works (persist-queue raised ProgrammingError)."""
    async with persistq.SQLiteQueue(qpath, auto_commit=False) as q:
        await q.put("a")
        b = await q.put("b")
        assert await q.get(id=b) == "b"
        await q.task_done()
        assert await q.get() == "a"
        await q.task_done()


async def test_unencodable_item_raises_serialization_error_and_writes_nothing(qpath: str) -> None:
    """An item the serializer cannot encode raises SerializationError; queue unchanged."""
    async with persistq.SQLiteQueue(qpath, serializer=serializers.json) as q:
        await q.put(1)
        with pytest.raises(persistq.SerializationError):
            await q.put({1, 2})
        with pytest.raises(persistq.SerializationError):
            await q.put_many([2, object()])
        assert await q.qsize() == 1


async def test_undecodable_item_stays_in_the_queue(qpath: str) -> None:
    """Bytes the serializer cannot decode raise SerializationError; the item stays."""
    async with persistq.SQLiteQueue(qpath, name="raw", serializer=serializers.json) as q:
        i = await q.put("ok")
    con = sqlite3.connect(os.path.join(qpath, "data.db"))
    con.execute('UPDATE "queue_raw" SET data=? WHERE _id=?', (b"\xff\xfe not json", i))
    con.commit()
    con.close()
    async with persistq.SQLiteQueue(qpath, name="raw", serializer=serializers.json) as q:
        with pytest.raises(persistq.SerializationError, match=f"item {i}"):
            await q.get()
        assert await q.qsize() == 1


async def test_reopen_with_another_serializer_is_refused(qpath: str) -> None:
    """A queue created with one serializer cannot be opened with another."""
    async with persistq.SQLiteQueue(qpath, serializer=serializers.json) as q:
        await q.put(1)
    q2 = persistq.SQLiteQueue(qpath, serializer=serializers.pickle)
    with pytest.raises(persistq.SerializerMismatch, match="json"):
        await q2.open()
    await q2.close()


@pytest.mark.parametrize(
    "name", ["", "x; DROP TABLE queue_default", "a'b", 'a"b', "a`b", "x" * 65, "é", "a b", 5]
)
def test_invalid_names_are_rejected(qpath: str, name: Any) -> None:
    """Names that could change SQL (or are not str) raise InvalidName (a ValueError)."""
    with pytest.raises(persistq.InvalidName):
        persistq.SQLiteQueue(qpath, name=name)
    with pytest.raises(ValueError):
        persistq.SQLiteQueue(qpath, name=name)


def test_invalid_constructor_arguments_are_typed_errors(qpath: str) -> None:
    """Bad durability, maxsize, timeout, poll_interval or serializer raise at once."""
    with pytest.raises(ValueError):
        persistq.SQLiteQueue(qpath, durability="sometimes")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        persistq.SQLiteQueue(qpath, maxsize="3")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        persistq.SQLiteQueue(qpath, timeout=-1)
    with pytest.raises(ValueError):
        persistq.SQLiteQueue(qpath, poll_interval=0)
    with pytest.raises(TypeError):
        persistq.SQLiteQueue(qpath, serializer=object())


@pytest.mark.parametrize("durability", ["full", "normal", "off"])
async def test_durability_modes_set_sqlite_synchronous(qpath: str, durability: Any) -> None:
    """Each durability mode maps to WAL and the matching synchronous level."""
    async with persistq.SQLiteQueue(qpath, durability=durability) as q:
        await q.put(1)
        conn = q._engine._conn
        assert conn is not None
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        level = conn.execute("PRAGMA synchronous").fetchone()[0]
        assert level == {"off": 0, "normal": 1, "full": 2}[durability]


async def test_names_share_one_database_file(qpath: str) -> None:
    """Queues of different names and kinds share one data.db without mixing items."""
    a = persistq.SQLiteQueue(qpath, name="a")
    fa = persistq.FILOSQLiteQueue(qpath, name="a")
    b = persistq.SQLiteQueue(qpath, name="b")
    async with a, fa, b:
        await a.put("a1")
        await b.put("b1")
        await fa.put("fa1")
        assert [await a.get(), await b.get(), await fa.get()] == ["a1", "b1", "fa1"]


async def test_db_file_name_selects_the_file(qpath: str) -> None:
    """db_file_name stores the queue in that file of the directory."""
    async with persistq.SQLiteQueue(qpath, db_file_name="jobs.sqlite") as q:
        await q.put(1)
    assert os.path.exists(os.path.join(qpath, "jobs.sqlite"))
    with pytest.raises(ValueError):
        persistq.SQLiteQueue(qpath, db_file_name="../escape.db")


async def test_files_are_created_owner_only(qpath: str) -> None:
    """The queue directory and database file are created readable by the owner only."""
    async with persistq.SQLiteQueue(qpath) as q:
        await q.put(1)
    assert stat.S_IMODE(os.stat(qpath).st_mode) & 0o077 == 0
    assert stat.S_IMODE(os.stat(os.path.join(qpath, "data.db")).st_mode) & 0o077 == 0


async def test_path_that_is_a_file_but_not_a_database_is_a_corruption_error(tmp_path: Any) -> None:
    """A queue path naming a regular file that is not SQLite raises CorruptionError; the file is unchanged."""
    f = tmp_path / "file"
    f.write_text("x")
    q = persistq.SQLiteQueue(str(f))
    with pytest.raises(persistq.CorruptionError, match="is a file but not an SQLite database"):
        await q.open()
    await q.close()
    assert f.read_text() == "x"
    assert sorted(os.listdir(tmp_path)) == ["file"]


async def test_path_that_is_neither_file_nor_directory_is_a_storage_error(tmp_path: Any) -> None:
    """A queue path naming a FIFO (neither a directory nor a regular file) raises StorageError."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    q = persistq.SQLiteQueue(str(fifo))
    with pytest.raises(persistq.StorageError, match="neither a directory nor a database file"):
        await q.open()
    await q.close()


async def test_garbage_database_file_is_a_clear_error(qpath: str) -> None:
    """A data.db that is not an SQLite database raises CorruptionError at open."""
    os.makedirs(qpath)
    with open(os.path.join(qpath, "data.db"), "wb") as f:
        f.write(b"this is not a database" * 100)
    q = persistq.SQLiteQueue(qpath)
    with pytest.raises(persistq.CorruptionError):
        await q.open()
    await q.close()


async def test_memory_queue_works(tmp_path: Any) -> None:
    """path=':memory:' gives a working private in-memory queue."""
    async with persistq.SQLiteQueue(":memory:") as q:
        await q.put(1)
        assert await q.get() == 1


async def test_closed_queue_refuses_operations_and_wakes_waiters(qpath: str) -> None:
    """After close(), operations raise QueueClosed, and so do blocked getters."""
    q = persistq.SQLiteQueue(qpath)
    await q.open()
    errors: list[BaseException] = []

    async def getter() -> None:
        try:
            await q.get()
        except persistq.QueueClosed as exc:
            errors.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(getter)
        await anyio.sleep(0.05)
        await q.close()
    assert len(errors) == 1
    with pytest.raises(persistq.QueueClosed):
        await q.put(1)
    await q.close()  # idempotent
    assert q.closed


async def test_shrink_disk_usage_vacuums(qpath: str) -> None:
    """shrink_disk_usage() runs and the queue keeps working afterwards."""
    async with persistq.SQLiteQueue(qpath) as q:
        await q.put_many([b"x" * 10_000] * 50)
        await q.get_many(50)
        await q.shrink_disk_usage()
        await q.put(1)
        assert await q.get() == 1


async def test_statistics_is_a_frozen_snapshot(qpath: str) -> None:
    """statistics() reports maxsize, durability and counts of this object."""
    async with persistq.SQLiteQueue(qpath, maxsize=5, durability="normal") as q:
        await q.put(1)
        await q.get()
        s = q.statistics()
        assert (s.maxsize, s.durability, s.unfinished_tasks) == (5, "normal", 1)
        with pytest.raises(AttributeError):
            s.maxsize = 3  # type: ignore[misc]


async def test_no_lost_wakeup_when_get_and_put_share_a_batch(qpath: str) -> None:
    """A get that finds the queue empty in the same batch as a put still wakes at once."""
    import threading

    from persistq.engines._worker import Job

    async with persistq.SQLiteQueue(qpath, poll_interval=30) as q:
        worker = q._engine._alive_worker()
        for n in range(40):
            gate = threading.Event()
            # Hold the storage thread so the get's claim and the put land in one
            # batch, the claim first: the claim finds nothing, the put succeeds.
            worker.submit(Job(gate.wait, kind="bare"))
            got: list[int] = []

            async def getter(got: list[int] = got) -> None:
                got.append(await q.get(timeout=10))

            with anyio.fail_after(5):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(getter)
                    await anyio.sleep(0.01)
                    tg.start_soon(q.put, n)
                    await anyio.sleep(0.01)
                    gate.set()
            assert got == [n]
