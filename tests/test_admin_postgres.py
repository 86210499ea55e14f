"""The admin API and the CLI on a postgresql:// target: inspect, peek, verify, requeue, vacuum, purge."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from _engines import Place, place

import persistq.sync
import persistq.sync.admin as admin
from persistq import serializers

REPO = str(Path(__file__).resolve().parent.parent)


@pytest.fixture
def pg(tmp_path: Path) -> Iterator[Place]:
    """A fresh queue name on the test PostgreSQL server."""
    with place("postgresql", tmp_path) as p:
        yield p


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The persistq command as a user runs it (its own process)."""
    return subprocess.run(
        [sys.executable, "-m", "persistq", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": REPO},
    )


def test_admin_api_on_postgresql(pg: Place) -> None:
    """Counts per status, raw peeks, dead letters requeued, vacuum and purge on PostgreSQL tables."""
    with persistq.sync.PriorityAckQueue(pg.location, name=pg.name, serializer=serializers.json) as q:
        q.put("low", priority=5)
        q.put("high", priority=1)
        q.put("dead", priority=3)
        assert q.get() == "high"
        q.ack("high")
        assert q.get() == "dead"
        q.ack_failed("dead")
    with persistq.sync.FIFOQueue(pg.location, name=pg.name, serializer=serializers.json) as f:
        f.put_many([1, 2])
    info = admin.inspect(pg.location)
    assert info.engine == "postgresql"
    assert "persistq-test-pw" not in info.target
    mine = {q.table: q for q in info.queues if pg.name in str(q.table)}
    ack = mine[f"ack_priority_queue_{pg.name}"]
    assert ack.kind == "PriorityAckQueue"
    assert (ack.counts["ready"], ack.counts["failed"]) == (1, 1)
    assert mine[f"queue_{pg.name}"].counts["ready"] == 2
    _, records = admin.peek(pg.location, table=f"ack_priority_queue_{pg.name}", n=5, status="failed")
    assert [json.loads(r.data) for r in records] == ["dead"]
    assert admin.verify(pg.location).ok
    assert admin.requeue(pg.location, table=f"ack_priority_queue_{pg.name}").failed_requeued == 1
    with persistq.sync.PriorityAckQueue(pg.location, name=pg.name, serializer=serializers.json) as q:
        assert q.qsize() == 2  # the dead letter is waiting again, beside "low"
    admin.vacuum(pg.location, table=f"queue_{pg.name}")
    assert admin.purge(pg.location, table=f"queue_{pg.name}") == {f"queue_{pg.name}": 2}


def test_cli_on_postgresql(pg: Place) -> None:
    """`persistq info/peek/purge` accept a postgresql:// URL and never print its password."""
    url = f"{pg.location}?table={pg.name}"
    with persistq.sync.UniqueQ(url, serializer=serializers.json) as q:
        q.put_many(["a", "b", "a"])
    info = _cli("info", url, "--json")
    assert info.returncode == 0, info.stderr
    assert "persistq-test-pw" not in info.stdout
    (queue,) = json.loads(info.stdout)["queues"]
    assert (queue["kind"], queue["counts"]["ready"]) == ("UniqueQ", 2)
    peek = _cli("peek", url, "--json")
    assert [i["data"] for i in json.loads(peek.stdout)["items"]] == ["a", "b"]
    purge = _cli("purge", url, "--yes", "--json")
    assert json.loads(purge.stdout)["purged"] == {f"unique_queue_{pg.name}": 2}
