"""Programs that never call close() exit promptly, quietly, and keep what they were promised.

Each case runs ``tests/_exit_children.py`` as its own process, the way a user
runs a script written for persist-queue, with a hard timeout: a hang fails the
test. Then the queue is reopened here and what is stored is checked.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _mysql_support import drop_tables, dsn, server_env

import persistq.sync as persistqueue

CHILD = Path(__file__).parent / "_exit_children.py"
HARD_TIMEOUT = 30

# kind -> the items a fresh reopen gets, in order, after the child got one and
# neither acked nor task_done'd it.
SQLITE_KINDS: dict[str, list[str]] = {
    "SQLiteQueue": ["b", "c"],
    "FIFOSQLiteQueue": ["b", "c"],
    "FILOSQLiteQueue": ["b", "a"],
    "UniqueQ": ["b", "c"],
    "PriorityQueue": ["b", "c"],
    "SQLiteAckQueue": ["a", "b", "c"],  # the unacked item comes back
    "FILOSQLiteAckQueue": ["c", "b", "a"],
    "UniqueAckQ": ["a", "b", "c"],
    "PriorityAckQueue": ["a", "b", "c"],
    "Queue": ["a", "b", "c"],  # got, not task_done: comes back
}
MYSQL_KINDS: dict[str, list[str]] = {"MySQLQueue": ["b", "c"], "MySQLAckQueue": ["a", "b", "c"]}
ENDINGS = ["normal", "exit", "exception", "sigint", "daemons"]


def run_child(
    kind: str, ending: str, directory: Path, dsn_base: str = ""
) -> subprocess.CompletedProcess[str]:
    """Run the user's script to its end (Ctrl-C'd for ``sigint``); fail if it does not exit."""
    args = [sys.executable, "-W", "default", str(CHILD), kind, ending, str(directory)]
    if dsn_base:
        args.append(dsn_base)
    with subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=directory
    ) as proc:
        assert proc.stdout is not None
        try:
            if ending == "sigint":
                lines = []
                for line in proc.stdout:
                    lines.append(line)
                    if line.strip() == "READY":
                        break
                # The child is now entering its blocking get(): interrupt it there.
                _sleep_briefly()
                proc.send_signal(signal.SIGINT)
                out, err = proc.communicate(timeout=HARD_TIMEOUT)
                out = "".join(lines) + out
            else:
                out, err = proc.communicate(timeout=HARD_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"{kind}/{ending}: the script did not exit within {HARD_TIMEOUT} s\n{out}\n{err}")
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def _sleep_briefly() -> None:
    import time

    time.sleep(0.3)


def check_ending(ending: str, result: subprocess.CompletedProcess[str]) -> None:
    """The exit code and the output are the script's own; persistq prints nothing."""
    assert "READY" in result.stdout, result.stdout + result.stderr
    err = result.stderr
    if ending in ("normal", "daemons"):
        assert result.returncode == 0, err
        assert err == ""
    elif ending == "exit":
        assert result.returncode == 3, err
        assert err == ""
    elif ending == "exception":
        assert result.returncode == 1, err
        assert err.startswith("Traceback (most recent call last):"), err
        assert err.endswith("RuntimeError: boom\n"), err
        assert err.count("Traceback") == 1, err
    else:
        assert result.returncode == -signal.SIGINT, err
        assert err.endswith("KeyboardInterrupt\n"), err
        assert err.count("Traceback") == 1, err
    assert "Exception ignored" not in err
    assert "Warning" not in err


def drain(q: Any) -> list[Any]:
    """Take every waiting item as a user would (acking ack-queue items)."""
    items = []
    while True:
        try:
            item = q.get(block=False)
        except persistqueue.Empty:
            return items
        items.append(item)
        if hasattr(q, "ack"):
            q.ack(item)
        else:
            q.task_done()


@pytest.mark.parametrize("ending", ENDINGS)
@pytest.mark.parametrize("kind", list(SQLITE_KINDS))
def test_script_without_close_exits_and_keeps_its_items(kind: str, ending: str, tmp_path: Path) -> None:
    """A script that never closes its queue exits (normal end, sys.exit, exception, Ctrl-C,
    daemon threads blocked in get) and a reopen finds what it was promised."""
    result = run_child(kind, ending, tmp_path)
    check_ending(ending, result)
    assert result.stdout.startswith("got "), result.stdout
    path = tmp_path / "main"
    q = persistqueue.Queue(str(path)) if kind == "Queue" else getattr(persistqueue, kind)(str(path))
    try:
        assert drain(q) == SQLITE_KINDS[kind]
    finally:
        q.close()


@pytest.mark.parametrize("ending", ENDINGS)
def test_pdict_script_without_close_exits_and_keeps_its_entries(ending: str, tmp_path: Path) -> None:
    """A script that never closes its PDict exits in every case, and its entries are stored."""
    result = run_child("PDict", ending, tmp_path)
    check_ending(ending, result)
    with persistqueue.PDict(str(tmp_path / "pdict"), "main") as d:
        assert dict(d) == {"a": 1, "b": 2, "c": 3}


@pytest.fixture
def mysql_base() -> Iterator[tuple[dict[str, str], str]]:
    """The throwaway server's settings and a fresh queue-name prefix; its tables dropped afterwards."""
    env = server_env()
    prefix = "exit" + uuid.uuid4().hex[:10]
    yield env, prefix
    tables = [f"{t}_{prefix}_{s}" for t in ("queue", "ack_queue") for s in ("main", "idle", "empty")]
    drop_tables(env, *tables)


@pytest.mark.parametrize("ending", ENDINGS)
@pytest.mark.parametrize("kind", list(MYSQL_KINDS))
def test_mysql_script_without_close_exits_and_keeps_its_items(
    kind: str, ending: str, tmp_path: Path, mysql_base: tuple[dict[str, str], str]
) -> None:
    """A script on MySQL that never closes its queue exits in every case; nothing it was promised is lost."""
    env, prefix = mysql_base
    result = run_child(kind, ending, tmp_path, dsn(env, prefix))
    check_ending(ending, result)
    q = getattr(persistqueue, kind)(dsn(env, f"{prefix}_main"))
    try:
        assert drain(q) == MYSQL_KINDS[kind]
    finally:
        q.close()


def test_reassigned_queue_is_closed_and_the_path_reopens(tmp_path: Path) -> None:
    """``q = Queue(a); q = Queue(a)`` in a script: the first queue closes itself, the second opens.

    Run with Python's default warning filters, as users run scripts (a queue
    collected unclosed emits a ResourceWarning, hidden by default like a file's).
    """
    script = (
        "import persistq.sync as persistqueue\n"
        "q = persistqueue.Queue('spool')\n"
        "q.put('first')\n"
        "q = None\n"
        "q = persistqueue.Queue('spool')\n"
        "print(q.get())\n"
        "q = persistqueue.SQLiteQueue('sql')\n"
        "q.put('second')\n"
        "q = persistqueue.SQLiteQueue('sql')\n"
        "print(q.get())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=HARD_TIMEOUT,
        env={k: v for k, v in os.environ.items() if k not in ("PYTHONWARNINGS", "PYTHONDEVMODE")},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "first\nsecond\n"
    assert result.stderr == ""
