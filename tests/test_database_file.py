"""A queue path that names an existing SQLite database file opens that file.

persist-queue's ``AsyncSQLiteQueue`` family took a database *file* (tables
``queue``, ``filo_queue``, ``unique_queue``, whatever the ``name``); its sync
classes took a directory. persistq reads an existing regular file as the
database, and anything else as a directory (created if missing). These tests
write with the real persist-queue 1.1.0 async classes (on their own asyncio
loop, in a thread of their own), open with persistq (async on both backends,
and sync), and read back with persist-queue.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import anyio
import pytest
from conftest import SQLITE_KINDS

import persistq
import persistq.sync

async_sqlqueue = pytest.importorskip("persistqueue.async_sqlqueue")
import persistqueue.serializers.json  # noqa: E402
import persistqueue.serializers.pickle  # noqa: E402

PQ_ASYNC = {
    "fifo": async_sqlqueue.AsyncSQLiteQueue,
    "filo": async_sqlqueue.AsyncFILOSQLiteQueue,
    "unique": async_sqlqueue.AsyncUniqueQ,
}
OURS = {
    "fifo": (persistq.AsyncSQLiteQueue, persistq.sync.SQLiteQueue),
    "filo": (persistq.AsyncFILOSQLiteQueue, persistq.sync.FILOSQLiteQueue),
    "unique": (persistq.AsyncUniqueQ, persistq.sync.UniqueQ),
}
TABLES = {"fifo": "queue", "filo": "filo_queue", "unique": "unique_queue"}
SERIALIZERS = {
    "pickle": (persistqueue.serializers.pickle, persistq.serializers.pickle),
    "json": (persistqueue.serializers.json, persistq.serializers.json),
}


def _in_thread(make: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """Run a persist-queue coroutine on a fresh asyncio loop in a thread of its own."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = asyncio.run(make())
        except BaseException as exc:  # noqa: BLE001 - re-raised on the caller's thread
            out["error"] = exc

    t = threading.Thread(target=run)
    t.start()
    t.join(60)
    if "error" in out:
        raise out["error"]
    return out["value"]


def pq_put(kind: str, path: str, items: list[Any], serializer: str = "pickle") -> list[Any]:
    """persist-queue's async class of ``kind`` puts ``items`` into the file ``path``."""

    async def main() -> list[Any]:
        async with PQ_ASYNC[kind](path, serializer=SERIALIZERS[serializer][0]) as q:
            return [await q.put(item) for item in items]

    result: list[Any] = _in_thread(main)
    return result


def pq_drain(kind: str, path: str, serializer: str = "pickle") -> tuple[int, list[Any]]:
    """persist-queue's async class reads every item; returns its qsize() first."""

    async def main() -> tuple[int, list[Any]]:
        async with PQ_ASYNC[kind](path, serializer=SERIALIZERS[serializer][0]) as q:
            size = await q.qsize()
            got = [await q.get(block=False) for _ in range(size)]
            assert await q.qsize() == 0
            return size, got

    result: tuple[int, list[Any]] = _in_thread(main)
    return result


