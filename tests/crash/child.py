"""The process the crash harness kills: queue operations in a tight loop.

Usage: ``python child.py KIND PATH DURABILITY SEED API``. After opening the
queue it prints ``READY``; then, after each call that *returned*, one line:
``P n`` (put of item n), ``G n`` (get returned item n), ``D n`` (task_done for
n returned), ``A n`` (ack of n returned). Each line is written with one
``os.write`` to the unbuffered pipe, so a SIGKILL can cut the loop anywhere
but never leaves half a line.

``file_threads``: the file queue with :data:`FILE_CONSUMERS` consumer threads
that each hold their item for a random moment before ``task_done``, so items
are done out of order (behind older ones other threads still hold) while the
main thread puts.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import sys
import threading
import time
from typing import Any

import persistq
import persistq.sync

FILE_CONSUMERS = 3
"""Consumer threads of ``file_threads``: at most this many task_done calls are in flight at a kill."""


def say(line: str) -> None:
    """Report one returned call on the side channel."""
    os.write(1, (line + "\n").encode())


def open_sync(kind: str, path: str, durability: str) -> Any:
    """Open the queue of ``kind`` with the blocking API."""
    d: Any = durability
    if kind == "fifo":
        return persistq.sync.SQLiteQueue(path, durability=d)
    if kind == "fifo_nocommit":
        return persistq.sync.SQLiteQueue(path, auto_commit=False, durability=d)
    if kind == "filo":
        return persistq.sync.FILOSQLiteQueue(path, durability=d)
    if kind == "unique":
        return persistq.sync.UniqueQ(path, durability=d)
    if kind == "priority":
        return persistq.sync.PriorityQueue(path, durability=d)
    if kind == "ack":
        return persistq.sync.SQLiteAckQueue(path, durability=d, max_acked_length=10**9)
    if kind in ("file", "file_threads"):
        return persistq.sync.Queue(path, durability="off" if d == "normal" else d)
    if kind in ("mysql", "mysql_ack"):
        return open_mysql(kind, path)
    raise SystemExit(f"unknown kind {kind}")


def mysql_keywords(path: str) -> dict[str, Any]:
    """Constructor keywords of the round's MySQL queue on `make test`'s server."""
    env = os.environ
    kw: dict[str, Any] = dict(
        host=env["PERSISTQ_MYSQL_HOST"],
        port=int(env["PERSISTQ_MYSQL_PORT"]),
        user=env["PERSISTQ_MYSQL_USER"],
        password=env["PERSISTQ_MYSQL_PASSWORD"],
        database=env["PERSISTQ_MYSQL_DATABASE"],
        # Named after the whole path: a server kept between runs starts each round empty.
        table_name="crash_" + hashlib.sha1(path.encode()).hexdigest()[:16],
    )
    return kw


def open_mysql(kind: str, path: str) -> Any:
    """Open the round's MySQL queue with the blocking API."""
    kw = mysql_keywords(path)
    if kind == "mysql_ack":
        return persistq.sync.MySQLAckQueue(**kw, max_acked_length=10**9)
    return persistq.sync.MySQLQueue(**kw)


def run_sync(kind: str, path: str, durability: str, rng: random.Random) -> None:
    """Loop forever with the blocking API."""
    q = open_sync(kind, path, durability)
    say("READY")
    n = 0
    while True:
        if rng.random() < 0.6:
            if kind == "priority":
                q.put(n, priority=n % 3)
            else:
                q.put(n)
            say(f"P {n}")
            n += 1
            continue
        try:
            item = q.get_nowait()
        except persistq.Empty:
            continue
        say(f"G {item}")
        if kind in ("ack", "mysql_ack"):
            q.ack(item)
            say(f"A {item}")
        elif kind in ("fifo_nocommit", "file"):
            q.task_done()
            say(f"D {item}")


def run_file_threads(path: str, durability: str, rng: random.Random) -> None:
    """Put from the main thread; consumer threads get, hold a moment, and task_done out of order."""
    q = open_sync("file_threads", path, durability)
    say("READY")

    def consume(seed: float) -> None:
        hold = random.Random(seed)
        while True:
            try:
                item = q.get(timeout=0.05)
            except persistq.Empty:
                continue
            say(f"G {item}")
            time.sleep(hold.uniform(0, 0.004))  # other threads get and finish items meanwhile
            q.task_done()
            say(f"D {item}")

    for _ in range(FILE_CONSUMERS):
        threading.Thread(target=consume, args=(rng.random(),), daemon=True).start()
    n = 0
    while True:
        q.put(n)
        say(f"P {n}")
        n += 1
        time.sleep(rng.uniform(0, 0.002))


async def run_async(kind: str, path: str, durability: str, rng: random.Random) -> None:
    """Loop forever with the async API (FIFO and ack kinds, SQLite and MySQL)."""
    d: Any = durability
    q: Any
    if kind == "ack":
        q = persistq.SQLiteAckQueue(path, durability=d, max_acked_length=10**9)
    elif kind == "mysql_ack":
        q = persistq.MySQLAckQueue(**mysql_keywords(path), max_acked_length=10**9)
    elif kind == "mysql":
        q = persistq.MySQLQueue(**mysql_keywords(path))
    else:
        q = persistq.SQLiteQueue(path, durability=d)
    await q.open()
    say("READY")
    n = 0
    while True:
        if rng.random() < 0.6:
            await q.put(n)
            say(f"P {n}")
            n += 1
            continue
        try:
            item = await q.get_nowait()
        except persistq.Empty:
            continue
        say(f"G {item}")
        if kind in ("ack", "mysql_ack"):
            await q.ack(item)
            say(f"A {item}")


def main() -> None:
    """Parse the arguments and run until killed."""
    kind, path, durability, seed, api = sys.argv[1:6]
    rng = random.Random(int(seed))
    if kind == "file_threads":
        run_file_threads(path, durability, rng)
    elif api == "sync":
        run_sync(kind, path, durability, rng)
    elif api == "asyncio":
        asyncio.run(run_async(kind, path, durability, rng))
    else:
        import trio

        trio.run(run_async, kind, path, durability, rng)


if __name__ == "__main__":
    main()
