"""``MySQLAckQueue`` (async and sync) against the throwaway MariaDB that ``make test`` starts."""

from __future__ import annotations

import collections
import contextlib
import inspect
import json
import multiprocessing
import os
import random
import signal
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from _mysql_support import dsn as _dsn
from _mysql_support import kwargs as _kwargs
from _mysql_support import server_env, unique_name
from _mysql_support import sql as _sql

import persistq
import persistq.sync
from persistq import AckStatus
from persistq.errors import InvalidName, StorageError
from persistq.queues.mysql_ack import MySQLAckQueue
from persistq.sync.mysql_ack import MySQLAckQueue as SyncMySQLAckQueue

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
if TESTS_DIR not in sys.path:  # spawn children get the parent's sys.path
    sys.path.insert(0, TESTS_DIR)

import _mysql_ack_children  # noqa: E402

CTX = multiprocessing.get_context("spawn")


@pytest.fixture
def env() -> dict[str, str]:
    """The server's settings; fail on CI without a server, else skip."""
    return server_env()


@pytest.fixture
def name(env: dict[str, str]) -> Iterator[str]:
    """A queue name unique to the test; its tables are dropped afterwards."""
    yield from unique_name(env, "a", ("ack_queue_{name}",))


# --------------------------------------------------------------------- async API


@pytest.mark.anyio
async def test_dump_load_only_serializer(env: dict[str, str], name: str) -> None:
    """A serializer with only dump/load (persist-queue's file-queue shape) works on the ack table."""
    stream = collections.namedtuple("StreamJSON", ["dump", "load"])
    ser = stream(persistq.serializers.json.dump, persistq.serializers.json.load)
    async with MySQLAckQueue(**_kwargs(env, name), serializer=ser) as q:
        await q.put({"k": [1, 2]})
        item = await q.get()
        assert item == {"k": [1, 2]}
        await q.ack(item)
        assert await q.acked_count() == 1


@pytest.mark.anyio
async def test_get_ack_by_equal_copy_raw_dict_or_id(env: dict[str, str], name: str) -> None:
    """get marks items in flight; ack takes an equal copy, a raw dict or an id; the server counts."""
    async with MySQLAckQueue(**_kwargs(env, name)) as q:
        assert q.table_name == f"ack_queue_{name}"
        ids = await q.put_many([{"k": [1, 2]}, {"k": 3}, {"k": 4}, "rest"])
        assert await q.qsize() == 4
        first = await q.get()
        raw = await q.get(raw=True)
        third = await q.get()
        assert (first, raw["data"], third) == ({"k": [1, 2]}, {"k": 3}, {"k": 4})
        assert (await q.unack_count(), await q.qsize(), await q.active_size()) == (3, 1, 4)
        assert await q.ack({"k": [1, 2]}) == ids[0]  # an equal copy, not the same object
        assert await q.ack(raw) == ids[1]
        assert await q.ack(id=ids[2]) == ids[2]
        counts = await q.counts()
        assert counts[AckStatus.acked] == 3
        assert counts[AckStatus.inited] == 1
        assert [r["status"] for r in await q.queue()] == [5, 5, 5, 0]
        with pytest.raises(persistq.ItemNotFound):
            await q.ack("never delivered")
        with pytest.raises(persistq.ItemNotFound):
            await q.ack(id=10**9)
        with pytest.raises(ValueError, match="not both"):
            await q.ack("x", id=1)
        with pytest.raises(persistq.ItemNotFound):
            await q.nack(id=ids[0])  # acked: never resurrected
        assert await q.update("REST", id=ids[3]) == ids[3]
        assert await q.get() == "REST"


@pytest.mark.anyio
async def test_nack_and_nack_with_delay(env: dict[str, str], name: str) -> None:
    """nack gives an item back in its place; nack(delay=…) makes it ready only after the delay."""
    async with MySQLAckQueue(**_kwargs(env, name)) as q:
        ids = await q.put_many(["a", "b"])
        a = await q.get()
        await q.nack(a)
        assert await q.ready_count() == 1
        await q.nack(id=ids[1])  # waiting, not in flight: no change
        assert await q.qsize() == 2
        a = await q.get()
        assert a == "a"
        assert (await q.queue())[0]["attempts"] == 2
        await q.nack(a, delay=0.4)
        assert (await q.counts())[AckStatus.delayed] == 1
        assert await q.get(block=False) == "b"
        with pytest.raises(persistq.Empty):
            await q.get(block=False)
        start = anyio.current_time()
        assert await q.get(timeout=5) == "a"
        assert 0.25 <= anyio.current_time() - start < 3