def tables(path: str) -> set[str]:
    con = sqlite3.connect(path)
    try:
        return {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        con.close()


# ------------------------------------------------ persist-queue's async files


@pytest.mark.anyio
@pytest.mark.parametrize("serializer", SERIALIZERS)
@pytest.mark.parametrize("kind", TABLES)
async def test_persistqueue_async_file_round_trip(tmp_path: Path, kind: str, serializer: str) -> None:
    """persist-queue async writes a file; persistq async and sync get and put; persist-queue reads on."""
    db = str(tmp_path / "queue.db")
    items = [{"n": 1, "tags": ["a"]}, "two", 3, {"n": 4}]
    pq_put(kind, db, items, serializer)
    async_cls, sync_cls = OURS[kind]
    ser = SERIALIZERS[serializer][1]
    newest_first = kind == "filo"
    async with async_cls(db, serializer=ser) as q:
        assert await q.qsize() == 4
        assert await q.get() == (items[-1] if newest_first else items[0])
        await q.put("from async")
    with sync_cls(db, serializer=ser) as sq:
        assert sq.qsize() == 4
        assert sq.get() == ("from async" if newest_first else items[1])
        sq.put("from sync")
    size, rest = pq_drain(kind, db, serializer)
    if newest_first:
        expected = ["from sync", *reversed(items[:3])]
    else:
        expected = [*items[2:], "from async", "from sync"]
    assert (size, rest) == (4, expected)
    assert TABLES[kind] in tables(db)
    assert f"{TABLES[kind]}_default" not in tables(db)
    assert not (tmp_path / "queue.db" / "data.db").exists()


@pytest.mark.anyio
async def test_unique_file_dedups_against_persistqueue_items(tmp_path: Path) -> None:
    """AsyncUniqueQ on persist-queue's unique_queue refuses an item persist-queue stored (any key order)."""
    db = str(tmp_path / "u.db")
    pq_put("unique", db, [{"b": 2, "a": 1}, "x"])
    async with persistq.AsyncUniqueQ(db) as q:
        assert await q.put({"a": 1, "b": 2}) is None
        assert await q.put("y") is not None
        assert await q.qsize() == 3
    _, rest = pq_drain("unique", db)
    assert rest == [{"a": 1, "b": 2}, "x", "y"]


@pytest.mark.anyio
async def test_named_queue_in_a_persistqueue_file_gets_its_own_table(tmp_path: Path) -> None:
    """A queue with another name than "default" uses queue_{name}, not persist-queue's bare table."""
    db = str(tmp_path / "q.db")
    pq_put("fifo", db, ["old"])
    async with persistq.AsyncSQLiteQueue(db, name="jobs") as q:
        assert await q.qsize() == 0
        await q.put("new")
    assert {"queue", "queue_jobs"} <= tables(db)
    assert pq_drain("fifo", db) == (1, ["old"])


@pytest.mark.anyio
async def test_own_table_wins_over_the_legacy_one(tmp_path: Path) -> None:
    """With queue_default beside persist-queue's bare queue table, the default queue uses queue_default."""
    db = str(tmp_path / "q.db")
    pq_put("fifo", db, ["legacy"])
    con = sqlite3.connect(db)
    con.execute(
        "CREATE TABLE queue_default (_id INTEGER PRIMARY KEY AUTOINCREMENT, data BLOB, timestamp FLOAT)"
    )
    con.commit()
    con.close()
    async with persistq.SQLiteQueue(db) as q:
        assert await q.qsize() == 0
        await q.put("mine")
        assert await q.get() == "mine"
    assert pq_drain("fifo", db) == (1, ["legacy"])


@pytest.mark.anyio
async def test_auto_commit_false_on_a_persistqueue_file_gives_back_items_not_done(tmp_path: Path) -> None:
    """auto_commit=False on persist-queue's table: items got and not done are back for persist-queue."""
    db = str(tmp_path / "q.db")
    pq_put("fifo", db, ["a", "b", "c"])
    async with persistq.AsyncSQLiteQueue(db, auto_commit=False) as q:
        assert await q.get() == "a"
        await q.task_done()
        assert await q.get() == "b"
    assert pq_drain("fifo", db) == (2, ["b", "c"])


# --------------------------------------------------- the path rule, every kind


@pytest.mark.anyio
@pytest.mark.parametrize("kind", SQLITE_KINDS, ids=lambda k: k.__name__)
async def test_every_kind_opens_an_existing_database_file(tmp_path: Path, kind: Any) -> None:
    """Every SQLite kind given an existing (empty) file uses it as the database; no directory appears."""
    db = tmp_path / "jobs.db"
    db.touch()
    async with kind(str(db), name="n") as q:
        await q.put("x")
    async with kind(str(db), name="n") as q:
        assert await q.get() == "x"
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("jobs.db-")) == ["jobs.db"]
    assert f"{kind._TABLE_PREFIX}_n" in tables(str(db))


@pytest.mark.anyio
async def test_pdict_opens_an_existing_database_file(tmp_path: Path) -> None:
    """PDict given a database file uses it; the same file is readable as its directory's db_file_name."""
    db = tmp_path / "settings.db"
    db.touch()
    async with persistq.PDict(str(db), "s") as d:
        await d.set("k", [1])
    async with persistq.PDict(str(tmp_path), "s", db_file_name="settings.db") as d:
        assert await d.get("k") == [1]


@pytest.mark.anyio
async def test_directory_queue_and_its_data_db_are_the_same_queue(qpath: str) -> None:
    """A directory queue's data.db, given as the path, opens the same items (sync and async)."""
    async with persistq.SQLiteQueue(qpath) as q:
        await q.put_many([1, 2])
    async with persistq.SQLiteQueue(os.path.join(qpath, "data.db")) as q:
        assert await q.get() == 1
    with persistq.sync.SQLiteQueue(os.path.join(qpath, "data.db")) as sq:
        assert sq.get() == 2


