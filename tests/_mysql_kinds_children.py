"""Code run in ``spawn``-ed child processes by tests/test_mysql_kinds_engine.py.

Kept out of the test module so a child imports only this and persistq (not
pytest). The children drive the MySQL engines directly, with no queue kind
in between; ``backend`` is ``"asyncio"`` or ``"trio"``.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import anyio

from persistq._owner import new_owner
from persistq.engines.mysql import MySQLEngine, MySQLParams
from persistq.engines.mysql_ack import MySQLAckEngine
from persistq.engines.sqlite import TableSpec
from persistq.engines.sqlite_ack import ACKED, AckTableSpec

WAIT = 60.0
"""Seconds a child waits for a barrier before failing."""


def make_engine(env: dict[str, str], table: str, order: Any, unique: bool, ack: bool) -> Any:
    """The engine of ``table`` on the test server (``ack``: the ack engine)."""
    params = MySQLParams(env["host"], int(env["port"]), env["user"], env["database"], env["password"])
    if ack:
        return MySQLAckEngine(params, AckTableSpec(table, order, unique), "pickle")
    return MySQLEngine(params, TableSpec(table, order, unique), "pickle")


async def _claim(engine: Any, ack: bool, n: int) -> list[Any]:
    """Claim up to ``n`` rows; an ack engine's rows are acked at once."""
    if not ack:
        rows: list[Any] = await engine.claim(n)
        return rows
    claim = await engine.claim(n, None, None, "child", None, 0)
    if claim.rows:
        await engine.set_final([r[0] for r in claim.rows], ACKED, None)
    return list(claim.rows)


def put_then_claim(
    env: dict[str, str],
    table: str,
    order: Any,
    unique: bool,
    ack: bool,
    backend: str,
    items: list[tuple[str, int]],
    batch: int,
    result_file: str,
    barrier: Any,
) -> None:
    """Put ``items`` (data, priority) after the first barrier, then claim until nothing is left.

    Every process passes the second barrier only when all puts are done, so
    an empty claim means the table is empty (rows other consumers have
    locked are theirs to take). Writes ``{"put": ids, "got": [[id, data,
    priority], …]}`` to ``result_file``.
    """

    async def main() -> None:
        engine = make_engine(env, table, order, unique, ack)
        await engine.open()
        try:
            await anyio.to_thread.run_sync(barrier.wait, WAIT)
            ids: list[int | None] = []
            for start in range(0, len(items), 10):
                chunk = items[start : start + 10]
                got_ids = await engine.put([(d.encode(), time.time(), p) for d, p in chunk], 0)
                ids.extend(got_ids)
            await anyio.to_thread.run_sync(barrier.wait, WAIT)
            got: list[list[Any]] = []
            while True:
                rows = await _claim(engine, ack, batch)
                if not rows:
                    break
                got.extend([r[0], r[1].decode(), r[3]] for r in rows)
        finally:
            await engine.close()
        with open(result_file, "w") as f:
            json.dump({"put": ids, "got": got}, f)

    anyio.run(main, backend=backend)


def hold(
    env: dict[str, str], table: str, order: Any, unique: bool, ack: bool, n: int, result_file: str
) -> None:
    """Claim ``n`` rows with an owner token of this process, write them, then sleep until killed."""

    async def main() -> None:
        engine = make_engine(env, table, order, unique, ack)
        await engine.open()
        owner = new_owner()
        if ack:
            rows = (await engine.claim(n, None, None, owner, None, 0)).rows
        else:
            rows = await engine.claim(n, None, owner)
        with open(result_file + ".tmp", "w") as f:
            json.dump([[r[0], r[1].decode(), r[3]] for r in rows], f)
        # Renamed into place: the parent never reads a half-written file.
        os.replace(result_file + ".tmp", result_file)
        await anyio.sleep(3600)

    anyio.run(main, backend="asyncio")
