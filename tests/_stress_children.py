"""Child processes of the multi-process stress test (imported by spawn)."""

from __future__ import annotations

import json

import persistq.sync


def produce(path: str, start: int, count: int, batch: int) -> None:
    """Put ``count`` numbered items, ``batch`` at a time, then one None per consumer."""
    with persistq.sync.SQLiteQueue(path, durability="normal") as q:
        for i in range(start, start + count, batch):
            q.put_many(range(i, min(i + batch, start + count)))


def consume(path: str, out: str, stop_after: int) -> None:
    """Take items until ``stop_after`` Nones (end marks) were seen; write what was got."""
    got: list[int] = []
    ends = 0
    with persistq.sync.SQLiteQueue(path, durability="normal") as q:
        while ends < stop_after:
            for item in q.get_many(100, timeout=60):
                if item is None:
                    ends += 1
                else:
                    got.append(item)
        if ends > stop_after:
            # A batch may hold another consumer's end mark: give it back.
            q.put_many([None] * (ends - stop_after))
    with open(out, "w") as f:
        json.dump(got, f)