@pytest.mark.anyio
async def test_lease_expiry_extend_and_per_get_lease(env: dict[str, str], name: str) -> None:
    """An item in flight longer than its lease is delivered again; extend() prolongs a lease."""
    async with MySQLAckQueue(**_kwargs(env, name), visibility_timeout=0.3) as q:
        await q.put_many(["job", "long"])
        assert await q.get() == "job"
        long = await q.get(visibility_timeout=0.3)
        until = await q.extend(long, 30)
        assert 29 < until - time.time() <= 30.5  # in this machine's clock
        with pytest.raises(persistq.Empty):
            await q.get(block=False)
        start = anyio.current_time()
        assert await q.get(timeout=5, visibility_timeout=30) == "job"  # its lease ran out
        assert 0.15 <= anyio.current_time() - start < 3
        assert [r["attempts"] for r in await q.queue()] == [2, 1]
        with pytest.raises(persistq.Empty):
            await q.get(timeout=0.4)  # "long" stays in flight: its lease was extended
        await q.ack_many(["job", "long"])
        with pytest.raises(persistq.ItemNotFound):
            await q.extend(10**9, 1)


@pytest.mark.anyio
async def test_a_busy_consumer_still_gets_expired_and_given_back_items(
    env: dict[str, str], name: str
) -> None:
    """A consumer that always finds work still redelivers expired leases and sees other objects' nacks."""
    async with (
        MySQLAckQueue(**_kwargs(env, name), visibility_timeout=0.3) as q,
        MySQLAckQueue(**_kwargs(env, name)) as other,
    ):
        await q.put_many(list(range(3000)))
        lost = await q.get()  # its lease runs out; nobody acks it
        held = await other.get(visibility_timeout=60)
        seen: list[int] = []
        nacked = False
        while lost not in seen or held not in seen:
            item = await q.get(block=False)
            seen.append(item)
            await q.ack(item)
            if not nacked and len(seen) == 20:
                await other.nack(held)  # given back by another queue object
                nacked = True
            await anyio.sleep(0.001)
        assert len(seen) < 2900, "a busy consumer never came back to the expired or given-back item"
        assert seen.count(lost) == 1
        assert seen.count(held) == 1


@pytest.mark.anyio
async def test_max_attempts_dead_letters_and_requeue(env: dict[str, str], name: str) -> None:
    """After max_attempts deliveries (nacks or expired leases) an item fails; requeue_failed revives it."""
    async with MySQLAckQueue(**_kwargs(env, name), max_attempts=2, visibility_timeout=0.2) as q:
        await q.put_many(["poison", "slow"])
        await q.nack(await q.get())
        await q.nack(await q.get())  # "poison", second attempt
        assert await q.get(block=False) == "slow"
        assert await q.get(timeout=5) == "slow"  # its lease ran out: second attempt
        await anyio.sleep(0.3)  # and ran out again: failed
        with pytest.raises(persistq.Empty):
            await q.get(block=False)
        assert await q.ack_failed_count() == 2
        dead = await q.failed()
        assert [(d["data"], d["attempts"]) for d in dead] == [("poison", 2), ("slow", 2)]
        assert await q.requeue_failed([dead[0]["pqid"]]) == 1
        assert await q.get() == "poison"
        assert (await q.queue())[0]["attempts"] == 1
        await q.ack_failed("poison")
        assert await q.requeue_failed() == 2
        assert await q.qsize() == 2


@pytest.mark.anyio
async def test_clear_acked_data_and_max_acked_length(env: dict[str, str], name: str) -> None:
    """Acked rows beyond max_acked_length are trimmed; clear_acked_data deletes acked (and failed) rows."""
    async with MySQLAckQueue(**_kwargs(env, name), max_acked_length=5) as q:
        await q.put_many(range(20))
        await q.ack_many(await q.get_many(20))
        assert await q.acked_count() == 5
        assert [r["data"] for r in await q.queue()] == [15, 16, 17, 18, 19]
    async with MySQLAckQueue(**_kwargs(env, name), max_acked_length=10_000) as q:
        await q.put_many(range(30))
        for _ in range(29):
            await q.ack(await q.get())
        await q.ack_failed(await q.get())
        assert await q.clear_acked_data(keep_latest=10) == 24
        assert await q.acked_count() == 10
        assert await q.clear_acked_data(max_delete=None, keep_latest=0, clear_ack_failed=True) == 11
        assert await q.active_size() == 0


