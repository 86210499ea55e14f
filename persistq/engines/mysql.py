"""The MySQL / MariaDB engine: bytes in, bytes out, on PyMySQL worker threads.

Same storage interface as :class:`~persistq.engines.sqlite.SQLiteEngine`
(``put``/``claim``/``restore``/``finish``/``release``/``recover``/``count``/
``rows``/``update``/``data_version``/``vacuum``), for every
:class:`~persistq.engines.sqlite.TableSpec` (FIFO, FILO, priority, unique),
so a queue kind composes with either.

Why PyMySQL on threads, on asyncio too: no MySQL driver supports both asyncio
and trio (aiomysql is asyncio-only; trio-mysql's last release is from 2021).
A small pool of dedicated worker threads (:mod:`._worker`), each owning one
blocking PyMySQL connection, gives one code path for both backends. A loopback
round trip is ~110-135 µs either way; the thread hand-off costs one hop per
operation (not per statement). Concurrent operations run on ``pool_size``
connections at once, each worker taking every job that arrived while it was
busy in one batch (one transaction, one commit). Measured on loopback
MariaDB 10.11, 2 vCPUs, one caller at a time: ``MySQLQueue`` put ~1,300-2,200/s
and get ~900-1,250/s on asyncio and trio alike; bare aiomysql statements
without any queue logic did INSERT+COMMIT at ~2,100-3,200/s and the same
claim transaction at ~1,200-1,300/s. The thread hop costs a put about as much
as the queue layer does, and nothing on a get; aiomysql would have meant a
second code path (asyncio only) and the aiomysql / PyMySQL >= 1.2.1 bytes bug.

Transactions: every connection runs in ``READ COMMITTED`` with
``autocommit`` off; a batch of jobs is one transaction ending in ``COMMIT``,
so an operation that returned is committed (and as durable as the server's
``innodb_flush_log_at_trx_commit`` makes a commit). A get claims with
``SELECT … ORDER BY _id LIMIT n FOR UPDATE SKIP LOCKED`` then ``DELETE`` in
the same transaction: atomic across any number of consumers on any number of
machines, and consumers never wait for each other's rows.

Connection faults: a connection lost *before* ``COMMIT`` was sent leaves
nothing behind (the server rolls the transaction back), so the engine
reconnects and runs the batch again once. A connection lost *during*
``COMMIT`` leaves the outcome unknown: the operation is not retried and fails
with a :class:`~persistq.errors.StorageError` that says so. A server that
cannot be reached fails the operation at once with a ``StorageError`` naming
host and port; the next operation tries again. The password never appears in
a message, a ``repr`` or a log.

Tables: the queue table (for FIFO ``queue_{name}``, persist-queue's name and
columns, widened to ``BIGINT``/``LONGBLOB``/``DOUBLE``; an existing
persist-queue table is altered in place, which only widens), with a
``priority BIGINT`` column and an index on ``(priority, _id)`` for priority
queues and a ``data_hash BINARY(32)`` column (SHA-256 of the data; InnoDB
cannot index a ``LONGBLOB``) with a UNIQUE index for unique queues;
``persistq_pending_{table}`` for items got with ``auto_commit=False`` and not
yet done; and ``persistq_meta`` recording each table's serializer (and a lock
row per table that bounded puts, and unique puts of several items, take turns
on). Table names are validated and quoted with backticks; values are always
escaped by the driver.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import math
import os
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from .._runtime import green_library, inline_allowed
from ..errors import (
    InvalidName,
    ItemNotFound,
    MissingDependencyError,
    QueueClosed,
    SerializerMismatch,
    StorageError,
)
from ._worker import NOT_NOW, Job, Worker, _wake_asyncio, run_job, run_job_asyncio, stop_worker
from .base import ORDER_BY
from .sqlite import NewRow, PendingRow, Row, TableSpec, validate_name
from .sqlite_ack import AckTableSpec

__all__ = (
    "DEFAULT_POOL_SIZE",
    "DRIVERS",
    "Driver",
    "MySQLDatabase",
    "MySQLEngine",
    "MySQLParams",
    "MySQLQueueTable",
    "check_table_name",
    "data_hash",
    "parse_dsn",
)

T = TypeVar("T")

Driver = Literal["auto", "aiomysql", "pymysql"]
DRIVERS: tuple[Driver, ...] = ("auto", "aiomysql", "pymysql")
"""``auto``: aiomysql on asyncio when it is installed, PyMySQL on worker threads otherwise."""


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _async_library() -> str | None:
    # trio never runs an asyncio loop in its thread; the sync twins' portal does.
    return "trio" if _running_loop() is None else "asyncio"


DEFAULT_POOL_SIZE = 1
"""Connections (and worker threads) per queue object.

