"""Migrating persist-queue 1.1.0 file queues: the function, the command line, the hint on open."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from persistq import serializers
from persistq.errors import Empty, StorageError
from persistq.migrate import migrate_file_queue
from persistq.sync.file import Queue

persistqueue = pytest.importorskip("persistqueue")

NAMES = ["pickle", "json", "msgpack", "cbor2"]
ITEMS: list[Any] = [f"item-{i}\r\n" for i in range(20)] + [{"k": 1}, 7, None, "last"]


def make_pq_queue(path: Path, name: str) -> list[Any]:
    """Write a persist-queue file queue; return the items a reader must still get."""
    ser = importlib.import_module(f"persistqueue.serializers.{name}")
    q = persistqueue.Queue(str(path), chunksize=5, serializer=ser)
    for item in ITEMS:
        q.put(item)
    for _ in range(3):
        q.get()
        q.task_done()
    q.get()  # got, never done: persist-queue keeps it on disk
    del q
    return ITEMS[3:]


def drain(path: Path, serializer: Any) -> list[Any]:
    with Queue(str(path), serializer=serializer) as q:
        out = []
        while True:
            try:
                out.append(q.get_nowait())
            except Empty:
                return out


@pytest.mark.parametrize("name", NAMES)
def test_migrate_function(tmp_path: Path, name: str) -> None:
    """migrate_file_queue copies every waiting item, in order, with each serializer."""
    expected = make_pq_queue(tmp_path / "src", name)
    ser = getattr(serializers, name)
    assert migrate_file_queue(tmp_path / "src", tmp_path / "dst", ser) == len(expected)
    assert drain(tmp_path / "dst", ser) == expected
    with pytest.raises(StorageError):  # the destination is not empty any more
        migrate_file_queue(tmp_path / "src", tmp_path / "dst", ser)


@pytest.mark.parametrize("name", NAMES)
def test_migrate_command(tmp_path: Path, name: str) -> None:
    """python -m persistq migrate moves the items and prints how many."""
    expected = make_pq_queue(tmp_path / "src", name)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "persistq",
            "migrate",
            str(tmp_path / "src"),
            str(tmp_path / "dst"),
            "--serializer",
            name,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"migrated {len(expected)} items" in result.stdout
    assert drain(tmp_path / "dst", getattr(serializers, name)) == expected


def test_migrate_command_errors(tmp_path: Path) -> None:
    """The command exits 1 with a message on a bad source and 2 on bad usage."""
    missing = subprocess.run(
        [sys.executable, "-m", "persistq", "migrate", str(tmp_path / "nope"), str(tmp_path / "dst")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode == 1
    assert "not a persist-queue file queue" in missing.stderr
    make_pq_queue(tmp_path / "src", "json")
    wrong = subprocess.run(
        [sys.executable, "-m", "persistq", "migrate", str(tmp_path / "src"), str(tmp_path / "dst")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert wrong.returncode == 1
    assert "serializer" in wrong.stderr
    usage = subprocess.run(
        [sys.executable, "-m", "persistq", "migrate", "--serializer", "yaml", "a", "b"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert usage.returncode == 2


def test_opening_persist_queue_dir_names_the_command(tmp_path: Path) -> None:
    """Opening a persist-queue directory directly fails with the migrate command in the message."""
    make_pq_queue(tmp_path / "src", "pickle")
    with pytest.raises(StorageError, match="python -m persistq migrate"):
        Queue(str(tmp_path / "src"))


class _StreamJSON:
    """A custom serializer of persist-queue's file-queue shape: dump/load only."""

    NAME = "custom-json"

    def dump(self, value: Any, fp: Any) -> None:
        serializers.json.dump(value, fp)

    def load(self, fp: Any) -> Any:
        return serializers.json.load(fp)


def test_migrate_with_a_dump_load_only_serializer(tmp_path: Path) -> None:
    """A custom serializer with only dump/load reads the source and writes the persistq queue."""
    expected = make_pq_queue(tmp_path / "src", "json")
    ser = _StreamJSON()
    assert migrate_file_queue(tmp_path / "src", tmp_path / "dst", ser) == len(expected)
    assert drain(tmp_path / "dst", ser) == expected


def test_migrate_needs_load_to_read_unframed_records(tmp_path: Path) -> None:
    """A dumps/loads-only serializer cannot split persist-queue's records: TypeError naming load(fp)."""
    make_pq_queue(tmp_path / "src", "json")

    class BytesOnly:
        dumps = staticmethod(serializers.json.dumps)
        loads = staticmethod(serializers.json.loads)

    with pytest.raises(TypeError, match=r"load\(fp\)"):
        migrate_file_queue(tmp_path / "src", tmp_path / "dst", BytesOnly())
    assert not (tmp_path / "dst").exists()