@pytest.mark.anyio
@pytest.mark.parametrize("sync", [False, True], ids=["async", "sync"])
async def test_new_path_ending_in_db_is_a_directory(tmp_path: Path, sync: bool) -> None:
    """A new path is a directory even when it ends in .db (persist-queue's SQLiteQueue('my_queue.db'))."""
    path = tmp_path / "my_queue.db"
    if sync:
        with persistq.sync.SQLiteQueue(str(path)) as sq:
            sq.put(1)
    else:
        async with persistq.AsyncSQLiteQueue(str(path)) as q:
            await q.put(1)
    assert path.is_dir()
    assert "queue_default" in tables(str(path / "data.db"))


def test_db_file_name_with_a_file_path_is_a_clear_value_error(tmp_path: Path) -> None:
    """db_file_name together with a path that is a database file raises ValueError saying why."""
    db = tmp_path / "q.db"
    db.touch()
    for make in (
        lambda: persistq.SQLiteQueue(str(db), db_file_name="other.db"),
        lambda: persistq.SQLiteAckQueue(str(db), db_file_name="other.db"),
        lambda: persistq.PDict(str(db), "d", db_file_name="other.db"),
    ):
        with pytest.raises(ValueError, match=r"is a database file, so db_file_name='other\.db'"):
            make()
    with pytest.raises(ValueError, match="is a database file"):
        persistq.sync.SQLiteQueue(str(db), db_file_name="other.db")
    with persistq.sync.SQLiteQueue(str(tmp_path / "dir"), db_file_name="other.db") as q:
        q.put(1)
    assert (tmp_path / "dir" / "other.db").is_file()


@pytest.mark.anyio
async def test_file_created_after_construction_is_used_at_open(tmp_path: Path) -> None:
    """The path is looked at again when the queue opens: a file created in between is the database."""
    db = tmp_path / "late.db"
    q = persistq.SQLiteQueue(str(db))
    pq_put("fifo", str(db), ["early"])
    async with q:
        assert await q.get() == "early"
    assert db.is_file()


@pytest.mark.anyio
@pytest.mark.parametrize(
    "make",
    [
        lambda p: persistq.SQLiteAckQueue(p),
        lambda p: persistq.PriorityQueue(p),
        lambda p: persistq.PDict(p, "d"),
    ],
    ids=["ack", "priority", "pdict"],
)
async def test_file_that_is_not_a_database_is_a_corruption_error(tmp_path: Path, make: Any) -> None:
    """A regular file that is not SQLite, given as path, raises CorruptionError naming it; it is unchanged."""
    f = tmp_path / "notes.txt"
    f.write_bytes(b"hello, not a database\n" * 10)
    q = make(str(f))
    with pytest.raises(persistq.CorruptionError, match=r"notes\.txt' is a file but not an SQLite database"):
        await q.open()
    await q.close()
    assert f.read_bytes() == b"hello, not a database\n" * 10


# ----------------------------------------------------------- real processes

