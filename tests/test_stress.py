"""Multi-process stress: producers and consumers in separate processes on one SQLite queue."""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
from pathlib import Path

import persistq.sync

sys.path.insert(0, str(Path(__file__).parent))

import _stress_children

ITEMS = int(os.environ.get("PERSISTQ_STRESS_ITEMS", "6000"))


def test_four_processes_move_every_item_exactly_once(tmp_path: Path) -> None:
    """2 producer and 2 consumer processes move ITEMS items: none lost, none twice."""
    path = str(tmp_path / "q")
    ctx = multiprocessing.get_context("spawn")
    half = ITEMS // 2
    consumers = [
        ctx.Process(target=_stress_children.consume, args=(path, str(tmp_path / f"c{i}.json"), 1))
        for i in range(2)
    ]
    producers = [
        ctx.Process(target=_stress_children.produce, args=(path, start, half, 50)) for start in (0, half)
    ]
    for p in consumers + producers:
        p.start()
    for p in producers:
        p.join(300)
        assert p.exitcode == 0
    with persistq.sync.SQLiteQueue(path, durability="normal") as q:
        q.put_many([None, None])  # one end mark per consumer, after every item
    for p in consumers:
        p.join(300)
        assert p.exitcode == 0
    got = []
    for i in range(2):
        got.extend(json.loads((tmp_path / f"c{i}.json").read_text()))
    assert len(got) == len(set(got)), "an item was delivered twice"
    assert sorted(got) == list(range(2 * half)), "an item was lost"
