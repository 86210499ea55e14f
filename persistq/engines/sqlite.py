"""The SQLite engine: bytes in, bytes out, on stdlib :mod:`sqlite3`.

One connection per queue object, owned by a dedicated worker thread
(:mod:`._worker`). Every storage operation is one job; the jobs waiting when
the thread wakes run in one ``BEGIN IMMEDIATE`` transaction with one commit
(group commit), each inside its own savepoint so one failing job does not undo
the others. Identifiers are validated and quoted; values are always bound.

Tables are persist-queue's (``queue_{name}``, ``filo_queue_{name}``: ``_id``,
``data``, ``timestamp``), so a ``data.db`` written by persist-queue 1.x opens in
place. persistq adds two tables of its own beside them:

* ``persistq_meta`` records which serializer wrote each table;
* ``persistq_pending_{table}`` holds items got with ``auto_commit=False`` but
  not yet ``task_done``: a get moves the row there (keeping its ``_id``), and a
  restart, ``close()`` or cancellation moves it back to its old place.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from .. import _runtime as threading
from ..errors import (
    CorruptionError,
    ItemNotFound,
    QueueClosed,
    SerializerMismatch,
    StorageError,
)
from ._worker import NOT_NOW, Job, Worker, checked_worker, run_job, stop_worker, try_now
from .base import (
    ORDER_BY,
    Durability,
    NewRow,
    PendingRow,
    Row,
    TableSpec,
    now,
    validate_durability,
    validate_name,
)
from .locations import file_identity

__all__ = (
    "Durability",
    "NewRow",
    "PendingRow",
    "Row",
    "SQLiteEngine",
    "TableSpec",
    "done_table",
    "now",
    "validate_durability",
    "validate_name",
)

T = TypeVar("T")
SQLITE_MAGIC = b"SQLite format 3\x00"
"""The first 16 bytes of every SQLite database file."""
_SYNCHRONOUS = {"full": "FULL", "normal": "NORMAL", "off": "OFF"}
_HAS_RETURNING = sqlite3.sqlite_version_info >= (3, 35, 0)


def _quote(identifier: str) -> str:
    # Names are validated to [A-Za-z0-9_-]; quoting keeps '-' and keywords legal.
    return '"' + identifier.replace('"', '""') + '"'


def locate_database(path: str | os.PathLike[str], db_file_name: str | None) -> tuple[str | None, str]:
    """Where a queue's database is: ``(directory to create, or None; database file)``.

    An existing regular file is the database file itself (persist-queue's
    async classes took a file path). Anything else is a directory, created if
    missing, holding ``db_file_name`` (default ``data.db``): persist-queue's
    sync classes' meaning, so ``SQLiteQueue("my_queue.db")`` still makes the
    directory ``my_queue.db/`` with ``data.db`` in it. ``":memory:"`` is an
    in-memory database.

    Raises:
        ValueError: ``db_file_name`` is a path, or is given with a ``path``
            that is a database file.
    """
    location = os.fspath(path)
    if location == ":memory:":
        return None, location
    if os.path.isfile(location):
        if db_file_name is not None:
            raise ValueError(
                f"{location!r} is a database file, so db_file_name={db_file_name!r} has no directory to "
                "name a file in: pass the file as path, or its directory as path and its name as db_file_name"
            )
        return None, location
    name = db_file_name or "data.db"
    if not isinstance(name, str) or not name or os.sep in name or (os.altsep and os.altsep in name):
        raise ValueError(f"db_file_name must be a file name, not a path: {name!r}")
    return location, os.path.join(location, name)


def done_table(table: str) -> str:
    """The table of a unique ack table's trimmed acked items: their fingerprints (SHA-256)."""
    return f"persistq_done_{table}"


def _translate(exc: sqlite3.Error, db: str) -> StorageError:
    message = str(exc)
    if isinstance(exc, sqlite3.DatabaseError) and (
        "not a database" in message or "malformed" in message or "corrupt" in message
    ):
        return CorruptionError(f"{db}: {message}")
    if "locked" in message or "busy" in message:
        return StorageError(
            f"{db}: {message} (another connection held the write lock for longer than the queue's timeout)"
        )
    if "disk I/O error" in message or "full" in message:
        # SQLite reports a file-size limit (EFBIG) as a plain I/O error.
        return StorageError(f"{db}: {message} (is the disk full, or a file-size limit reached?)")
    return StorageError(f"{db}: {message}")