PQ_WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from persistqueue.async_sqlqueue import AsyncSQLiteQueue, AsyncFILOSQLiteQueue

    async def main(path):
        async with AsyncSQLiteQueue(path) as q:
            for i in range(5):
                await q.put({"job": i})
        async with AsyncFILOSQLiteQueue(path) as q:
            await q.put("bottom")
            await q.put("top")
        print("persist-queue wrote 5 + 2")

    asyncio.run(main(sys.argv[1]))
    """
)

PERSISTQ_CONSUMER = textwrap.dedent(
    """
    import sys
    backend, path = sys.argv[1], sys.argv[2]
    import persistq, persistq.sync

    if backend == "sync":
        with persistq.sync.SQLiteQueue(path) as q:
            print("sync got", q.get(), "left", q.qsize())
            q.put({"job": "sync"})
        with persistq.sync.FILOSQLiteQueue(path) as f:
            print("sync filo got", f.get())
    else:
        import anyio

        async def main():
            async with persistq.AsyncSQLiteQueue(path) as q:
                print(backend, "got", await q.get(), "left", await q.qsize())
                await q.put({"job": backend})

        anyio.run(main, backend=backend)
    """
)

PQ_READER = textwrap.dedent(
    """
    import asyncio, json, sys
    from persistqueue.async_sqlqueue import AsyncSQLiteQueue, AsyncFILOSQLiteQueue

    async def main(path):
        out = {}
        async with AsyncSQLiteQueue(path) as q:
            out["fifo"] = [await q.get(block=False) for _ in range(await q.qsize())]
        async with AsyncFILOSQLiteQueue(path) as q:
            out["filo"] = [await q.get(block=False) for _ in range(await q.qsize())]
        print(json.dumps(out))

    asyncio.run(main(sys.argv[1]))
    """
)


def _script(tmp_path: Path, name: str, text: str, *args: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / name
    script.write_text(text)
    return subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_persistqueue_async_file_across_processes(tmp_path: Path) -> None:
    """Processes: persist-queue async writes; persistq asyncio, trio, sync consume; persist-queue reads."""
    db = str(tmp_path / "queue.db")
    w = _script(tmp_path, "pq_write.py", PQ_WRITER, db)
    assert (w.returncode, w.stdout.strip()) == (0, "persist-queue wrote 5 + 2"), w.stderr
    outputs = []
    for backend in ("asyncio", "trio", "sync"):
        r = _script(tmp_path, "consume.py", PERSISTQ_CONSUMER, backend, db)
        assert (r.returncode, r.stderr) == (0, ""), r.stderr
        outputs.append(r.stdout)
    assert outputs == [
        "asyncio got {'job': 0} left 4\n",
        "trio got {'job': 1} left 4\n",
        "sync got {'job': 2} left 4\nsync filo got top\n",
    ]
    # On disk: still one file, persist-queue's bare tables hold the items, no queue_default table.
    names = tables(db)
    assert {"queue", "filo_queue"} <= names
    assert "queue_default" not in names
    assert not os.path.isdir(db)
    con = sqlite3.connect(db)
    try:
        assert con.execute("SELECT count(*) FROM queue").fetchone() == (5,)
    finally:
        con.close()
    r = _script(tmp_path, "pq_read.py", PQ_READER, db)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {
        "fifo": [{"job": 3}, {"job": 4}, {"job": "asyncio"}, {"job": "trio"}, {"job": "sync"}],
        "filo": ["bottom"],
    }


NEW_DB_PATH = textwrap.dedent(
    """
    import sys
    import persistq.sync as persistqueue

    q = persistqueue.SQLiteQueue(sys.argv[1])   # persist-queue's README: SQLiteQueue('my_queue.db')
    q.put("hello")
    q.close()
    q = persistqueue.SQLiteQueue(sys.argv[1])
    print(q.get())
    q.close()
    """
)


def test_new_db_path_script_creates_a_directory(tmp_path: Path) -> None:
    """A script opening SQLiteQueue('my_queue.db') (new path) gets the directory my_queue.db/ with data.db."""
    path = tmp_path / "my_queue.db"
    r = _script(tmp_path, "new_db.py", NEW_DB_PATH, str(path))
    assert (r.returncode, r.stdout, r.stderr) == (0, "hello\n", "")
    assert path.is_dir()
    assert (path / "data.db").is_file()
    assert "queue_default" in tables(str(path / "data.db"))


def test_cli_info_lists_persistqueue_async_tables(tmp_path: Path) -> None:
    """persistq info on a persist-queue async file shows its bare tables as the default queues."""
    db = str(tmp_path / "queue.db")
    pq_put("fifo", db, ["a", "b"])
    pq_put("filo", db, ["c"])
    r = subprocess.run(
        [sys.executable, "-m", "persistq", "info", db, "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    found = {(t["table"], t["name"], t["kind"], t["counts"]["ready"]) for t in json.loads(r.stdout)["queues"]}
    assert found == {("queue", "default", "SQLiteQueue", 2), ("filo_queue", "default", "FILOSQLiteQueue", 1)}


@pytest.mark.anyio
async def test_waiting_get_on_a_file_queue_sees_another_writer(tmp_path: Path) -> None:
    """A blocked persistq get on a persist-queue file is woken by persist-queue putting from elsewhere."""
    db = str(tmp_path / "queue.db")
    pq_put("fifo", db, [])
    async with persistq.AsyncSQLiteQueue(db) as q, anyio.create_task_group() as tg:

        async def later() -> None:
            await anyio.sleep(0.1)
            await anyio.to_thread.run_sync(pq_put, "fifo", db, ["late"])

        tg.start_soon(later)
        with anyio.fail_after(10):
            assert await q.get() == "late"
