"""The inspection and maintenance API (persistq.admin, persistq.sync.admin) on real SQLite, file, MySQL."""

from __future__ import annotations

import ast
import inspect as pyinspect
import os
import re
import sqlite3
import struct
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
import pytest

import persistq
import persistq.sync as pq
from persistq import admin
from persistq.errors import QueueLocked
from persistq.sync import admin as sync_admin

JSON = persistq.serializers.json
CLI_SOURCE = Path(persistq.__file__).parent / "cli.py"


def make_sqlite(path: str) -> None:
    """One database with a queue of every plain kind and a PDict (json), items put in a known order."""
    with pq.SQLiteQueue(path, name="jobs", serializer=JSON) as q:
        q.put_many([{"n": i} for i in range(3)])
    with pq.FILOSQLiteQueue(path, name="stack", serializer=JSON) as q:
        q.put_many(["a", "b"])
    with pq.UniqueQ(path, name="frontier", serializer=JSON) as q:
        q.put_many(["u", "u", "v"])
    with pq.PriorityQueue(path, name="prio", serializer=JSON) as q:
        q.put("later", priority=5)
        q.put("first", priority=1)
    with pq.PDict(path, "settings", serializer=JSON) as d:
        d["k"] = 1
        d["j"] = 2


def make_ack(path: str, name: str = "work") -> None:
    """An ack queue with one item in each status but in flight: acked, failed, delayed, ready (twice)."""
    with pq.SQLiteAckQueue(path, name=name, serializer=JSON) as q:
        q.put_many(["acked", "failed", "delayed", "ready", "ready2"])
        q.ack(q.get())
        q.ack_failed(q.get())
        q.nack(q.get(), delay=600)


def counts_of(info: admin.StoreInfo) -> dict[str | None, dict[str, int]]:
    """Counts per table."""
    return {q.table: q.counts for q in info.queues}


# ------------------------------------------------------------------ locating


@pytest.mark.anyio
async def test_locate_every_kind_of_target(tmp_path: Path) -> None:
    """A queue directory, a database file, db_file, a file queue, a persist-queue directory, a URL resolve."""
    db = str(tmp_path / "db")
    make_sqlite(db)
    assert await admin.locate(db) == admin.Target("sqlite", f"{db}/data.db", f"{db}/data.db")
    assert (await admin.locate(Path(db) / "data.db")).engine == "sqlite"
    os.rename(f"{db}/data.db", f"{db}/other.db")
    assert (await admin.locate(db)).path == f"{db}/other.db"  # the only *.db file
    assert (await admin.locate(db, db_file="other.db")).path == f"{db}/other.db"
    fq = str(tmp_path / "fq")
    with pq.Queue(fq, serializer=JSON) as q:
        q.put(1)
    assert (await admin.locate(fq)).engine == "file"
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "info").write_bytes(b"")
    assert (await admin.locate(legacy)).engine == "persist-queue-file"
    url = await admin.locate("mariadb://me:secret@db.example:3307/q?table=x")
    assert (url.engine, url.shown) == ("mysql", "mysql://me@db.example:3307/q")
    assert "secret" not in str(url)
    target = await admin.locate(fq)
    assert await admin.locate(target) is target


@pytest.mark.anyio
async def test_locate_refuses_clearly(tmp_path: Path) -> None:
    """Unknown schemes, bad DSNs, missing paths, non-queue directories, non-databases raise typed errors."""
    with pytest.raises(admin.LocationError, match="redis:// is not supported") as unknown:
        await admin.locate("redis://u@h/db")
    assert unknown.value.scheme == "redis"
    pg = await admin.locate("postgres://me:secret@db.example:5433/q")
    assert (pg.engine, pg.shown) == ("postgresql", "postgresql://me@db.example:5433/q")
    assert isinstance(unknown.value, ValueError)
    with pytest.raises(admin.LocationError, match="port") as bad:
        await admin.inspect("mysql://u:p@h:notaport/db")
    assert bad.value.scheme is None
    with pytest.raises(admin.InspectionError, match="no such file or directory"):
        await admin.locate(tmp_path / "nope")
    with pytest.raises(admin.InspectionError, match="not a persistq queue directory"):
        await admin.locate(tmp_path)
    for n in ("a.db", "b.db"):
        sqlite3.connect(tmp_path / n).close()
    with pytest.raises(admin.InspectionError, match=r"several databases: a\.db, b\.db"):
        await admin.locate(tmp_path)
    with pytest.raises(admin.InspectionError, match="no such file"):
        await admin.locate(tmp_path, db_file="c.db")
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not sqlite at all" * 10)
    with pytest.raises(admin.CorruptQueueError, match="bad file header"):
        await admin.locate(garbage)


