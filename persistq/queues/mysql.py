"""``MySQLQueue``: the FIFO queue kind composed with the MySQL / MariaDB engine.

Waiting, ``maxsize``, task accounting, ``auto_commit=False`` and
serialization are :class:`~persistq.queues.fifo.SQLiteQueue`'s, unchanged;
only the engine differs (:class:`~persistq.engines.mysql.MySQLEngine`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal, cast

from .. import serializers as _serializers
from ..engines.mysql import DEFAULT_POOL_SIZE, DRIVERS, Driver, MySQLEngine, MySQLParams, parse_dsn
from ..engines.sqlite import Durability, SQLiteEngine, TableSpec
from ._base import DEFAULT_POLL_INTERVAL
from .fifo import SQLiteQueue

__all__ = (
    "DEFAULT_MAX_POLL_INTERVAL",
    "MySQLAttributes",
    "MySQLQueue",
    "MySQLTarget",
    "resolve_mysql_target",
)

DEFAULT_MAX_POLL_INTERVAL = 0.2
"""Seconds: how far a waiting queue's polling of the server backs off while nothing changes."""


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
        pool_size: connections (and, with PyMySQL, worker threads) per queue object.
        timeout: seconds to wait for a connection and for a row lock.
        driver: ``"auto"``, ``"aiomysql"`` or ``"pymysql"``.
    """

    params: MySQLParams
    name: str
    pool_size: int
    timeout: float
    driver: Driver = "auto"


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
    return MySQLTarget(params, "sql" if qname is None else qname, pool_size, timeout, driver)


class MySQLAttributes:
    """Mixin of the MySQL queue kinds: their public attributes and ``repr``.

    Put it before the queue kind in the bases; call :meth:`_adopt_target`
    after the kind's ``__init__``.
    """

    host: str
    port: int
    user: str
    database: str
    db_name: str
    charset: str
    pool_size: int
    table_name: str
    name: str
    _params: MySQLParams
    _pool_size: int
    _driver: Driver
    _state: str

    poll_interval: float
    max_poll_interval: float
    _max_poll_gap: float

    def _set_max_poll_interval(self, value: float) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"'max_poll_interval' must be a positive number of seconds, not {value!r}")
        self.max_poll_interval = float(value)
        """The longest gap between checks for other connections' changes while waiting."""
        self._max_poll_gap = max(self.max_poll_interval, self.poll_interval / 2)

    def _take_target(self, target: MySQLTarget) -> None:
        # _make_engine (run by the kind's constructor) needs these.
        self._params = target.params
        self._pool_size = target.pool_size
        self._driver = target.driver

    def _adopt_target(self, target: MySQLTarget, table_prefix: str) -> None:
        params = target.params
        self.host = params.host
        self.port = params.port
        self.user = params.user
        self.database = params.database
        self.db_name = params.database
        self.charset = params.charset
        self.pool_size = target.pool_size
        self.driver: Driver = target.driver
        """The driver asked for (``"auto"``, ``"aiomysql"`` or ``"pymysql"``)."""
        self.table_name = f"{table_prefix}_{self.name}"

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self._params.safe_dsn} table={self.table_name!r} "
            f"pool_size={self.pool_size} {self._state}>"
        )