@pytest.mark.anyio
async def test_get_by_id_next_in_order_and_join(env: dict[str, str], name: str) -> None:
    """get(id=…) and next_in_order work (wrapping around); join waits until every item is acked."""
    async with MySQLAckQueue(**_kwargs(env, name)) as q:
        ids = await q.put_many(["a", "b", "c"])
        assert await q.get(id=ids[1]) == "b"
        assert await q.get(id=ids[1], next_in_order=True) == "c"
        assert await q.get(id=ids[2], next_in_order=True) == "a"
        with pytest.raises(persistq.Empty):
            await q.get(id=ids[0])

        async def settle() -> None:
            for item in ("a", "b", "c"):
                await anyio.sleep(0.02)
                await q.ack(item)

        async with anyio.create_task_group() as tg:
            tg.start_soon(settle)
            with anyio.fail_after(10):
                await q.join()
            assert await q.active_size() == 0


@pytest.mark.anyio
async def test_cancelled_gets_leave_items_ready(env: dict[str, str], name: str) -> None:
    """Gets cancelled at random points never strand an item in flight nor lose one."""
    rng = random.Random(7)
    async with MySQLAckQueue(**_kwargs(env, name)) as q:
        await q.put_many(range(40))
        got: list[int] = []
        for _ in range(300):
            with anyio.move_on_after(rng.uniform(0, 0.003)), contextlib.suppress(persistq.Empty):
                got.append(await q.get(timeout=0.01))
            if len(got) == 40:
                break
        while True:
            try:
                got.append(await q.get_nowait())
            except persistq.Empty:
                break
        assert sorted(got) == list(range(40))
        assert await q.unack_count() == 40
        assert {r["attempts"] for r in await q.queue()} == {1}  # an undone claim keeps its attempts


@pytest.mark.anyio
async def test_resume_close_and_auto_resume(env: dict[str, str], name: str) -> None:
    """resume_unack_tasks gives in-flight items back; close gives back what the object holds."""
    async with MySQLAckQueue(**_kwargs(env, name)) as q:
        await q.put_many(["a", "b"])
        await q.get()
        assert await q.resume_unack_tasks() == 1
        assert await q.ready_count() == 1
        assert await q.get() == "a"
    async with MySQLAckQueue(**_kwargs(env, name)) as q:
        assert await q.unack_count() == 0
        assert await q.get() == "a"
        await q.ack("a")


@pytest.mark.anyio
async def test_auto_resume_judges_only_owners_on_this_host(env: dict[str, str], name: str) -> None:
    """auto_resume frees items of a dead process on this host, never those of another host (lease only)."""
    table = f"`ack_queue_{name}`"
    async with MySQLAckQueue(**_kwargs(env, name), visibility_timeout=1.0) as q:
        ids = await q.put_many(["mine", "theirs"])
        await q.get_many(2)
        q._inflight.clear()  # forget them: a close would give them back
        q._by_identity.clear()
    # Pretend: "mine" was held by a dead process here, "theirs" by a process on another machine.
    host = q._ack._host_prefix
    _sql(env, f"UPDATE {table} SET pq_owner = %s WHERE _id = %s", (host + "999999999:1:dead", ids[0]))
    _sql(env, f"UPDATE {table} SET pq_owner = %s WHERE _id = %s", ("other-host/1:1:alive", ids[1]))
    async with MySQLAckQueue(**_kwargs(env, name), visibility_timeout=1.0) as q:
        assert await q.get(block=False) == "mine"
        with pytest.raises(persistq.Empty):
            await q.get(block=False)
        assert await q.get(timeout=5) == "theirs"  # back by lease expiry
        await q.ack_many(["mine", "theirs"])