# ------------------------------------------------------------------ SQLite


@pytest.mark.anyio
async def test_inspect_names_every_kind_from_its_class(tmp_path: Path) -> None:
    """Every SQLite kind's table (ack kinds too) and a PDict are found, named by their class, with counts."""
    path = str(tmp_path / "db")
    make_sqlite(path)
    for cls in (persistq.FILOSQLiteAckQueue, persistq.UniqueAckQ, persistq.PriorityAckQueue):
        async with cls(path, name="x", serializer=JSON) as q:
            await q.put("item")
    make_ack(path)
    info = await admin.inspect(path)
    assert (info.engine, info.journal_mode, info.database) == (
        "sqlite",
        "wal",
        os.path.abspath(f"{path}/data.db"),
    )
    assert info.bytes_on_disk >= os.path.getsize(f"{path}/data.db") > 0
    kinds = {q.table: q.kind for q in info.queues}
    assert kinds == {
        "queue_jobs": "SQLiteQueue",
        "filo_queue_stack": "FILOSQLiteQueue",
        "unique_queue_frontier": "UniqueQ",
        "priority_queue_prio": "PriorityQueue",
        "dict_settings": "PDict",
        "ack_queue_work": "SQLiteAckQueue",
        "ack_filo_queue_x": "FILOSQLiteAckQueue",
        "ack_unique_queue_x": "UniqueAckQ",
        "ack_priority_queue_x": "PriorityAckQueue",
    }
    counts = counts_of(info)
    assert counts["queue_jobs"] == {"ready": 3, "in_flight": 0}
    assert counts["unique_queue_frontier"] == {"ready": 2, "in_flight": 0}
    assert counts["dict_settings"] == {"entries": 2}
    assert counts["ack_queue_work"] == {
        "ready": 2,
        "in_flight": 0,
        "expired": 0,
        "delayed": 1,
        "failed": 1,
        "acked": 1,
    }
    by_table = {q.table: q for q in info.queues}
    jobs = by_table["queue_jobs"]
    assert (jobs.name, jobs.serializer, jobs.total, jobs.ack, jobs.order) == (
        "jobs",
        "json",
        3,
        False,
        "fifo",
    )
    assert jobs.oldest_age_seconds is not None
    assert jobs.oldest_age_seconds >= 0
    assert by_table["dict_settings"].oldest_age_seconds is None
    assert by_table["ack_queue_work"].total == 5
    assert all(q.bytes is None or q.bytes > 0 for q in info.queues)


@pytest.mark.anyio
async def test_in_flight_counts_and_expired_leases(tmp_path: Path) -> None:
    """Items got with auto_commit=False count as in flight; an ack item whose lease ended as expired."""
    path = str(tmp_path / "db")
    async with persistq.SQLiteQueue(path, name="held", serializer=JSON, auto_commit=False) as q:
        await q.put_many([1, 2])
        assert await q.get() == 1
        held = (await admin.inspect(path, table="held")).queues[0]
        assert held.counts == {"ready": 1, "in_flight": 1}
        assert held.total == 2
    async with persistq.SQLiteAckQueue(path, name="leased", serializer=JSON, visibility_timeout=0.05) as q:
        await q.put_many(["a", "b"])
        await q.get()
        await anyio.sleep(0.1)
        leased = (await admin.inspect(path, table="leased")).queues[0]
        assert (leased.counts["in_flight"], leased.counts["expired"], leased.total) == (1, 1, 2)


