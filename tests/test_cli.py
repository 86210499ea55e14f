"""The command line (persistq.cli) against real queues of every kind."""

from __future__ import annotations

import json
import pathlib
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from conftest import mysql_env

import persistq
import persistq.sync as pq
from persistq.cli import cli, main
from persistq.engines.file import HEADER_SIZE

JSON = persistq.serializers.json
COMMANDS = [
    "info",
    "stats",
    "peek",
    "requeue",
    "redrive",
    "purge",
    "verify",
    "vacuum",
    "compact",
    "migrate",
]


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def run_json(*args: str) -> Any:
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def by_table(info: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {q["table"]: q for q in info["queues"]}


@pytest.fixture
def sqlite_dir(tmp_path: Path) -> str:
    """One database holding a queue of every SQLite kind and a PDict."""
    path = str(tmp_path / "db")
    with pq.SQLiteQueue(path, name="jobs", serializer=JSON) as q:
        q.put_many([{"n": i} for i in range(3)])
    with pq.FILOSQLiteQueue(path, name="stack", serializer=JSON) as q:
        q.put_many(["a", "b"])
    with pq.UniqueQ(path, name="frontier", serializer=JSON) as q:
        q.put("u")
    with pq.PriorityQueue(path, name="prio", serializer=JSON) as q:
        q.put("later", priority=5)
        q.put("first", priority=1)
    with pq.PDict(path, "settings", serializer=JSON) as d:
        d["k"] = 1
    return path


def make_ack_queue(path: str) -> None:
    """An ack queue with items in every status (one in flight with an expired lease)."""
    with pq.SQLiteAckQueue(path, name="work", serializer=JSON) as q:
        q.put_many(["acked", "failed", "delayed", "inflight", "ready"])
        q.ack(q.get())
        q.ack_failed(q.get())
        q.nack(q.get(), delay=600)
    with sqlite3.connect(str(Path(path) / "data.db")) as conn:
        # A consumer that crashed while holding "inflight": its lease ended a minute ago.
        conn.execute(
            "UPDATE ack_queue_work SET status=2, pq_attempts=1, pq_lease=? WHERE _id=4", (time.time() - 60,)
        )
    conn.close()


def test_help_subprocess() -> None:
    """python -m persistq --help lists every command and exits 0."""
    result = subprocess.run(
        [sys.executable, "-m", "persistq", "--help"], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    for command in COMMANDS:
        assert command in result.stdout
    assert "python -m persistq" in result.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    """Every command answers --help with its usage and exits 0."""
    result = run(command, "--help")
    assert result.exit_code == 0
    assert "Usage:" in result.output


def test_info_lists_every_table(sqlite_dir: str) -> None:
    """info --json names each table's kind, serializer and counts."""
    make_ack_queue(sqlite_dir)
    info = run_json("info", sqlite_dir)
    assert info["engine"] == "sqlite"
    assert info["bytes_on_disk"] > 0
    tables = by_table(info)
    assert {t: q["kind"] for t, q in tables.items()} == {
        "queue_jobs": "SQLiteQueue",
        "filo_queue_stack": "FILOSQLiteQueue",
        "unique_queue_frontier": "UniqueQ",
        "priority_queue_prio": "PriorityQueue",
        "dict_settings": "PDict",
        "ack_queue_work": "SQLiteAckQueue",
    }
    assert all(q["serializer"] == "json" for q in info["queues"])
    assert tables["queue_jobs"]["counts"] == {"ready": 3, "in_flight": 0}
    assert tables["dict_settings"]["counts"] == {"entries": 1}
    assert tables["queue_jobs"]["oldest_age_seconds"] >= 0
    assert tables["ack_queue_work"]["counts"] == {
        "ready": 1,
        "in_flight": 1,
        "expired": 1,
        "delayed": 1,
        "failed": 1,
        "acked": 1,
    }


def test_info_table_and_human_output(sqlite_dir: str) -> None:
    """--table picks one queue (by queue or table name); without --json a table is printed."""
    assert [q["table"] for q in run_json("info", sqlite_dir, "--table", "jobs")["queues"]] == ["queue_jobs"]
    assert [q["table"] for q in run_json("stats", sqlite_dir, "--table", "filo_queue_stack")["queues"]] == [
        "filo_queue_stack"
    ]
    result = run("info", str(Path(sqlite_dir) / "data.db"))
    assert result.exit_code == 0
    assert "TABLE" in result.output
    assert "SERIALIZER" in result.output
    assert "queue_jobs" in result.output
    missing = run("info", sqlite_dir, "--table", "nope")
    assert missing.exit_code == 1
    assert "no queue table 'nope'" in missing.output


def test_info_file_queue(tmp_path: Path) -> None:
    """info on a file-queue directory reports its serializer, waiting records and size."""
    path = str(tmp_path / "fq")
    with pq.Queue(path, serializer=JSON, chunksize=2) as q:
        q.put_many(list(range(5)))
        q.get()
        q.task_done()
    info = run_json("info", path)
    (queue,) = info["queues"]
    assert (info["engine"], queue["kind"], queue["serializer"]) == ("file", "Queue", "json")
    assert queue["counts"] == {"ready": 4, "corrupt": 0}
    assert queue["locked"] is False
    assert queue["bytes"] > 0


def test_peek_decodes_safe_serializers_without_consuming(sqlite_dir: str) -> None:
    """peek shows items in get order (FIFO, FILO, priority) and leaves them in the queue."""
    items = run_json("peek", sqlite_dir, "--table", "jobs", "-n", "2")["items"]
    assert [i["data"] for i in items] == [{"n": 0}, {"n": 1}]
    assert all(i["decoded"] for i in items)
    assert [i["data"] for i in run_json("peek", sqlite_dir, "--table", "stack")["items"]] == ["b", "a"]
    assert [i["data"] for i in run_json("peek", sqlite_dir, "--table", "prio")["items"]] == ["first", "later"]
    with pq.SQLiteQueue(sqlite_dir, name="jobs", serializer=JSON) as q:
        assert q.qsize() == 3
    human = run("peek", sqlite_dir, "--table", "jobs")
    assert human.exit_code == 0
    assert "{'n': 2}" in human.output


def test_peek_ack_statuses(tmp_path: Path) -> None:
    """peek --status picks ack items by status and shows their attempts."""
    path = str(tmp_path / "ack")
    make_ack_queue(path)
    assert [i["data"] for i in run_json("peek", path, "--status", "failed")["items"]] == ["failed"]
    everything = run_json("peek", path, "--status", "all")["items"]
    assert [(i["data"], i["status"]) for i in everything] == [
        ("acked", "acked"),
        ("failed", "failed"),
        ("delayed", "delayed"),
        ("inflight", "in_flight"),
        ("ready", "ready"),
    ]


class _Tripwire:
    """Unpickling this writes a file: proof that code stored in a queue ran."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> Any:
        return (pathlib.Path.write_text, (self.path, "ran"))


def test_peek_refuses_pickle_unless_trusted(tmp_path: Path) -> None:
    """peek never unpickles without --trust (it shows bytes and says why); with --trust it does."""
    path, tripwire = str(tmp_path / "q"), tmp_path / "tripwire"
    with pq.SQLiteQueue(path) as q:
        q.put(_Tripwire(tripwire))
    refused = run("peek", path)
    assert refused.exit_code == 0
    assert "--trust" in refused.stderr
    assert not tripwire.exists()
    data = run_json("peek", path)["items"][0]
    assert data["decoded"] is False
    assert "base64" in data["data"]
    assert not tripwire.exists()
    assert run("peek", path, "--trust").exit_code == 0
    assert tripwire.read_text() == "ran"


def test_peek_file_queue(tmp_path: Path) -> None:
    """peek reads a file queue's records from its read position, across segments."""
    path = str(tmp_path / "fq")
    with pq.Queue(path, serializer=JSON, chunksize=2) as q:
        q.put_many(["a", "b", "c", "d"])
        q.get()
        q.task_done()
    items = run_json("peek", path, "-n", "2")["items"]
    assert [i["data"] for i in items] == ["b", "c"]
    assert [i["segment"] for i in items] == ["0000000000.seg", "0000000001.seg"]


def test_requeue_failed_and_expired(tmp_path: Path) -> None:
    """requeue makes dead letters and expired in-flight items ready; redrive is the same command."""
    path = str(tmp_path / "ack")
    make_ack_queue(path)
    result = run_json("requeue", path, "--failed")
    assert result == {"table": "ack_queue_work", "failed_requeued": 1, "in_flight_returned": 0}
    result = run_json("redrive", path, "--expired")
    assert result["in_flight_returned"] == 1
    counts = by_table(run_json("info", path))["ack_queue_work"]["counts"]
    assert (counts["ready"], counts["failed"], counts["in_flight"]) == (3, 0, 0)


def test_requeue_needs_an_ack_queue(sqlite_dir: str) -> None:
    """requeue on a plain queue exits 1 and says why."""
    result = run("requeue", sqlite_dir, "--table", "jobs")
    assert result.exit_code == 1
    assert "not an ack queue" in result.output


def test_purge_asks_first(sqlite_dir: str) -> None:
    """purge deletes nothing when the answer is no, and everything with yes or --yes."""
    refused = run("purge", sqlite_dir, "--table", "jobs", input="n\n")
    assert refused.exit_code == 1
    assert by_table(run_json("info", sqlite_dir))["queue_jobs"]["total"] == 3
    assert run("purge", sqlite_dir, "--table", "jobs", input="y\n").exit_code == 0
    assert by_table(run_json("info", sqlite_dir))["queue_jobs"]["total"] == 0
    assert run_json("purge", sqlite_dir, "--table", "stack", "--yes")["purged"] == {"filo_queue_stack": 2}


def test_purge_ack_keeps_in_flight_unless_asked(tmp_path: Path) -> None:
    """purge leaves items a consumer holds unless --in-flight is given."""
    path = str(tmp_path / "ack")
    make_ack_queue(path)
    assert run_json("purge", path, "--yes")["purged"] == {"ack_queue_work": 4}
    assert by_table(run_json("info", path))["ack_queue_work"]["total"] == 1
    assert run_json("purge", path, "--yes", "--in-flight")["purged"] == {"ack_queue_work": 1}


def test_purge_file_queue_and_locked(tmp_path: Path) -> None:
    """purge drains a file queue, and refuses clearly while another queue object holds it."""
    path = str(tmp_path / "fq")
    with pq.Queue(path, serializer=JSON) as q:
        q.put_many(list(range(10)))
        locked = run("purge", path, "--yes")
    assert locked.exit_code == 1
    assert "already open" in locked.output
    assert run_json("purge", path, "--yes")["purged"] == {"fq": 10}
    with pq.Queue(path, serializer=JSON) as q:
        assert q.qsize() == 0


def test_verify_sqlite(sqlite_dir: str) -> None:
    """verify runs integrity_check and exits 0 on a sound database."""
    report = run_json("verify", sqlite_dir)
    assert report["ok"] is True
    assert "queue_jobs" in report["checked"]


def test_verify_file_queue_reports_a_flipped_byte(tmp_path: Path) -> None:
    """A flipped byte in a segment makes verify name the file and offset, and exit 1."""
    path = tmp_path / "fq"
    with pq.Queue(str(path), serializer=JSON) as q:
        q.put_many(["first", "second", "third"])
    assert run("verify", str(path)).exit_code == 0
    segment = path / "0000000000.seg"
    data = bytearray(segment.read_bytes())
    data[HEADER_SIZE + 8 + 2] ^= 0xFF  # inside the first record's payload
    segment.write_bytes(bytes(data))
    result = run("verify", str(path))
    assert result.exit_code == 1
    assert f"{segment} offset {HEADER_SIZE}: corrupt record" in result.stderr
    report = json.loads(run("verify", str(path), "--json").stdout)
    assert report["ok"] is False
    assert len(report["problems"]) == 1


def test_corrupt_database_is_reported(tmp_path: Path) -> None:
    """A garbage data.db gives a clear 'corrupt queue' message and exit 1 from every command."""
    path = tmp_path / "q"
    path.mkdir()
    (path / "data.db").write_bytes(b"this is not a database at all" * 100)
    for command in ("info", "peek", "verify", "purge", "vacuum"):
        result = run(command, str(path), "--yes") if command == "purge" else run(command, str(path))
        assert result.exit_code == 1, command
        assert "corrupt queue" in result.output, command
    header_only = tmp_path / "header.db"
    header_only.write_bytes(b"SQLite format 3\x00" + b"\x00garbage" * 50)
    result = run("verify", str(header_only))
    assert result.exit_code == 1
    assert "header.db" in result.output


def test_missing_path_and_usage_errors(tmp_path: Path) -> None:
    """A missing path exits 1 with a clear message; bad usage exits 2."""
    missing = run("info", str(tmp_path / "nope"))
    assert missing.exit_code == 1
    assert "no such file or directory" in missing.output
    assert run("peek", str(tmp_path), "-n", "0").exit_code == 2
    assert run("info").exit_code == 2
    assert run("frobnicate").exit_code == 2
    assert main(["info", str(tmp_path / "nope")]) == 1
    assert main(["--help"]) == 0


def test_not_a_queue_directory(tmp_path: Path) -> None:
    """A directory that holds no queue is refused with a message naming what is missing."""
    result = run("info", str(tmp_path))
    assert result.exit_code == 1
    assert "not a persistq queue directory" in result.output


def test_vacuum_and_compact(sqlite_dir: str, tmp_path: Path) -> None:
    """vacuum shrinks an SQLite file after a purge; compact reopens a file queue and keeps its items."""
    with pq.SQLiteQueue(sqlite_dir, name="big", serializer=JSON) as q:
        q.put_many(["x" * 1000] * 500)
    run_json("purge", sqlite_dir, "--table", "big", "--yes")
    report = run_json("vacuum", sqlite_dir)
    assert report["bytes_after"] < report["bytes_before"]
    path = str(tmp_path / "fq")
    with pq.Queue(path, serializer=JSON, chunksize=2) as q:
        q.put_many(list(range(6)))
    assert run("compact", path).exit_code == 0
    with pq.Queue(path, serializer=JSON) as q:
        assert q.get_many(10, block=False) == list(range(6))


def test_migrate_persist_queue_file_queue(tmp_path: Path) -> None:
    """migrate converts a persist-queue file queue written in the test; the old usage still works."""
    persistqueue = pytest.importorskip("persistqueue")
    from persistqueue.serializers import json as pq_json

    src, dst = tmp_path / "src", tmp_path / "dst"
    old = persistqueue.Queue(str(src), chunksize=3, serializer=pq_json)
    for i in range(8):
        old.put({"i": i})
    del old
    result = run("migrate", str(src), str(dst), "--serializer", "json")
    assert result.exit_code == 0, result.output
    assert "migrated 8 items" in result.output
    with pq.Queue(str(dst), serializer=JSON) as q:
        assert q.get_many(100, block=False) == [{"i": i} for i in range(8)]
    assert run("info", str(src)).exit_code == 0  # names the persist-queue format and the command
    assert "persist-queue 1.x file queue" in run("info", str(src)).output


def test_migrate_persist_queue_sqlite(tmp_path: Path) -> None:
    """migrate copies a persist-queue SQLite database; persistq opens the copy in place."""
    persistqueue = pytest.importorskip("persistqueue")
    src, dst = tmp_path / "src", tmp_path / "dst"
    old = persistqueue.SQLiteQueue(str(src), auto_commit=True)
    old.put("a")
    old.put({"b": 2})
    old_ack = persistqueue.SQLiteAckQueue(str(src))
    old_ack.put("x")
    del old, old_ack
    result = run("migrate", str(src), str(dst))
    assert result.exit_code == 0, result.output
    assert "ack_queue_default, queue_default" in result.output
    info = by_table(run_json("info", str(dst)))
    assert info["queue_default"]["serializer"] is None  # persist-queue records none
    assert info["queue_default"]["counts"]["ready"] == 2
    with pq.SQLiteQueue(str(dst)) as q:
        assert q.get_many(10, block=False) == ["a", {"b": 2}]
    with pq.SQLiteQueue(str(src), serializer=JSON, name="other") as untouched:
        assert untouched.qsize() == 0
    again = run("migrate", str(src), str(dst))
    assert again.exit_code == 1
    assert "not an empty directory" in again.output


def test_mysql_queue() -> None:
    """info, peek, verify, vacuum and purge work on a MySQL DSN, never showing the password."""
    env = mysql_env()
    if env is None:
        pytest.skip("needs the throwaway MariaDB of `make test` (PERSISTQ_MYSQL_* variables)")
    pytest.importorskip("pymysql")
    dsn = f"mysql://{env['user']}:{env['password']}@{env['host']}:{env['port']}/{env['database']}?table=cli_test"
    with pq.MySQLQueue(dsn, serializer=JSON) as q:
        q.put_many([1, {"a": 2}])
    try:
        info = run_json("info", dsn)
        assert env["password"] not in json.dumps(info)
        (queue,) = info["queues"]
        assert (queue["kind"], queue["serializer"], queue["counts"]["ready"]) == ("MySQLQueue", "json", 2)
        assert [i["data"] for i in run_json("peek", dsn)["items"]] == [1, {"a": 2}]
        assert run_json("verify", dsn)["ok"] is True
        assert run("vacuum", dsn).exit_code == 0
    finally:
        assert run_json("purge", dsn, "--yes")["purged"] == {"queue_cli_test": 2}