One is the fastest on a loopback server with 2 vCPUs (100 tasks putting:
~4,200 puts/s with one connection, ~3,200-3,500 with two or four, because one
worker groups the waiting puts into one transaction). More connections are
meant for a remote server, where round trips, not CPU, bound the rate.
"""

_MAX_IDENT = 64
# Error codes meaning "the connection is gone": can't connect (2002, 2003),
# server gone away (2006), lost during query (2013), lost during read (2055),
# server shutting down (1053), connection killed (1927, MariaDB), disconnected
# for inactivity (4031, MySQL 8).
_LOST = frozenset({1053, 1927, 2002, 2003, 2006, 2013, 2055, 4031})
_DEADLOCK = 1213
_PACKET_TOO_LARGE = 1153
# One INSERT statement carries at most about this many bytes of escaped data
# (PyMySQL's own ``executemany`` limit); a bigger item goes alone.
_STMT_BYTES = 1_000_000
_DEADLOCK_RETRIES = 3
_IDS_PER_STATEMENT = 500


def _pymysql() -> Any:
    try:
        import pymysql
    except ImportError as exc:  # pragma: no cover - the mysql extra is installed in tests
        raise MissingDependencyError("PyMySQL", "mysql") from exc
    return pymysql


def _q(identifier: str) -> str:
    # Names are validated to [A-Za-z0-9_-]; backticks keep '-' and keywords legal.
    return "`" + identifier.replace("`", "``") + "`"


def _code(exc: BaseException) -> int:
    args: tuple[Any, ...] = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else 0


def _message(exc: BaseException) -> str:
    args: tuple[Any, ...] = getattr(exc, "args", ())
    if len(args) >= 2 and isinstance(args[1], str):
        return f"({args[0]}) {args[1]}"
    return str(exc) or type(exc).__name__


@dataclass(frozen=True)
class MySQLParams:
    """Where a MySQL queue lives. The password is kept out of ``repr``.

    Attributes:
        host, port, user, database: the server and account.
        password: never shown in a ``repr``, an error message or a log.
        charset: the connection character set.
        connect_timeout: seconds to wait for a connection (and its handshake).
        read_timeout: seconds to wait for the answer to a statement before
            the connection counts as lost (``None``: forever). Guards against
            a server that stopped answering, or a network that silently
            drops packets; ``OPTIMIZE TABLE`` is exempt.
    """

    host: str
    port: int
    user: str
    database: str
    password: str = field(default="", repr=False)
    charset: str = "utf8mb4"
    connect_timeout: float = 10.0
    read_timeout: float | None = None

    @property
    def where(self) -> str:
        """``host:port/database``, for messages."""
        return f"{self.host}:{self.port}/{self.database}"

    @property
    def safe_dsn(self) -> str:
        """The DSN without the password."""
        return f"mysql://{quote(self.user, safe='')}@{self.host}:{self.port}/{self.database}"


def parse_dsn(dsn: str) -> dict[str, Any]:
    """Split ``mysql://user:password@host:port/database?table=name`` into keywords.

    Schemes ``mysql``, ``mariadb`` and ``mysql+pymysql`` are accepted. User
    and password are percent-decoded. Query keys: ``table`` (or ``name``,
    the queue name), ``charset``, ``pool_size``, ``timeout``, ``driver``.

    Returns:
        The keywords found (``host``, ``port``, ``user``, ``password``,
        ``database``, ``name``, ``charset``, ``pool_size``, ``timeout``, ``driver``).

    Raises:
        ValueError: not a MySQL DSN, or a bad port or query key (the message
            never repeats the password).
    """
    parts = urlsplit(dsn)
    if parts.scheme.lower() not in ("mysql", "mariadb", "mysql+pymysql"):
        raise ValueError(f"a MySQL DSN starts with 'mysql://', not {parts.scheme + '://'!r}")
    out: dict[str, Any] = {}
    if parts.hostname:
        # urlsplit lower-cases hostname; keep what the user wrote (IPv6 brackets removed).
        out["host"] = parts.hostname
    try:
        port = parts.port
    except ValueError:
        raise ValueError("the DSN's port is not a number between 0 and 65535") from None
    if port is not None:
        out["port"] = port
    if parts.username is not None:
        out["user"] = unquote(parts.username)
    if parts.password is not None:
        out["password"] = unquote(parts.password)
    database = unquote(parts.path.lstrip("/"))
    if database:
        out["database"] = database
    for key, value in parse_qsl(parts.query, keep_blank_values=False, strict_parsing=False):
        if key in ("table", "name", "table_name"):
            out["name"] = value
        elif key == "charset":
            out["charset"] = value
        elif key == "pool_size":
            out["pool_size"] = int(value)
        elif key == "driver":
            out["driver"] = value
        elif key in ("timeout", "connect_timeout"):
            out["timeout"] = float(value)
        else:
            raise ValueError(
                f"unknown MySQL DSN option {key!r} (known: table, charset, pool_size, timeout, driver)"
            )
    return out


class _Lost(Exception):
    """The connection broke before ``COMMIT`` was sent: nothing was committed."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(_message(cause))
        self.cause = cause


@dataclass
class _Slot:
    """One pooled connection and what drives it.

    With PyMySQL a worker thread owns the connection; with aiomysql the jobs
    waiting for the connection are run in batches by a task on the loop.
    """

    index: int
    worker: Worker | None = None
    conn: Any = None
    load: int = 0
    aio: bool = False
    waiting: list[Job[Any]] = field(default_factory=list)
    running: bool = False


@dataclass
class _Server:
    """What the server can do (read at open)."""

    version: str = ""
    returning: bool = False
    skip_locked: bool = False
    increment: int = 1


def _server_info(version: str, increment: int) -> _Server:
    text = version.split("-")[0]
    try:
        nums = tuple(int(p) for p in text.split(".")[:2])
    except ValueError:
        nums = (0, 0)
    if "mariadb" in version.lower():
        return _Server(version, returning=nums >= (10, 5), skip_locked=nums >= (10, 6), increment=increment)
    return _Server(version, returning=False, skip_locked=nums >= (8, 0), increment=increment)