@pytest.mark.anyio
async def test_table_selection(tmp_path: Path) -> None:
    """table= picks by table name or queue name; a missing or ambiguous one is an InspectionError."""
    path = str(tmp_path / "db")
    make_sqlite(path)
    with pq.SQLiteQueue(path, name="stack", serializer=JSON):
        pass
    assert [q.table for q in (await admin.inspect(path, table="jobs")).queues] == ["queue_jobs"]
    assert [q.table for q in await admin.list_queues(path, table="filo_queue_stack")] == ["filo_queue_stack"]
    with pytest.raises(admin.InspectionError, match="no queue table 'nope'"):
        await admin.inspect(path, table="nope")
    with pytest.raises(admin.InspectionError, match="names several tables"):
        await admin.list_queues(path, table="stack")
    with pytest.raises(admin.InspectionError, match="holds several queues"):
        await admin.peek(path)


@pytest.mark.anyio
async def test_peek_in_get_order_without_taking(tmp_path: Path) -> None:
    """peek returns stored bytes in each kind's get order and leaves every item in place."""
    path = str(tmp_path / "db")
    make_sqlite(path)
    ref, records = await admin.peek(path, table="jobs", n=2)
    assert (ref.table, ref.serializer) == ("queue_jobs", "json")
    assert [JSON.loads(r.data) for r in records] == [{"n": 0}, {"n": 1}]
    assert all(r.id is not None and r.timestamp is not None and r.priority is None for r in records)
    assert [r.data for r in (await admin.peek(path, table="stack"))[1]] == [b'"b"', b'"a"']
    prio = (await admin.peek(path, table="prio"))[1]
    assert [(r.data, r.priority) for r in prio] == [(b'"first"', 1), (b'"later"', 5)]
    settings = (await admin.peek(path, table="settings"))[1]
    assert [(r.key, r.data) for r in settings] == [("k", b"1"), ("j", b"2")]
    assert (await admin.peek(path, table="jobs", status="failed"))[1] == []
    async with persistq.SQLiteQueue(path, name="jobs", serializer=JSON) as q:
        assert await q.qsize() == 3


@pytest.mark.anyio
async def test_peek_ack_statuses_and_arguments(tmp_path: Path) -> None:
    """status= selects ack records by status, with their attempts; bad arguments raise ValueError."""
    path = str(tmp_path / "db")
    make_ack(path)
    everything = (await admin.peek(path, status="all"))[1]
    assert [(r.data, r.status) for r in everything] == [
        (b'"acked"', "acked"),
        (b'"failed"', "failed"),
        (b'"delayed"', "delayed"),
        (b'"ready"', "ready"),
        (b'"ready2"', "ready"),
    ]
    assert [r.attempts for r in everything] == [1, 1, 1, 0, 0]
    assert [r.data for r in (await admin.peek(path, status="failed"))[1]] == [b'"failed"']
    assert [r.data for r in (await admin.peek(path, n=1))[1]] == [b'"ready"']
    assert (await admin.peek(path, status="in_flight"))[1] == []
    with pytest.raises(ValueError, match="status"):
        await admin.peek(path, status="in-flight")
    with pytest.raises(ValueError, match="positive"):
        await admin.peek(path, n=0)


@pytest.mark.anyio
async def test_verify_sqlite(tmp_path: Path) -> None:
    """verify is ok on a sound database and reports what integrity_check finds in a damaged one."""
    path = str(tmp_path / "db")
    make_sqlite(path)
    report = await admin.verify(path)
    assert report.ok
    assert "queue_jobs" in report.checked
    assert report.problems == report.warnings == []
    db = f"{path}/data.db"
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    data = bytearray(Path(db).read_bytes())
    data[36:40] = struct.pack(">I", 3)  # the header's free-page count, now wrong
    Path(db).write_bytes(bytes(data))
    damaged = await admin.verify(path)
    assert not damaged.ok
    assert "freelist" in damaged.problems[0].lower()
    Path(db).write_bytes(b"garbage" * 1000)
    with pytest.raises(admin.CorruptQueueError, match="corrupt queue"):
        await admin.verify(path)


