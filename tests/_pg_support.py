"""What the PostgreSQL test modules share: the server's settings, URLs, SQL helpers, a private server."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "postgres.sh"
"""The script that starts and stops throwaway servers."""

_KEYS = ("HOST", "PORT", "USER", "PASSWORD", "DATABASE")


def pg_env() -> dict[str, str] | None:
    """Connection settings of the throwaway PostgreSQL that ``make test`` starts (``PERSISTQ_PG_*``)."""
    env = {k.lower(): os.environ.get(f"PERSISTQ_PG_{k}", "") for k in _KEYS}
    return env if all(env.values()) else None


def server_env() -> dict[str, str]:
    """The throwaway server's settings; fail on CI without a server, else skip."""
    found = pg_env()
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(
                "CI must run the PostgreSQL tests: start them through `make test` (scripts/postgres.sh)"
            )
        pytest.skip("run through `make test` (or source the env of scripts/postgres.sh) for PostgreSQL")
    pytest.importorskip("psycopg")
    return found


def url(env: dict[str, str], table: str | None = None) -> str:
    """The ``postgresql://`` URL of the server (with ``?table=`` if given)."""
    base = (
        f"postgresql://{quote(env['user'], safe='')}:{quote(env['password'], safe='')}"
        f"@{env['host']}:{env['port']}/{quote(env['database'], safe='')}"
    )
    return base if table is None else f"{base}?table={table}"


def params(env: dict[str, str], **changes: Any) -> Any:
    """:class:`~persistq.engines.postgres.PGParams` of the server, with ``changes``."""
    import dataclasses

    from persistq.engines.postgres import parse_pg_url

    return dataclasses.replace(parse_pg_url(url(env)), **changes)


def connect(env: dict[str, str]) -> Any:
    """A psycopg connection in autocommit mode, for checking what the engines wrote."""
    import psycopg

    return psycopg.connect(
        host=env["host"],
        port=int(env["port"]),
        user=env["user"],
        password=env["password"],
        dbname=env["database"],
        autocommit=True,
        application_name="persistq-tests",
    )


def sql(env: dict[str, str], statement: str, args: Any = None) -> list[Any]:
    """Run one statement on a fresh connection; return its rows (``[]`` if it returns none)."""
    with connect(env) as conn:
        cur = conn.execute(statement, args)
        return list(cur.fetchall()) if cur.description is not None else []


def drop_tables(env: dict[str, str], *tables: str) -> None:
    """Drop ``tables`` (and their pending tables) and forget their serializer and change rows."""
    from persistq.engines.postgres import pending_table, quote_ident

    names = [*tables, *(pending_table(t) for t in tables)]
    with connect(env) as conn:
        conn.execute("DROP TABLE IF EXISTS " + ", ".join(quote_ident(n) for n in names))
        for t in tables:
            for meta in ("persistq_meta", "persistq_changes"):
                if conn.execute("SELECT to_regclass(%s)", (meta,)).fetchone()[0] is not None:  # type: ignore[index]
                    conn.execute(f"DELETE FROM {meta} WHERE tbl = %s", (t,))


def drop_matching(env: dict[str, str], marker: str) -> None:
    """Drop every table whose name holds ``marker`` (any kind's, pending and dict tables too)."""
    rows = sql(
        env,
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE %s",
        (f"%{marker}%",),
    )
    if rows:
        drop_tables(env, *(str(r[0]) for r in rows))


@contextlib.contextmanager
def fresh_tables(env: dict[str, str], prefix: str = "postgres_", count: int = 1) -> Iterator[list[str]]:
    """``count`` fresh table names starting with ``prefix``; dropped afterwards."""
    names = [f"{prefix}{uuid.uuid4().hex[:12]}" for _ in range(count)]
    try:
        yield names
    finally:
        drop_tables(env, *names)


@contextlib.contextmanager
def private_server() -> Iterator[dict[str, str]]:
    """A throwaway PostgreSQL of its own (for tests that kill or restart the server).

    Yields its settings (``host`` … ``database`` plus ``pidfile`` and
    ``start_cmd``); the server is stopped, by PID, and its directory removed
    afterwards. The directory is outside pytest's private temporary
    directory, since the server's account must be able to reach it.
    """
    base = tempfile.mkdtemp(prefix="persistq-pgtest-")
    os.chmod(base, 0o755)
    where = os.path.join(base, "pg")
    try:
        done = subprocess.run(
            ["bash", str(SCRIPT), "start", where], capture_output=True, text=True, timeout=120, check=False
        )
        if done.returncode != 0:
            pytest.fail(f"scripts/postgres.sh start failed:\n{done.stderr[-3000:]}")
        env: dict[str, str] = {}
        with open(os.path.join(where, "env"), encoding="utf-8") as f:
            for line in f:
                key, _, value = line.strip().partition("=")
                if key.startswith("PERSISTQ_PG_"):
                    env[key[len("PERSISTQ_PG_") :].lower()] = value
        yield env
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop", where], capture_output=True, timeout=120, check=False)
        shutil.rmtree(base, ignore_errors=True)


def server_pid(env: dict[str, str]) -> int:
    """The postmaster's PID of a server started by scripts/postgres.sh."""
    with open(env["pidfile"], encoding="utf-8") as f:
        return int(f.read().strip())
