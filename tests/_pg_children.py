"""Code run in ``spawn``-ed child processes by ``test_postgres_engine.py``.

Kept out of the test module so a child imports only this and persistq (not
pytest). Each function opens its own engine from a ``postgresql://`` URL and
runs under ``anyio.run`` on the backend it is given.
"""

from __future__ import annotations

import json
import time
from typing import Any

import anyio

from persistq._owner import new_owner
from persistq.engines.postgres import PostgresEngine, parse_pg_url
from persistq.engines.postgres_ack import PostgresAckEngine
from persistq.engines.sqlite import TableSpec
from persistq.engines.sqlite_ack import ACKED, AckTableSpec

WAIT = 60.0
"""Seconds a child waits for a barrier or an event before failing."""


def _engine(url: str, table: str, ack: bool) -> Any:
    params = parse_pg_url(url)
    if ack:
        return PostgresAckEngine(params, AckTableSpec(table), "pickle")
    return PostgresEngine(params, TableSpec(table), "pickle")


def produce(
    url: str, table: str, ack: bool, tag: str, n: int, batch: int, backend: str, barrier: Any
) -> None:
    """Put ``f"{tag}:{i}"`` for ``i`` in ``range(n)``, ``batch`` items per put."""

    async def main() -> None:
        engine = _engine(url, table, ack)
        await engine.open()
        barrier.wait(WAIT)
        for start in range(0, n, batch):
            await engine.put(
                [(f"{tag}:{i}".encode(), time.time(), None) for i in range(start, min(n, start + batch))]
            )
        await engine.close()

    anyio.run(main, backend=backend)


def consume(
    url: str, table: str, ack: bool, batch: int, backend: str, result_file: str, barrier: Any, done: Any
) -> None:
    """Claim (and, on an ack table, ack) items until the producers are ``done`` and nothing is left."""

    async def main() -> None:
        engine = _engine(url, table, ack)
        await engine.open()
        owner = new_owner()
        got: list[str] = []
        barrier.wait(WAIT)
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            finished = done.is_set()
            if ack:
                claim = await engine.claim(batch, None, None, owner, 30.0, 0)
                rows = claim.rows
                if rows:
                    await engine.set_final([r[0] for r in rows], ACKED, None)
            else:
                rows = await engine.claim(batch)
            got.extend(r[1].decode() for r in rows)
            if not rows:
                if finished:
                    break
                await anyio.sleep(0.005)
        with open(result_file, "w", encoding="utf-8") as f:
            json.dump(got, f)
        await engine.close()

    anyio.run(main, backend=backend)


def hold(url: str, table: str, ack: bool, n: int, result_file: str, holding: Any) -> None:
    """Claim ``n`` items as an owner (no lease), report their ids, and wait to be SIGKILLed."""

    async def main() -> None:
        engine = _engine(url, table, ack)
        await engine.open()
        owner = new_owner()
        if ack:
            ids = [r[0] for r in (await engine.claim(n, None, None, owner, None, 0)).rows]
        else:
            ids = [r[0] for r in await engine.claim(n, None, owner)]
        with open(result_file, "w", encoding="utf-8") as f:
            json.dump({"ids": ids, "owner": owner}, f)
        holding.set()
        await anyio.sleep(WAIT * 2)  # SIGKILLed long before this ends

    anyio.run(main, backend="asyncio")


def put_slowly(url: str, table: str, n: int, gap: float, result_file: str, start: Any) -> None:
    """Once ``start`` is set, put one item every ``gap`` seconds; record when each put began and returned."""

    async def main() -> None:
        engine = _engine(url, table, False)
        await engine.open()
        start.wait(WAIT)
        stamps: list[tuple[float, float]] = []
        for i in range(n):
            began = time.time()
            await engine.put([(str(i).encode(), time.time(), None)])
            stamps.append((began, time.time()))
            await anyio.sleep(gap)
        with open(result_file, "w", encoding="utf-8") as f:
            json.dump(stamps, f)
        await engine.close()

    anyio.run(main, backend="asyncio")
