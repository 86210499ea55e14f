"""Patterns of real programs written for persist-queue, each run as its own processes (issue 21).

Every program is ``tests/_real_program_children.py``, run with a hard timeout
once on ``import persistq.sync as persistqueue`` and once on persist-queue
1.1.0 itself, so what persist-queue does in the same script is measured here,
not claimed. The checks are the programs' exit codes and output, what a local
server received, and what is on disk afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pytest

CHILD = Path(__file__).parent / "_real_program_children.py"
HARD_TIMEOUT = 30
LIBS = ["persistq", "persistqueue"]

pytestmark = pytest.mark.timeout(90)


# Python's default warning filters, as users run scripts: a queue collected
# unclosed emits a ResourceWarning, hidden by default like a file's.
ENV = {k: v for k, v in os.environ.items() if k not in ("PYTHONWARNINGS", "PYTHONDEVMODE")}


def _command(lib: str, *args: object) -> list[str]:
    return [sys.executable, str(CHILD), lib, *map(str, args)]


def run(lib: str, *args: object) -> dict[str, Any]:
    """Run a program to its end: it exits 0 and quietly; return its JSON result line."""
    try:
        done = subprocess.run(
            _command(lib, *args), capture_output=True, text=True, timeout=HARD_TIMEOUT, check=False, env=ENV
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{args}: the program did not exit within {HARD_TIMEOUT} s\n{exc.stdout}\n{exc.stderr}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == ""
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


@contextmanager
def started(lib: str, *args: object) -> Iterator[subprocess.Popen[str]]:
    """A program running in the background; killed if the test leaves it alive."""
    with subprocess.Popen(
        _command(lib, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV
    ) as proc:
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.communicate(timeout=HARD_TIMEOUT)


def read_until(proc: subprocess.Popen[str], marker: str) -> list[str]:
    """The program's output lines up to the one starting with ``marker`` (a watchdog kills a hang)."""
    watchdog = threading.Timer(HARD_TIMEOUT, proc.kill)
    watchdog.start()
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith(marker):
                return lines
    finally:
        watchdog.cancel()
    assert proc.stderr is not None
    pytest.fail(f"the program ended before printing {marker!r}: {lines}\n{proc.stderr.read()}")


def sigkill(proc: subprocess.Popen[str]) -> None:
    """SIGKILL the program and reap it."""
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(HARD_TIMEOUT) == -signal.SIGKILL


def table_rows(db: Path, *tables: str) -> list[tuple[Any, ...]]:
    """Every row of those of ``tables`` that exist in the SQLite file ``db``, read with plain sqlite3."""
    with closing(sqlite3.connect(db)) as conn:
        present = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        return [row for t in tables if t in present for row in conn.execute(f'SELECT * FROM "{t}"')]


# ---------------------------------------------------------------- heartbeat


class Server:
    """The heartbeat server, on one local port: down (connections refused) or up (each line answered OK).

    Up, it records every line received; with ``withhold_at=n`` it answers no
    more from the n-th line of that run on, and sets ``withheld``.
    """

    def __init__(self) -> None:
        self.port = 0
        self.lines: list[str] = []
        self.withheld = threading.Event()
        self._thread: threading.Thread | None = None
        self._sock = self._bound()

    def _bound(self) -> socket.socket:
        # Bound but not listening: a connection to the port is refused, and
        # nobody else can take the port while the server is down.
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        return sock

    def up(self, withhold_at: int = 0) -> None:
        """Accept connections; answer each line ``OK`` (up to ``withhold_at``)."""
        self.withheld.clear()
        self._sock.listen()
        self._thread = threading.Thread(target=self._serve, args=(self._sock, withhold_at), daemon=True)
        self._thread.start()

    def down(self) -> None:
        """Stop listening: connections are refused again."""
        self.close()
        self._sock = self._bound()

    def close(self) -> None:
        """Stop listening and free the port."""
        with contextlib.suppress(OSError):  # not listening
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() of the serving thread
        self._sock.close()
        if self._thread is not None:
            self._thread.join(HARD_TIMEOUT)
            assert not self._thread.is_alive(), "the server thread did not stop"
            self._thread = None

    def _serve(self, sock: socket.socket, withhold_at: int) -> None:
        received = 0
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return  # closed by down()
            with conn, conn.makefile("r", encoding="ascii") as lines:
                for line in lines:
                    self.lines.append(line.rstrip("\n"))
                    received += 1
                    if received == withhold_at:
                        self.withheld.set()
                    if withhold_at and received >= withhold_at:
                        continue  # the sender now waits for an answer that never comes
                    conn.sendall(b"OK\n")


def heartbeats(first: int, stop: int) -> list[str]:
    """The heartbeat items ``hb-first`` … ``hb-(stop - 1)``."""
    return [f"hb-{i:04d}" for i in range(first, stop)]


def buffered(qpath: Path) -> list[str]:
    """Heartbeats stored in the buffer's ``data.db``, waiting or got by a process that is gone."""
    # persistq keeps items got with auto_commit=False in a table of its own
    # until task_done; persist-queue leaves them in queue_default.
    rows = table_rows(qpath / "data.db", "queue_default", "persistq_pending_queue_default")
    return sorted(pickle.loads(row[1]) for row in rows)


