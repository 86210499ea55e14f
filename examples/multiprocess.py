"""Several producer and consumer processes on one SQLite queue; nothing lost, nothing twice.

Each get claims its item with one atomic ``DELETE … RETURNING``, so no two
consumers ever receive the same item. Consumers report what they got through a
second queue; the parent checks every item arrived exactly once.

Run: ``python examples/multiprocess.py [DIR]``.
"""

from __future__ import annotations

import multiprocessing
import sys
import tempfile
from collections import Counter

import persistq.sync

PRODUCERS = 3
CONSUMERS = 3
ITEMS = 200  # per producer


def produce(path: str, n: int) -> None:
    """Put ITEMS items, in batches of 20 (one transaction each)."""
    with persistq.sync.SQLiteQueue(path, name="work", serializer=persistq.sync.serializers.json) as q:
        for start in range(0, ITEMS, 20):
            q.put_many([f"p{n}-{i}" for i in range(start, start + 20)])
    print(f"producer {n}: put {ITEMS} items", flush=True)


def consume(path: str, n: int) -> None:
    """Take items until a ``None``; record each in the results queue."""
    got = 0
    with (
        persistq.sync.SQLiteQueue(path, name="work", serializer=persistq.sync.serializers.json) as q,
        persistq.sync.SQLiteQueue(path, name="results", serializer=persistq.sync.serializers.json) as results,
    ):
        while True:
            item = q.get(timeout=30)
            if item is None:
                break
            results.put([n, item])
            got += 1
    print(f"consumer {n}: got {got} items", flush=True)


def main() -> None:
    """Start the processes, stop the consumers when the producers are done, count."""
    path = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="persistq-mp-")
    print(f"queue directory: {path}")
    ctx = multiprocessing.get_context("spawn")
    consumers = [ctx.Process(target=consume, args=(path, n)) for n in range(CONSUMERS)]
    producers = [ctx.Process(target=produce, args=(path, n)) for n in range(PRODUCERS)]
    for p in consumers + producers:
        p.start()
    for p in producers:
        p.join(60)
    with persistq.sync.SQLiteQueue(path, name="work", serializer=persistq.sync.serializers.json) as q:
        q.put_many([None] * CONSUMERS)  # one stop signal per consumer, after every item
    for p in consumers:
        p.join(60)
    if any(p.exitcode != 0 for p in consumers + producers):
        sys.exit("a process failed")
    with persistq.sync.SQLiteQueue(
        path, name="results", serializer=persistq.sync.serializers.json
    ) as results:
        pairs = results.get_many(PRODUCERS * ITEMS + 1, block=False)
    per_item = Counter(item for _, item in pairs)
    per_consumer = Counter(n for n, _ in pairs)
    print(
        f"items delivered: {len(pairs)} of {PRODUCERS * ITEMS}; per consumer: {sorted(per_consumer.items())}"
    )
    if len(per_item) != PRODUCERS * ITEMS or set(per_item.values()) != {1}:
        sys.exit("lost or duplicated items")
    print("every item was delivered exactly once")


if __name__ == "__main__":
    main()