@pytest.mark.anyio
async def test_purge_sqlite_keeps_in_flight_unless_asked(tmp_path: Path) -> None:
    """purge empties the chosen queues in one transaction; items consumers hold stay unless in_flight=True."""
    path = str(tmp_path / "db")
    make_sqlite(path)
    make_ack(path)
    assert await admin.purge(path, table="jobs") == {"queue_jobs": 3}
    async with persistq.SQLiteAckQueue(path, name="work", serializer=JSON) as q:
        await q.get()
        assert await admin.purge(path, table="work") == {"ack_queue_work": 4}
        assert counts_of(await admin.inspect(path, table="work"))["ack_queue_work"]["in_flight"] == 1
        assert await admin.purge(path, table="work", in_flight=True) == {"ack_queue_work": 1}
    async with persistq.SQLiteQueue(path, name="held", serializer=JSON, auto_commit=False) as q:
        await q.put_many([1, 2])
        await q.get()
        assert await admin.purge(path, table="held") == {"queue_held": 1}
        assert await admin.purge(path, table="held", in_flight=True) == {"queue_held": 1}
    purged = await admin.purge(path)
    assert purged["filo_queue_stack"] == 2
    assert purged["dict_settings"] == 2
    assert all(q.total == 0 for q in (await admin.inspect(path)).queues)


@pytest.mark.anyio
async def test_vacuum_sqlite_gives_space_back(tmp_path: Path) -> None:
    """vacuum shrinks the database files after a purge and keeps the items left."""
    path = str(tmp_path / "db")
    make_sqlite(path)
    async with persistq.SQLiteQueue(path, name="big", serializer=JSON) as q:
        await q.put_many(["x" * 1000] * 500)
    await admin.purge(path, table="big")
    result = await admin.vacuum(path)
    assert result.bytes_after < result.bytes_before
    assert counts_of(await admin.inspect(path, table="jobs"))["queue_jobs"]["ready"] == 3


@pytest.mark.anyio
async def test_requeue_failed_and_stranded(tmp_path: Path) -> None:
    """requeue makes dead letters and expired leases ready; a live consumer's item only with all_in_flight."""
    path = str(tmp_path / "db")
    make_ack(path)
    async with persistq.SQLiteAckQueue(path, name="work", serializer=JSON, visibility_timeout=0.05) as q:
        await q.get()
        await anyio.sleep(0.1)
        result = await admin.requeue(path)
    assert result == admin.RequeueResult("ack_queue_work", 1, 1)
    counts = counts_of(await admin.inspect(path))["ack_queue_work"]
    assert (counts["ready"], counts["failed"], counts["in_flight"]) == (3, 0, 0)
    async with persistq.SQLiteAckQueue(path, name="work", serializer=JSON) as q:
        live = await q.get()
        assert (await admin.requeue(path, failed=False)).in_flight_returned == 0
        done = await admin.requeue(path, failed=False, expired=False, all_in_flight=True)
        assert done.in_flight_returned == 1
        assert live in [JSON.loads(r.data) for r in (await admin.peek(path))[1]]


@pytest.mark.anyio
async def test_requeue_chosen_ids_and_refusals(tmp_path: Path) -> None:
    """ids= requeues only those dead letters; a plain queue, a file queue, ids without failed are refused."""
    path = str(tmp_path / "db")
    async with persistq.SQLiteAckQueue(path, name="work", serializer=JSON) as q:
        await q.put_many(["a", "b"])
        first = await q.get(raw=True)
        await q.ack_failed(id=first["pqid"])
        await q.ack_failed(await q.get())
    assert (await admin.requeue(path, ids=[first["pqid"]], expired=False)).failed_requeued == 1
    assert [r.status for r in (await admin.peek(path, status="all"))[1]] == ["ready", "failed"]
    with pytest.raises(ValueError, match="failed"):
        await admin.requeue(path, failed=False, ids=[1])
    make_sqlite(path)
    with pytest.raises(admin.InspectionError, match="not an ack queue"):
        await admin.requeue(path, table="jobs")
    assert (await admin.ack_queue(path)).table == "ack_queue_work"
    fq = str(tmp_path / "fq")
    with pq.Queue(fq, serializer=JSON) as f:
        f.put(1)
    with pytest.raises(admin.InspectionError, match="ack queues"):
        await admin.requeue(fq)