class MySQLDatabase:
    """A pool of PyMySQL connections, each owned by one worker thread.

    The plumbing any MySQL store shares: connecting (and reconnecting),
    running jobs in transactions with retry where it is safe, translating
    driver errors, closing. Subclasses create their tables in :meth:`_create`
    and add operations as jobs run through :meth:`_run`.

    Args:
        params: server, account and database.
        label: names the worker threads.
        pool_size: connections (and threads); jobs go to the least busy one.
        lock_timeout: seconds a statement waits for a row lock
            (``innodb_lock_wait_timeout``, rounded up to whole seconds).
    """

    def __init__(
        self,
        params: MySQLParams,
        label: str = "db",
        pool_size: int = DEFAULT_POOL_SIZE,
        lock_timeout: float = 10.0,
        driver: Driver = "auto",
    ) -> None:
        if isinstance(pool_size, bool) or not isinstance(pool_size, int) or pool_size < 1:
            raise ValueError(f"'pool_size' must be a positive int, not {pool_size!r}")
        if driver not in DRIVERS:
            raise ValueError(f"'driver' must be one of {', '.join(DRIVERS)}, not {driver!r}")
        self.driver: Driver = driver
        """The driver asked for; :attr:`driver_in_use` is the one chosen at open."""
        self.driver_in_use: Driver | None = None
        """``"aiomysql"`` or ``"pymysql"`` once open."""
        self.params = params
        self.label = label
        self.pool_size = pool_size
        self.lock_timeout = max(1, math.ceil(lock_timeout))
        self.db_path = params.safe_dsn
        """Where the data lives, for messages (never shows the password)."""
        self._slots: list[_Slot] = []
        self._lock = threading.Lock()
        self._opened = False
        self._pid = os.getpid()
        self._server = _Server()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        # A PyMySQL connection for the rare blocking reads (``len(queue)``)
        # when the pool is aiomysql's, which only the loop can drive.
        self._side = _Slot(-1)
        self._side_lock = threading.Lock()

    # ----------------------------------------------------------------- plumbing

    @property
    def is_open(self) -> bool:
        """Whether the engine was opened and not closed (in this process)."""
        return self._opened and self._pid == os.getpid()

    def _choose_driver(self, blocking: bool) -> Driver:
        """aiomysql on asyncio when installed (and not in a gevent/eventlet process); else PyMySQL."""
        if self.driver == "pymysql":
            return "pymysql"
        if self.driver == "auto" and inline_allowed():
            # The portal of persistq.sync. Measured on loopback MariaDB 10.11
            # with 2 vCPUs, sync twin, one caller: put 1,300-1,530/s and get
            # 1,140-1,210/s on PyMySQL threads against 940-1,200/s and
            # 710-800/s on aiomysql. The caller already waits in a thread; a
            # second thread with a blocking socket costs less than aiomysql's
            # protocol running as coroutines on the loop.
            return "pymysql"
        library = None if blocking else _async_library()
        if library != "asyncio" or green_library() is not None:
            if self.driver == "aiomysql":
                where = "a gevent/eventlet process" if library == "asyncio" else (library or "a thread")
                raise ValueError(
                    f"driver='aiomysql' runs on asyncio only, not in {where}; "
                    "use driver='auto' (PyMySQL on worker threads there)"
                )
            return "pymysql"
        try:
            from . import _mysql_aio  # noqa: F401 - checks aiomysql and greenlet are installed
        except ImportError as exc:
            if self.driver == "aiomysql":
                raise MissingDependencyError(exc.name or "aiomysql", "mysql") from exc
            return "pymysql"
        return "aiomysql"

    def _start(self, driver: Driver) -> None:
        self.driver_in_use = driver
        if driver == "aiomysql":
            self._slots = [_Slot(i, aio=True) for i in range(self.pool_size)]
            self._loop = asyncio.get_running_loop()
            return
        if not self._slots:
            slots = [_Slot(i) for i in range(self.pool_size)]
            for slot in slots:
                slot.worker = Worker(
                    f"persistq-mysql:{self.label}:{slot.index}",
                    functools.partial(self._execute, slot),
                    functools.partial(self._disconnect, slot),
                )
            self._slots = slots

    def _abandon(self) -> None:
        """Drop the pool after a failed open; closing a connection rolls its transaction back."""
        self._stop()
        for slot in self._slots:
            if slot.aio:
                self._disconnect(slot)
        self._slots = []

    def _stop(self) -> list[Worker]:
        workers = [s.worker for s in self._slots if s.worker is not None]
        for w in workers:
            w.stop()
        return workers

    def _check_alive(self) -> None:
        if self._pid != os.getpid():
            raise QueueClosed(
                "this queue was opened in another process (before a fork); open it again in this process"
            )
        if not self._slots or not self._opened:
            raise QueueClosed("the queue is closed")
        if self.driver_in_use == "aiomysql":
            loop = _running_loop()
            if loop is not None and loop is not self._loop:
                raise QueueClosed(
                    "this MySQL queue was opened on another event loop (its aiomysql connections "
                    "belong to that loop); open a queue object per event loop"
                )
        elif not all(s.worker and s.worker.alive for s in self._slots):
            raise QueueClosed("the queue is closed")

    def _acquire(self) -> _Slot:
        self._check_alive()
        with self._lock:
            # Least busy first; on a tie the lowest index, so a lone caller
            # keeps reusing one warm connection.
            slot = min(self._slots, key=lambda s: s.load)
            slot.load += 1
        return slot

    def _release(self, slot: _Slot) -> None:
        with self._lock:
            slot.load -= 1

    async def _run(
        self,
        fn: Callable[..., T],
        *args: Any,
        kind: str = "write",
        undo: Callable[[T], Job[Any]] | None = None,
    ) -> T:
        slot = self._acquire()
        try:
            if slot.aio:
                return await self._run_aio(slot, Job(fn, *args, kind=kind), undo)
            assert slot.worker is not None
            return await run_job(slot.worker, Job(fn, *args, kind=kind), undo)
        finally:
            self._release(slot)

    def _run_blocking(self, fn: Callable[..., T], *args: Any, kind: str = "read") -> T:
        if self.driver_in_use == "aiomysql":
            self._check_alive()
            job: Job[T] = Job(fn, *args, kind=kind)
            with self._side_lock:
                self._execute(self._side, [job])
            return job.value()
        slot = self._acquire()
        try:
            assert slot.worker is not None
            return slot.worker.run_blocking(Job(fn, *args, kind=kind))
        finally:
            self._release(slot)

    # ------------------------------------------------------- aiomysql batches

    async def _run_aio(self, slot: _Slot, job: Job[T], undo: Callable[[T], Job[Any]] | None) -> T:
        """Run ``job`` on ``slot``'s aiomysql connection; same cancel rules as :func:`run_job`."""
        loop = asyncio.get_running_loop()
        return await run_job_asyncio(job, loop, functools.partial(self._submit_aio, slot, loop=loop), undo)

    def _submit_aio(self, slot: _Slot, job: Job[Any], loop: asyncio.AbstractEventLoop) -> None:
        slot.waiting.append(job)
        if not slot.running:
            slot.running = True
            # A task of its own, not the caller's: a cancelled caller must not
            # cut a transaction short, and jobs arriving meanwhile join the
            # next batch (one transaction, one COMMIT for all of them).
            task = loop.create_task(self._drain(slot), name=f"persistq-mysql:{self.label}:{slot.index}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _drain(self, slot: _Slot) -> None:
        from ._mysql_aio import run_bridged

        try:
            while slot.waiting:
                batch, slot.waiting = slot.waiting, []
                try:
                    await run_bridged(self._execute, slot, batch)
                except BaseException as exc:
                    # Only the loop shutting down gets here (_execute sets
                    # errors on jobs, never raises); the connection may be
                    # mid-transaction, so it goes.
                    self._disconnect(slot)
                    for job in batch:
                        if job.error is None and not job.done:
                            job.result, job.error = None, QueueClosed(f"the event loop stopped: {exc!r}")
                    raise
                finally:
                    for job in batch:
                        job.done = True
                    _wake_asyncio(batch)
        finally:
            slot.running = False

    # ------------------------------------------------------- connections, errors

    def _translate(self, exc: BaseException) -> StorageError:
        code = _code(exc)
        if code == _PACKET_TOO_LARGE:
            error = StorageError(
                f"MySQL server {self.params.where}: an item is larger than the server's "
                f"max_allowed_packet; raise it on the server ({_message(exc)})"
            )
        elif code in _LOST:
            error = StorageError(f"lost the connection to MySQL server {self.params.where}: {_message(exc)}")
        else:
            error = StorageError(f"MySQL server {self.params.where}: {_message(exc)}")
        error.__cause__ = exc
        return error

    def _is_lost(self, exc: BaseException, conn: Any) -> bool:
        pymysql = _pymysql()
        if isinstance(exc, pymysql.err.InterfaceError):
            return True
        if _code(exc) in _LOST:
            return True
        return conn is not None and not getattr(conn, "open", True)

    def _connect(self, aio: bool = False) -> Any:
        pymysql = _pymysql()
        p = self.params
        common: dict[str, Any] = {
            "host": p.host,
            "port": p.port,
            "user": p.user,
            "password": p.password,
            "charset": p.charset,
            "connect_timeout": max(0.1, p.connect_timeout),
            "read_timeout": p.read_timeout,
            "autocommit": False,
            # rowcount counts matched rows, so an UPDATE to equal bytes still "finds" the row.
            "client_flag": pymysql.constants.CLIENT.FOUND_ROWS,
        }
        try:
            if aio:
                from . import _mysql_aio

                conn = _mysql_aio.connect(db=p.database, **common)
            else:
                # Bytes go as _binary'…' literals: no charset checks on blobs.
                conn = pymysql.connect(
                    database=p.database, binary_prefix=True, write_timeout=p.read_timeout, **common
                )
        except Exception as exc:  # any failure to connect is a StorageError
            error = StorageError(
                f"cannot connect to MySQL server at {p.host}:{p.port} "
                f"(user {p.user!r}, database {p.database!r}): {_message(exc)}"
            )
            raise error from exc
        try:
            with conn.cursor() as cur:
                # READ COMMITTED: no gap locks (claims never block puts), and
                # every statement reads the latest committed rows.
                cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
                cur.execute("SET SESSION innodb_lock_wait_timeout = %s", (self.lock_timeout,))
        except Exception as exc:
            conn.close()
            if isinstance(exc, pymysql.err.MySQLError):
                raise self._translate(exc) from exc
            raise
        return conn

    def _conn(self, slot: _Slot) -> Any:
        if slot.conn is None:
            slot.conn = self._connect(slot.aio)
        return slot.conn

    @staticmethod
    def _disconnect(slot: _Slot) -> None:
        conn, slot.conn = slot.conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - a dead connection cannot be closed politely
                conn._force_close()

    # ------------------------------------------------------------------- batches

    def _execute(self, slot: _Slot, batch: list[Job[Any]]) -> None:
        txn: list[Job[Any]] = []
        for job in batch:
            if job.kind == "bare":
                self._run_bare(slot, job)
            else:
                txn.append(job)
        if txn:
            self._run_batch(slot, txn)

    def _run_bare(self, slot: _Slot, job: Job[Any]) -> None:
        # Bare jobs (open, optimize) are idempotent: one retry on a fresh
        # connection is always safe.
        pymysql = _pymysql()
        for attempt in range(2):
            try:
                job.result = job.fn(slot, *job.args)
                job.error = None
                return
            except pymysql.err.MySQLError as exc:
                lost = self._is_lost(exc, slot.conn)
                if lost:
                    self._disconnect(slot)
                    if attempt == 0:
                        continue
                job.error = self._translate(exc)
                return
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                job.error = exc
                return

    def _run_batch(self, slot: _Slot, jobs: list[Job[Any]]) -> None:
        reconnected = False
        deadlocks = 0
        while True:
            try:
                conn = self._conn(slot)
            except StorageError as exc:
                for job in jobs:
                    job.result, job.error = None, exc
                return
            try:
                self._attempt(slot, conn, jobs)
                return
            except _Lost as lost:
                # The server rolls back a transaction whose connection drops,
                # so running the whole batch again cannot duplicate anything.
                self._disconnect(slot)
                if reconnected:
                    error = self._translate(lost.cause)
                    for job in jobs:
                        job.result, job.error = None, error
                    return
                reconnected = True
            except _Deadlock as dl:
                deadlocks += 1
                if deadlocks >= _DEADLOCK_RETRIES:
                    error = self._translate(dl.cause)
                    for job in jobs:
                        job.result, job.error = None, error
                    return

    def _attempt(self, slot: _Slot, conn: Any, jobs: list[Job[Any]]) -> None:
        """Run ``jobs`` in one transaction; raise ``_Lost``/``_Deadlock`` to retry it all."""
        pymysql = _pymysql()
        failed: BaseException | None = None
        failed_job: Job[Any] | None = None
        with conn.cursor() as cur:
            for job in jobs:
                job.result, job.error = None, None
                try:
                    job.result = job.fn(cur, *job.args)
                except pymysql.err.MySQLError as exc:
                    if self._is_lost(exc, conn):
                        raise _Lost(exc) from exc
                    if _code(exc) == _DEADLOCK and len(jobs) == 1:
                        # InnoDB rolled the whole transaction back.
                        raise _Deadlock(exc) from exc
                    failed, failed_job = self._translate(exc), job
                    break
                except BaseException as exc:  # noqa: BLE001 - handed to the caller
                    failed, failed_job = exc, job
                    break
        if failed is not None:
            try:
                conn.rollback()
            except pymysql.err.MySQLError:
                self._disconnect(slot)
            if len(jobs) == 1:
                assert failed_job is not None
                failed_job.result, failed_job.error = None, failed
                return
            # One job of a group failed and the group was rolled back: run
            # each job alone, so one bad job does not fail the others.
            for job in jobs:
                self._run_batch(slot, [job])
            return
        writes = any(j.kind != "read" for j in jobs)
        try:
            conn.commit()
        except pymysql.err.MySQLError as exc:
            lost = self._is_lost(exc, conn)
            if lost:
                self._disconnect(slot)
            else:
                try:
                    conn.rollback()
                except pymysql.err.MySQLError:
                    self._disconnect(slot)
            if not writes and lost:
                return  # the reads are done; only the ending of the snapshot failed
            if lost:
                error: BaseException = StorageError(
                    f"lost the connection to MySQL server {self.params.where} while committing: "
                    "the operation may or may not have been applied (it was not retried, "
                    "so nothing is applied twice)"
                )
                error.__cause__ = exc
            else:
                error = self._translate(exc)
            for job in jobs:
                if job.kind != "read" or not lost:
                    job.result, job.error = None, error

    # --------------------------------------------------------------- open/close

    def _open_job(self, slot: _Slot) -> None:
        conn = self._conn(slot)
        with conn.cursor() as cur:
            cur.execute("SELECT VERSION(), @@auto_increment_increment")
            version, increment = cur.fetchone()
            self._server = _server_info(str(version), int(increment or 1))
            self._create(cur)
        conn.commit()

    def _create(self, cur: Any) -> None:
        """Create the tables (runs once, at open, on a worker thread)."""
        raise NotImplementedError

    def _optimize_tables(self, slot: _Slot, tables: Sequence[str]) -> None:
        """``OPTIMIZE TABLE`` each of ``tables`` (quoted names), with no read timeout."""
        conn = self._conn(slot)
        # Both drivers' connections keep their read timeout there; a rebuild
        # takes as long as the table is big.
        saved, conn._read_timeout = conn._read_timeout, None
        try:
            with conn.cursor() as cur:
                for table in tables:
                    cur.execute(f"OPTIMIZE TABLE {table}")
                    for row in cur.fetchall():
                        if len(row) >= 4 and str(row[2]).lower() == "error":
                            raise StorageError(
                                f"MySQL server {self.params.where}: OPTIMIZE TABLE failed: {row[3]}"
                            )
            conn.commit()
        finally:
            conn._read_timeout = saved

    def _tables(self) -> tuple[str, ...]:
        """The quoted names of the tables :meth:`vacuum` rebuilds."""
        raise NotImplementedError

    def _optimize(self, slot: _Slot) -> None:
        self._optimize_tables(slot, self._tables())

    async def vacuum(self) -> None:
        """Rebuild the tables to give free space back (``OPTIMIZE TABLE``).

        InnoDB rebuilds a table online; with ``innodb_file_per_table`` (the
        default) the file shrinks.
        """
        await self._run(self._optimize, kind="bare")

    def _table_columns(self, cur: Any, table: str) -> dict[str, str]:
        cur.execute(
            "SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s",
            (table,),
        )
        return {str(name).lower(): str(dtype).lower() for name, dtype in cur.fetchall()}

    def _check_serializer(self, cur: Any, table: str, serializer_name: str, existed: bool) -> None:
        """Record a new table's serializer, or refuse another one than recorded."""
        cur.execute(
            "CREATE TABLE IF NOT EXISTS persistq_meta (tbl VARCHAR(64) NOT NULL, "
            "`key` VARCHAR(64) NOT NULL, value TEXT, PRIMARY KEY (tbl, `key`)) ENGINE=InnoDB"
        )
        # A row per table that bounded puts lock, so maxsize holds across processes.
        cur.execute(
            "INSERT INTO persistq_meta (tbl, `key`, value) VALUES (%s, 'lock', '') "
            "ON DUPLICATE KEY UPDATE tbl = tbl",
            (table,),
        )
        if not existed:
            cur.execute(
                "INSERT INTO persistq_meta (tbl, `key`, value) VALUES (%s, 'serializer', %s) "
                "ON DUPLICATE KEY UPDATE tbl = tbl",
                (table, serializer_name),
            )
        cur.execute("SELECT value FROM persistq_meta WHERE tbl = %s AND `key` = 'serializer'", (table,))
        row = cur.fetchone()
        if row is not None and row[0] != serializer_name:
            raise SerializerMismatch(f"table {table!r} on {self.params.where}", row[0], serializer_name)

    async def open(self) -> None:
        """Connect and create the tables (idempotent).

        Raises:
            StorageError: the server cannot be reached (the message names
                host and port), or refuses the account or the schema.
            SerializerMismatch: the table was written with another serializer.
        """
        if self._opened:
            self._check_alive()
            return
        driver = self._choose_driver(blocking=False)
        self._start(driver)
        first = self._slots[0]
        try:
            if first.aio:
                await self._run_aio(first, Job(self._open_job, kind="bare"), None)
            else:
                assert first.worker is not None
                await run_job(first.worker, Job(self._open_job, kind="bare"))
        except BaseException:
            self._abandon()
            raise
        self._opened = True

    def open_blocking(self) -> None:
        """Like :meth:`open`, blocking the calling thread."""
        if self._opened:
            self._check_alive()
            return
        self._start(self._choose_driver(blocking=True))
        worker = self._slots[0].worker
        assert worker is not None
        try:
            worker.run_blocking(Job(self._open_job, kind="bare"))
        except BaseException:
            self._abandon()
            raise
        self._opened = True

    async def close(self) -> None:
        """Finish queued jobs, close the connections and stop the threads."""
        if not self._slots or self._pid != os.getpid():
            return
        self._close_side()
        if self._slots[0].aio:
            slots, self._slots = self._slots, []
            if _running_loop() is not self._loop:
                # The connections belong to another (perhaps finished) loop.
                for slot in slots:
                    self._disconnect(slot)
                return
            # Jobs already handed over finish first (their callers wait for them).
            while any(s.running for s in slots) and self._tasks:
                await asyncio.wait(set(self._tasks))
            for slot in slots:
                conn, slot.conn = slot.conn, None
                if conn is not None:
                    await conn.aclose()
            return
        for w in self._stop():
            await stop_worker(w)

    def close_nowait(self) -> None:
        """Stop the threads after their queued jobs, without waiting (for ``__del__``)."""
        if self._slots and self._pid == os.getpid():
            self._close_side()
            if self._slots[0].aio:
                # Nothing can wait here: sockets close at once, and the server
                # rolls back whatever a still-running batch had not committed.
                for slot in self._slots:
                    if not slot.running:
                        self._disconnect(slot)
                return
            self._stop()

    def _close_side(self) -> None:
        with self._side_lock:
            self._disconnect(self._side)


class _Deadlock(Exception):
    """InnoDB chose this transaction as a deadlock victim and rolled it back."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(_message(cause))
        self.cause = cause


def _derived_table(prefix: str, table: str) -> str:
    """``prefix + table``, shortened with a digest of ``table`` to fit MySQL's 64 characters."""
    name = f"{prefix}{table}"
    if len(name) <= _MAX_IDENT:
        return name
    digest = hashlib.sha1(table.encode()).hexdigest()[:12]
    return f"{prefix}{table[: _MAX_IDENT - len(prefix) - 13]}_{digest}"


def _pending_table(table: str) -> str:
    return _derived_table("persistq_pending_", table)


def done_table(table: str) -> str:
    """The table of a unique ack table's trimmed acked items: their fingerprints (``data_hash``)."""
    return _derived_table("persistq_done_", table)


def check_table_name(table: str) -> str:
    """Return ``table`` if it is a valid MySQL table name (a queue name of at most 64 characters).

    Raises:
        InvalidName: not a valid name, or longer than MySQL allows.
    """
    validate_name(table)
    if len(table) > _MAX_IDENT:
        raise InvalidName(table, f"a MySQL table name has at most {_MAX_IDENT} characters")
    return table


def data_hash(data: bytes) -> bytes:
    """The SHA-256 digest a unique table indexes in ``data_hash``: InnoDB cannot index a ``LONGBLOB``.

    Two items count as equal when their digests are equal; telling apart two
    different byte strings with one digest would take a SHA-256 collision.
    """
    return hashlib.sha256(data).digest()


def _id_chunks(ids: Sequence[T]) -> Iterator[list[T]]:
    """``ids`` in lists of at most ``_IDS_PER_STATEMENT`` (one statement each)."""
    for start in range(0, len(ids), _IDS_PER_STATEMENT):
        yield list(ids[start : start + _IDS_PER_STATEMENT])


def _ids_derived(n: int) -> str:
    return "(SELECT %s AS i" + " UNION ALL SELECT %s" * (n - 1) + ") AS d"


def _delete_ids(cur: Any, table: str, ids: Sequence[int], guard: str = "") -> int:
    """Delete rows by primary key, touching (and locking) only those rows; return how many.

    ``DELETE … WHERE _id IN (…)`` is not enough: on a table the statistics
    think small, the optimizer picks a full scan, which waits for rows other
    consumers hold and deadlocks with them. Joining from a derived table of
    the ids with ``STRAIGHT_JOIN`` forces one primary-key look-up per id.
    ``guard`` (``" AND …"``) is checked on each row under its lock.
    """
    n = 0
    for chunk in _id_chunks(ids):
        if len(chunk) == 1:
            n += cur.execute(f"DELETE FROM {table} WHERE _id = %s{guard}", chunk)
        else:
            n += cur.execute(
                f"DELETE {table} FROM {_ids_derived(len(chunk))} STRAIGHT_JOIN {table} "
                f"ON {table}._id = d.i WHERE 1 = 1{guard}",
                chunk,
            )
    return n


def _select_ids(
    cur: Any, table: str, cols: str, keys: Sequence[Any], lock: str = "", column: str = "_id"
) -> list[tuple[Any, ...]]:
    """Rows whose unique ``column`` is one of ``keys``, by index look-ups only (see :func:`_delete_ids`)."""
    out: list[tuple[Any, ...]] = []
    for chunk in _id_chunks(keys):
        cur.execute(
            f"SELECT {cols} FROM {_ids_derived(len(chunk))} STRAIGHT_JOIN {table} "
            f"ON {table}.{column} = d.i{lock}",
            chunk,
        )
        out.extend(cur.fetchall())
    return out


def _value_chunks(rows: Sequence[Sequence[Any]]) -> Iterator[Sequence[Sequence[Any]]]:
    """``rows`` in runs of at most ``_STMT_BYTES`` of values (one multi-row ``INSERT`` each)."""
    start, size = 0, 0
    for i, row in enumerate(rows):
        # Escaping may double binary data; numbers cost a few bytes each.
        cost = 64 + sum(2 * len(v) for v in row if isinstance(v, (bytes, str)))
        if i > start and size + cost > _STMT_BYTES:
            yield rows[start:i]
            start, size = i, 0
        size += cost
    if start < len(rows):
        yield rows[start:]


def _values_sql(verb: str, table: str, columns: Sequence[str], n: int, tail: str = "") -> str:
    one = "(" + ", ".join(["%s"] * len(columns)) + ")"
    return f"{verb} INTO {table} ({', '.join(columns)}) VALUES {', '.join([one] * n)}{tail}"


def _insert_many(
    cur: Any, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], tail: str
) -> None:
    """Multi-row ``INSERT … {tail}`` of ``rows``, in statements of bounded size (no ids wanted)."""
    for chunk in _value_chunks(rows):
        cur.execute(_values_sql("INSERT", table, columns, len(chunk), tail), [v for r in chunk for v in r])


