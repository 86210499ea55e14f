"""Where a PostgreSQL queue lives: a ``postgresql://`` (``postgres://``) location, resolved."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .postgres import DEFAULT_POOL_SIZE, PGParams, parse_pg_url

__all__ = ("PGTarget", "resolve_url")


@dataclass(frozen=True)
class PGTarget:
    """A resolved PostgreSQL location.

    Attributes:
        params: server, account, database and timeouts (no password in ``repr``).
        name_given: the queue name the URL gives (``?table=``), or ``None``.
        pool_size: connections (each driven by one storage thread) per queue object.
        lock_timeout: seconds a statement waits for a row lock.
    """

    params: PGParams
    name_given: str | None
    pool_size: int = DEFAULT_POOL_SIZE
    lock_timeout: float = 10.0

    def store_options(self) -> dict[str, Any]:
        """The PostgreSQL engines' keyword arguments besides params, table and serializer."""
        return {"pool_size": self.pool_size, "lock_timeout": self.lock_timeout}


def resolve_url(url: str) -> PGTarget:
    """Resolve a ``postgresql://user:password@host:port/database?table=NAME`` location.

    Raises:
        ValueError: a malformed URL (the message never repeats the password).
    """
    params = parse_pg_url(url)
    return PGTarget(params, params.table, lock_timeout=params.connect_timeout)
