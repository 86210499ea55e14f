"""persistq.sync in processes monkey-patched by gevent or eventlet.

Monkey-patching is process-wide, so every scenario runs in a fresh child
(``tests/_green_children.py``) that patches first and imports persistq after.
gevent and eventlet are in the ``test`` dependency group: these tests do not
skip.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CHILD = str(Path(__file__).with_name("_green_children.py"))
LIBRARIES = ["gevent", "eventlet"]


def run_child(library: str, scenario: str, kind: str, directory: Path, timeout: float = 90) -> str:
    """Run one scenario in a child process and fail with its output unless it passed; return its stderr."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parent.parent), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, CHILD, library, scenario, kind, str(directory)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    assert proc.returncode == 0, f"child failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    assert f"OK {scenario}" in proc.stdout, proc.stdout
    return proc.stderr


@pytest.mark.parametrize("kind", ["sqlite", "file"])
@pytest.mark.parametrize("library", LIBRARIES)
def test_put_get_task_done(library: str, kind: str, tmp_path: Path) -> None:
    """put/get/task_done/join work and the portal and storage threads are real OS threads."""
    run_child(library, "basic", kind, tmp_path)


@pytest.mark.parametrize("kind", ["sqlite", "file"])
@pytest.mark.parametrize("library", LIBRARIES)
def test_blocking_calls_wait_cooperatively(library: str, kind: str, tmp_path: Path) -> None:
    """get on empty, put on full and join let other greenlets run, and wake when unblocked."""
    run_child(library, "blocked", kind, tmp_path)


@pytest.mark.parametrize("kind", ["sqlite", "file"])
@pytest.mark.parametrize("library", LIBRARIES)
def test_many_greenlets_deliver_each_item_once(library: str, kind: str, tmp_path: Path) -> None:
    """50 producing and 50 consuming greenlets move 5,000 items, each delivered exactly once."""
    run_child(library, "many", kind, tmp_path, timeout=180)


@pytest.mark.parametrize("kind", ["sqlite", "file"])
@pytest.mark.parametrize("library", LIBRARIES)
def test_get_timeout_is_on_time(library: str, kind: str, tmp_path: Path) -> None:
    """get(timeout=1) on an empty queue raises Empty within 1 +/- 0.5 s while the hub runs."""
    run_child(library, "timeout", kind, tmp_path)


@pytest.mark.parametrize("library", LIBRARIES)
def test_ack_queue_get_ack(library: str, tmp_path: Path) -> None:
    """SQLiteAckQueue get waits cooperatively; ack and nack work."""
    run_child(library, "ack", "ack", tmp_path)


@pytest.mark.parametrize("kind", ["sqlite", "file"])
@pytest.mark.parametrize("library", LIBRARIES)
def test_script_without_close_exits_quietly(library: str, kind: str, tmp_path: Path) -> None:
    """A green script that never closes its queues exits with greenlets blocked in get(); items are kept."""
    import persistq.sync

    assert run_child(library, "unclosed", kind, tmp_path, timeout=30) == ""
    path = str(tmp_path / f"{kind}-q")
    q = persistq.sync.SQLiteQueue(path) if kind == "sqlite" else persistq.sync.Queue(path)
    with q:
        # The file queue gives back the item got and not task_done.
        assert q.get_nowait() == ("kept" if kind == "file" else "taken")


def test_normal_process_is_not_green() -> None:
    """Without monkey-patching persistq picks the plain threading primitives and portal."""
    import threading

    from persistq import _runtime as _threads
    from persistq.sync import _portal

    assert _threads.GREEN is None
    assert _threads.Thread is threading.Thread
    assert _threads.Lock is threading.Lock
    assert _threads.Condition is threading.Condition
    assert _portal._portal_class is _portal.Portal
    assert "persistq.sync._green" not in sys.modules