def _insert_rows(
    cur: Any,
    server: _Server,
    table: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    unique: bool = False,
) -> list[int | None]:
    """Insert ``rows`` (values of ``columns``) in order; return each row's new ``_id``.

    With ``unique`` the table has a ``data_hash`` column with a UNIQUE index
    (among ``columns``): a row whose hash is stored already, or comes earlier
    in ``rows``, stores nothing and its id is ``None``.
    """
    ids: list[int | None] = []
    verb = "INSERT IGNORE" if unique else "INSERT"
    at = columns.index("data_hash") if unique else -1
    for chunk in _value_chunks(rows):
        if unique and not server.returning:
            # Without RETURNING nothing tells which rows of a multi-row
            # INSERT IGNORE were skipped: one row per statement.
            for row in chunk:
                n = cur.execute(_values_sql(verb, table, columns, 1), list(row))
                ids.append(int(cur.lastrowid) if n else None)
            continue
        sql = _values_sql(verb, table, columns, len(chunk))
        args = [v for row in chunk for v in row]
        if unique:
            cur.execute(sql + " RETURNING _id, data_hash", args)
            got = {bytes(h): int(i) for i, h in cur.fetchall()}
            # The first row of a digest is the one stored; pop() leaves None for the rest.
            ids.extend(got.pop(bytes(row[at]), None) for row in chunk)
        elif server.returning:
            cur.execute(sql + " RETURNING _id", args)
            ids.extend(sorted(int(r[0]) for r in cur.fetchall()))
        else:
            # A multi-row INSERT of known size gets consecutive ids.
            cur.execute(sql, args)
            first = int(cur.lastrowid)
            ids.extend(first + k * server.increment for k in range(len(chunk)))
    return ids


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