@pytest.mark.anyio
async def test_migrate_copies_a_database(tmp_path: Path) -> None:
    """migrate copies a database into a new directory, reports pages and tables, and refuses a full DST."""
    src, dst = str(tmp_path / "src"), str(tmp_path / "dst")
    make_sqlite(src)
    seen: list[tuple[int, int, str]] = []
    result = await admin.migrate(src, dst, progress=lambda *a: seen.append(a))
    assert (result.kind, result.destination) == ("sqlite", f"{dst}/data.db")
    assert "queue_jobs" in result.tables
    assert seen[0][0] == 0
    assert seen[-1][0] == seen[-1][1] > 0
    assert {unit for *_, unit in seen} == {"pages"}
    assert counts_of(await admin.inspect(dst)) == counts_of(await admin.inspect(src))
    with pytest.raises(admin.InspectionError, match="not an empty directory"):
        await admin.migrate(src, dst)


@pytest.mark.anyio
async def test_migrate_converts_a_persist_queue_file_queue(tmp_path: Path) -> None:
    """migrate converts a persist-queue file queue, reporting each item copied."""
    persistqueue = pytest.importorskip("persistqueue")
    from persistqueue.serializers import json as pq_json

    src, dst = tmp_path / "src", tmp_path / "dst"
    old = persistqueue.Queue(str(src), chunksize=3, serializer=pq_json)
    for i in range(5):
        old.put({"i": i})
    del old
    assert (await admin.inspect(src)).hint is not None
    with pytest.raises(admin.InspectionError, match=r"persist-queue 1\.x file queue"):
        await admin.peek(src)
    seen: list[tuple[int, int, str]] = []
    result = await admin.migrate(src, dst, serializer="json", progress=lambda *a: seen.append(a))
    assert (result.kind, result.items) == ("file", 5)
    assert seen[-1] == (5, 5, "items")
    assert (await admin.inspect(dst)).queues[0].counts["ready"] == 5


# ------------------------------------------------------------------ file queue


def make_file_queue(path: str, n: int = 5, chunksize: int = 2) -> None:
    """A file queue holding ``0 … n-1`` after one item was got and done."""
    with pq.Queue(path, serializer=JSON, chunksize=chunksize) as q:
        q.put_many(list(range(-1, n)))
        q.get()
        q.task_done()


@pytest.mark.anyio
async def test_file_inspect_peek_segments(tmp_path: Path) -> None:
    """A file queue's counts, segments and lock state, and its records in order with file and offset."""
    path = str(tmp_path / "fq")
    make_file_queue(path)
    info = await admin.inspect(path)
    (q,) = info.queues
    assert (info.engine, q.kind, q.name, q.serializer, q.chunksize) == ("file", "Queue", "fq", "json", 2)
    assert (q.counts, q.total, q.locked, q.problems, q.oldest_age_seconds) == (
        {"ready": 5, "corrupt": 0},
        5,
        False,
        (),
        None,
    )
    assert q.segments == 3
    assert info.bytes_on_disk > (q.bytes or 0) > 0
    ref, records = await admin.peek(path, n=3)
    assert (ref.table, ref.name, ref.serializer) == (None, "fq", "json")
    assert [(r.data, r.segment) for r in records] == [
        (b"0", "0000000000.seg"),
        (b"1", "0000000001.seg"),
        (b"2", "0000000001.seg"),
    ]
    assert all(r.offset is not None and r.offset >= _file_header() for r in records)
    reports, problems = await admin.segments(path)
    assert problems == []
    assert sum(len(s.records) for s in reports) == 5
    with pq.Queue(path, serializer=JSON):
        assert (await admin.inspect(path)).queues[0].locked is True
    with pytest.raises(ValueError, match="does not apply"):
        await admin.inspect(path, table="x")
    make_sqlite(str(tmp_path / "db"))
    with pytest.raises(admin.InspectionError, match="no segments"):
        await admin.segments(tmp_path / "db")


def _file_header() -> int:
    from persistq.engines.file import HEADER_SIZE

    return HEADER_SIZE


