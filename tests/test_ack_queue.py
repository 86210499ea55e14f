"""The ack queues: ack/nack/ack_failed, leases, attempts, dead letters, counts."""

from __future__ import annotations

import contextlib
import os
import sqlite3

import anyio
import pytest

import persistq
import persistq.sync
from persistq import AckStatus

pytestmark = pytest.mark.anyio


async def test_get_ack_lifecycle_and_counts(qpath: str) -> None:
    """get marks an item in flight, ack finishes it; counts come from the database."""
    async with persistq.SQLiteAckQueue(qpath) as q:
        await q.put_many(["a", "b", "c"])
        assert await q.qsize() == 3
        a = await q.get()
        assert a == "a"
        assert (await q.unack_count(), await q.qsize(), await q.active_size()) == (1, 2, 3)
        assert await q.ack(a) > 0
        assert (await q.acked_count(), await q.unack_count(), await q.active_size()) == (1, 0, 2)
        counts = await q.counts()
        assert counts[AckStatus.acked] == 1
        assert counts[AckStatus.inited] == 2


async def test_ack_accepts_an_equal_copy_raw_dict_or_id(qpath: str) -> None:
    """ack works with any object equal to a delivered item, a raw dict, or an id."""
    async with persistq.SQLiteAckQueue(qpath) as q:
        await q.put_many([{"k": [1, 2]}, {"k": 3}, {"k": 4}])
        await q.get()
        raw = await q.get(raw=True)
        third = await q.get()
        await q.ack({"k": [1, 2]})  # an equal copy, not the same object
        await q.ack(raw)
        await q.ack(id=(await q.queue())[2]["id"])
        assert await q.acked_count() == 3
        assert third == {"k": 4}


async def test_ack_errors_are_typed_never_silent(qpath: str) -> None:
    """Unknown items or ids raise ItemNotFound; item and id together raise ValueError."""
    async with persistq.SQLiteAckQueue(qpath) as q:
        await q.put("x")
        with pytest.raises(persistq.ItemNotFound):
            await q.ack("never delivered")
        with pytest.raises(persistq.ItemNotFound):
            await q.ack(id=999)
        with pytest.raises(ValueError, match="not both"):
            await q.ack("x", id=1)
        with pytest.raises(ValueError, match="Specify an id or an item"):
            await q.ack()


async def test_nack_gives_the_item_back_without_inflating_counts(qpath: str) -> None:
    """nack returns an in-flight item to ready; nack of a waiting one changes nothing."""
    async with persistq.SQLiteAckQueue(qpath) as q:
        await q.put_many(["a", "b"])
        a = await q.get()
        await q.nack(a)
        assert await q.ready_count() == 1
        assert await q.qsize() == 2
        b_id = (await q.queue())[1]["id"]
        await q.nack(id=b_id)  # not in flight: no change
        assert await q.qsize() == 2
        assert await q.get() == "a"  # given back in its place


async def test_nack_of_acked_item_is_refused(qpath: str) -> None:
    """nack of an acked item raises ItemNotFound instead of resurrecting it."""
    async with persistq.SQLiteAckQueue(qpath) as q:
        i = await q.put("a")
        await q.ack(await q.get())
        with pytest.raises(persistq.ItemNotFound):
            await q.nack(id=i)


async def test_lease_expiry_makes_the_item_ready_again(qpath: str) -> None:
    """An item in flight longer than visibility_timeout is delivered again."""
    async with persistq.SQLiteAckQueue(qpath, visibility_timeout=0.2) as q:
        await q.put("job")
        assert await q.get() == "job"
        with pytest.raises(persistq.Empty):
            await q.get(block=False)
        start = anyio.current_time()
        assert await q.get(timeout=5) == "job"
        assert anyio.current_time() - start >= 0.1
        rows = await q.queue()
        assert rows[0]["attempts"] == 2


async def test_per_get_visibility_timeout_and_extend(qpath: str) -> None:
    """get(visibility_timeout=…) overrides the default; extend() prolongs a lease."""
    async with persistq.SQLiteAckQueue(qpath) as q:
        await q.put("job")
        item = await q.get(visibility_timeout=0.2)
        await q.extend(item, 30)
        await anyio.sleep(0.3)
        with pytest.raises(persistq.Empty):
            await q.get(block=False)
        await q.ack(item)
        with pytest.raises(persistq.ItemNotFound):
            await q.extend(12345, 1)


async def test_max_attempts_moves_item_to_dead_letters(qpath: str) -> None:
    """After max_attempts deliveries without an ack, the item fails instead of looping."""
    async with persistq.SQLiteAckQueue(qpath, max_attempts=2) as q:
        await q.put("poison")
        await q.nack(await q.get())
        await q.nack(await q.get())
        with pytest.raises(persistq.Empty):
            await q.get(block=False)
        assert await q.ack_failed_count() == 1
        dead = await q.failed()
        assert dead[0]["data"] == "poison"
        assert dead[0]["attempts"] == 2
        assert await q.requeue_failed() == 1
        assert await q.get() == "poison"