_LEVELS: dict[str, int] = {"off": 0, "normal": 1, "full": 2}
_SYNC_NAMES = ("OFF", "NORMAL", "FULL")
_GROUP_WAIT = 0.0002
"""Seconds a durable batch may wait for concurrent callers still on their way (group commit)."""
_CHECKPOINT_EVERY = 256
"""Commits between two WAL checkpoints (run on a storage thread; see :class:`_Connection`)."""


class _Connection:
    """One SQLite connection, shared by every store of this process on one database file.

    It owns the storage worker that runs the stores' jobs, in batches: one
    transaction, one commit (group commit across queues of the file too). A
    batch is committed at the highest durability any of its jobs asks for,
    and waits for another process's write lock as long as the most patient
    of them. Sharing keeps threads and file descriptors flat in the number of
    queues (three descriptors for the file, its WAL and shared memory).

    Automatic WAL checkpoints are off: a checkpoint fsyncs, and commits may
    run inline on an event loop. Every ``_CHECKPOINT_EVERY`` commits a
    passive checkpoint is queued as a job of its own, which always runs on a
    storage thread.

    Changes to each table made through this connection are counted, so a
    store can tell that another store of this process changed its table
    (``PRAGMA data_version`` only reports other connections' commits).
    """

    def __init__(self, key: str, db_path: str, memory: bool, label: str) -> None:
        self.key = key
        self.db_path = db_path
        self.conn: sqlite3.Connection | None = None
        self.ident: tuple[int, int] | None = None
        """Device and inode of the file the connection opened (``None`` until then)."""
        self.stale = False
        """Set once the path names another file (deleted, replaced or moved): the stores refuse work."""
        self.stores: list[SQLiteDatabase] = []
        self.changes: dict[str, int] = {}
        self._busy_ms = -1
        self._level = -1
        self._commits = 0
        self._checkpoint_queued = False
        self.worker = Worker(
            f"persistq-sqlite:{label}",
            self._execute,
            self._close,
            None if memory else self._execute_inline,
            self._group_wait,
        )

    def _group_wait(self, batch: Sequence[Job[Any]]) -> float:
        # A commit at full durability costs an fsync (hundreds of µs here):
        # waiting a fraction of that for the next callers halves fsyncs per item.
        # Below full a commit is cheaper than the wait.
        owners = [j.owner for j in batch if j.owner is not None] or self.stores
        level = max((o.level for o in owners), default=_LEVELS["full"])
        return _GROUP_WAIT if level >= _LEVELS["full"] and any(j.kind == "write" for j in batch) else 0.0

    def _close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.close()

    def _prepare(self, conn: sqlite3.Connection, batch: Sequence[Job[Any]], inline: bool) -> None:
        owners = [j.owner for j in batch if j.owner is not None] or self.stores
        level = max((o.level for o in owners), default=_LEVELS["full"])
        if level != self._level:
            conn.execute(f"PRAGMA synchronous={_SYNC_NAMES[level]}")
            self._level = level
        # Inline batches run on an event loop: they must fail fast on another
        # connection's lock (and go to a storage thread) rather than wait.
        ms = 0 if inline else int(max((o.busy_timeout for o in owners), default=10.0) * 1000)
        if ms != self._busy_ms:
            conn.execute(f"PRAGMA busy_timeout={ms}")
            self._busy_ms = ms

    def _execute_inline(self, batch: list[Job[Any]]) -> bool:
        conn = self.conn
        if conn is None:
            return False
        self._prepare(conn, batch, True)
        write = any(j.kind == "write" for j in batch)
        try:
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            if not write:
                # A deferred transaction takes its read lock at the first
                # statement: take it now, so a busy database (another
                # connection recovering or checkpointing) sends the batch to a
                # storage thread instead of failing one of its jobs.
                conn.execute("PRAGMA schema_version").fetchone()
        except sqlite3.OperationalError:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            return False
        self._execute(batch, began=True)
        return True

    def _execute(self, batch: list[Job[Any]], began: bool = False) -> None:
        bare = [j for j in batch if j.kind == "bare"]
        txn = [j for j in batch if j.kind != "bare"]
        if bare and self.conn is not None and not began:
            # Opening a store, vacuum: wait for other processes' locks as usual.
            self._prepare(self.conn, bare, False)
        for job in bare:
            try:
                job.result = job.fn(*job.args)
            except sqlite3.Error as exc:
                job.error = _translate(exc, self.db_path)
                job.error.__cause__ = exc
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                job.error = exc
        conn = self.conn
        if not txn:
            return
        if conn is None:
            for job in txn:
                job.error = QueueClosed("the queue is closed")
            return
        write = any(j.kind == "write" for j in txn)
        try:
            if not began:
                self._prepare(conn, txn, False)
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        except sqlite3.Error as exc:
            for job in txn:
                job.error = _translate(exc, self.db_path)
                job.error.__cause__ = exc
            return
        single = len(txn) == 1
        ok: list[Job[Any]] = []
        changed: list[SQLiteDatabase] = []
        for job in txn:
            before = conn.total_changes
            try:
                if not single:
                    conn.execute("SAVEPOINT job")
                job.result = job.fn(conn, *job.args)
                if not single:
                    conn.execute("RELEASE job")
                ok.append(job)
                if job.owner is not None and conn.total_changes != before:
                    changed.append(job.owner)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                if isinstance(exc, sqlite3.Error):
                    error: BaseException = _translate(exc, self.db_path)
                    error.__cause__ = exc
                else:
                    error = exc
                job.error = error
                try:
                    if single:
                        conn.execute("ROLLBACK")
                        return
                    conn.execute("ROLLBACK TO job")
                    conn.execute("RELEASE job")
                except sqlite3.Error:
                    self._fail_after_rollback(conn, txn, error)
                    return
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            error = _translate(exc, self.db_path)
            error.__cause__ = exc
            self._fail_after_rollback(conn, ok, error)
            return
        for store in changed:
            self.changes[store.change_key] = self.changes.get(store.change_key, 0) + 1
            store.own_changes += 1
        if write:
            self._commits += 1
            if self._commits >= _CHECKPOINT_EVERY and not self._checkpoint_queued:
                self._queue_checkpoint()

    def moved(self) -> bool:
        """Whether :attr:`db_path` no longer names the file this connection opened."""
        return self.ident is not None and file_identity(self.db_path) != self.ident

    def _queue_checkpoint(self) -> None:
        self._checkpoint_queued = True
        # A bare job never runs inline: the checkpoint's fsyncs stay on a storage thread.
        with contextlib.suppress(QueueClosed):
            self.worker._submit_batch([Job(self._checkpoint, kind="bare")])

    def _checkpoint(self) -> None:
        self._checkpoint_queued = False
        self._commits = 0
        conn = self.conn
        if conn is not None and self.db_path != ":memory:":
            if self.moved():
                # Found on a storage thread, off the hot path: a file deleted
                # under a queue that nobody reopened stops taking writes here.
                self.stale = True
                return
            # PASSIVE never waits for readers or writers; what it cannot copy now goes next time.
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    @staticmethod
    def _fail_after_rollback(
        conn: sqlite3.Connection, jobs: Iterable[Job[Any]], error: BaseException
    ) -> None:
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass
        for job in jobs:
            job.result = None
            job.error = error


