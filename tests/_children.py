"""Code run in ``spawn``-ed child processes by the multi-process tests.

Kept out of the test modules so a child imports only this and persistq (not
pytest). Each function opens its own queue, does one job, and reports through
a JSON result file; ``kind`` picks the API: ``"sync"`` (``persistq.sync``),
``"asyncio"`` or ``"trio"`` (the async queue under ``asyncio.run`` /
``trio.run``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import persistq
import persistq.sync

WAIT = 60.0
"""Seconds a child waits for a barrier, an event or an item before failing."""


def _run_async(kind: str, fn: Callable[[], Awaitable[None]]) -> None:
    if kind == "asyncio":
        asyncio.run(fn())  # type: ignore[arg-type]
    elif kind == "trio":
        import trio

        trio.run(fn)
    else:
        raise ValueError(kind)


def _write(result_file: str, value: Any) -> None:
    with open(result_file, "w", encoding="utf-8") as f:
        json.dump(value, f)


def _classes(filo: bool) -> tuple[Any, Any]:
    if filo:
        return persistq.sync.FILOSQLiteQueue, persistq.FILOSQLiteQueue
    return persistq.sync.SQLiteQueue, persistq.SQLiteQueue


def produce(path: str, kind: str, tag: str, n: int, barrier: Any) -> None:
    """Put ``f"{tag}:{i}"`` for i in range(n), one put at a time."""
    items = [f"{tag}:{i}" for i in range(n)]
    if kind == "sync":
        with persistq.sync.SQLiteQueue(path) as q:
            barrier.wait(WAIT)
            for item in items:
                q.put(item)
        return

    async def main() -> None:
        async with persistq.SQLiteQueue(path) as q:
            barrier.wait(WAIT)
            for item in items:
                await q.put(item)

    _run_async(kind, main)


def consume(path: str, kind: str, result_file: str, barrier: Any) -> None:
    """Get items until a ``None`` sentinel; write the items got, in order."""
    got: list[Any] = []
    if kind == "sync":
        with persistq.sync.SQLiteQueue(path) as q:
            barrier.wait(WAIT)
            while (item := q.get(timeout=WAIT)) is not None:
                got.append(item)
    else:

        async def main() -> None:
            async with persistq.SQLiteQueue(path) as q:
                barrier.wait(WAIT)
                while (item := await q.get(timeout=WAIT)) is not None:
                    got.append(item)

        _run_async(kind, main)
    _write(result_file, got)


def wait_and_get(path: str, kind: str, n: int, ready: Any, result_file: str) -> None:
    """Signal ``ready``, then do ``n`` blocking gets; write ``[item, time.time()]`` per get."""
    got: list[Any] = []
    if kind == "sync":
        with persistq.sync.SQLiteQueue(path) as q:
            ready.set()
            for _ in range(n):
                item = q.get(timeout=WAIT)
                got.append([item, time.time()])
    else:

        async def main() -> None:
            async with persistq.SQLiteQueue(path) as q:
                ready.set()
                for _ in range(n):
                    item = await q.get(timeout=WAIT)
                    got.append([item, time.time()])

        _run_async(kind, main)
    _write(result_file, got)


def get_and_hang(path: str, kind: str, n_get: int, n_done: int, ready: Any, result_file: str) -> None:
    """With ``auto_commit=False``: get ``n_get`` items, ``task_done`` ``n_done``, then hang.

    Writes the items got, then sets ``ready`` and sleeps until killed.
    """
    if kind == "sync":
        q = persistq.sync.SQLiteQueue(path, auto_commit=False)
        got = [q.get_nowait() for _ in range(n_get)]
        for _ in range(n_done):
            q.task_done()
        _write(result_file, got)
        ready.set()
        time.sleep(WAIT * 5)
        q.close()  # not reached: the parent kills this process
        return

    async def main() -> None:
        import anyio

        async with persistq.SQLiteQueue(path, auto_commit=False) as q:
            got = [await q.get_nowait() for _ in range(n_get)]
            for _ in range(n_done):
                await q.task_done()
            _write(result_file, got)
            ready.set()
            await anyio.sleep(WAIT * 5)

    _run_async(kind, main)


def drain(path: str, kind: str, filo: bool, barrier: Any, result_file: str) -> None:
    """Get with ``get_nowait`` until ``Empty``; write the items got, in order."""
    sync_cls, async_cls = _classes(filo)
    got: list[Any] = []
    if kind == "sync":
        with sync_cls(path) as q:
            barrier.wait(WAIT)
            while True:
                try:
                    got.append(q.get_nowait())
                except persistq.Empty:
                    break
    else:

        async def main() -> None:
            async with async_cls(path) as q:
                barrier.wait(WAIT)
                while True:
                    try:
                        got.append(await q.get_nowait())
                    except persistq.Empty:
                        break

        _run_async(kind, main)
    _write(result_file, got)


def put_items(path: str, items: list[Any]) -> None:
    """Put ``items`` one by one with the sync queue."""
    with persistq.sync.SQLiteQueue(path) as q:
        for item in items:
            q.put(item)


def get_items(path: str, n: int, result_file: str) -> None:
    """Get ``n`` items with the sync queue; write them."""
    with persistq.sync.SQLiteQueue(path) as q:
        got = [q.get_nowait() for _ in range(n)]
    _write(result_file, got)


def open_fresh_queues(base: str, rounds: int, barrier: Any, result_file: str) -> None:
    """Each round, open a queue in a new directory together with the other children, and put one item."""
    errors: list[str] = []
    for r in range(rounds):
        barrier.wait(WAIT)
        try:
            with persistq.sync.SQLiteQueue(f"{base}/round{r}") as q:
                q.put(r)
        except persistq.PersistQError as exc:
            errors.append(f"round {r}: {exc!r}")
    _write(result_file, errors)