async def test_expired_lease_counts_toward_max_attempts(qpath: str) -> None:
    """A lease that expires max_attempts times sends the item to ack_failed."""
    async with persistq.SQLiteAckQueue(qpath, visibility_timeout=0.05, max_attempts=1) as q:
        await q.put("x")
        await q.get()
        await anyio.sleep(0.1)
        with pytest.raises(persistq.Empty):
            await q.get(timeout=0.1)
        assert await q.ack_failed_count() == 1


async def test_nack_with_delay(qpath: str) -> None:
    """nack(delay=…) makes the item ready only after the delay."""
    async with persistq.SQLiteAckQueue(qpath) as q:
        await q.put("later")
        await q.nack(await q.get(), delay=0.3)
        assert (await q.counts())[AckStatus.delayed] == 1
        with pytest.raises(persistq.Empty):
            await q.get(block=False)
        start = anyio.current_time()
        assert await q.get(timeout=5) == "later"
        assert anyio.current_time() - start >= 0.2


async def test_ack_failed_and_clear_acked_data(qpath: str) -> None:
    """ack_failed keeps the row as a dead letter; clear_acked_data trims acked rows."""
    async with persistq.SQLiteAckQueue(qpath, max_acked_length=10_000) as q:
        await q.put_many(range(30))
        for _ in range(29):
            await q.ack(await q.get())
        await q.ack_failed(await q.get())
        assert await q.clear_acked_data(keep_latest=10) == 19
        assert await q.acked_count() == 10
        assert await q.clear_acked_data(max_delete=None, keep_latest=0, clear_ack_failed=True) == 11
        assert await q.active_size() == 0


async def test_acked_rows_are_bounded_by_max_acked_length(qpath: str) -> None:
    """Acked rows beyond max_acked_length are deleted automatically."""
    async with persistq.SQLiteAckQueue(qpath, max_acked_length=5) as q:
        await q.put_many(range(20))
        await q.ack_many(await q.get_many(20))
        assert await q.acked_count() == 5


async def test_resume_unack_tasks_and_auto_resume_of_own_dead_owner(qpath: str) -> None:
    """resume_unack_tasks gives in-flight items back; close gives back held items."""
    async with persistq.SQLiteAckQueue(qpath) as q:
        await q.put_many(["a", "b"])
        await q.get()
        assert await q.resume_unack_tasks() == 1
        assert await q.ready_count() == 1
        await q.get()
    async with persistq.SQLiteAckQueue(qpath) as q:  # close gave "a" back
        assert await q.unack_count() == 0
        assert await q.get() == "a"


async def test_get_by_id_and_next_in_order(qpath: str) -> None:
    """get(id=…) and get(id=…, next_in_order=True) work, wrapping around."""
    async with persistq.SQLiteAckQueue(qpath) as q:
        ids = await q.put_many(["a", "b", "c"])
        assert await q.get(id=ids[1]) == "b"
        assert await q.get(id=ids[1], next_in_order=True) == "c"
        assert await q.get(id=ids[2], next_in_order=True) == "a"  # wraps around
        with pytest.raises(persistq.Empty):
            await q.get(id=ids[0])
        with pytest.raises(ValueError, match="requires the preceding 'id'"):
            await q.get(next_in_order=True)


async def test_filo_ack_queue_delivers_newest_first(qpath: str) -> None:
    """FILOSQLiteAckQueue delivers the newest ready item first."""
    async with persistq.FILOSQLiteAckQueue(qpath) as q:
        await q.put_many([1, 2, 3])
        assert [await q.get() for _ in range(3)] == [3, 2, 1]


async def test_unique_ack_queue_refuses_remembered_duplicates(qpath: str) -> None:
    """UniqueAckQ ignores an item equal to a waiting, in-flight or acked one, until clear_acked_data."""
    async with persistq.UniqueAckQ(qpath) as q:
        assert await q.put({"a": 1, "b": {"c": 2, "d": 3}}) is not None
        assert await q.put({"b": {"d": 3, "c": 2}, "a": 1}) is None
        item = await q.get()
        assert await q.put(item) is None  # in flight
        await q.ack(item)
        assert await q.put(item) is None  # acked: persist-queue's UNIQUE (data) refuses it too
        await q.clear_acked_data(keep_latest=0)
        assert await q.put(item) is not None


async def test_unique_ack_fingerprints_survive_trimming_and_reopen(qpath: str) -> None:
    """Acked rows trimmed beyond max_acked_length leave a fingerprint, not their data, that refuses puts."""
    async with persistq.UniqueAckQ(qpath, max_acked_length=1) as q:
        await q.put_many(["secret-1", "secret-2", "secret-3"])
        for _ in range(3):
            await q.ack(await q.get())
        assert await q.acked_count() == 1
    conn = sqlite3.connect(os.path.join(qpath, "data.db"))
    try:
        fingerprints = conn.execute("SELECT digest FROM persistq_done_ack_unique_queue_default").fetchall()
        columns = [r[1] for r in conn.execute("PRAGMA table_info(persistq_done_ack_unique_queue_default)")]
    finally:
        conn.close()
    assert len(fingerprints) == 2
    assert all(len(r[0]) == 32 for r in fingerprints)  # SHA-256 digests
    assert columns == ["digest", "timestamp"]  # no data
    async with persistq.UniqueAckQ(qpath) as q:
        ids = await q.put_many(["secret-1", "secret-2", "secret-3", "secret-4"])
        assert ids[:3] == [None, None, None]
        assert ids[3] is not None
        with pytest.raises(ValueError):
            await q.forget_acked(-1)
        with pytest.raises(ValueError):
            await q.forget_acked(float("nan"))


