"""Blocking, thread-safe twin of :class:`persistq.MySQLQueue`.

No storage logic here: every method forwards to the async queue through the
process's portal loop (:mod:`._portal`), one hand-off per call.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

from .. import serializers as _serializers
from ..queues._base import DEFAULT_POLL_INTERVAL, Durability
from ..queues.mysql import DEFAULT_MAX_POLL_INTERVAL, DEFAULT_POOL_SIZE, Driver
from ..queues.mysql import MySQLQueue as _AsyncMySQLQueue
from .queues import SQLiteQueue

__all__ = ("MySQLQueue",)

_T = TypeVar("_T")


class _MySQLTwinAttributes:
    """Mixin of the blocking MySQL twins: the async queue's public attributes, copied once at open."""

    _q: Any

    def _adopt_mysql_attributes(self, driver: str) -> None:
        q = self._q
        self.path: str = q.path
        self.host: str = q.host
        self.port: int = q.port
        self.user: str = q.user
        self.database: str = q.database
        self.db_name: str = q.db_name
        self.name: str = q.name
        self.table_name: str = q.table_name
        self.charset: str = q.charset
        self.pool_size: int = q.pool_size
        self.driver: str = driver  # as asked; "auto" runs PyMySQL threads here (see MySQLDatabase)
        self.timeout: float = q.timeout
        self.serializer: Any = q.serializer
        self.maxsize: int = q.maxsize
        self.durability: str = q.durability
        self.poll_interval: float = q.poll_interval
        self.max_poll_interval: float = q.max_poll_interval


class MySQLQueue(_MySQLTwinAttributes, SQLiteQueue[_T]):
    """Blocking, thread-safe twin of :class:`persistq.MySQLQueue` (FIFO on MySQL / MariaDB).

    A drop-in for persist-queue's ``MySQLQueue``: same positional parameters
    (``host, user, passwd, db_name, name, port, charset, auto_commit,
    serializer``), plus the ``password``/``database``/``table_name`` keywords,
    a DSN, ``maxsize``, ``join``, ``put_many``/``get_many``, ``close()`` and
    ``with``. Safe to share between threads, processes and machines. The
    constructor connects, so an unreachable server fails here with
    :class:`~persistq.errors.StorageError`. See the async class for each
    parameter.
    """

    _async_cls: ClassVar[type[Any]] = _AsyncMySQLQueue

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
    ) -> None:  # the MySQL keywords replace SQLiteQueue's
        self._open_twin(
            host,
            user,
            passwd,
            db_name,
            name,
            port,
            charset,
            auto_commit,
            serializer,
            password=password,
            database=database,
            table_name=table_name,
            dsn=dsn,
            pool_size=pool_size,
            driver=driver,
            maxsize=maxsize,
            timeout=timeout,
            poll_interval=poll_interval,
            max_poll_interval=max_poll_interval,
            durability=durability,
        )
        self._adopt_mysql_attributes(driver)
        self.auto_commit: bool = self._q.auto_commit

    def open(self) -> None:
        """Connect (the constructor already did; idempotent)."""
        self._call("open")

    def shrink_disk_usage(self) -> None:
        """Rebuild the table to give free space back (``OPTIMIZE TABLE``)."""
        self._call("shrink_disk_usage")