class MySQLQueueTable(MySQLDatabase):
    """What the MySQL queue engines share: one table of items, its order, uniqueness and layout checks.

    Args:
        params: server, account and database.
        spec: the table (at most 64 characters), its order (``"fifo"``,
            ``"filo"`` or ``"priority"``: a ``priority BIGINT`` column, lowest
            first, then lowest ``_id``) and uniqueness (a ``data_hash
            BINARY(32)`` column, SHA-256 of the data, with a UNIQUE index).
        serializer_name: recorded when the table is created; opening the
            table later with another serializer raises
            :class:`~persistq.errors.SerializerMismatch`.
        pool_size: connections (and, with PyMySQL, worker threads).
        lock_timeout: seconds a statement waits for a row lock.
        driver: ``"auto"`` (aiomysql on asyncio when installed, else
            PyMySQL on worker threads), ``"aiomysql"`` or ``"pymysql"``.
    """

    legacy_rows_possible = False
    """No persist-queue table of a kind with another encoding exists on MySQL (it had only FIFO)."""

    def __init__(
        self,
        params: MySQLParams,
        spec: TableSpec | AckTableSpec,
        serializer_name: str,
        pool_size: int = DEFAULT_POOL_SIZE,
        lock_timeout: float = 10.0,
        driver: Driver = "auto",
    ) -> None:
        check_table_name(spec.table)
        if spec.order not in ORDER_BY:
            raise ValueError(f"order must be 'fifo', 'filo' or 'priority', not {spec.order!r}")
        super().__init__(params, spec.table, pool_size, lock_timeout, driver)
        self.serializer_name = serializer_name
        self._t = _q(spec.table)
        self._prio = spec.order == "priority"
        self._unique = bool(spec.unique)
        self._order_by = ORDER_BY[spec.order]
        self._priority_col = "priority" if self._prio else "NULL"
        # Owners are "hostname/token": only this host can tell whether a
        # process of this host is alive.
        self._host_prefix = socket.gethostname()[:120] + "/"
        # A claim found rows but all were locked by other consumers: pollers
        # must retry even if no commit changes what they can see (a claim that
        # rolls back leaves the rows as they were).
        self._contended = False
        self._tick = 0
        self._prepare(spec)

    def _prepare(self, spec: Any) -> None:
        """Set up what the engine adds (runs at the end of the constructor)."""

    def _layout(self, cur: Any, priority_index: str) -> tuple[dict[str, str], str, str]:
        """The table's columns now (empty: no table yet), and the column and index
        declarations (``", …"`` or ``""``) a priority or unique table adds.

        Raises:
            StorageError: a table of this name exists for another kind (it
                would fail obscurely later).
        """
        columns = self._table_columns(cur, self.label)
        need = ["priority"] * self._prio + ["data_hash"] * self._unique
        missing = [c for c in need if columns and c not in columns]
        if missing:
            raise StorageError(
                f"MySQL server {self.params.where}: table {self.label!r} has no column "
                f"{', '.join(missing)}: it was made for another queue kind"
            )
        extra = (", priority BIGINT NULL" if self._prio else "") + (
            ", data_hash BINARY(32) NOT NULL" if self._unique else ""
        )
        indexes = (", UNIQUE INDEX data_hash (data_hash)" if self._unique else "") + (
            f", INDEX {priority_index}" if self._prio else ""
        )
        return columns, extra, indexes

    def _new_values(self, data: bytes, ts: float, priority: int | None, *fixed: Any) -> tuple[Any, ...]:
        """The values of :attr:`_put_columns` for one new item."""
        return (
            (data, ts, *fixed)
            + ((priority,) if self._prio else ())
            + ((data_hash(data),) if self._unique else ())
        )

    def _put_columns(self, *fixed: str) -> tuple[str, ...]:
        """The columns a put writes: data, timestamp, ``fixed``, then priority and hash where used."""
        return ("data", "timestamp", *fixed) + ("priority",) * self._prio + ("data_hash",) * self._unique

    def _sql_waiting(self, cur: Any) -> int:
        """How many items count against ``maxsize``."""
        raise NotImplementedError

    def _room(self, cur: Any, n: int, maxsize: int) -> bool:
        """Start a put of ``n`` items: whether they fit in ``maxsize`` (0: no bound).

        Bounded puts of all processes take turns on the table's lock row in
        ``persistq_meta``, so two of them cannot both see room for one item.
        So do puts of several items on a unique table: two such puts inserting
        equal items in different orders would each wait for the other's
        uncommitted row (a deadlock, in every retry while producers overlap).
        """
        if maxsize > 0 or (self._unique and n > 1):
            cur.execute(
                "SELECT 1 FROM persistq_meta WHERE tbl = %s AND `key` = 'lock' FOR UPDATE",
                (self.label,),
            )
            cur.fetchall()
        return maxsize <= 0 or self._sql_waiting(cur) + n <= maxsize

    def _set_data(self, cur: Any, table: str, item_id: int, data: bytes) -> int:
        """``UPDATE`` one row's data (and hash, on a unique table); return how many rows matched."""
        if self._unique and table == self._t:
            return int(
                cur.execute(
                    f"UPDATE {table} SET data = %s, data_hash = %s WHERE _id = %s",
                    (data, data_hash(data), item_id),
                )
            )
        # FOUND_ROWS: equal bytes still count as a match.
        return int(cur.execute(f"UPDATE {table} SET data = %s WHERE _id = %s", (data, item_id)))

    def _version(self, state: tuple[Any, ...]) -> int:
        if self._contended:
            self._tick += 1
        return hash((tuple(str(v) for v in state), self._tick))

    @property
    def _skip(self) -> str:
        return " FOR UPDATE SKIP LOCKED" if self._server.skip_locked else " FOR UPDATE"

    def put_now(self, items: Sequence[Any], maxsize: int = 0, alts: Any = None) -> Any:
        """Always ``NOT_NOW``: a server round trip never runs inline on an event loop."""
        return NOT_NOW

    def claim_now(self, n: int = 1, item_id: int | None = None, owner: str | None = None) -> Any:
        """Always ``NOT_NOW`` (see :meth:`put_now`)."""
        return NOT_NOW

    def _tables(self) -> tuple[str, ...]:
        return (self._t,)