@pytest.mark.anyio
async def test_leases_run_on_the_servers_clock(
    env: dict[str, str], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A consumer whose clock runs an hour ahead neither steals a live lease nor mis-times a delay."""
    async with (
        MySQLAckQueue(**_kwargs(env, name), visibility_timeout=30) as a,
        MySQLAckQueue(**_kwargs(env, name), visibility_timeout=30) as b,
    ):
        await a.put_many(["held", "later"])
        assert await a.get() == "held"
        real = time.time
        monkeypatch.setattr(time, "time", lambda: real() + 3600)
        assert await b.get() == "later"
        with pytest.raises(persistq.Empty):
            await b.get(block=False)  # "held"'s lease is live on the server's clock
        await b.nack("later", delay=0.3)
        start = anyio.current_time()
        with anyio.fail_after(5):
            assert await b.get() == "later"
        assert 0.2 <= anyio.current_time() - start < 2
        until = await b.extend("later", 10)
        assert 9 < until - time.time() <= 10.5  # in this (skewed) machine's clock
        monkeypatch.undo()
        await a.ack("held")
        await b.ack("later")


@pytest.mark.anyio
async def test_constructor_dsn_errors_and_repr(env: dict[str, str], name: str) -> None:
    """DSN and keywords both work; the repr hides the password; bad arguments raise at once."""
    q = MySQLAckQueue(_dsn(env, name), max_attempts=3, visibility_timeout=5)
    try:
        await q.put("x")
        assert env["password"] not in repr(q)
        assert q.table_name == f"ack_queue_{name}"
        assert (q.max_attempts, q.visibility_timeout, q.pool_size) == (3, 5.0, 1)
    finally:
        await q.close()
    with pytest.raises(ValueError, match="MySQLAckQueue needs a user"):
        MySQLAckQueue(host="h", database="d")
    with pytest.raises(ValueError):
        MySQLAckQueue(**_kwargs(env, name), max_attempts=-1)
    with pytest.raises(ValueError):
        MySQLAckQueue(**_kwargs(env, name), visibility_timeout=-1)
    with pytest.raises(InvalidName):
        MySQLAckQueue(**_kwargs(env, "n" * 60))
    with pytest.warns(UserWarning, match="not supported in ack queue"):
        MySQLAckQueue(**_kwargs(env, name), auto_commit=False)
    bad = MySQLAckQueue(**{**_kwargs(env, name), "port": 1, "password": "s3cret-pw"}, timeout=2)
    with pytest.raises(StorageError) as info:
        await bad.put("x")
    assert "s3cret-pw" not in str(info.value)
    await bad.close()


# ----------------------------------------------------------------------- sync API


def test_sync_ack_queue(env: dict[str, str], name: str) -> None:
    """The blocking twin: get, ack by copy, nack, leases, dead letters, counts."""
    with SyncMySQLAckQueue(_dsn(env, name), max_attempts=1, visibility_timeout=0.2) as q:
        assert (q.table_name, q.max_attempts, q.visibility_timeout) == (f"ack_queue_{name}", 1, 0.2)
        q.put_many([{"n": 1}, {"n": 2}, {"n": 3}])
        one = q.get()
        q.ack({"n": 1})
        two = q.get()
        q.nack(two)  # first attempt used up: failed
        assert q.ack_failed_count() == 1
        assert q.failed()[0]["data"] == {"n": 2}
        q.get()
        time.sleep(0.3)  # lease ran out on its only attempt: failed
        assert q.ack_failed_count() == 2
        assert q.requeue_failed() == 2
        assert q.size == 2
        assert sorted(x["n"] for x in q.get_many(5)) == [2, 3]
        assert q.extend({"n": 2}, 20) > time.time()
        assert q.counts()[persistq.AckStatus.unack] == 2
        assert one == {"n": 1}
        assert q.clear_acked_data(keep_latest=0) == 1


def test_sync_twin_matches_the_async_class() -> None:
    """persistq.sync's MySQLAckQueue has the async class's methods and parameters."""

    def params(fn: Any) -> list[tuple[str, Any, Any]]:
        return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]

    def methods(cls: type) -> dict[str, Any]:
        return {
            n: v
            for n, v in inspect.getmembers(cls)
            if not n.startswith("_") and (callable(v) or isinstance(v, property))
        }

    assert params(SyncMySQLAckQueue.__init__) == params(MySQLAckQueue.__init__)
    a, s = methods(MySQLAckQueue), methods(SyncMySQLAckQueue)
    assert set(a) - {"aclose"} == set(s)
    for method in set(s):
        if not isinstance(a[method], property):
            assert params(s[method]) == params(a[method]), method
            assert s[method].__doc__, method


# ------------------------------------------------------------------ multi-process


def test_killed_consumer_items_come_back_after_the_lease_exactly_once(
    env: dict[str, str], name: str, tmp_path: Path
) -> None:
    """A consumer SIGKILLed holding items: in flight until the lease ends, then delivered once more."""
    dsn = _dsn(env, name)
    with (
        SyncMySQLAckQueue(dsn, auto_resume=False) as q1,
        SyncMySQLAckQueue(dsn, auto_resume=False) as q2,
    ):
        q1.put_many([f"item{i}" for i in range(6)])
        holding = CTX.Event()
        result = tmp_path / "held.json"
        child = CTX.Process(target=_mysql_ack_children.hold, args=(dsn, 3, 2.0, str(result), holding))
        child.start()
        try:
            assert holding.wait(60), "the child did not get its items"
            killed_at = time.monotonic()
            os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
        finally:
            child.join(30)
        held = json.loads(result.read_text())
        assert held == ["item0", "item1", "item2"]
        assert q1.unack_count() == 3
        rest = q1.get_many(10, block=False)  # the held items' leases are live
        assert rest == ["item3", "item4", "item5"]
        q1.ack_many(rest)
        # Two consumers compete for the items coming back.
        redelivered: list[str] = []
        deadline = time.monotonic() + 30
        while len(redelivered) < 3 and time.monotonic() < deadline:
            for q in (q2, q1):
                with contextlib.suppress(persistq.sync.Empty):
                    redelivered.append(q.get(timeout=0.2))
                    q.ack(redelivered[-1])
        assert time.monotonic() - killed_at >= 1.0
        assert sorted(redelivered) == held
        with pytest.raises(persistq.sync.Empty):
            q1.get(timeout=0.3)
        assert [r["attempts"] for r in q1.queue()] == [2, 2, 2, 1, 1, 1]
        assert q1.active_size() == 0


def test_killed_consumer_without_lease_is_resumed_by_auto_resume_on_this_host(
    env: dict[str, str], name: str, tmp_path: Path
) -> None:
    """Without a lease, a SIGKILLed consumer's items come back when a queue opens on the same host."""
    dsn = _dsn(env, name)
    with SyncMySQLAckQueue(dsn) as q:
        q.put_many(["x", "y"])
    holding = CTX.Event()
    result = tmp_path / "held.json"
    child = CTX.Process(target=_mysql_ack_children.hold, args=(dsn, 2, None, str(result), holding))
    child.start()
    try:
        assert holding.wait(60), "the child did not get its items"
        os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
    finally:
        child.join(30)
    with SyncMySQLAckQueue(dsn) as q:  # auto_resume: the holder is dead
        assert q.get_many(5, block=False) == ["x", "y"]
        q.ack_many(["x", "y"])


def test_four_consumers_two_producers_ack_every_item_exactly_once(
    env: dict[str, str], name: str, tmp_path: Path
) -> None:
    """4 consumer and 2 producer processes move 10,000 items: each delivered and acked exactly once."""
    dsn = _dsn(env, name)
    with SyncMySQLAckQueue(dsn):
        pass  # create the table before the race
    per_producer = 5_000
    consumers = ["sync", "asyncio", "trio", "sync"]
    producers = [("asyncio", "p0"), ("trio", "p1")]
    barrier = CTX.Barrier(len(consumers) + len(producers))
    done = CTX.Event()
    results = [tmp_path / f"c{i}.json" for i in range(len(consumers))]
    cprocs = [
        CTX.Process(target=_mysql_ack_children.consume, args=(dsn, kind, 20, str(r), barrier, done))
        for kind, r in zip(consumers, results, strict=True)
    ]
    pprocs = [
        CTX.Process(target=_mysql_ack_children.produce, args=(dsn, kind, tag, per_producer, 50, barrier))
        for kind, tag in producers
    ]
    start = time.monotonic()
    for p in cprocs + pprocs:
        p.start()
    try:
        for p in pprocs:
            p.join(120)
            assert p.exitcode == 0
        done.set()
        for p in cprocs:
            p.join(120)
            assert p.exitcode == 0
    finally:
        for p in cprocs + pprocs:
            if p.is_alive():
                p.kill()
                p.join()
    elapsed = time.monotonic() - start
    delivered: Counter[str] = Counter()
    acked: Counter[str] = Counter()
    for r in results:
        data = json.loads(r.read_text())
        delivered.update(data["delivered"])
        acked.update(data["acked"])
    expected = {f"{tag}:{i}" for _, tag in producers for i in range(per_producer)}
    assert set(acked) == expected
    assert max(acked.values()) == 1
    assert max(delivered.values()) == 1
    with SyncMySQLAckQueue(dsn) as q:
        counts = q.counts()
        # max_acked_length, trimmed every 100 acks of each consumer
        assert 1000 <= counts[AckStatus.acked] <= 1000 + 4 * (100 + 20)
        assert q.active_size() == 0
    assert elapsed < 60, f"took {elapsed:.1f} s"