class MySQLQueue(MySQLAttributes, SQLiteQueue):
    """A persistent FIFO queue in a MySQL / MariaDB table (async; asyncio and trio).

    Drop-in for persist-queue's ``MySQLQueue`` (its positional parameters,
    ``passwd``/``db_name``), also taking the ``password``/``database``/
    ``table_name`` keywords its README shows, or a DSN. The table is
    ``queue_{name}``; a table written by persist-queue opens in place (its
    columns are widened to ``BIGINT``/``LONGBLOB``/``DOUBLE``).

    Any number of queue objects, processes and machines can share one table:
    a get claims its item with ``SELECT … FOR UPDATE SKIP LOCKED`` and
    ``DELETE`` in one transaction, so no item is delivered twice and none is
    lost; a put that returned is committed. Gets blocked on an empty queue are
    woken at once by puts through the same object, and by puts from
    elsewhere within ``poll_interval`` to ``max_poll_interval`` (the polling of
    a cheap ``MIN(_id), MAX(_id)`` query backs off while nothing changes).

    Args:
        host: the server's host name or address, or a DSN
            ``mysql://user:password@host:port/database?table=name``.
        user: the account.
        passwd: its password (also ``password=``). Never shown in a
            ``repr``, an error message or a log.
        db_name: the database (also ``database=``).
        name: the queue's name (also ``table_name=``, DSN ``?table=``); the
            table is ``queue_{name}``. 1-58 ASCII letters, digits, ``_`` or
            ``-``. Default ``"sql"`` (persist-queue's).
        port: the server's TCP port (default 3306).
        charset: the connection character set.
        auto_commit: ``True``: a get removes the item for good. ``False``: a
            got item moves to a pending table until ``task_done()``; items of
            a closed queue object, or of a crashed process on this host, go
            back to their old places.
        serializer: ``persistq.serializers.pickle`` (default), ``json``,
            ``msgpack``, ``cbor2``, or any object with ``dumps``/``loads`` or
            ``dump``/``load``.
        dsn: a DSN (as ``host`` may be); explicit keywords fill what it leaves out.
        pool_size: connections this object uses (with PyMySQL, one worker
            thread each). Concurrent operations on one connection share a
            transaction and a ``COMMIT``.
        driver: ``"auto"`` (default): aiomysql on asyncio, with
            non-blocking sockets on the event loop, when it is installed
            (the ``mysql`` extra); PyMySQL on worker threads on trio, in the
            blocking twins of :mod:`persistq.sync` (faster there), under
            gevent/eventlet, and without aiomysql.
            ``"aiomysql"`` insists (an error on trio); ``"pymysql"`` always
            uses the threads. The DSN may say ``?driver=…``.
        maxsize: ``> 0`` bounds the number of waiting items (across all
            processes: bounded puts take turns on a lock row).
        timeout: seconds to wait for a connection and for a row lock. A
            statement whose answer takes longer than ``3 * timeout + 5``
            seconds (35 s by default) counts as a lost connection: a server
            that hangs, or a network that silently drops packets, fails the
            call with :class:`~persistq.errors.StorageError` instead of
            hanging it (``OPTIMIZE TABLE`` has no such limit).
        poll_interval: the shortest gap (default 25 ms) between checks for
            changes made by other connections while a ``get``/``put``/``join``
            waits: right after a change, checks come this often.
        max_poll_interval: the longest gap (default 0.2 s): while nothing
            changes, the gap doubles up to this, so an idle consumer costs
            the server about five cheap queries a second.
        durability: accepted for API parity; durability is the server's
            (``innodb_flush_log_at_trx_commit=1`` and ``sync_binlog=1``
            make every commit reach the disk before the call returns).
    """

    _TABLE_PREFIX: ClassVar[str] = "queue"
    _ORDER: ClassVar[Literal["fifo", "filo", "priority"]] = "fifo"

    def __init__(
        self,
        host: str | None = None,
        user: str | None = None,
        passwd: str | None = None,
        db_name: str | None = None,
        name: str | None = None,
        port: int | None = None,
        charset: str = "utf8mb4",
        auto_commit: bool = True,
        serializer: Any = _serializers.pickle,
        *,
        password: str | None = None,
        database: str | None = None,
        table_name: str | None = None,
        dsn: str | None = None,
        pool_size: int = DEFAULT_POOL_SIZE,
        driver: Driver = "auto",
        maxsize: int = 0,
        timeout: float = 10.0,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        max_poll_interval: float = DEFAULT_MAX_POLL_INTERVAL,
        durability: Durability = "full",
    ) -> None:
        target = resolve_mysql_target(
            type(self).__name__,
            host,
            user,
            passwd,
            db_name,
            name,
            port,
            charset,
            password=password,
            database=database,
            table_name=table_name,
            dsn=dsn,
            pool_size=pool_size,
            timeout=timeout,
            driver=driver,
        )
        self._take_target(target)
        super().__init__(
            self._params.safe_dsn,
            target.name,
            False,
            target.timeout,
            auto_commit,
            serializer,
            None,
            maxsize=maxsize,
            durability=durability,
            poll_interval=poll_interval,
        )
        self._adopt_target(target, self._TABLE_PREFIX)
        self._set_max_poll_interval(max_poll_interval)

    def _make_engine(self, db_file_name: str | None) -> SQLiteEngine:
        engine = MySQLEngine(
            self._params,
            TableSpec(f"{self._TABLE_PREFIX}_{self.name}", self._ORDER, self._UNIQUE),
            _serializers.serializer_name(self.serializer),
            pool_size=self._pool_size,
            lock_timeout=self.timeout,
            driver=self._driver,
        )
        # The queue kind uses only the storage interface both engines share.
        return cast(SQLiteEngine, engine)

    async def __aenter__(self) -> MySQLQueue:
        await self.open()
        return self

    async def shrink_disk_usage(self) -> None:
        """Rebuild the table to give free space back to the server (``OPTIMIZE TABLE``)."""
        await super().shrink_disk_usage()
