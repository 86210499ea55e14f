"""The engines the conformance suite runs every kind on, and how to reach each in a test."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ENGINES = ["sqlite", "mysql", "postgresql"]
"""Every engine a kind must work on."""


def _support(engine: str) -> Any:
    """The test support module of a server engine (settings, URL, clean-up)."""
    import _mysql_support
    import _pg_support

    return _mysql_support if engine == "mysql" else _pg_support


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
    support = _support(engine)
    env = support.server_env()  # fails on CI without the server, else skips
    try:
        yield Place(engine, support.url(env), name)
    finally:
        support.drop_matching(env, name)


def open_kwargs(engine: str) -> dict[str, Any]:
    """Keywords that make a test fast on ``engine`` (tight polling on servers)."""
    return {} if engine == "sqlite" else {"poll_interval": 0.02}
