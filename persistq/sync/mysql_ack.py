"""Blocking, thread-safe twin of :class:`persistq.MySQLAckQueue`.

No storage logic here: the methods are :class:`persistq.sync.SQLiteAckQueue`'s
(each forwards to the async queue through the process's portal loop, one
hand-off per call); only the constructor differs.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

from .. import serializers as _serializers
from ..queues._base import DEFAULT_POLL_INTERVAL, Durability
from ..queues.mysql import DEFAULT_MAX_POLL_INTERVAL, DEFAULT_POOL_SIZE, Driver
from ..queues.mysql_ack import MySQLAckQueue as _AsyncMySQLAckQueue
from .ack import SQLiteAckQueue
from .mysql import _MySQLTwinAttributes

__all__ = ("MySQLAckQueue",)


_T = TypeVar("_T")


class MySQLAckQueue(_MySQLTwinAttributes, SQLiteAckQueue[_T]):
    """Blocking, thread-safe twin of :class:`persistq.MySQLAckQueue` (ack queue on MySQL / MariaDB).

    The ack API of :class:`persistq.sync.SQLiteAckQueue`, shared by any
    number of threads, processes and machines; the constructor of
    :class:`persistq.sync.MySQLQueue` plus the ack keywords. The constructor
    connects, so an unreachable server fails here with
    :class:`~persistq.errors.StorageError`. See the async class for leases
    (on the server's clock) and for what ``auto_resume`` can judge across
    machines.
    """

    _async_cls: ClassVar[type[Any]] = _AsyncMySQLAckQueue

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
        auto_resume: bool = True,
        visibility_timeout: float | None = None,
        max_attempts: int = 0,
        max_acked_length: int = 1000,
    ) -> None:
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
            auto_resume=auto_resume,
            visibility_timeout=visibility_timeout,
            max_attempts=max_attempts,
            max_acked_length=max_acked_length,
        )
        self._adopt_mysql_attributes(driver)
        q = self._q
        self.multithreading: bool = False
        self.auto_commit: bool = True
        self.auto_resume: bool = q.auto_resume
        self.visibility_timeout: float | None = q.visibility_timeout
        self.max_attempts: int = q.max_attempts
        self.max_acked_length: int = q.max_acked_length
