"""A trio service: producer and consumer tasks on ``persistq.SQLiteQueue`` in a nursery.

Two producers put orders, three consumers process them, and the service shuts
down cleanly: when the producers are done, one ``None`` per consumer tells the
consumers to stop, and ``join()`` returns once every item got was
``task_done``. Puts are durable when they return; an order got but not done
when the service is killed comes back on restart (``auto_commit=False``).

Run: ``python examples/trio_service.py [DIR]``.
"""

from __future__ import annotations

import sys
import tempfile

import trio

import persistq

PRODUCERS = 2
CONSUMERS = 3
ORDERS = 10


async def producer(q: persistq.SQLiteQueue, n: int) -> None:
    """Put ORDERS orders."""
    for i in range(ORDERS):
        await q.put({"producer": n, "order": i})
        await trio.sleep(0.01)
    print(f"producer {n}: {ORDERS} orders put")


async def consumer(q: persistq.SQLiteQueue, n: int, done: list[dict[str, int]]) -> None:
    """Process orders until a ``None`` says stop."""
    while True:
        order = await q.get(timeout=30)
        try:
            if order is None:
                print(f"consumer {n}: stopping")
                return
            await trio.sleep(0.005)  # the work
            done.append(order)
        finally:
            await q.task_done()


async def main(path: str) -> None:
    """Run the service until every order is processed."""
    done: list[dict[str, int]] = []
    async with persistq.SQLiteQueue(path, name="orders", auto_commit=False) as q:
        async with trio.open_nursery() as nursery:
            for n in range(CONSUMERS):
                nursery.start_soon(consumer, q, n, done)
            async with trio.open_nursery() as producers:
                for n in range(PRODUCERS):
                    producers.start_soon(producer, q, n)
            for _ in range(CONSUMERS):  # the producers are done: tell each consumer to stop
                await q.put(None)
        await q.join()
        left = await q.qsize()
    print(f"processed {len(done)} orders; {left} left in the queue")
    if sorted((o["producer"], o["order"]) for o in done) != [
        (p, i) for p in range(PRODUCERS) for i in range(ORDERS)
    ]:
        sys.exit("an order was lost or processed twice")


if __name__ == "__main__":
    directory = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="persistq-trio-")
    print(f"queue directory: {directory}")
    trio.run(main, directory)