@pytest.mark.anyio
async def test_file_verify_and_purge_a_damaged_queue(tmp_path: Path) -> None:
    """A flipped byte is a problem naming file and offset; purge then drains the queue, skipping it."""
    path = tmp_path / "fq"
    with pq.Queue(str(path), serializer=JSON) as q:
        q.put_many(["first", "second", "third"])
    assert (await admin.verify(path)).ok
    segment = path / "0000000000.seg"
    data = bytearray(segment.read_bytes())
    data[_file_header() + 8 + 2] ^= 0xFF
    segment.write_bytes(bytes(data) + b"\x05\x00")  # and an append that never finished
    report = await admin.verify(path)
    assert not report.ok
    assert report.checked == ["0000000000.seg"]
    assert report.problems == [
        f"{segment} offset {_file_header()}: corrupt record (15 bytes; checksum or length does not match)"
    ]
    assert "unfinished append" in report.warnings[0]
    assert (await admin.inspect(path)).queues[0].counts == {"ready": 2, "corrupt": 1}
    assert await admin.purge(path) == {"fq": 3}
    assert any(n.startswith("quarantine-") for n in os.listdir(path))
    assert (await admin.inspect(path)).queues[0].total == 0


@pytest.mark.anyio
async def test_file_purge_and_compact_need_the_queue_closed(tmp_path: Path) -> None:
    """purge and compact refuse a file queue open elsewhere; compact keeps items and drops stale files."""
    path = str(tmp_path / "fq")
    make_file_queue(path)
    with pq.Queue(path, serializer=JSON):
        with pytest.raises(QueueLocked):
            await admin.purge(path)
        with pytest.raises(QueueLocked):
            await admin.vacuum(path)
    stale = Path(path) / ".persistq.stale"
    stale.write_bytes(b"x" * 5000)
    result = await admin.vacuum(path)
    assert result.bytes_before - result.bytes_after >= 5000
    assert not stale.exists()
    with pq.Queue(path, serializer=JSON) as q:
        assert q.get_many(10, block=False) == list(range(5))


# ------------------------------------------------------------------ MySQL


@pytest.fixture
def mysql_dsn() -> Iterator[str]:
    """The DSN of a scratch database on the test server (no ?table=), dropped afterwards."""
    from _mysql_support import scratch_database, server_env

    with scratch_database(server_env(), "persistq_cli_admin") as env:
        yield (
            f"mysql://{quote(env['user'], safe='')}:{quote(env['password'], safe='')}"
            f"@{env['host']}:{env['port']}/{env['database']}"
        )


@pytest.mark.anyio
async def test_mysql_inspect_peek_verify(mysql_dsn: str) -> None:
    """On MySQL: both kinds, counts (in flight, expired by the server's clock), peeks, checks; no password."""
    from _mysql_support import server_env

    password = quote(server_env()["password"], safe="")
    async with persistq.MySQLQueue(f"{mysql_dsn}?table=plain", serializer=JSON, auto_commit=False) as q:
        await q.put_many([1, {"a": 2}, 3])
        assert await q.get() == 1
        async with persistq.MySQLAckQueue(
            f"{mysql_dsn}?table=acks", serializer=JSON, visibility_timeout=0.1
        ) as a:
            await a.put_many(["dead", "leased", "ready"])
            await a.ack_failed(await a.get())
            await a.get()
            await anyio.sleep(0.3)
            info = await admin.inspect(mysql_dsn)
    assert info.engine == "mysql"
    assert password not in repr(info)
    assert info.durability is not None
    assert info.durability.startswith("innodb_flush_log_at_trx_commit=")
    by_table = {q.table: q for q in info.queues}
    assert {t: q.kind for t, q in by_table.items()} == {
        "queue_plain": "MySQLQueue",
        "ack_queue_acks": "MySQLAckQueue",
    }
    assert by_table["queue_plain"].counts == {"ready": 2, "in_flight": 1}
    assert by_table["queue_plain"].serializer == "json"
    acks = by_table["ack_queue_acks"].counts
    assert (acks["failed"], acks["in_flight"], acks["expired"], acks["ready"]) == (1, 1, 1, 1)
    assert info.bytes_on_disk > 0
    only = await admin.inspect(f"{mysql_dsn}?table=plain")
    assert [q.table for q in only.queues] == ["queue_plain"]
    ref, records = await admin.peek(f"{mysql_dsn}?table=plain")
    # Closing the queue gave the item it held back, in its place.
    assert (ref.table, [JSON.loads(r.data) for r in records]) == ("queue_plain", [1, {"a": 2}, 3])
    dead = (await admin.peek(mysql_dsn, table="acks", status="failed"))[1]
    assert [(r.data, r.status, r.attempts) for r in dead] == [(b'"dead"', "failed", 1)]
    report = await admin.verify(mysql_dsn)
    assert report.ok
    assert sorted(report.checked) == ["ack_queue_acks", "queue_plain"]


