"""A producer process and a consumer process sharing one SQLite queue.

Run with ``make run`` (or ``python examples/producer_consumer.py [DIR]``). The
producer uses the blocking API, the consumer the async one; the consumer's
blocking ``get`` is woken within milliseconds by puts from the other process.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import sys
import tempfile
import time

import persistq
import persistq.sync

JOBS = 10


def producer(path: str) -> None:
    """Put JOBS jobs, then ``None`` to say there is no more work."""
    with persistq.sync.SQLiteQueue(path, name="jobs") as q:
        for n in range(1, JOBS + 1):
            job = {"job": n, "url": f"https://example.com/page/{n}"}
            q.put(job)  # durable when put() returns
            print(f"producer: put  {job}", flush=True)
            time.sleep(0.05)
        q.put(None)


async def consume(path: str) -> int:
    """Take jobs until ``None``; return how many were done."""
    done = 0
    async with persistq.SQLiteQueue(path, name="jobs") as q:
        while True:
            job = await q.get(timeout=30)
            await q.task_done()
            if job is None:
                return done
            print(f"consumer: got  {job}", flush=True)
            done += 1


def consumer(path: str) -> None:
    """Run the async consumer on asyncio."""
    done = asyncio.run(consume(path))
    print(f"consumer: {done} jobs done", flush=True)


def main() -> None:
    """Start both processes on a queue directory (a temporary one by default)."""
    path = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="persistq-example-")
    print(f"queue directory: {path}")
    ctx = multiprocessing.get_context("spawn")
    processes = [
        ctx.Process(target=consumer, args=(path,), name="consumer"),
        ctx.Process(target=producer, args=(path,), name="producer"),
    ]
    for p in processes:
        p.start()
    for p in processes:
        p.join(60)
    failed = [p.name for p in processes if p.exitcode != 0]
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")
    with persistq.sync.SQLiteQueue(path, name="jobs") as q:
        print(f"items left in the queue: {q.qsize()}")


if __name__ == "__main__":
    main()
