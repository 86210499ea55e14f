"""Storage faults: a full disk, an unusable path, a damaged database file."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import persistq
import persistq.sync

DISK_FULL_CHILD = textwrap.dedent(
    """
    import os, resource, signal, sys
    import persistq, persistq.sync

    kind, path = sys.argv[1], sys.argv[2]
    # Without this the kernel kills the process (SIGXFSZ) instead of failing the write.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    q = persistq.sync.SQLiteQueue(path) if kind == "sqlite" else persistq.sync.Queue(path)
    for i in range(20):
        q.put(("small", i))
    limit = 2_000_000
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    stored = 20
    error = None
    for i in range(200):
        try:
            q.put(("big", i, b"x" * 100_000))
            stored += 1
        except persistq.StorageError as exc:
            error = exc
            break
    assert error is not None, "the disk never filled up"
    print("ERROR", type(error).__name__, str(error)[:200].replace(chr(10), " "))
    # The queue is still usable while the disk is full: gets work.
    assert q.get() == ("small", 0)
    if kind == "file":
        q.task_done()
    stored -= 1
    # Space comes back: puts work again, and nothing stored was lost.
    resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    q.put(("after", 0))
    stored += 1
    q.close()
    q = persistq.sync.SQLiteQueue(path) if kind == "sqlite" else persistq.sync.Queue(path)
    print("STORED", stored, "QSIZE", q.qsize())
    items = [q.get() for _ in range(q.qsize())]
    assert items[:19] == [("small", i) for i in range(1, 20)], items[:19]
    assert items[-1] == ("after", 0)
    assert [it[1] for it in items if it[0] == "big"] == list(range(stored - 20)), "a big item is missing"
    q.close()
    print("OK")
    """
)


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform != "linux", reason="RLIMIT_FSIZE is POSIX")
@pytest.mark.parametrize("kind", ["sqlite", "file"])
def test_disk_full_is_a_clear_error_and_loses_nothing(kind: str, tmp_path: Path) -> None:
    """A full disk makes put raise StorageError; the queue stays usable and nothing stored is lost."""
    result = subprocess.run(
        [sys.executable, "-c", DISK_FULL_CHILD, kind, str(tmp_path / "q")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)
    assert lines["ERROR"].startswith("StorageError"), result.stdout
    if kind == "sqlite":
        assert "disk full" in lines["ERROR"], result.stdout
    stored, qsize = lines["STORED"].split(" QSIZE ")
    assert int(stored) == int(qsize)
    assert result.stdout.rstrip().endswith("OK")


def test_path_that_cannot_be_created_is_a_storage_error() -> None:
    """A queue path on a file system that refuses it raises StorageError at open."""
    with pytest.raises(persistq.StorageError):
        persistq.sync.SQLiteQueue("/proc/self/persistq-cannot-exist")
    with pytest.raises(persistq.StorageError):
        persistq.sync.Queue("/proc/self/persistq-cannot-exist")


def test_truncated_database_is_a_clear_error(tmp_path: Path) -> None:
    """A data.db cut in half raises CorruptionError (or StorageError), never garbage."""
    path = tmp_path / "q"
    with persistq.sync.SQLiteQueue(str(path), durability="full") as q:
        q.put_many([b"x" * 5000] * 200)
        q.shrink_disk_usage()  # checkpoints the WAL into data.db
    db = path / "data.db"
    for suffix in ("-wal", "-shm"):
        (path / f"data.db{suffix}").unlink(missing_ok=True)
    size = db.stat().st_size
    with open(db, "r+b") as f:
        f.truncate(size // 2)
    with pytest.raises(persistq.StorageError):
        _open_and_read_all(path)


def _open_and_read_all(path: Path) -> None:
    with persistq.sync.SQLiteQueue(str(path)) as q:
        q.get_many(1000)


def test_path_that_is_a_file_is_refused_for_every_queue(tmp_path: Path) -> None:
    """Every queue kind refuses a path that is a regular file with StorageError."""
    f = tmp_path / "file"
    f.write_text("x")
    for cls in (persistq.sync.SQLiteQueue, persistq.sync.SQLiteAckQueue, persistq.sync.Queue):
        with pytest.raises(persistq.StorageError):
            cls(str(f))


def test_file_queue_metadata_bit_flips_never_give_wrong_data(tmp_path: Path) -> None:
    """A bit flipped anywhere in the file queue's metadata file: CorruptionError, never lost or wrong items.

    (Its position file, persistq.pos, is torn and flipped byte by byte in test_file_position.py.)
    """
    import shutil

    base = tmp_path / "base"
    with persistq.sync.Queue(str(base), chunksize=3) as q:
        q.put_many(range(10))
        for _ in range(4):
            q.get()
            q.task_done()
    meta = (base / "persistq.meta").read_bytes()
    outcomes = {"error": 0, "same": 0}
    for offset in range(len(meta)):
        case = tmp_path / f"flip{offset}"
        shutil.copytree(base, case)
        flipped = bytearray(meta)
        flipped[offset] ^= 0x04
        (case / "persistq.meta").write_bytes(bytes(flipped))
        result = _read_all_or_error(case)
        if isinstance(result, persistq.CorruptionError):
            assert "persistq.meta" in str(result)
            outcomes["error"] += 1
        else:
            assert result == list(range(4, 10)), f"offset {offset}: {result}"
            outcomes["same"] += 1
        shutil.rmtree(case)
    assert outcomes["error"] > len(meta) // 2


def _read_all_or_error(path: Path) -> list[int] | persistq.CorruptionError:
    try:
        with persistq.sync.Queue(str(path)) as q:
            return list(q.get_many(100, block=False))
    except persistq.CorruptionError as exc:
        return exc


def _mount(*args: str) -> bool:
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


@pytest.mark.skipif(sys.platform != "linux" or os.geteuid() != 0, reason="mounts a tmpfs (Linux, root)")
@pytest.mark.parametrize("kind", ["sqlite", "file"])
def test_read_only_directory_is_a_clear_error_and_data_survives(kind: str, tmp_path: Path) -> None:
    """A queue on a file system remounted read-only fails at open with StorageError; its items survive."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if not _mount("-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)):
        pytest.skip("cannot mount a tmpfs here")
    path = str(mnt / "q")
    opener = persistq.sync.SQLiteQueue if kind == "sqlite" else persistq.sync.Queue
    try:
        with opener(path) as q:
            q.put_many(["a", "b"])
        assert _mount("-o", "remount,ro", str(mnt))
        with pytest.raises(persistq.StorageError):
            opener(path)
        assert _mount("-o", "remount,rw", str(mnt))
        with opener(path) as q:
            assert q.get_many(10) == ["a", "b"]
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)