async def test_priority_ack_queue(qpath: str) -> None:
    """PriorityAckQueue delivers the lowest priority first; nacked items keep it."""
    async with persistq.PriorityAckQueue(qpath) as q:
        await q.put("low", priority=5)
        await q.put("high", priority=1)
        await q.put_many(["mid1", "mid2"], priority=3)
        first = await q.get()
        assert first == "high"
        await q.nack(first)
        assert [await q.get() for _ in range(4)] == ["high", "mid1", "mid2", "low"]


async def test_cancelled_get_leaves_the_item_ready(qpath: str) -> None:
    """Gets cancelled at random points never leave an item stuck in flight."""
    import random

    rng = random.Random(5)
    async with persistq.SQLiteAckQueue(qpath) as q:
        await q.put_many(range(100))
        got: list[int] = []
        for _ in range(400):
            with anyio.move_on_after(rng.uniform(0, 0.002)), contextlib.suppress(persistq.Empty):
                got.append(await q.get(timeout=0.01))
            if len(got) == 100:
                break
        while True:
            try:
                got.append(await q.get_nowait())
            except persistq.Empty:
                break
        assert sorted(got) == list(range(100))
        assert await q.unack_count() == 100


async def test_join_waits_until_nothing_is_waiting_or_in_flight(qpath: str) -> None:
    """join() returns once every item was acked."""
    async with persistq.SQLiteAckQueue(qpath) as q:
        await q.put_many([1, 2])

        async def worker() -> None:
            for _ in range(2):
                item = await q.get()
                await anyio.sleep(0.02)
                await q.ack(item)

        async with anyio.create_task_group() as tg:
            tg.start_soon(worker)
            await q.join()
            assert await q.active_size() == 0


def test_invalid_ack_queue_arguments(qpath: str) -> None:
    """Bad max_attempts, max_acked_length or visibility_timeout raise ValueError."""
    with pytest.raises(ValueError):
        persistq.SQLiteAckQueue(qpath, max_attempts=-1)
    with pytest.raises(ValueError):
        persistq.SQLiteAckQueue(qpath, max_acked_length=-5)
    with pytest.raises(ValueError):
        persistq.SQLiteAckQueue(qpath, visibility_timeout=-1)


def test_auto_commit_false_warns_as_persist_queue(qpath: str) -> None:
    """auto_commit=False on an ack queue warns, as persist-queue does."""
    with pytest.warns(UserWarning, match="not supported in ack queue"):
        persistq.SQLiteAckQueue(qpath, auto_commit=False)


def test_sync_ack_queue(qpath: str) -> None:
    """The blocking twin: get, ack by copy, nack, counts, dead letters."""
    with persistq.sync.SQLiteAckQueue(qpath, max_attempts=1) as q:
        q.put({"n": 1})
        q.put({"n": 2})
        one = q.get()
        q.ack({"n": 1})
        two = q.get()
        q.nack(two)
        assert q.ack_failed_count() == 1
        assert q.acked_count() == 1
        assert one == {"n": 1}
        assert q.failed()[0]["data"] == {"n": 2}


def test_ack_status_values_are_persist_queues() -> None:
    """AckStatus keeps persist-queue's stored values (as ints)."""
    assert [int(s) for s in AckStatus] == [0, 1, 2, 3, 5, 9]
    assert AckStatus.acked == 5


def test_status_lookups_are_indexed(qpath: str) -> None:
    """The ready lookup of an ack queue uses an index, not a scan."""
    with persistq.sync.SQLiteAckQueue(qpath) as q:
        q.put(1)
    con = sqlite3.connect(os.path.join(qpath, "data.db"))
    try:
        plan = con.execute(
            'EXPLAIN QUERY PLAN SELECT _id FROM "ack_queue_default" WHERE status < 2 ORDER BY _id ASC LIMIT 1'
        ).fetchall()
    finally:
        con.close()
    text = " ".join(str(r[-1]) for r in plan)
    assert "INDEX" in text, text


async def test_counts_settle_expired_leases(qpath: str) -> None:
    """After a lease expires, qsize and counts show the item as ready without a get."""
    async with persistq.SQLiteAckQueue(qpath, visibility_timeout=0.05) as q:
        await q.put("x")
        await q.get()
        await anyio.sleep(0.1)
        assert await q.qsize() == 1
        assert await q.unack_count() == 0
