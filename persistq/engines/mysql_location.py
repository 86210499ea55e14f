"""Where a MySQL / MariaDB queue lives: a DSN and/or persist-queue's keywords, resolved.

The MySQL kinds' constructors (persist-queue's ``host, user, passwd,
db_name, …``) and the ``mysql://`` locations every kind accepts both end here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .mysql import DEFAULT_POOL_SIZE, DRIVERS, Driver, MySQLParams, parse_dsn

__all__ = ("MySQLTarget", "resolve_mysql_target", "resolve_url")


def _pick(name: str, *candidates: tuple[str, Any]) -> Any:
    """The one value given among aliases (``passwd``/``password`` …); equal duplicates are fine."""
    given = [(key, value) for key, value in candidates if value is not None]
    values = {repr(v) for _, v in given}
    if len(values) > 1:
        keys = ", ".join(k for k, _ in given)
        raise ValueError(f"conflicting values for {name} (given as {keys})")
    return given[0][1] if given else None


@dataclass(frozen=True)
class MySQLTarget:
    """Where a MySQL queue lives, resolved from a DSN and/or keywords.

    Attributes:
        params: server, account, database and charset.
        name: the queue's name (``"sql"`` when none was given, as persist-queue).
        name_given: the name the DSN or keywords gave, or ``None``.
        pool_size: connections (and, with PyMySQL, worker threads) per queue object.
        timeout: seconds to wait for a connection and for a row lock.
        driver: ``"auto"``, ``"aiomysql"`` or ``"pymysql"``.
    """

    params: MySQLParams
    name: str
    pool_size: int
    timeout: float
    driver: Driver = "auto"
    name_given: str | None = None

    def store_options(self) -> dict[str, Any]:
        """The MySQL engines' keyword arguments besides params, table and serializer."""
        return {"pool_size": self.pool_size, "lock_timeout": self.timeout, "driver": self.driver}


def resolve_mysql_target(
    kind: str,
    host: str | None,
    user: str | None,
    passwd: str | None,
    db_name: str | None,
    name: str | None,
    port: int | None,
    charset: str,
    *,
    password: str | None,
    database: str | None,
    table_name: str | None,
    dsn: str | None,
    pool_size: int,
    timeout: float,
    driver: str = "auto",
) -> MySQLTarget:
    """Resolve the constructor arguments every MySQL queue kind takes.

    ``host`` may be a DSN; explicit keywords fill what the DSN leaves out,
    and aliases (``passwd``/``password``, ``db_name``/``database``,
    ``name``/``table_name``) must agree. ``kind`` names the class in messages.

    Raises:
        ValueError: a missing host, user or database, a bad port or timeout,
            conflicting aliases, or a bad DSN (never quoting the password).
    """
    if host is not None and "://" in host:
        if dsn is not None and dsn != host:
            raise ValueError("give the DSN either as the first argument or as dsn=, not both")
        dsn, host = host, None
    from_dsn = parse_dsn(dsn) if dsn is not None else {}
    host = _pick("host", ("host", host), ("dsn", from_dsn.get("host")))
    user = _pick("user", ("user", user), ("dsn", from_dsn.get("user")))
    secret = _pick("password", ("passwd", passwd), ("password", password), ("dsn", from_dsn.get("password")))
    db = _pick("database", ("db_name", db_name), ("database", database), ("dsn", from_dsn.get("database")))
    qname = _pick("name", ("name", name), ("table_name", table_name), ("dsn", from_dsn.get("name")))
    port = _pick("port", ("port", port), ("dsn", from_dsn.get("port")))
    if "charset" in from_dsn and charset == "utf8mb4":
        charset = from_dsn["charset"]
    if "pool_size" in from_dsn and pool_size == DEFAULT_POOL_SIZE:
        pool_size = from_dsn["pool_size"]
    if "timeout" in from_dsn and timeout == 10.0:
        timeout = from_dsn["timeout"]
    if "driver" in from_dsn and driver == "auto":
        driver = from_dsn["driver"]
    if driver not in DRIVERS:
        raise ValueError(f"'driver' must be one of {', '.join(DRIVERS)}, not {driver!r}")
    if not host:
        raise ValueError(f"{kind} needs a host (or a DSN)")
    if not user:
        raise ValueError(f"{kind} needs a user")
    if not db:
        raise ValueError(f"{kind} needs a database (db_name= or database=)")
    if port is None:
        port = 3306
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError(f"'port' must be an int between 1 and 65535, not {port!r}")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0:
        raise ValueError(f"'timeout' must be a non-negative number of seconds, not {timeout!r}")
    wait = float(timeout) if timeout > 0 else 10.0
    params = MySQLParams(
        host=str(host),
        port=port,
        user=str(user),
        database=str(db),
        password="" if secret is None else str(secret),
        charset=charset,
        connect_timeout=wait,
        # A statement waits at most `wait` for a row lock; an answer that takes
        # much longer than that means the server or the network is gone.
        read_timeout=3 * wait + 5,
    )
    return MySQLTarget(params, "sql" if qname is None else qname, pool_size, timeout, driver, qname)


def resolve_url(url: str) -> MySQLTarget:
    """Resolve a ``mysql://`` (``mariadb://``) location: every setting from the URL, defaults for the rest."""
    return resolve_mysql_target(
        "a MySQL location",
        url,
        None,
        None,
        None,
        None,
        None,
        "utf8mb4",
        password=None,
        database=None,
        table_name=None,
        dsn=None,
        pool_size=DEFAULT_POOL_SIZE,
        timeout=10.0,
    )
