"""The throwaway MariaDB that `make test` starts is there for the MySQL tests."""

from __future__ import annotations

import os

import pytest
from conftest import mysql_env


def test_make_test_started_a_reachable_mariadb() -> None:
    """`make test` exports the server's settings, and the server answers queries."""
    env = mysql_env()
    if env is None:
        if os.environ.get("CI"):
            pytest.fail("CI must run the MySQL tests: start them through `make test`")
        pytest.skip("run through `make test` to start the throwaway MariaDB")
    pymysql = pytest.importorskip("pymysql")
    conn = pymysql.connect(
        host=env["host"],
        port=int(env["port"]),
        user=env["user"],
        password=env["password"],
        database=env["database"],
        connect_timeout=10,
    )
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT VERSION()")
            (version,) = cur.fetchone()
        assert "MariaDB" in version
    finally:
        conn.close()