# The connections of this process, by database file (its real path).
_connections: dict[str, _Connection] = {}
_connections_lock = threading.Lock()


def _acquire(store: SQLiteDatabase) -> _Connection:
    """The connection ``store`` shares with the other stores on its file (a new one if none)."""
    if store.memory:
        # Every in-memory queue is a database of its own.
        db = _Connection(":memory:", ":memory:", True, store.label)
        db.stores.append(store)
        return db
    key = os.path.realpath(store.db_path)
    with _connections_lock:
        found = _connections.get(key)
        if found is not None and found.worker.alive and found.moved():
            # The path names a new file now (or none): a connection to the old
            # inode would write where nobody reads. Its stores fail from now
            # on; this store gets a connection of its own to the path's file.
            found.stale = True
            del _connections[key]
            found = None
        if found is None or not found.worker.alive:
            found = _Connection(key, store.db_path, False, store.label)
            _connections[key] = found
        found.stores.append(store)
    return found


def _release(db: _Connection, store: SQLiteDatabase) -> bool:
    """Forget ``store``; return whether it was the connection's last (the caller stops its worker)."""
    with _connections_lock:
        with contextlib.suppress(ValueError):
            db.stores.remove(store)
        if db.stores:
            return False
        if _connections.get(db.key) is db:
            del _connections[db.key]
        return True


