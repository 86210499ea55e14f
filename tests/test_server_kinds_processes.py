"""Kinds on a server engine as users run them: several consumer processes; a consumer SIGKILLed mid-item."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from _engines import Place, place

import persistq.sync

CHILD = str(Path(__file__).with_name("_kind_children.py"))
REPO = str(Path(__file__).resolve().parent.parent)
ITEMS = 1200


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}


@pytest.fixture(params=["mysql", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Place]:
    """A fresh queue name on each server engine."""
    with place(str(request.param), tmp_path) as p:
        yield p


@pytest.mark.parametrize("kind", ["FILOQueue", "UniqueQ", "PriorityQueue", "UniqueAckQ", "PriorityAckQueue"])
def test_four_consumer_processes_each_item_exactly_once(kind: str, server: Place, tmp_path: Path) -> None:
    """4 processes draining one queue of a new server kind get every item exactly once."""
    q = getattr(persistq.sync, kind)(server.location, name=server.name)
    try:
        items = [f"item-{i}" for i in range(ITEMS)]
        if "Priority" in kind:
            for start in range(0, ITEMS, 100):
                q.put_many(items[start : start + 100], priority=start % 7)
        else:
            q.put_many(items)
    finally:
        q.close()
    outs = [tmp_path / f"out{i}.json" for i in range(4)]
    procs = [
        subprocess.Popen(
            [sys.executable, CHILD, "consume", kind, server.location, server.name, str(out)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        for out in outs
    ]
    try:
        for p in procs:  # all four have opened the queue
            assert p.stdout is not None
            assert p.stdout.readline().strip() == "ready"
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        for p in procs:
            assert p.wait(timeout=120) == 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
            for pipe in (p.stdin, p.stdout):
                if pipe is not None:
                    pipe.close()
    got = [item for out in outs for item in json.loads(out.read_text())]
    assert len(got) == ITEMS, "lost or duplicated items"
    assert sorted(got) == sorted(items)
    assert all(json.loads(out.read_text()) for out in outs), "a consumer got nothing"


@pytest.mark.parametrize("kind", ["FILOAckQueue", "UniqueAckQ", "PriorityAckQueue"])
def test_sigkilled_consumers_item_comes_back(kind: str, server: Place) -> None:
    """A consumer SIGKILLed while it holds an item: the next queue object on this host gets it again."""
    q = getattr(persistq.sync, kind)(server.location, name=server.name)
    try:
        q.put("precious")
        child = subprocess.Popen(
            [sys.executable, CHILD, "hold", kind, server.location, server.name],
            stdout=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        try:
            assert child.stdout is not None
            assert json.loads(child.stdout.readline()) == "precious"
            assert q.ready_count() == 0
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
            if child.stdout is not None:
                child.stdout.close()
    finally:
        q.close()
    again = getattr(persistq.sync, kind)(server.location, name=server.name)  # auto_resume: its owner is dead
    try:
        assert again.get(timeout=10) == "precious"
        again.ack("precious")
    finally:
        again.close()


@pytest.mark.parametrize("kind", ["FILOQueue", "UniqueQ", "PriorityQueue"])
def test_sigkilled_consumers_pending_item_comes_back(kind: str, server: Place) -> None:
    """auto_commit=False on a server: a SIGKILLed consumer's got-not-done item comes back on reopen."""
    q = getattr(persistq.sync, kind)(server.location, name=server.name)
    try:
        q.put("precious")
    finally:
        q.close()
    code = (
        "import sys, time, persistq.sync\n"
        f"q = persistq.sync.{kind}(sys.argv[1], name=sys.argv[2], auto_commit=False)\n"
        "print(q.get(timeout=30), flush=True)\n"
        "time.sleep(600)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code, server.location, server.name],
        stdout=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "precious"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        if child.stdout is not None:
            child.stdout.close()
    again = getattr(persistq.sync, kind)(server.location, name=server.name)
    try:
        assert again.get(timeout=10) == "precious"
    finally:
        again.close()