@pytest.mark.parametrize("lib", LIBS)
def test_heartbeat_buffer_delivers_everything_in_order_across_restarts_and_a_kill(
    lib: str, tmp_path: Path
) -> None:
    """Heartbeats buffered while the server is down all arrive in order; a SIGKILLed send comes back."""
    # persist-queue 1.1.0 passes every assertion here too (the [persistqueue]
    # case): it keeps every heartbeat, the one got before a restart comes first,
    # task_done'd ones are deleted, the one killed before task_done comes back.
    qpath = tmp_path / "buffer"
    server = Server()
    try:
        # Down: the agent buffers 20 heartbeats (holding the first it got) and is restarted.
        down = run(lib, "heartbeat", qpath, server.port, 0, 20)
        assert (down["sent"], down["held"]) == ([], "hb-0000")
        assert down["refused"] >= 1
        assert buffered(qpath) == heartbeats(0, 20)

        # Up: the restarted agent drains the buffer while 10 new heartbeats arrive.
        server.up()
        drained = run(lib, "heartbeat", qpath, server.port, 20, 10)
        assert drained == {"sent": heartbeats(0, 30), "held": None, "refused": 0}
        assert server.lines == heartbeats(0, 30)
        assert buffered(qpath) == []

        # Down again for 10 more; then up, and SIGKILL the sender while it waits for
        # the server's answer to its fourth heartbeat (got, sent, not task_done).
        server.down()
        down = run(lib, "heartbeat", qpath, server.port, 30, 10)
        assert (down["sent"], down["held"]) == ([], "hb-0030")
        server.up(withhold_at=4)
        with started(lib, "heartbeat", qpath, server.port, 40, 0) as proc:
            assert server.withheld.wait(HARD_TIMEOUT), "the sender did not send four heartbeats"
            sigkill(proc)
        assert server.lines[30:] == heartbeats(30, 34)
        assert buffered(qpath) == heartbeats(33, 40)  # the three confirmed ones are gone for good

        # Restarted: the killed send comes back first, then the rest; nothing is lost.
        server.down()
        server.up()
        drained = run(lib, "heartbeat", qpath, server.port, 40, 0)
        assert drained == {"sent": heartbeats(33, 40), "held": None, "refused": 0}
        assert server.lines == [*heartbeats(0, 34), *heartbeats(33, 40)]
        assert buffered(qpath) == []
    finally:
        server.close()


# ------------------------------------------------------------------- plugin


def job_statuses(qpath: Path) -> dict[str, int]:
    """Each job's status code in ``data.db``, read as the plugins read it (plain SQL, ``pickle.loads``)."""
    rows = table_rows(qpath / "data.db", "ack_queue_default")
    return {pickle.loads(row[1])["job"]: row[3] for row in rows}


@pytest.mark.parametrize("lib", LIBS)
def test_plugin_processes_repair_a_crashed_job_with_raw_sql_and_count_like_persist_queue(
    lib: str, tmp_path: Path
) -> None:
    """Plugins share an ack queue; a job held by a SIGKILLed one is repaired by raw SQL; counts agree."""
    # Every number below is what persist-queue 1.1.0 gives for this script (the
    # [persistqueue] case measures it): its status codes on disk, the repaired
    # job delivered first, the nacked job first in the final drain.
    qpath = tmp_path / "jobs"
    assert run(lib, "plugin", qpath, "produce") == {"put": 10}
    with started(lib, "plugin", qpath, "crash") as crashed:
        assert read_until(crashed, "HOLDING") == ["HOLDING job-0"]
        assert run(lib, "plugin", qpath, "work") == {"acked": "job-1"}  # beside the live holder
        sigkill(crashed)
    # auto_resume=False: the crashed plugin's job stays unack (2) on disk.
    assert job_statuses(qpath) == {"job-0": 2, "job-1": 5} | {f"job-{i}": 0 for i in range(2, 10)}

    repaired = run(lib, "plugin", qpath, "repair-batch")
    assert repaired == {
        "before": {"0": 8, "2": 1, "5": 1},
        "repaired": ["job-0"],
        "batch": ["job-0", "job-2", "job-3", "job-4", "job-5", "job-6"],
        "counts": {"ready_count": 1, "unack_count": 0, "acked_count": 4, "ack_failed_count": 2, "qsize": 4},
    }
    acked, ready, failed, inited = 5, 1, 9, 0
    assert job_statuses(qpath) == (
        {f"job-{i}": acked for i in range(4)}
        | {"job-4": ready, "job-5": failed, "job-6": failed}
        | {f"job-{i}": inited for i in range(7, 10)}
    )
    assert run(lib, "plugin", qpath, "drain") == {
        "got": ["job-4", "job-7", "job-8", "job-9"],
        "counts": {"ready_count": 0, "unack_count": 0, "acked_count": 8, "ack_failed_count": 2, "qsize": 0},
    }


# ------------------------------------------------------------------- walker

