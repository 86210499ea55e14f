"""Code run in ``spawn``-ed child processes by ``test_ack_multiprocess.py``.

Kept out of the test module so a child imports only this and persistq (not
pytest). Each function opens its own ack queue, does one job, and reports
through a JSON result file. ``kind`` picks the API: ``"sync"``
(``persistq.sync``), ``"asyncio"`` or ``"trio"`` (the async queue under
``asyncio.run`` / ``trio.run``).

Each job is written once, as a coroutine over a queue that may be sync or
async: every queue call goes through :func:`_v`, which awaits the result of an
async queue and passes a sync queue's result through. For ``"sync"`` the
coroutine is driven by hand (it never suspends, so no event loop runs: the
blocking ``persistq.sync`` calls run on the child's main thread as in any
blocking program).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import persistq
import persistq.sync

WAIT = 60.0
"""Seconds a child waits for a barrier, an event or an item before failing."""


async def _v(value: Any) -> Any:
    """The result of a queue call: awaited for an async queue, as is for a sync one."""
    if inspect.isawaitable(value):
        return await value
    return value


def _run(kind: str, body: Callable[[], Coroutine[Any, Any, None]]) -> None:
    if kind == "sync":
        coro = body()
        try:
            coro.send(None)
        except StopIteration:
            return
        coro.close()
        raise RuntimeError("a sync child job must not suspend")
    if kind == "asyncio":
        asyncio.run(body())
    elif kind == "trio":
        import trio

        trio.run(body)
    else:
        raise ValueError(kind)


@contextlib.asynccontextmanager
async def _open(kind: str, path: str, **kwargs: Any) -> AsyncIterator[Any]:
    """Open an ``SQLiteAckQueue`` of ``kind``; close it on the way out."""
    if kind == "sync":
        q: Any = persistq.sync.SQLiteAckQueue(path, **kwargs)
    else:
        q = persistq.SQLiteAckQueue(path, **kwargs)
        await q.open()
    try:
        yield q
    finally:
        await _v(q.close())


async def _wait_event(kind: str, event: Any) -> None:
    """Wait for a ``multiprocessing`` event (off the event loop for async kinds)."""
    if kind == "sync":
        ok = event.wait(WAIT)
    else:
        import anyio.to_thread

        ok = await anyio.to_thread.run_sync(event.wait, WAIT)
    if not ok:
        raise TimeoutError("the parent did not set the event")


def _write(result_file: str, value: Any) -> None:
    tmp = result_file + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(value, f)
    os.replace(tmp, result_file)


def hold(
    path: str,
    kind: str,
    n: int,
    visibility_timeout: float | None,
    ready: Any,
    result_file: str,
    release: Any = None,
) -> None:
    """Get ``n`` items (acking none), report them, set ``ready``; then hang.

    Writes ``{"held": [[pqid, data], ...], "claim": [t_before, t_after], "pid"}``.
    With ``release`` None the child sleeps until it is killed; otherwise it
    waits (alive, items in flight) for ``release``, then acks its items and
    writes the report again with ``"acked"``.
    """

    async def body() -> None:
        async with _open(kind, path, visibility_timeout=visibility_timeout) as q:
            t_before = time.time()
            got = [await _v(q.get(block=False, raw=True)) for _ in range(n)]
            report: dict[str, Any] = {
                "held": [[g["pqid"], g["data"]] for g in got],
                "claim": [t_before, time.time()],
                "pid": os.getpid(),
            }
            _write(result_file, report)
            ready.set()
            if release is None:
                time.sleep(WAIT * 5)  # SIGKILLed by the parent long before this ends
                raise RuntimeError("the holder was not killed")
            await _wait_event(kind, release)
            report["acked"] = await _v(q.ack_many(got))
            _write(result_file, report)

    _run(kind, body)


def race(
    path: str, kind: str, visibility_timeout: float | None, opened: Any, go: Any, until: Any, result_file: str
) -> None:
    """Open the queue, set ``opened``, wait for ``go``; then get and ack until ``Empty``.

    Each get waits until the time in the shared value ``until`` (epoch
    seconds) at the latest. Writes ``[[pqid, data, t_got], ...]``.
    """

    async def body() -> None:
        got: list[list[Any]] = []
        async with _open(kind, path, visibility_timeout=visibility_timeout) as q:
            opened.set()
            await _wait_event(kind, go)
            while True:
                try:
                    item = await _v(q.get(timeout=max(0.0, until.value - time.time()), raw=True))
                except persistq.Empty:
                    break
                got.append([item["pqid"], item["data"], time.time()])
                await _v(q.ack(item))
        _write(result_file, got)

    _run(kind, body)


def drain(path: str, kind: str, batch: int, barrier: Any, result_file: str) -> None:
    """Get and ack until ``Empty``: ``get_many(batch)`` + ``ack_many`` (``get`` + ``ack`` if ``batch`` is 1).

    No lease; acked rows are all kept. Writes ``[[pqid, data], ...]`` in delivery order.
    """

    async def body() -> None:
        got: list[list[Any]] = []
        async with _open(kind, path, max_acked_length=1_000_000) as q:
            barrier.wait(WAIT)
            while True:
                try:
                    if batch > 1:
                        items = await _v(q.get_many(batch, timeout=1.0, raw=True))
                    else:
                        items = [await _v(q.get(timeout=1.0, raw=True))]
                except persistq.Empty:
                    break
                got.extend([i["pqid"], i["data"]] for i in items)
                if batch > 1:
                    await _v(q.ack_many(items))
                else:
                    await _v(q.ack(items[0]))
        _write(result_file, got)

    _run(kind, body)


def get_and_nack(path: str, kind: str, max_attempts: int, get_again: bool, result_file: str) -> None:
    """Get one item and nack it; with ``get_again`` then try ``get_nowait``.

    Writes ``{"pqid", "data", "after_nack": "empty" | [pqid, data]}``.
    """

    async def body() -> None:
        async with _open(kind, path, max_attempts=max_attempts) as q:
            item = await _v(q.get(timeout=WAIT, raw=True))
            await _v(q.nack(item))
            after: Any = None
            if get_again:
                try:
                    again = await _v(q.get_nowait(raw=True))
                except persistq.Empty:
                    after = "empty"
                else:
                    after = [again["pqid"], again["data"]]
                    await _v(q.ack(again))
        _write(result_file, {"pqid": item["pqid"], "data": item["data"], "after_nack": after})

    _run(kind, body)


def wait_and_get(path: str, kind: str, rounds: int, ready: Any, result_file: str) -> None:
    """Set ``ready``, then ``rounds`` times: a blocking ``get`` and an ``ack``.

    Writes ``[[item, t_got], ...]`` (``t_got``: ``time.time()`` when ``get`` returned).
    """

    async def body() -> None:
        got: list[list[Any]] = []
        async with _open(kind, path) as q:
            ready.set()
            for _ in range(rounds):
                item = await _v(q.get(timeout=WAIT))
                got.append([item, time.time()])
                await _v(q.ack(item))
        _write(result_file, got)

    _run(kind, body)
