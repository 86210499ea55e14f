"""Code run in ``spawn``-ed child processes by the MySQL multi-process tests.

Kept out of the test module so a child imports only this and persistq (not
pytest). ``kind`` picks the API: ``"sync"`` (``persistq.sync``), ``"asyncio"``
or ``"trio"`` (the async queue under ``asyncio.run`` / ``trio.run``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import persistq
import persistq.sync
from persistq.queues.mysql import MySQLQueue as AsyncMySQLQueue
from persistq.sync.mysql import MySQLQueue as SyncMySQLQueue

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


def produce(dsn: str, kind: str, tag: str, n: int, batch: int, barrier: Any) -> None:
    """Put ``f"{tag}:{i}"`` for i in range(n), ``batch`` items per ``put_many``."""
    chunks = [[f"{tag}:{i}" for i in range(s, min(n, s + batch))] for s in range(0, n, batch)]
    if kind == "sync":
        with SyncMySQLQueue(dsn) as q:
            barrier.wait(WAIT)
            for chunk in chunks:
                q.put_many(chunk)
        return

    async def main() -> None:
        async with AsyncMySQLQueue(dsn) as q:
            barrier.wait(WAIT)
            for chunk in chunks:
                await q.put_many(chunk)

    _run_async(kind, main)


def consume(dsn: str, kind: str, batch: int, result_file: str, barrier: Any, done: Any) -> None:
    """Take items (``get_many(batch)``) until the producers are done and the queue is empty."""
    got: list[Any] = []
    if kind == "sync":
        with SyncMySQLQueue(dsn) as q:
            barrier.wait(WAIT)
            while True:
                try:
                    got.extend(q.get_many(batch, timeout=0.2))
                except persistq.sync.Empty:
                    if done.is_set() and q.qsize() == 0:
                        break
    else:

        async def main() -> None:
            async with AsyncMySQLQueue(dsn) as q:
                barrier.wait(WAIT)
                while True:
                    try:
                        got.extend(await q.get_many(batch, timeout=0.2))
                    except persistq.Empty:
                        if done.is_set() and await q.qsize() == 0:
                            break

        _run_async(kind, main)
    with open(result_file, "w", encoding="utf-8") as f:
        json.dump(got, f)
