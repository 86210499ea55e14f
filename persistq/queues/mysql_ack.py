"""``MySQLAckQueue``: the ack queue kind composed with the MySQL / MariaDB ack engine.

Leases, attempts, dead letters, ``nack(delay=…)``, ``extend`` and the
acked-row bound are :class:`~persistq.queues.ack.AckQueue`'s, unchanged;
the constructor is :class:`~persistq.queues.mysql.MySQLQueue`'s plus the ack
keywords; the engine comes from the ``mysql://`` location like any kind's.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

from .. import serializers as _serializers
from ..engines.base import Durability
from ..engines.mysql import DEFAULT_POOL_SIZE, Driver
from ..engines.mysql_location import resolve_mysql_target
from ._base import DEFAULT_POLL_INTERVAL
from .ack import AckQueue
from .mysql import DEFAULT_MAX_POLL_INTERVAL, MySQLAttributes

__all__ = ("MySQLAckQueue",)

_T = TypeVar("_T")


class MySQLAckQueue(MySQLAttributes, AckQueue[_T]):
    """A persistent FIFO ack queue in a MySQL / MariaDB table (async; asyncio and trio).

    The ack API of :class:`~persistq.SQLiteAckQueue` (``get`` → ``ack`` /
    ``nack`` / ``ack_failed``, leases, attempts, dead letters) shared by any
    number of processes on any number of machines. The table is
    ``ack_queue_{name}``. A get claims its item with ``SELECT … FOR UPDATE SKIP
    LOCKED`` and an ``UPDATE`` in one transaction: no item is delivered twice
    while its lease is live, and none is lost.

    Leases and delays run on the **server's clock**, so consumers whose
    machine clocks disagree still agree on when a lease ends.
    ``auto_resume`` (at open) gives back items of dead consumer processes
    **on this host** only: a host cannot tell whether a process on another
    machine still works. Items held by a consumer on a machine that died come
    back when their lease ends, so set ``visibility_timeout`` whenever
    consumers run on more than one machine.

    ``host``, ``user``, ``passwd``, ``db_name``, ``name``, ``port``,
    ``charset``, ``serializer``, ``password``, ``database``, ``table_name``,
    ``dsn``, ``pool_size``, ``driver``, ``maxsize``, ``timeout``,
    ``poll_interval``, ``max_poll_interval`` and ``durability`` are as in
    :class:`~persistq.MySQLQueue`; the table is ``ack_queue_{name}`` (name:
    1-54 characters).

    Args:
        auto_commit: accepted for compatibility; ack queues always commit
            (``False`` warns, as persist-queue does).
        auto_resume: at open, give back in-flight items whose lease expired or
            whose consumer process on this host is gone.
        visibility_timeout: seconds an item may stay in flight before it is
            ready again (``None``: until acked, nacked or resumed).
        max_attempts: ``> 0``: an item delivered that many times without an
            ack goes to ``ack_failed`` instead of being delivered again.
        max_acked_length: how many acked rows to keep (newest first); older
            ones are deleted as new acks come (``0``: delete at once).
    """

    KIND_NAME: ClassVar[str] = "MySQLAckQueue"
    _TABLE_PREFIX: ClassVar[str] = "ack_queue"

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
            auto_resume,
            target.name,
            False,
            target.timeout,
            auto_commit,
            serializer,
            None,
            maxsize=maxsize,
            durability=durability,
            poll_interval=poll_interval,
            visibility_timeout=visibility_timeout,
            max_attempts=max_attempts,
            max_acked_length=max_acked_length,
        )
        self._adopt_target(target, self._TABLE_PREFIX)
        self._set_max_poll_interval(max_poll_interval)

    async def shrink_disk_usage(self) -> None:
        """Rebuild the table to give free space back to the server (``OPTIMIZE TABLE``)."""
        await super().shrink_disk_usage()