SQLITE_ERROR = "the database file was deleted or replaced"
"""What the old object of a deleted SQLite queue says (with its path) on its next call (issue 21)."""


def check_storage_error(late: dict[str, Any], qpath: Path, phrase: str) -> None:
    """The kept object's call raised persistq's StorageError, naming the path and what happened."""
    assert "error" in late, f"the old object's call returned {late} instead of raising"
    assert "persistq.errors.StorageError" in late["error"]["mro"], late
    assert str(qpath) in late["error"]["message"], late
    assert phrase in late["error"]["message"], late


def file_tree(root: Path) -> list[str]:
    """120 files in 6 directories: the walker's input."""
    paths = []
    for d in range(6):
        (root / f"d{d}").mkdir(parents=True)
        for f in range(20):
            path = root / f"d{d}" / f"f{f:02d}.txt"
            path.write_bytes(b"")
            paths.append(str(path))
    return paths


@pytest.mark.parametrize(
    ("lib", "max_acked"),
    [("persistq", 0), ("persistq", 10), ("persistqueue", 0)],
    ids=["persistq", "persistq-max_acked_length-10", "persistqueue"],
)
def test_resumable_walker_redoes_nothing_after_a_kill_and_starts_over_on_a_deleted_queue(
    lib: str, max_acked: int, tmp_path: Path
) -> None:
    """A UniqueAckQ walker SIGKILLed after 50 of 120 files re-puts all and processes each file once."""
    paths = file_tree(tmp_path / "tree")
    qpath, log = tmp_path / "work", tmp_path / "processed.log"
    walk = ("walker", tmp_path / "tree", qpath, log)
    with started(lib, *walk, 50, max_acked) as proc:
        assert read_until(proc, "HELD") == ["QUEUED 120", "HELD"]
        sigkill(proc)  # 50 processed and acked, 3 in flight, 67 waiting
    assert len(log.read_text().splitlines()) == 50

    # Resumed, the walker re-puts every path: persist-queue refuses all 120 (its
    # UNIQUE(data) covers acked rows), so it processes exactly the other 70.
    resumed = run(lib, *walk, 0, max_acked)
    processed = Counter(log.read_text().splitlines())
    assert [p for p, n in processed.items() if n > 1] == []  # none processed twice
    assert sorted(processed) == sorted(paths)
    kept = max_acked or 120  # persist-queue trims nothing: all 120 acked rows stay in data.db
    assert resumed == {
        "accepted": 0,
        "qsize": 0,
        "ready_count": 0,
        "unack_count": 0,
        "acked_count": kept,
        "ack_failed_count": 0,
    }
    rows = table_rows(qpath / "data.db", "ack_unique_queue_default")
    assert Counter(row[3] for row in rows) == {5: kept}

    # Start over in one process: keep q.ack, delete the directory, reopen the path.
    fresh = run(lib, "walker-restart-fresh", qpath)
    late = fresh.pop("late")
    assert fresh == {"qsize": 0, "acked_count": 0, "dir": True, "db": True, "put": True}
    if lib == "persistq":
        check_storage_error(late, qpath, SQLITE_ERROR)
    else:
        # persist-queue acks through its connection to the deleted file: the
        # call returns the row id there, and the ack is lost without a word.
        assert late == {"returned": "121"}
    assert run(lib, "contents", "UniqueAckQ", qpath) == {"items": ["/new-root"]}


# ------------------------------------------------------------ rmtree-reopen

KINDS = [
    "SQLiteQueue",
    "FILOSQLiteQueue",
    "UniqueQ",
    "PriorityQueue",
    "SQLiteAckQueue",
    "FILOSQLiteAckQueue",
    "UniqueAckQ",
    "PDict",
    "Queue",
]


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("kind", KINDS)
def test_queue_reopened_after_rmtree_is_new_and_the_old_object_refuses(
    kind: str, lib: str, tmp_path: Path
) -> None:
    """After ``del q; rmtree(path)`` a reopen is empty on a new directory and lasts; the old object raises."""
    qpath = tmp_path / "q"
    seen = run(lib, "rmtree-reopen", kind, qpath)
    late = seen.pop("late")
    assert seen == {"size": 0, "dir": True, "db": kind != "Queue"}
    after = run(lib, "contents", kind, qpath)
    if lib == "persistq":
        check_storage_error(late, qpath, "deleted" if kind == "Queue" else SQLITE_ERROR)
        assert after == ({"size": 1, "keys": ["new"]} if kind == "PDict" else {"items": ["new"]})
    elif kind == "Queue":
        # persist-queue's old file Queue writes its item into the deleted chunk
        # and its head and size into the new directory's info file: the next
        # process gets "new", then EOFError where info promises three more.
        assert late == {"returned": "None"}
        assert after["items"] == ["new"]
        assert after["error"]["mro"][0] == "builtins.EOFError"
    else:
        # persist-queue writes through its connection to the deleted file (a
        # queue's put returns row id 4 there): the item is lost without a word.
        assert late == {"returned": "None" if kind == "PDict" else "4"}
        assert after == ({"size": 1, "keys": ["new"]} if kind == "PDict" else {"items": ["new"]})