class MySQLEngine(MySQLQueueTable):
    """Storage for one queue table (bytes in, bytes out) on a MySQL / MariaDB server.

    Every operation is one transaction: it either commits entirely or leaves
    nothing behind, and once it returns it is committed (durable as the
    server's ``innodb_flush_log_at_trx_commit`` makes commits; ``1``, the
    default, means on disk). Operations are cancel-atomic: a cancelled caller's
    put is deleted again and its claimed rows go back.

    Every :class:`~persistq.engines.sqlite.TableSpec` is supported, with
    :class:`~persistq.engines.sqlite.SQLiteEngine`'s semantics:

    * ``"fifo"`` / ``"filo"``: lowest / highest ``_id`` first;
    * ``"priority"``: a ``priority BIGINT`` column and an index on
      ``(priority, _id)``; lowest priority first, then lowest ``_id``. Rows
      read back carry the priority as their fourth field; a row given back
      (``restore``, ``release``) keeps it;
    * ``unique``: a ``data_hash BINARY(32)`` column (SHA-256 of the data;
      InnoDB cannot index a ``LONGBLOB``) with a UNIQUE index. A put of bytes
      equal to a waiting item stores nothing and its id is ``None``. An item
      got with an owner (``auto_commit=False``) waits in the pending table,
      not in the queue, so an equal put meanwhile is stored; when the held
      item is given back the stored copy stands for both.

    Args: as :class:`MySQLQueueTable`, with a :class:`~persistq.engines.sqlite.TableSpec`
    (its ``legacy`` is not used: persist-queue had no such tables on MySQL).
    """

    def _prepare(self, spec: TableSpec) -> None:
        self.spec = spec
        self._pending = _q(_pending_table(spec.table))
        # FORCE INDEX: walk the index in queue order, locking only the rows taken.
        self._index = "prio_id" if self._prio else "PRIMARY"
        self._cols = f"_id, data, timestamp, {self._priority_col}"
        self._restore_cols = ("_id", *self._put_columns())

    def _create(self, cur: Any) -> None:
        t = self.spec.table
        columns, extra, indexes = self._layout(cur, "prio_id (priority, _id)")
        existed = bool(columns)
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {self._t} (_id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, "
            f"data LONGBLOB, timestamp DOUBLE{extra}{indexes}) ENGINE=InnoDB"
        )
        if existed and (
            columns.get("_id") != "bigint"
            or columns.get("data") != "longblob"
            or columns.get("timestamp") != "double"
        ):
            # persist-queue's INT / BLOB (64 KiB) / FLOAT: widening keeps every value.
            cur.execute(
                f"ALTER TABLE {self._t} MODIFY _id BIGINT NOT NULL AUTO_INCREMENT, "
                "MODIFY data LONGBLOB, MODIFY timestamp DOUBLE"
            )
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {self._pending} (_id BIGINT NOT NULL PRIMARY KEY, "
            "data LONGBLOB, timestamp DOUBLE, owner VARCHAR(255) NOT NULL, "
            "priority BIGINT NULL, INDEX owner (owner)) ENGINE=InnoDB"
        )
        self._check_serializer(cur, t, self.serializer_name, existed)

    @staticmethod
    def _row(r: Sequence[Any]) -> Row:
        return (int(r[0]), bytes(r[1]), float(r[2]), _opt_int(r[3]))

    # ------------------------------------------------------------ the operations

    def _sql_put(self, cur: Any, items: Sequence[NewRow], maxsize: int) -> list[int | None] | None:
        if not self._room(cur, len(items), maxsize):
            return None
        rows = [self._new_values(data, ts, priority) for data, ts, priority in items]
        return _insert_rows(cur, self._server, self._t, self._put_columns(), rows, self._unique)

    def _sql_delete_ids(self, cur: Any, ids: Sequence[int | None]) -> None:
        _delete_ids(cur, self._t, [i for i in ids if i is not None])

    def _undo_put(self, ids: list[int | None] | None) -> Job[None]:
        return Job(self._sql_delete_ids, ids or [])

    async def put(
        self, items: Sequence[NewRow], maxsize: int = 0, alts: Sequence[bytes | None] | None = None
    ) -> list[int | None] | None:
        """Insert items atomically; return their ids, or ``None`` if ``maxsize`` would be passed.

        On a unique table a duplicate of a waiting item (or of an earlier
        item of ``items``) is not inserted and its id is ``None``. ``alts``
        (persist-queue's other encodings of unique items) is accepted so both
        engines have one signature, and ignored: no table on MySQL holds
        persist-queue's unique encoding. One transaction: all items or none.
        Committed on return. Cancel-atomic: a cancelled caller's rows are
        deleted again.

        Raises:
            StorageError: the server failed or cannot be reached; if the
                connection broke during ``COMMIT`` the message says the
                outcome is unknown (the put is never retried blindly).
        """
        return await self._run(self._sql_put, items, maxsize, undo=self._undo_put)

    def _sql_claim(self, cur: Any, n: int, item_id: int | None, owner: str | None) -> list[Row]:
        t = self._t
        if item_id is not None:
            cur.execute(f"SELECT {self._cols} FROM {t} WHERE _id = %s{self._skip}", (item_id,))
        else:
            cur.execute(
                f"SELECT {self._cols} FROM {t} FORCE INDEX ({self._index}) "
                f"ORDER BY {self._order_by} LIMIT %s{self._skip}",
                (n,),
            )
        rows = [self._row(r) for r in cur.fetchall()]
        if not rows:
            if item_id is None:
                # Nothing claimable: are there rows at all (held by other consumers)?
                cur.execute(f"SELECT 1 FROM {t} LIMIT 1")
                self._contended = cur.fetchone() is not None
            return rows
        self._contended = False
        _delete_ids(cur, t, [r[0] for r in rows])
        if owner is not None:
            cur.executemany(
                f"INSERT INTO {self._pending} (_id, data, timestamp, owner, priority) "
                "VALUES (%s, %s, %s, %s, %s)",
                [(r[0], r[1], r[2], self._host_prefix + owner, r[3]) for r in rows],
            )
        return rows

    def _sql_restore(self, cur: Any, rows: Sequence[Row], from_pending: bool) -> None:
        # Rows go back under their own _id, so they regain their old place;
        # AUTO_INCREMENT (persisted by MariaDB >= 10.2.4 and MySQL 8) never
        # hands that id to another row. On a unique table an equal item put
        # meanwhile already stands for the restored one (as on SQLite); its
        # hash is the digest of the data, computed again here.
        if not rows:
            return
        cur.executemany(
            _values_sql("INSERT", self._t, self._restore_cols, 1, " ON DUPLICATE KEY UPDATE _id = _id"),
            [(r[0], *self._new_values(r[1], r[2], r[3])) for r in rows],
        )
        if from_pending:
            _delete_ids(cur, self._pending, [r[0] for r in rows])

    async def claim(self, n: int = 1, item_id: int | None = None, owner: str | None = None) -> list[Row]:
        """Take up to ``n`` items (or the one with ``item_id``) in queue order.

        ``SELECT … FOR UPDATE SKIP LOCKED`` and ``DELETE`` in one transaction:
        no two consumers, on any machine, receive the same item, and none waits
        for rows another consumer is taking. Without ``owner`` the rows are
        deleted; with ``owner`` they move to the pending table until
        :meth:`finish` or :meth:`release`. Cancel-atomic: a cancelled caller's
        rows go back.
        """

        def undo(rows: list[Row]) -> Job[None]:
            return Job(self._sql_restore, rows, owner is not None)

        return await self._run(self._sql_claim, n, item_id, owner, undo=undo)

    async def restore(self, rows: Sequence[Row], from_pending: bool = False) -> None:
        """Put claimed rows back in their old places (priority included)."""
        await self._run(self._sql_restore, rows, from_pending)

    def _sql_finish(self, cur: Any, ids: Sequence[int]) -> list[PendingRow]:
        if not ids:
            return []
        p = self._pending
        # Primary-key look-ups only (see _delete_ids): never wait for other owners' rows.
        found = _select_ids(cur, p, f"{p}._id, data, timestamp, owner, priority", ids, " FOR UPDATE")
        rows: list[PendingRow] = [
            (int(r[0]), bytes(r[1]), float(r[2]), str(r[3]), _opt_int(r[4])) for r in found
        ]
        _delete_ids(cur, p, [r[0] for r in rows])
        return rows

    def _sql_unfinish(self, cur: Any, rows: Sequence[PendingRow]) -> None:
        if rows:
            cur.executemany(
                f"INSERT INTO {self._pending} (_id, data, timestamp, owner, priority) "
                "VALUES (%s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE _id = _id",
                list(rows),
            )

    async def finish(self, ids: Sequence[int]) -> None:
        """Delete pending rows for good (``task_done`` with ``auto_commit=False``); committed on return."""

        def undo(rows: list[PendingRow]) -> Job[None]:
            return Job(self._sql_unfinish, rows)

        await self._run(self._sql_finish, ids, undo=undo)

    def _sql_release(self, cur: Any, owners: Sequence[str]) -> int:
        moved = 0
        for owner in owners:
            cur.execute(
                f"SELECT _id, data, timestamp, priority FROM {self._pending} FORCE INDEX (owner) "
                "WHERE owner = %s FOR UPDATE",
                (owner,),
            )
            rows = [self._row(r) for r in cur.fetchall()]
            self._sql_restore(cur, rows, True)
            moved += len(rows)
        return moved

    async def release(self, owner: str) -> int:
        """Move every pending row of ``owner`` (of this host) back to the queue; return how many."""
        return await self._run(self._sql_release, [self._host_prefix + owner])

    def _sql_owners(self, cur: Any) -> list[str]:
        cur.execute(f"SELECT DISTINCT owner FROM {self._pending}")
        return [str(r[0]) for r in cur.fetchall()]

    async def recover(self, alive: Callable[[str], bool]) -> int:
        """Give back pending rows whose owner process, on this host, is gone.

        Owners on other hosts are left alone: this host cannot tell whether
        they still work on their items.
        """
        owners = await self._run(self._sql_owners, kind="read")
        prefix = self._host_prefix
        dead = [o for o in owners if o.startswith(prefix) and not alive(o[len(prefix) :])]
        if not dead:
            return 0
        return await self._run(self._sql_release, dead)

    def _sql_count(self, cur: Any) -> int:
        cur.execute(f"SELECT COUNT(*) FROM {self._t}")
        return int(cur.fetchone()[0])

    _sql_waiting = _sql_count

    async def count(self) -> int:
        """Number of items waiting (not counting pending ones), committed by anyone."""
        return await self._run(self._sql_count, kind="read")

    def count_blocking(self) -> int:
        """Like :meth:`count`, blocking the calling thread."""
        self.open_blocking()
        return self._run_blocking(self._sql_count)

    def _sql_rows(self, cur: Any) -> list[Row]:
        cur.execute(f"SELECT {self._cols} FROM {self._t} ORDER BY {self._order_by}")
        return [self._row(r) for r in cur.fetchall()]

    async def rows(self) -> list[Row]:
        """Every waiting item, in the order gets would return them."""
        return await self._run(self._sql_rows, kind="read")

    def _sql_update(self, cur: Any, item_id: int, data: bytes) -> None:
        if self._set_data(cur, self._t, item_id, data) == 0 and (
            self._set_data(cur, self._pending, item_id, data) == 0
        ):
            raise ItemNotFound(item_id, f"not in {self.spec.table}")

    async def update(self, item_id: int, data: bytes) -> None:
        """Replace the data of item ``item_id`` (waiting or pending); committed on return.

        Raises:
            ItemNotFound: no such item.
            StorageError: on a unique table, an equal item is waiting already.
        """
        await self._run(self._sql_update, item_id, data)

    def _sql_data_version(self, cur: Any) -> int:
        # Both ends of the primary key: O(1), and every put (new highest id),
        # get (lowest or highest id gone) or restore into an empty queue moves
        # one of them. A priority get takes the head of (priority, _id), which
        # may lie anywhere in between: that head is read too.
        t = self._t
        head = (
            f", (SELECT _id FROM {t} FORCE INDEX (prio_id) ORDER BY {self._order_by} LIMIT 1)"
            if self._prio
            else ""
        )
        cur.execute(f"SELECT (SELECT MIN(_id) FROM {t}), (SELECT MAX(_id) FROM {t}){head}")
        return self._version(tuple(cur.fetchone()))

    async def data_version(self) -> int:
        """A number that changes when another connection commits a put or a get.

        Index look-ups only (both ends of the primary key; the head of the
        priority index on a priority table). While every waiting row is
        locked by other consumers it changes at each call, so waiters retry
        until those rows are gone or given back.
        """
        return await self._run(self._sql_data_version, kind="read")

    def _tables(self) -> tuple[str, ...]:
        return (self._t, self._pending)
