"""What the MySQL test modules share: the server's settings, DSNs, keywords and table clean-up."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from conftest import mysql_env


def server_env() -> dict[str, str]:
    """The throwaway server's settings; fail on CI without a server, else skip."""
    found = mysql_env()
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("CI must run the MySQL tests: start them through `make test`")
        pytest.skip("run through `make test` (or scripts/mariadb.sh) to start the throwaway MariaDB")
    pytest.importorskip("pymysql")
    return found


def connect(env: dict[str, str]) -> Any:
    """A PyMySQL connection in autocommit mode, for checking what the queues wrote."""
    import pymysql

    return pymysql.connect(
        host=env["host"],
        port=int(env["port"]),
        user=env["user"],
        password=env["password"],
        database=env["database"],
        autocommit=True,
    )


def sql(env: dict[str, str], statement: str, args: Any = None) -> list[Any]:
    """Run one statement on a fresh connection; return its rows."""
    conn = connect(env)
    try:
        with conn.cursor() as cur:
            cur.execute(statement, args)
            return list(cur.fetchall())
    finally:
        conn.close()


def drop_tables(env: dict[str, str], *tables: str) -> None:
    """Drop ``tables`` and their serializer records in ``persistq_meta``."""
    conn = connect(env)
    try:
        with conn.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS " + ", ".join(f"`{t}`" for t in tables))
            cur.execute("SHOW TABLES LIKE 'persistq_meta'")
            if cur.fetchone():
                for t in tables:
                    cur.execute("DELETE FROM persistq_meta WHERE tbl = %s", (t,))
    finally:
        conn.close()


def unique_name(env: dict[str, str], prefix: str, tables: tuple[str, ...]) -> Iterator[str]:
    """Yield a fresh queue name; drop its tables (``tables`` formats with ``{name}``) afterwards."""
    import uuid

    qname = prefix + uuid.uuid4().hex[:12]
    yield qname
    drop_tables(env, *(t.format(name=qname) for t in tables))


def url(env: dict[str, str]) -> str:
    """The ``mysql://`` location of the test server's database (no table: ``name=`` picks it)."""
    return (
        f"mysql://{quote(env['user'], safe='')}:{quote(env['password'], safe='')}"
        f"@{env['host']}:{env['port']}/{env['database']}"
    )


def dsn(env: dict[str, str], name: str) -> str:
    """The DSN of queue ``name`` on the test server."""
    return f"{url(env)}?table={name}"


def drop_matching(env: dict[str, str], marker: str) -> None:
    """Drop every table whose name holds ``marker`` (any kind's, pending and dict tables too)."""
    rows = sql(
        env,
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = DATABASE() AND table_name LIKE %s",
        (f"%{marker}%",),
    )
    if rows:
        drop_tables(env, *(str(r[0]) for r in rows))


def kwargs(env: dict[str, str], name: str) -> dict[str, Any]:
    """The constructor keywords of queue ``name`` on the test server."""
    return {
        "host": env["host"],
        "port": int(env["port"]),
        "user": env["user"],
        "password": env["password"],
        "database": env["database"],
        "table_name": name,
    }


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (for unreachable-server tests)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def scratch_database(env: dict[str, str], database: str) -> Iterator[dict[str, str]]:
    """A fresh database ``database`` (``persistq_…``: the test user may create those); dropped afterwards.

    Yields ``env`` with ``database`` in it.
    """
    sql(env, f"DROP DATABASE IF EXISTS `{database}`")
    sql(env, f"CREATE DATABASE `{database}`")
    try:
        yield {**env, "database": database}
    finally:
        sql(env, f"DROP DATABASE IF EXISTS `{database}`")