def _after_fork_in_child() -> None:
    # The parent's connections must not be used here (SQLite forbids it): stores
    # inherited through fork refuse to run, and new ones open fresh connections.
    global _connections_lock
    _connections.clear()
    _connections_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class SQLiteDatabase:
    """One SQLite database file, one connection, one worker thread.

    The plumbing every SQLite store shares: opening (directory and file
    created owner-only, WAL, durability), the batching worker thread, error
    translation, closing. Subclasses create their tables in :meth:`_create`
    and add their operations as jobs run through :meth:`_run`.

    Args:
        path: an existing database file; otherwise the directory (created,
            owner-only, if missing) that holds it; or ``":memory:"``. See
            :func:`locate_database`, consulted again at open.
        db_file_name: the database file in the directory ``path``
            (persist-queue's default ``data.db``).
        durability: ``"full"`` (fsync per commit), ``"normal"`` (survives a
            process crash, may lose the last commits on power loss) or
            ``"off"``.
        busy_timeout: seconds to wait for another connection's write lock.
        label: names the worker thread.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        db_file_name: str | None,
        durability: Durability = "full",
        busy_timeout: float = 10.0,
        label: str = "db",
    ) -> None:
        self.durability = durability
        self.busy_timeout = busy_timeout
        self.label = label
        self.memory = os.fspath(path) == ":memory:"
        self._path = os.fspath(path)
        self._db_file_name = db_file_name
        self._directory, self.db_path = locate_database(path, db_file_name)
        self._db: _Connection | None = None
        self._closed = False
        self._pid = os.getpid()
        self.level = _LEVELS[durability]
        """``PRAGMA synchronous`` level this store's writes need (a batch uses its jobs' highest)."""
        self.change_key = label
        """The table whose changes the other stores of this process on the file watch for."""
        self.own_changes = 0
        """Commits that changed rows of :attr:`change_key`, made through this store."""
        self.legacy_rows_possible = False
        """Whether the table may hold rows written by persist-queue (known after open)."""

    # ----------------------------------------------------------------- plumbing

    @property
    def is_open(self) -> bool:
        """Whether the engine was opened and not closed (in this process)."""
        return self._db is not None and self._pid == os.getpid()

    @property
    def _conn(self) -> sqlite3.Connection | None:
        db = self._db
        return None if db is None else db.conn

    def _alive_worker(self) -> Worker:
        db = self._db
        if db is not None and db.stale:
            raise StorageError(
                f"{self.db_path}: the database file was deleted or replaced since this queue opened it; "
                "open the queue again to use the file now at that path"
            )
        return checked_worker(None if db is None else db.worker, self._pid)

    async def _run(
        self,
        fn: Callable[..., T],
        *args: Any,
        kind: str = "write",
        undo: Callable[[T], Job[Any]] | None = None,
    ) -> T:
        job = Job(fn, *args, kind=kind)
        job.owner = self
        return await run_job(self._alive_worker(), job, undo)

    def _now(self, fn: Callable[..., T], *args: Any, kind: str = "write") -> T:
        """``fn`` run now on the calling loop thread (see :func:`try_now`), or ``NOT_NOW``."""
        db = self._db
        if db is None or db.stale or self._pid != os.getpid():
            return NOT_NOW  # type: ignore[no-any-return]
        job = Job(fn, *args, kind=kind)
        job.owner = self
        return try_now(db.worker, job)

    # --------------------------------------------------------------- open/close

    def _relocate(self) -> None:
        # Again at open: the file may have been created since the constructor ran.
        self._directory, self.db_path = locate_database(self._path, self._db_file_name)

    def _connect(self, db: _Connection) -> None:
        """Open the shared connection if this is its first store, then create this store's tables."""
        if db.conn is None:
            self._connect_new(db)
        self._create(db.conn)  # type: ignore[arg-type]

    def _connect_new(self, db: _Connection) -> None:
        if self._directory is None and not self.memory:
            self._check_header()
        if self._directory is not None:
            if os.path.exists(self._directory) and not os.path.isdir(self._directory):
                raise StorageError(
                    f"queue path {self._directory!r} exists and is neither a directory nor a database file"
                )
            try:
                os.makedirs(self._directory, mode=0o700, exist_ok=True)
            except OSError as exc:
                raise StorageError(f"cannot create queue directory {self._directory!r}: {exc}") from exc
            if not os.path.exists(self.db_path):
                # Create the file owner-only before SQLite creates it with the umask.
                try:
                    os.close(os.open(self.db_path, os.O_CREAT | os.O_WRONLY, 0o600))
                except OSError as exc:
                    raise StorageError(f"cannot create database {self.db_path!r}: {exc}") from exc
        try:
            conn = sqlite3.connect(
                self.db_path,
                timeout=self.busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise _translate(exc, self.db_path) from exc
        if not self.memory:
            db.ident = file_identity(self.db_path)
        try:
            if not self.memory:
                mode = self._enable_wal(conn)
                if str(mode).lower() != "wal":
                    raise StorageError(f"{self.db_path}: cannot use WAL journal mode (got {mode})")
            # WAL checkpoints (which fsync) run on a storage thread, never in
            # a commit made inline on an event loop: see _Connection.
            conn.execute("PRAGMA wal_autocheckpoint=0")
        except BaseException:
            conn.close()
            raise
        db.conn = conn

    def _check_header(self) -> None:
        """Refuse, with a clear error, a file given as the database that is not one."""
        try:
            with open(self.db_path, "rb") as f:
                head = f.read(len(SQLITE_MAGIC))
        except OSError as exc:
            raise StorageError(f"cannot read database file {self.db_path!r}: {exc}") from exc
        # An empty file is a new database (as sqlite3 and persist-queue treat it).
        if head and head != SQLITE_MAGIC:
            raise CorruptionError(
                f"queue path {self.db_path!r} is a file but not an SQLite database "
                "(a queue path is a directory, or an existing SQLite database file)"
            )

    def _enable_wal(self, conn: sqlite3.Connection) -> Any:
        """``PRAGMA journal_mode=WAL``, retried while other connections hold the database.

        Switching a new database to WAL needs an exclusive lock, and SQLite
        answers "database is locked" at once, without waiting in its busy
        handler, when another connection that holds a shared lock wants it too
        (waiting could deadlock). Processes opening a fresh queue together hit
        this; they wait here up to ``busy_timeout`` instead.
        """
        deadline = time.monotonic() + self.busy_timeout
        delay = 0.001
        while True:
            try:
                return conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def _create(self, conn: sqlite3.Connection) -> None:
        """Create the tables (runs once, at open, on the worker thread)."""
        raise NotImplementedError

    def _check_serializer(
        self, conn: sqlite3.Connection, table: str, serializer_name: str, existed: bool
    ) -> None:
        """Record a new table's serializer, or refuse another one than recorded."""
        conn.execute(
            "CREATE TABLE IF NOT EXISTS persistq_meta "
            "(tbl TEXT NOT NULL, key TEXT NOT NULL, value TEXT, PRIMARY KEY (tbl, key))"
        )
        row = conn.execute(
            "SELECT value FROM persistq_meta WHERE tbl=? AND key='serializer'", (table,)
        ).fetchone()
        created = conn.execute(
            "SELECT value FROM persistq_meta WHERE tbl=? AND key='created_by'", (table,)
        ).fetchone()
        # A table persistq did not create may hold rows persist-queue encoded.
        self.legacy_rows_possible = existed and created is None
        if not existed:
            conn.execute(
                "INSERT OR REPLACE INTO persistq_meta (tbl, key, value) VALUES (?, 'created_by', 'persistq')",
                (table,),
            )
        if row is None and not existed:
            conn.execute(
                "INSERT INTO persistq_meta (tbl, key, value) VALUES (?, 'serializer', ?)",
                (table, serializer_name),
            )
        elif row is not None and row[0] != serializer_name:
            raise SerializerMismatch(f"table {table!r} in {self.db_path}", row[0], serializer_name)

    @staticmethod
    def _table_exists(conn: sqlite3.Connection, table: str) -> bool:
        return (
            conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (table,)).fetchone()
            is not None
        )

    def _check_reopen(self) -> bool:
        if self._closed:
            raise QueueClosed("the queue is closed")
        if self._db is not None:
            self._alive_worker()
            return True
        return False

    async def open(self) -> None:
        """Open the database and create the tables (idempotent).

        Stores of this process on the same database file share one
        connection (and so one storage worker): opening a second one only
        creates its tables.
        """
        if self._check_reopen():
            return
        self._relocate()
        db = _acquire(self)
        job: Job[None] = Job(self._connect, db, kind="bare")
        job.owner = self
        try:
            await run_job(db.worker, job)
        except BaseException:
            if _release(db, self):
                await stop_worker(db.worker)
            raise
        self._db = db

    def open_blocking(self) -> None:
        """Like :meth:`open`, blocking the calling thread."""
        if self._check_reopen():
            return
        self._relocate()
        db = _acquire(self)
        try:
            db.worker.run_blocking(Job(self._connect, db, kind="bare"))
        except BaseException:
            if _release(db, self):
                db.worker.stop()
            raise
        self._db = db

    def _detach(self) -> _Connection | None:
        db = self._db
        if db is None or self._pid != os.getpid():
            return None
        self._db = None
        self._closed = True
        return db

    async def close(self) -> None:
        """Finish this store's queued jobs; close the connection if no other store uses it."""
        db = self._detach()
        if db is not None and _release(db, self):
            await stop_worker(db.worker)

    def close_nowait(self) -> None:
        """Like :meth:`close` without waiting (for ``__del__``)."""
        db = self._detach()
        if db is not None and _release(db, self):
            db.worker.stop()

    def _sql_data_version(self, conn: sqlite3.Connection) -> int:
        v: int = conn.execute("PRAGMA data_version").fetchone()[0]
        return v

    async def data_version(self) -> int:
        """A number that changes when another connection, or another store of this process, commits.

        Other connections are seen through ``PRAGMA data_version``; stores of
        this process share the connection, so their changes to this store's
        table are counted by :class:`_Connection`.
        """
        v = await self._run(self._sql_data_version, kind="read")
        db = self._db
        others = 0 if db is None else db.changes.get(self.change_key, 0) - self.own_changes
        return (v << 32) + others

    def _vacuum(self) -> None:
        conn = self._conn
        if conn is None:
            raise QueueClosed("the queue is closed")
        conn.execute("VACUUM")
        if not self.memory:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    async def vacuum(self) -> None:
        """Rebuild the database file to return free pages to the file system."""
        await self._run(self._vacuum, kind="bare")


