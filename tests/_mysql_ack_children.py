"""Code run in ``spawn``-ed child processes by ``test_mysql_ack_queue.py``.

Kept out of the test module so a child imports only this and persistq (not
pytest). ``kind`` picks the API: ``"sync"`` (``persistq.sync``), ``"asyncio"``
or ``"trio"`` (the async queue under ``asyncio.run`` / ``trio.run``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import persistq
import persistq.sync
from persistq.queues.mysql_ack import MySQLAckQueue as AsyncMySQLAckQueue
from persistq.sync.mysql_ack import MySQLAckQueue as SyncMySQLAckQueue

WAIT = 60.0
"""Seconds a child waits for a barrier or an item before failing."""


def _run_async(kind: str, fn: Callable[[], Awaitable[None]]) -> None:
    if kind == "asyncio":
        asyncio.run(fn())  # type: ignore[arg-type]
    elif kind == "trio":
        import trio

        trio.run(fn)
    else:
        raise ValueError(kind)


def hold(dsn: str, n: int, visibility_timeout: float | None, result_file: str, holding: Any) -> None:
    """Get ``n`` items, report them, set ``holding`` and never ack: wait to be killed."""
    q = SyncMySQLAckQueue(dsn, visibility_timeout=visibility_timeout, auto_resume=False)
    got = [q.get(timeout=WAIT) for _ in range(n)]
    with open(result_file, "w", encoding="utf-8") as f:
        json.dump(got, f)
    holding.set()
    time.sleep(WAIT * 2)  # SIGKILLed long before this ends
    q.close()


def produce(dsn: str, kind: str, tag: str, n: int, batch: int, barrier: Any) -> None:
    """Put ``f"{tag}:{i}"`` for i in range(n), ``batch`` items per ``put_many``."""
    chunks = [[f"{tag}:{i}" for i in range(s, min(n, s + batch))] for s in range(0, n, batch)]
    if kind == "sync":
        with SyncMySQLAckQueue(dsn) as q:
            barrier.wait(WAIT)
            for chunk in chunks:
                q.put_many(chunk)
        return

    async def main() -> None:
        async with AsyncMySQLAckQueue(dsn) as q:
            barrier.wait(WAIT)
            for chunk in chunks:
                await q.put_many(chunk)

    _run_async(kind, main)


def consume(dsn: str, kind: str, batch: int, result_file: str, barrier: Any, done: Any) -> None:
    """Get (``get_many(batch)``) and ack items until the producers are done and nothing waits.

    Reports every item delivered and every item acked.
    """
    delivered: list[Any] = []
    acked: list[Any] = []
    if kind == "sync":
        with SyncMySQLAckQueue(dsn) as q:
            barrier.wait(WAIT)
            while True:
                try:
                    items = q.get_many(batch, timeout=0.2)
                except persistq.sync.Empty:
                    if done.is_set() and q.qsize() == 0:
                        break
                    continue
                delivered.extend(items)
                q.ack_many(items)
                acked.extend(items)
    else:

        async def main() -> None:
            async with AsyncMySQLAckQueue(dsn) as q:
                barrier.wait(WAIT)
                while True:
                    try:
                        items = await q.get_many(batch, timeout=0.2)
                    except persistq.Empty:
                        if done.is_set() and await q.qsize() == 0:
                            break
                        continue
                    delivered.extend(items)
                    # Half the batches ack item by item, half in one transaction.
                    if len(delivered) % 2:
                        for item in items:
                            await q.ack(item)
                    else:
                        await q.ack_many(items)
                    acked.extend(items)

        _run_async(kind, main)
    with open(result_file, "w", encoding="utf-8") as f:
        json.dump({"delivered": delivered, "acked": acked}, f)