@pytest.mark.anyio
async def test_mysql_requeue_purge_optimize(mysql_dsn: str) -> None:
    """On MySQL: requeue revives dead letters, purge keeps held items unless asked, OPTIMIZE runs."""
    async with persistq.MySQLAckQueue(f"{mysql_dsn}?table=acks", serializer=JSON) as a:
        await a.put_many(["dead", "held", "ready"])
        await a.ack_failed(await a.get())
    assert (await admin.requeue(mysql_dsn)).failed_requeued == 1
    assert [r.data for r in (await admin.peek(mysql_dsn))[1]] == [b'"dead"', b'"held"', b'"ready"']
    async with persistq.MySQLAckQueue(f"{mysql_dsn}?table=acks", serializer=JSON) as a:
        await a.get()
        assert await admin.purge(mysql_dsn) == {"ack_queue_acks": 2}
        assert await admin.purge(mysql_dsn, in_flight=True) == {"ack_queue_acks": 1}
    async with persistq.MySQLQueue(f"{mysql_dsn}?table=plain", serializer=JSON, auto_commit=False) as q:
        await q.put_many([1, 2])
        await q.get()
        assert await admin.vacuum(mysql_dsn) == admin.VacuumResult(0, 0)
        assert await admin.purge(mysql_dsn, table="plain") == {"queue_plain": 1}
        assert await admin.purge(mysql_dsn, table="plain", in_flight=True) == {"queue_plain": 1}
    with pytest.raises(admin.InspectionError, match="no queue table"):
        await admin.purge(f"{mysql_dsn}?table=nosuch")


@pytest.mark.anyio
async def test_mysql_dict_store(mysql_dsn: str) -> None:
    """A PDict's table on MySQL is found and counted, and peek shows its keys in insertion order."""
    mysql_dict = pytest.importorskip("persistq.engines.mysql_dict", reason="no MySQL dict store yet")
    from _mysql_support import server_env

    from persistq.engines.mysql import MySQLParams

    env = server_env()
    params = MySQLParams(env["host"], int(env["port"]), env["user"], "persistq_cli_admin", env["password"])
    store = mysql_dict.MySQLDictStore(params, "conf", "json")
    await store.open()
    try:
        await store.set("b", b"1")
        await store.set("a", b"2")
    finally:
        await store.close()
    assert counts_of(await admin.inspect(mysql_dsn)) == {"dict_conf": {"entries": 2}}
    ref, records = await admin.peek(mysql_dsn, table="conf")
    assert (ref.kind, [(r.key, r.data) for r in records]) == ("PDict", [("b", b"1"), ("a", b"2")])


@pytest.mark.anyio
async def test_mysql_unreachable_server_names_it_without_password() -> None:
    """A server that does not answer is an InspectionError naming host and port, never the password."""
    from _mysql_support import free_port

    pytest.importorskip("pymysql")
    with pytest.raises(admin.InspectionError, match="cannot connect") as failed:
        await admin.inspect(f"mysql://u:hunter2@127.0.0.1:{free_port()}/db")
    assert "hunter2" not in str(failed.value)
    assert "127.0.0.1" in str(failed.value)


# ------------------------------------------------------------------ the blocking twins


