"""``MySQLQueue``: the FIFO queue kind composed with the MySQL / MariaDB engine.

Waiting, ``maxsize``, task accounting, ``auto_commit=False`` and
serialization are :class:`~persistq.queues.fifo.FIFOQueue`'s, unchanged:
this class only keeps persist-queue's constructor; the engine comes from the
``mysql://`` location like any kind's.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, TypeVar

from .. import serializers as _serializers
from ..engines.base import Durability
from ..engines.locations import Location, server_location
from ..engines.mysql import DEFAULT_POOL_SIZE as DEFAULT_POOL_SIZE
from ..engines.mysql import Driver as Driver
from ..engines.mysql import MySQLParams
from ..engines.mysql_location import MySQLTarget, resolve_mysql_target
from ._base import DEFAULT_POLL_INTERVAL, SERVER_MAX_POLL_GAP
from .fifo import FIFOQueue

__all__ = (
    "DEFAULT_MAX_POLL_INTERVAL",
    "MySQLAttributes",
    "MySQLQueue",
)

DEFAULT_MAX_POLL_INTERVAL = SERVER_MAX_POLL_GAP
"""Seconds: how far a waiting queue's polling of the server backs off while nothing changes."""


_T = TypeVar("_T")


class MySQLAttributes:
    """Mixin of the MySQL queue kinds: their public attributes and ``repr``.

    Put it before the queue kind in the bases; pass :meth:`_location_of` as
    the kind's location and call :meth:`_adopt_target` after its ``__init__``.
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

    @staticmethod
    def _location_of(target: MySQLTarget) -> Location:
        return server_location("mysql", target)

    def _adopt_target(self, target: MySQLTarget, table_prefix: str) -> None:
        params = self._params = target.params
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


class MySQLQueue(MySQLAttributes, FIFOQueue[_T]):
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

    KIND_NAME: ClassVar[str] = "MySQLQueue"
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
        super().__init__(
            self._location_of(target),
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

    async def __aenter__(self) -> MySQLQueue[_T]:
        await self.open()
        return self

    async def shrink_disk_usage(self) -> None:
        """Rebuild the table to give free space back to the server (``OPTIMIZE TABLE``)."""
        await super().shrink_disk_usage()
