"""The engines the conformance suite runs every kind on, and how to reach each in a test."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from conftest import mysql_env

ENGINES = ["sqlite", "mysql", "postgresql"]
"""Every engine a kind must work on."""


def pg_env() -> dict[str, str] | None:
    """Connection settings of the throwaway PostgreSQL that ``make test`` starts."""
    keys = ("HOST", "PORT", "USER", "PASSWORD", "DATABASE")
    env = {k.lower(): os.environ.get(f"PERSISTQ_PG_{k}", "") for k in keys}
    return env if all(env.values()) else None


def _require(engine: str) -> dict[str, str]:
    env = mysql_env() if engine == "mysql" else pg_env()
    if env is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the {engine} tests: start them through `make test`")
        pytest.skip(f"run through `make test` to start the throwaway {engine} server")
    return env


def server_url(engine: str, env: dict[str, str]) -> str:
    """The location URL of the test server (no table: ``name=`` picks it)."""
    scheme = "mysql" if engine == "mysql" else "postgresql"
    return (
        f"{scheme}://{quote(env['user'], safe='')}:{quote(env['password'], safe='')}"
        f"@{env['host']}:{env['port']}/{env['database']}"
    )


def _drop_mysql(env: dict[str, str], marker: str) -> None:
    import pymysql

    conn = pymysql.connect(
        host=env["host"],
        port=int(env["port"]),
        user=env["user"],
        password=env["password"],
        database=env["database"],
        autocommit=True,
    )
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = %s AND table_name LIKE %s",
                (env["database"], f"%{marker}%"),
            )
            tables = [r[0] for r in cur.fetchall()]
            if tables:
                cur.execute("DROP TABLE IF EXISTS " + ", ".join(f"`{t}`" for t in tables))
            cur.execute("SHOW TABLES LIKE 'persistq_meta'")
            if cur.fetchone():
                cur.execute("DELETE FROM persistq_meta WHERE tbl LIKE %s", (f"%{marker}%",))
    finally:
        conn.close()


def _drop_pg(env: dict[str, str], marker: str) -> None:
    import psycopg

    with psycopg.connect(server_url("postgresql", env), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE %s",
            (f"%{marker}%",),
        ).fetchall()
        for (table,) in rows:
            conn.execute(f'DROP TABLE IF EXISTS "{table}" CASCADE')
        with contextlib.suppress(psycopg.errors.UndefinedTable):
            conn.execute("DELETE FROM persistq_meta WHERE tbl LIKE %s", (f"%{marker}%",))


class Place:
    """Where a test's queues live on one engine: a location and a fresh queue name."""

    def __init__(self, engine: str, location: str, name: str) -> None:
        self.engine = engine
        self.location = location
        self.name = name

    def __repr__(self) -> str:
        return f"<Place {self.engine} {self.name}>"


@contextlib.contextmanager
def place(engine: str, tmp_path: Path) -> Iterator[Place]:
    """A fresh place on ``engine``; its server tables are dropped afterwards."""
    name = "c" + uuid.uuid4().hex[:10]
    if engine == "sqlite":
        yield Place(engine, str(tmp_path / "q"), name)
        return
    env = _require(engine)
    try:
        yield Place(engine, server_url(engine, env), name)
    finally:
        (_drop_mysql if engine == "mysql" else _drop_pg)(env, name)


def open_kwargs(engine: str) -> dict[str, Any]:
    """Keywords that make a test fast on ``engine`` (tight polling on servers)."""
    return {} if engine == "sqlite" else {"poll_interval": 0.02}
