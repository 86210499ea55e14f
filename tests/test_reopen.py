"""A path names a file, not an inode: reopening after the file was deleted, replaced or moved.

The end-to-end form of these cases (separate processes, as programs run them)
is in ``tests/test_real_programs.py``; these check each case on asyncio and
trio, and that an unchanged path still shares its connection and its lock.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest

import persistq
from persistq.engines import sqlite as sqlite_engine
from persistq.errors import QueueLocked, StorageError

pytestmark = pytest.mark.anyio


async def test_reopen_after_rmtree_is_a_new_queue_and_the_old_object_refuses(tmp_path: Path) -> None:
    """After rmtree a reopened queue is empty on a recreated file; the old object raises StorageError."""
    path = str(tmp_path / "q")
    old = persistq.AckQueue(path)
    await old.put_many([1, 2, 3])
    shutil.rmtree(path)
    async with persistq.AckQueue(path) as new:
        assert await new.qsize() == 0
        assert os.path.exists(os.path.join(path, "data.db"))
        await new.put("fresh")
        with pytest.raises(StorageError, match="deleted or replaced") as info:
            await old.put(4)
        assert path in str(info.value)
        with pytest.raises(StorageError):
            await old.get()
        await old.aclose()  # closing a stale object is allowed and harmless
        assert await new.get() == "fresh"
    conn = sqlite3.connect(os.path.join(path, "data.db"))
    try:
        assert conn.execute("SELECT count(*) FROM ack_queue_default").fetchone() == (1,)
    finally:
        conn.close()


async def test_a_deleted_file_is_noticed_without_a_reopen(tmp_path: Path) -> None:
    """An object whose file was deleted stops taking writes within one checkpoint interval."""
    path = str(tmp_path / "q")
    async with persistq.FIFOQueue(path, durability="off") as q:
        await q.put(0)
        shutil.rmtree(path)
        refusal: StorageError | None = None
        puts = 0
        while refusal is None and puts < 2 * sqlite_engine._CHECKPOINT_EVERY:
            try:
                await q.put(puts)
            except StorageError as exc:
                refusal = exc
            puts += 1
        assert refusal is not None
        assert "deleted or replaced" in str(refusal)
        assert puts <= sqlite_engine._CHECKPOINT_EVERY  # checked once per interval of commits
        with pytest.raises(StorageError):
            await q.put("again")


async def test_a_replaced_file_is_opened_anew(tmp_path: Path) -> None:
    """A database file replaced by another (a restored backup) is read, not the open old inode."""
    path = str(tmp_path / "q")
    backup = str(tmp_path / "backup")
    async with persistq.FIFOQueue(backup) as b:
        await b.put("from the backup")
    old = persistq.FIFOQueue(path)
    await old.put("current")
    # A restore replaces the file and drops the old write-ahead log with it (the
    # backup was closed: its log is checkpointed into the file and gone).
    assert not os.path.exists(os.path.join(backup, "data.db-wal"))
    for suffix in ("-wal", "-shm"):
        os.unlink(os.path.join(path, "data.db" + suffix))
    os.replace(os.path.join(backup, "data.db"), os.path.join(path, "data.db"))
    async with persistq.FIFOQueue(path) as new:
        assert await new.get() == "from the backup"
        with pytest.raises(StorageError):
            await old.get()
    await old.aclose()


async def test_a_moved_directory_leaves_a_new_queue_at_the_old_path(tmp_path: Path) -> None:
    """After the directory is renamed, the old path opens empty and the moved data opens at the new one."""
    path, moved = str(tmp_path / "q"), str(tmp_path / "moved")
    old = persistq.FIFOQueue(path)
    await old.put("kept")
    os.rename(path, moved)
    async with persistq.FIFOQueue(path) as new:
        assert await new.qsize() == 0
        with pytest.raises(StorageError):
            await old.put("lost?")
    await old.aclose()
    async with persistq.FIFOQueue(moved) as q:
        assert await q.get() == "kept"


async def test_an_unchanged_path_still_shares_one_connection(tmp_path: Path) -> None:
    """Objects on a file that did not change share one connection, as before."""
    path = str(tmp_path / "q")
    async with persistq.FIFOQueue(path) as a, persistq.UniqueQ(path) as b:
        await a.put(1)
        await b.put(2)
        assert a._engine._db is not None
        assert a._engine._db is b._engine._db
        assert not a._engine._db.stale


async def test_file_queue_reopened_after_rmtree(tmp_path: Path) -> None:
    """The file Queue opens a fresh directory after rmtree; the old object raises; a live one still locks."""
    path = str(tmp_path / "fq")
    old = persistq.Queue(path)
    await old.put("a")
    shutil.rmtree(path)
    async with persistq.Queue(path) as new:
        await new.put("b")
        with pytest.raises(StorageError, match="deleted or replaced"):
            await old.put("c")
        with pytest.raises(QueueLocked):
            await persistq.Queue(path).put("d")  # the live holder of this directory still locks it
        await old.aclose()  # does not release the new object's lock
        with pytest.raises(QueueLocked):
            await persistq.Queue(path).put("e")
        assert await new.get() == "b"
        await new.task_done()
