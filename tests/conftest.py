"""Shared fixtures: every async test runs on asyncio and on trio."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

import persistq
from persistq.errors import Empty

SQLITE_KINDS: list[Any] = [
    persistq.SQLiteQueue,
    persistq.FILOSQLiteQueue,
    persistq.UniqueQ,
    persistq.PriorityQueue,
    persistq.SQLiteAckQueue,
    persistq.UniqueAckQ,
    persistq.PriorityAckQueue,
]
"""Every async queue kind on SQLite."""


def _worker_databases(worker: str) -> None:
    """Give this pytest-xdist worker databases of its own on both throwaway servers.

    Workers share the servers ``make test`` started, not their databases:
    tests that list a database's queues, or count what it holds, see only
    their own worker's tables. The environment is rewritten before any test
    reads it, so child processes the tests start inherit the same databases.
    """
    if os.environ.get("PERSISTQ_MYSQL_DATABASE"):
        import pymysql

        name = f"{os.environ['PERSISTQ_MYSQL_DATABASE']}_{worker}"
        conn = pymysql.connect(
            host=os.environ["PERSISTQ_MYSQL_HOST"],
            port=int(os.environ["PERSISTQ_MYSQL_PORT"]),
            user=os.environ["PERSISTQ_MYSQL_USER"],
            password=os.environ["PERSISTQ_MYSQL_PASSWORD"],
            autocommit=True,
        )
        try:
            with conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
                cur.execute(f"CREATE DATABASE `{name}`")
        finally:
            conn.close()
        os.environ["PERSISTQ_MYSQL_DATABASE"] = name
    if os.environ.get("PERSISTQ_PG_DATABASE"):
        import psycopg

        base = os.environ["PERSISTQ_PG_DATABASE"]
        name = f"{base}_{worker}"
        with psycopg.connect(
            host=os.environ["PERSISTQ_PG_HOST"],
            port=int(os.environ["PERSISTQ_PG_PORT"]),
            user=os.environ["PERSISTQ_PG_USER"],
            password=os.environ["PERSISTQ_PG_PASSWORD"],
            dbname=base,
            autocommit=True,
        ) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        os.environ["PERSISTQ_PG_DATABASE"] = name
        dsn = os.environ.get("PERSISTQ_PG_DSN")
        if dsn and dsn.endswith("/" + base):
            os.environ["PERSISTQ_PG_DSN"] = dsn[: -len(base)] + name


def pytest_configure(config: pytest.Config) -> None:
    """On a pytest-xdist worker, switch to the worker's own server databases."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        _worker_databases(worker)


@pytest.fixture(
    params=[
        pytest.param("asyncio", id="asyncio"),
        pytest.param("trio", id="trio"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run each ``@pytest.mark.anyio`` test on both backends, explicitly."""
    return str(request.param)


@pytest.fixture
def qpath(tmp_path: Path) -> str:
    """A fresh queue directory (not yet created on disk)."""
    return str(tmp_path / "q")


@pytest.fixture(autouse=True)
def _no_leaked_portal() -> Iterator[None]:
    """Fail a test that leaves a sync queue open (the portal thread running)."""
    yield
    from persistq.sync import _portal

    leases = _portal._leases
    if leases:
        _portal._leases = 0
        portal, _portal._portal = _portal._portal, None
        if portal is not None:
            portal.stop()
        pytest.fail(f"{leases} persistq.sync queue(s) left open by the test")


def mysql_env() -> dict[str, str] | None:
    """Connection settings of the throwaway MariaDB that ``make test`` starts."""
    keys = ("HOST", "PORT", "USER", "PASSWORD", "DATABASE")
    env = {k.lower(): os.environ.get(f"PERSISTQ_MYSQL_{k}", "") for k in keys}
    return env if all(env.values()) else None


async def drain(q: Any) -> list[Any]:
    """Every item an async queue hands out without waiting, in order."""
    out = []
    while True:
        try:
            out.append(await q.get_nowait())
        except Empty:
            return out


async def take_in_own_tasks(q: Any, count: int, done: Collection[int] = ()) -> list[Any]:
    """Get ``count`` items in order, each by its own task; task ``i`` marks its item done if ``i in done``.

    The tasks stay alive until every item is got, since a task's key (which
    ``task_done`` matches with its ``get``) is unique only while it runs: the
    items not done stay held by tasks that never finish them.
    """
    turns = [anyio.Event() for _ in range(count + 1)]
    turns[0].set()
    finish = anyio.Event()
    got: list[Any] = []

    async def take(i: int) -> None:
        await turns[i].wait()
        got.append(await q.get())
        turns[i + 1].set()
        if i in done:
            await q.task_done()
        await finish.wait()

    async with anyio.create_task_group() as tg:
        for i in range(count):
            tg.start_soon(take, i)
        await turns[count].wait()
        finish.set()
    return got


def run_threads(targets: list[Callable[[], object]], timeout: float = 30) -> list[BaseException]:
    """Run each target on a thread of its own; wait for all; return what they raised."""
    errors: list[BaseException] = []

    def guarded(target: Callable[[], object]) -> None:
        try:
            target()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(t,)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), "a thread did not finish"
    return errors
