"""Queues on one database file share a connection; storage threads come from a small pool.

The thread and descriptor counts are checked in fresh processes, as a user's
program would see them (pytest itself holds threads and files).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import anyio
import pytest

import persistq
import persistq.sync

pytestmark = pytest.mark.anyio


async def test_queues_on_one_file_share_one_connection(qpath: str) -> None:
    """Queue objects of every SQLite kind on one file use one connection; other files get their own."""
    async with (
        persistq.SQLiteQueue(qpath, "a") as a,
        persistq.UniqueQ(qpath, "b") as b,
        persistq.SQLiteAckQueue(qpath, "c") as c,
        persistq.PDict(qpath, "d") as d,
        persistq.SQLiteQueue(qpath + "-other", "a") as other,
    ):
        assert a._engine._db is b._engine._db is c._engine._db is d._store._db
        assert other._engine._db is not a._engine._db
        await a.put(1)
        await b.put(2)
        await c.put(3)
        await d.set("k", 4)
        assert (await a.get(), await b.get(), await c.get(), await d.get("k")) == (1, 2, 3, 4)


async def test_closing_one_queue_keeps_the_shared_connection_for_the_others(qpath: str) -> None:
    """Closing one queue on a shared file leaves the others working; the last close closes the file."""
    a = persistq.SQLiteQueue(qpath, "a")
    b = persistq.SQLiteQueue(qpath, "b")
    await a.open()
    await b.open()
    db = a._engine._db
    assert db is not None
    await a.put("x")
    await a.close()
    with pytest.raises(persistq.QueueClosed):
        await a.put("y")
    await b.put("z")
    assert await b.get() == "z"
    assert db.conn is not None
    await b.close()
    assert db.conn is None
    async with persistq.SQLiteQueue(qpath, "a") as again:
        assert await again.get_nowait() == "x"


async def test_get_wakes_for_a_put_through_another_object_on_the_same_file(qpath: str) -> None:
    """A get blocked on one object is woken by a put made through another object on the same table."""
    async with (
        persistq.SQLiteQueue(qpath, poll_interval=0.02) as getter,
        persistq.SQLiteQueue(qpath, poll_interval=0.02) as putter,
    ):
        assert getter._engine._db is putter._engine._db
        got: list[str] = []

        async def get() -> None:
            got.append(await getter.get(timeout=10))

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(get)
                await anyio.sleep(0.1)
                await putter.put("hello")
        assert got == ["hello"]


async def test_own_empty_claims_do_not_look_like_changes(qpath: str) -> None:
    """A claim that finds nothing changes nothing: another object's version does not move."""
    async with persistq.SQLiteQueue(qpath) as a, persistq.SQLiteQueue(qpath) as b:
        before = await b._engine.data_version()
        for _ in range(5):
            with pytest.raises(persistq.Empty):
                await a.get_nowait()
        assert await b._engine.data_version() == before
        await a.put(1)
        assert await b._engine.data_version() != before


async def test_a_batch_commits_at_its_strictest_durability(qpath: str) -> None:
    """Queues of different durability on one file: each commit uses the strictest level of its jobs."""
    async with (
        persistq.SQLiteQueue(qpath, "fast", durability="off") as fast,
        persistq.SQLiteQueue(qpath, "safe", durability="full") as safe,
    ):
        db = fast._engine._db
        assert db is not None
        assert db.conn is not None
        await fast.put(1)
        assert db.conn.execute("PRAGMA synchronous").fetchone()[0] == 0
        await safe.put(2)
        assert db.conn.execute("PRAGMA synchronous").fetchone()[0] == 2
        await fast.put(3)
        assert db.conn.execute("PRAGMA synchronous").fetchone()[0] == 0


def _run(code: str, tmp_path: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


COUNTS = """
import os, threading
def counts():
    return threading.active_count(), len(os.listdir("/proc/self/fd"))
"""


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="counts descriptors through /proc")
def test_200_names_in_one_file_need_few_threads_and_descriptors(tmp_path: Path) -> None:
    """200 sync queues on one database file run on <= 8 OS threads and <= 24 open descriptors in all."""
    out = _run(
        COUNTS
        + """
import persistq.sync
base_threads, base_fds = counts()
qs = [persistq.sync.SQLiteQueue("q", name=f"n{i}") for i in range(200)]
for i, q in enumerate(qs):
    q.put(i)
for i, q in enumerate(qs):
    assert q.get() == i
threads, fds = counts()
print(threads, fds, base_threads, base_fds)
""",
        tmp_path,
    )
    threads, fds, _base_threads, _base_fds = map(int, out.split())
    assert threads <= 8, out
    assert fds <= 24, out


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="counts descriptors through /proc")
def test_1000_idle_queues_in_1000_directories_need_few_threads(tmp_path: Path) -> None:
    """1,000 open sync queues in 1,000 directories, each used once, leave <= 64 OS threads."""
    out = _run(
        COUNTS
        + """
import persistq.sync
qs = [persistq.sync.SQLiteQueue(f"q{i}") for i in range(1000)]
for i, q in enumerate(qs):
    q.put(i)
threads, fds = counts()
print(threads)
""",
        tmp_path,
    )
    assert int(out) <= 64, out