class SQLiteEngine(SQLiteDatabase):
    """Storage for one queue table (bytes in, bytes out) in an SQLite database.

    Args:
        path, db_file_name, durability, busy_timeout: as :class:`SQLiteDatabase`.
        spec: the table and its order.
        serializer_name: recorded when the table is created; opening the
            table later with another serializer raises
            :class:`~persistq.errors.SerializerMismatch`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        db_file_name: str | None,
        spec: TableSpec,
        serializer_name: str,
        durability: Durability = "full",
        busy_timeout: float = 10.0,
    ) -> None:
        super().__init__(path, db_file_name, durability, busy_timeout, spec.table)
        self._use_table(spec)
        self.serializer_name = serializer_name
        self._asc = spec.order != "filo"
        self._prio = spec.order == "priority"
        # Columns read back for every row: the priority column only exists on
        # priority tables.
        self._cols = "_id, data, timestamp, " + ("priority" if self._prio else "NULL")
        self._order_by = ORDER_BY[spec.order]

    def _use_table(self, spec: TableSpec) -> None:
        self.spec = spec
        self._t = _quote(spec.table)
        self._pending = _quote(f"persistq_pending_{spec.table}")

    def _create(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            legacy = self.spec.legacy
            if (
                legacy is not None
                and self._table_exists(conn, legacy)
                and not self._table_exists(conn, self.spec.table)
            ):
                # A database persist-queue's AsyncSQLiteQueue wrote (it ignored
                # `name`): its items are in the bare table; adopt it.
                self._use_table(TableSpec(legacy, self.spec.order, self.spec.unique))
            t = self.spec.table
            existed = self._table_exists(conn, t)
            # persist-queue's schemas, so its databases open in place.
            extra = ", priority INTEGER" if self._prio else ""
            unique = ", UNIQUE (data)" if self.spec.unique else ""
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self._t} "
                f"(_id INTEGER PRIMARY KEY AUTOINCREMENT, data BLOB, timestamp FLOAT{extra}{unique})"
            )
            if self._prio:
                # persist-queue scanned and sorted the table on every get.
                prio_index = _quote(f"persistq_{t}_priority")
                conn.execute(f"CREATE INDEX IF NOT EXISTS {prio_index} ON {self._t} (priority, _id)")
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self._pending} "
                "(_id INTEGER PRIMARY KEY, data BLOB, timestamp FLOAT, owner TEXT NOT NULL, priority INTEGER)"
            )
            owner_index = _quote(f"persistq_pending_{t}_owner")
            conn.execute(f"CREATE INDEX IF NOT EXISTS {owner_index} ON {self._pending} (owner)")
            self._check_serializer(conn, t, self.serializer_name, existed)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    # ------------------------------------------------------------ the operations

    def _sort(self, rows: list[Row]) -> None:
        # RETURNING gives rows in no promised order; put them in queue order.
        if self._prio:
            rows.sort(key=lambda r: (r[3], r[0]))
        else:
            rows.sort(key=lambda r: r[0], reverse=not self._asc)

    def _sql_put(
        self,
        conn: sqlite3.Connection,
        items: Sequence[NewRow],
        maxsize: int,
        alts: Sequence[bytes | None] | None = None,
    ) -> list[int | None] | None:
        if maxsize > 0:
            (n,) = conn.execute(f"SELECT count(*) FROM {self._t}").fetchone()
            if n + len(items) > maxsize:
                return None
        verb = "INSERT OR IGNORE" if self.spec.unique else "INSERT"
        if self._prio:
            sql = f"{verb} INTO {self._t} (data, timestamp, priority) VALUES (?, ?, ?)"
        else:
            sql = f"{verb} INTO {self._t} (data, timestamp) VALUES (?, ?)"
        ids: list[int | None] = []
        for i, (data, ts, priority) in enumerate(items):
            alt = alts[i] if alts is not None else None
            if alt is not None and conn.execute(f"SELECT 1 FROM {self._t} WHERE data=?", (alt,)).fetchone():
                ids.append(None)  # an equal item in persist-queue's encoding is waiting
                continue
            cur = conn.execute(sql, (data, ts, priority) if self._prio else (data, ts))
            ids.append(cur.lastrowid if cur.rowcount else None)
        return ids

    def _sql_delete_ids(self, conn: sqlite3.Connection, ids: Sequence[int | None]) -> None:
        conn.executemany(f"DELETE FROM {self._t} WHERE _id=?", [(i,) for i in ids if i is not None])

    def _undo_put(self, ids: list[int | None] | None) -> Job[None]:
        return Job(self._sql_delete_ids, ids or [])

    async def put(
        self, items: Sequence[NewRow], maxsize: int = 0, alts: Sequence[bytes | None] | None = None
    ) -> list[int | None] | None:
        """Insert items atomically; return their ids, or ``None`` if ``maxsize`` would be passed.

        On a unique table a duplicate of a stored item is not inserted and its
        id is ``None``.
        Durable on return (per the engine's durability). Cancel-atomic: a
        cancelled caller's rows are removed again.
        """
        return await self._run(self._sql_put, items, maxsize, alts, undo=self._undo_put)

    def put_now(
        self, items: Sequence[NewRow], maxsize: int = 0, alts: Sequence[bytes | None] | None = None
    ) -> list[int | None] | None:
        """:meth:`put` done now on the calling loop thread, or ``NOT_NOW`` (synchronous fast path)."""
        return self._now(self._sql_put, items, maxsize, alts)

    def claim_now(self, n: int = 1, item_id: int | None = None, owner: str | None = None) -> list[Row]:
        """:meth:`claim` done now on the calling loop thread, or ``NOT_NOW`` (synchronous fast path)."""
        return self._now(self._sql_claim, n, item_id, owner)

    def _sql_claim(
        self, conn: sqlite3.Connection, n: int, item_id: int | None, owner: str | None
    ) -> list[Row]:
        t = self._t
        params: tuple[int, ...]
        if item_id is not None:
            where, params = "_id = ?", (item_id,)
        elif n == 1:
            where = f"_id = (SELECT _id FROM {t} ORDER BY {self._order_by} LIMIT 1)"
            params = ()
        else:
            where = f"_id IN (SELECT _id FROM {t} ORDER BY {self._order_by} LIMIT ?)"
            params = (n,)
        if _HAS_RETURNING:
            rows: list[Row] = conn.execute(
                f"DELETE FROM {t} WHERE {where} RETURNING {self._cols}", params
            ).fetchall()
        else:  # pragma: no cover - SQLite < 3.35: still one write transaction
            rows = conn.execute(f"SELECT {self._cols} FROM {t} WHERE {where}", params).fetchall()
            conn.executemany(f"DELETE FROM {t} WHERE _id=?", [(r[0],) for r in rows])
        self._sort(rows)
        if owner is not None and rows:
            conn.executemany(
                f"INSERT INTO {self._pending} (_id, data, timestamp, owner, priority) VALUES (?, ?, ?, ?, ?)",
                [(r[0], r[1], r[2], owner, r[3]) for r in rows],
            )
        return rows

    def _sql_restore(self, conn: sqlite3.Connection, rows: Sequence[Row], from_pending: bool) -> None:
        # The rows go back under their own _id, so they regain their old place:
        # AUTOINCREMENT never hands that id to another row. On a unique table an
        # equal item put meanwhile already stands for the restored one.
        if self._prio:
            conn.executemany(
                f"INSERT OR IGNORE INTO {self._t} (_id, data, timestamp, priority) VALUES (?, ?, ?, ?)", rows
            )
        else:
            conn.executemany(
                f"INSERT OR IGNORE INTO {self._t} (_id, data, timestamp) VALUES (?, ?, ?)",
                [(r[0], r[1], r[2]) for r in rows],
            )
        if from_pending:
            conn.executemany(f"DELETE FROM {self._pending} WHERE _id=?", [(r[0],) for r in rows])

    async def claim(self, n: int = 1, item_id: int | None = None, owner: str | None = None) -> list[Row]:
        """Take up to ``n`` items (or the one with ``item_id``) in queue order.

        Without ``owner`` the rows are deleted; with ``owner`` they move to the
        pending table until :meth:`finish` or :meth:`release`. Atomic across
        processes (one ``DELETE … RETURNING`` in a write transaction) and
        cancel-atomic (a cancelled caller's rows go back).
        """

        def undo(rows: list[Row]) -> Job[None]:
            return Job(self._sql_restore, rows, owner is not None)

        return await self._run(self._sql_claim, n, item_id, owner, undo=undo)

    async def restore(self, rows: Sequence[Row], from_pending: bool = False) -> None:
        """Put claimed rows back in their old places."""
        await self._run(self._sql_restore, rows, from_pending)

    def _sql_finish(self, conn: sqlite3.Connection, ids: Sequence[int]) -> list[PendingRow]:
        rows: list[PendingRow] = []
        for i in ids:
            row = conn.execute(
                f"SELECT _id, data, timestamp, owner, priority FROM {self._pending} WHERE _id=?", (i,)
            ).fetchone()
            if row is not None:
                rows.append(row)
        conn.executemany(f"DELETE FROM {self._pending} WHERE _id=?", [(i,) for i in ids])
        return rows

    def _sql_unfinish(self, conn: sqlite3.Connection, rows: Sequence[PendingRow]) -> None:
        conn.executemany(
            f"INSERT OR IGNORE INTO {self._pending} (_id, data, timestamp, owner, priority) "
            "VALUES (?, ?, ?, ?, ?)",
            rows,
        )

    async def finish(self, ids: Sequence[int]) -> None:
        """Delete pending rows for good (``task_done`` with ``auto_commit=False``)."""

        def undo(rows: list[PendingRow]) -> Job[None]:
            return Job(self._sql_unfinish, rows)

        await self._run(self._sql_finish, ids, undo=undo)

    def _sql_release(self, conn: sqlite3.Connection, owners: Sequence[str]) -> int:
        moved = 0
        for owner in owners:
            rows = conn.execute(
                f"SELECT _id, data, timestamp, priority FROM {self._pending} WHERE owner=?", (owner,)
            ).fetchall()
            self._sql_restore(conn, rows, True)
            moved += len(rows)
        return moved

    async def release(self, owner: str) -> int:
        """Move every pending row of ``owner`` back to the queue; return how many."""
        return await self._run(self._sql_release, [owner])

    def _sql_owners(self, conn: sqlite3.Connection) -> list[str]:
        return [r[0] for r in conn.execute(f"SELECT DISTINCT owner FROM {self._pending}")]

    async def recover(self, alive: Callable[[str], bool]) -> int:
        """Give back pending rows whose owner is gone (crashed or closed)."""
        owners = await self._run(self._sql_owners, kind="read")
        dead = [o for o in owners if not alive(o)]
        if not dead:
            return 0
        return await self._run(self._sql_release, dead)

    def _sql_count(self, conn: sqlite3.Connection) -> int:
        n: int = conn.execute(f"SELECT count(*) FROM {self._t}").fetchone()[0]
        return n

    async def count(self) -> int:
        """Number of items waiting (not counting pending ones)."""
        return await self._run(self._sql_count, kind="read")

    def count_blocking(self) -> int:
        """Like :meth:`count`, blocking the calling thread."""
        self.open_blocking()
        return self._alive_worker().run_blocking(Job(self._sql_count, kind="read"))

    def _sql_rows(self, conn: sqlite3.Connection) -> list[Row]:
        return conn.execute(f"SELECT {self._cols} FROM {self._t} ORDER BY {self._order_by}").fetchall()

    async def rows(self) -> list[Row]:
        """Every waiting item, in the order gets would return them."""
        return await self._run(self._sql_rows, kind="read")

    def _sql_update(self, conn: sqlite3.Connection, item_id: int, data: bytes) -> None:
        cur = conn.execute(f"UPDATE {self._t} SET data=? WHERE _id=?", (data, item_id))
        if cur.rowcount == 0:
            cur = conn.execute(f"UPDATE {self._pending} SET data=? WHERE _id=?", (data, item_id))
        if cur.rowcount == 0:
            raise ItemNotFound(item_id, f"not in {self.spec.table}")

    async def update(self, item_id: int, data: bytes) -> None:
        """Replace the data of item ``item_id`` (waiting or pending)."""
        await self._run(self._sql_update, item_id, data)
