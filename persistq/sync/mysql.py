"""Blocking, thread-safe twin of :class:`persistq.MySQLQueue`.

No storage logic here: every method forwards to the async queue through the
process's portal loop (:mod:`._portal`), one hand-off per call.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, ClassVar

from .. import serializers as _serializers
from ..engines.mysql import DEFAULT_POOL_SIZE
from ..engines.sqlite import Durability
from ..queues._base import DEFAULT_POLL_INTERVAL, QueueStatistics
from ..queues.mysql import MySQLQueue as _AsyncMySQLQueue
from .queues import _SyncTwin, _thread_key

__all__ = ("MySQLQueue",)


class MySQLQueue(_SyncTwin):
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
        maxsize: int = 0,
        timeout: float = 10.0,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        durability: Durability = "full",
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
            maxsize=maxsize,
            timeout=timeout,
            poll_interval=poll_interval,
            durability=durability,
        )
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
        self.timeout: float = q.timeout
        self.auto_commit: bool = q.auto_commit
        self.serializer: Any = q.serializer
        self.maxsize: int = q.maxsize
        self.durability: str = q.durability
        self.poll_interval: float = q.poll_interval

    def open(self) -> None:
        """Connect (the constructor already did; idempotent)."""
        self._call("open")

    def __enter__(self) -> MySQLQueue:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> int:
        """Put ``item`` at the tail; return its id (committed on return)."""
        return self._call("put", item, block, timeout)  # type: ignore[no-any-return]

    def put_nowait(self, item: Any) -> int:
        """``put(item, block=False)``."""
        return self._call("put_nowait", item)  # type: ignore[no-any-return]

    def put_many(self, items: Iterable[Any], block: bool = True, timeout: float | None = None) -> list[int]:
        """Put several items in one transaction (all or none); return their ids."""
        return self._call("put_many", list(items), block, timeout)  # type: ignore[no-any-return]

    def get(
        self,
        block: bool = True,
        timeout: float | None = None,
        id: int | dict[str, Any] | None = None,  # noqa: A002 - persist-queue's name
        raw: bool = False,
    ) -> Any:
        """Remove and return the next item (or the item ``id``); atomic across machines."""
        return self._call("_get", block, timeout, id, raw, _thread_key())

    def get_nowait(
        self,
        id: int | dict[str, Any] | None = None,  # noqa: A002 - persist-queue's name
        raw: bool = False,
    ) -> Any:
        """``get(block=False)``."""
        return self._call("_get", False, None, id, raw, _thread_key())

    def get_many(
        self, max_items: int, block: bool = True, timeout: float | None = None, raw: bool = False
    ) -> list[Any]:
        """Take up to ``max_items`` items in one transaction, in queue order."""
        return self._call("get_many", max_items, block, timeout, raw)  # type: ignore[no-any-return]

    def task_done(self) -> None:
        """Mark one item this thread got as done (see the async ``task_done``)."""
        portal = self._portal
        # Bookkeeping alone needs no hand-off to the loop (auto_commit=True).
        if portal is not None and self._pid == os.getpid() and self._q._task_done_from_thread(portal.loop):
            return
        self._call("_task_done", _thread_key())

    def join(self) -> None:
        """Block until every counted item was marked done."""
        self._call("join")

    def qsize(self) -> int:
        """Number of items waiting, counted by the server."""
        return self._call("qsize")  # type: ignore[no-any-return]

    def empty(self) -> bool:
        """Whether no item is waiting."""
        return self._call("empty")  # type: ignore[no-any-return]

    def full(self) -> bool:
        """Whether ``maxsize`` items are waiting."""
        return self._call("full")  # type: ignore[no-any-return]

    @property
    def size(self) -> int:
        """Number of items waiting (persist-queue's ``size``)."""
        return self.qsize()

    def __len__(self) -> int:
        return self.qsize()

    def queue(self) -> list[dict[str, Any]]:
        """Every waiting item as ``{"id", "data", "timestamp"}``, in get order."""
        return self._call("queue")  # type: ignore[no-any-return]

    def update(self, item: Any, id: int | None = None) -> int:  # noqa: A002
        """Replace the data of a stored item; return its id."""
        return self._call("update", item, id)  # type: ignore[no-any-return]

    def shrink_disk_usage(self) -> None:
        """Rebuild the table to give free space back (``OPTIMIZE TABLE``)."""
        self._call("shrink_disk_usage")

    def statistics(self) -> QueueStatistics:
        """Return a snapshot of the queue object's waiters and task counts."""
        return self._q.statistics()  # type: ignore[no-any-return]