def test_sync_twins_cover_the_async_api() -> None:
    """persistq.sync.admin has a blocking twin, with the same parameters, of every public admin function."""
    names = [n for n in admin.__all__ if pyinspect.iscoroutinefunction(getattr(admin, n))]
    assert len(names) >= 10
    for name in names:
        twin = getattr(sync_admin, name)
        assert not pyinspect.iscoroutinefunction(twin), name
        params = list(pyinspect.signature(getattr(admin, name)).parameters)
        assert list(pyinspect.signature(twin).parameters) == params, name
    assert pq.admin is sync_admin
    assert persistq.admin is admin


def test_sync_twins_sqlite(tmp_path: Path) -> None:
    """Each blocking twin does what its async twin does on an SQLite database."""
    path = str(tmp_path / "db")
    make_sqlite(path)
    make_ack(path)
    t = sync_admin.locate(path)
    assert t.engine == "sqlite"
    assert counts_of(sync_admin.inspect(t, table="jobs")) == {"queue_jobs": {"ready": 3, "in_flight": 0}}
    assert len(sync_admin.list_queues(path)) == 6
    assert [r.data for r in sync_admin.peek(path, table="stack")[1]] == [b'"b"', b'"a"']
    assert sync_admin.verify(path).ok
    assert sync_admin.ack_queue(path).table == "ack_queue_work"
    assert sync_admin.requeue(path).failed_requeued == 1
    assert sync_admin.purge(path, table="jobs") == {"queue_jobs": 3}
    assert sync_admin.vacuum(path).bytes_after > 0
    result = sync_admin.migrate(path, tmp_path / "copy")
    assert result.kind == "sqlite"


def test_sync_twins_file_queue_from_threads(tmp_path: Path) -> None:
    """The blocking twins work from several threads at once on a file queue."""
    path = str(tmp_path / "fq")
    make_file_queue(path)
    results: list[Any] = []

    def look() -> None:
        results.append(
            (
                sync_admin.inspect(path).queues[0].total,
                len(sync_admin.peek(path)[1]),
                sync_admin.verify(path).ok,
            )
        )

    threads = [threading.Thread(target=look) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert results == [(5, 5, True)] * 4
    reports, _ = sync_admin.segments(path)
    assert len(reports) == 3
    assert sync_admin.vacuum(path).bytes_after > 0
    assert sync_admin.purge(path) == {"fq": 5}


def test_sync_twins_mysql(mysql_dsn: str) -> None:
    """The blocking twins inspect and purge a MySQL queue."""
    with pq.MySQLQueue(f"{mysql_dsn}?table=plain", serializer=JSON) as q:
        q.put_many([1, 2])
    assert counts_of(sync_admin.inspect(mysql_dsn))["queue_plain"]["ready"] == 2
    assert [r.data for r in sync_admin.peek(mysql_dsn)[1]] == [b"1", b"2"]
    assert sync_admin.purge(mysql_dsn) == {"queue_plain": 2}


# ------------------------------------------------------------------ the command line


def test_cli_holds_no_storage_facts() -> None:
    """persistq/cli.py runs no SQL, imports no driver, no file-format module, nothing of persistq.engines."""
    source = CLI_SOURCE.read_text()
    tree = ast.parse(source)
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = ("." * node.level) + (node.module or "")
            imported.add(module)
            imported.update(f"{module}.{alias.name}" for alias in node.names)
    forbidden = ("sqlite3", "pymysql", "aiomysql", "psycopg", "struct", "zlib", "mmap", "os")
    assert not sorted(m for m in imported if m.split(".")[0] in forbidden)
    assert not sorted(m for m in imported if "engines" in m.split("."))
    sql = re.compile(
        r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE TABLE|DROP TABLE)\b[^\n]*\b(FROM|INTO|SET|WHERE|TABLE)\b"
    )
    assert not sql.search(source)
    for word in ("sqlite_master", "information_schema", "dbstat", ".execute(", ".cursor(", "PRAGMA busy"):
        assert word not in source, word
    for name in (
        "HEADER_SIZE",
        "META_FILE",
        "_pending_table",
        "_pymysql",
        "_NAME",
        "scan_segments",
        "read_state",
    ):
        assert name not in source, name
