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

import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from ..errors import (
    InvalidName,
    ItemNotFound,
    QueueClosed,
    SerializerMismatch,
    StorageError,
)
from ._worker import Job, Worker, run_job, stop_worker

__all__ = ("Durability", "Row", "SQLiteEngine", "TableSpec", "validate_name")

T = TypeVar("T")
Durability = Literal["full", "normal", "off"]
Row = tuple[int, bytes, float, "int | None"]
"""A stored item: ``(_id, data, timestamp, priority)`` (priority ``None`` unless a priority queue)."""
NewRow = tuple[bytes, float, "int | None"]
"""An item to store: ``(data, timestamp, priority)``."""
PendingRow = tuple[int, bytes, float, str, "int | None"]

_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_SYNCHRONOUS = {"full": "FULL", "normal": "NORMAL", "off": "OFF"}
_HAS_RETURNING = sqlite3.sqlite_version_info >= (3, 35, 0)


def validate_name(name: object) -> str:
    """Return ``name`` if it is a valid queue name, else raise :class:`InvalidName`."""
    if not isinstance(name, str):
        raise InvalidName(name, "a name must be a str")
    if not _NAME.fullmatch(name):
        raise InvalidName(name)
    return name


def _quote(identifier: str) -> str:
    # Names are validated to [A-Za-z0-9_-]; quoting keeps '-' and keywords legal.
    return '"' + identifier.replace('"', '""') + '"'


def validate_durability(durability: object) -> Durability:
    """Return ``durability`` if it is ``"full"``, ``"normal"`` or ``"off"``."""
    if durability not in _SYNCHRONOUS:
        raise ValueError(f"durability must be 'full', 'normal' or 'off', not {durability!r}")
    return durability  # type: ignore[return-value]


@dataclass(frozen=True)
class TableSpec:
    """What a queue kind needs from its table.

    Attributes:
        table: the table name, e.g. ``queue_default`` (validated).
        order: ``"fifo"`` (lowest ``_id`` first), ``"filo"`` (highest first) or
            ``"priority"`` (lowest ``priority`` first, then lowest ``_id``).
        unique: the table refuses a second copy of stored bytes
            (``UNIQUE (data)``): a put of a duplicate stores nothing.
    """

    table: str
    order: Literal["fifo", "filo", "priority"] = "fifo"
    unique: bool = False


def _translate(exc: sqlite3.Error, db: str) -> StorageError:
    message = str(exc)
    if isinstance(exc, sqlite3.DatabaseError) and (
        "not a database" in message or "malformed" in message or "corrupt" in message
    ):
        from ..errors import CorruptionError

        return CorruptionError(f"{db}: {message}")
    if "locked" in message or "busy" in message:
        return StorageError(
            f"{db}: {message} (another connection held the write lock for longer than the queue's timeout)"
        )
    if "disk I/O error" in message or "full" in message:
        # SQLite reports a file-size limit (EFBIG) as a plain I/O error.
        return StorageError(f"{db}: {message} (is the disk full, or a file-size limit reached?)")
    return StorageError(f"{db}: {message}")


class SQLiteDatabase:
    """One SQLite database file, one connection, one worker thread.

    The plumbing every SQLite store shares: opening (directory and file
    created owner-only, WAL, durability), the batching worker thread, error
    translation, closing. Subclasses create their tables in :meth:`_create`
    and add their operations as jobs run through :meth:`_run`.

    Args:
        path: the directory (created, owner-only, if missing), or
            ``":memory:"``.
        db_file_name: the database file in ``path`` (persist-queue's default
            ``data.db``).
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
        if self.memory:
            self.db_path = ":memory:"
        else:
            directory = os.fspath(path)
            name = db_file_name or "data.db"
            if os.sep in name or (os.altsep and os.altsep in name):
                raise ValueError(f"db_file_name must be a file name, not a path: {name!r}")
            self.db_path = os.path.join(directory, name)
        self._directory = None if self.memory else os.fspath(path)
        self._conn: sqlite3.Connection | None = None
        self._worker: Worker | None = None
        self._opened = False
        self._pid = os.getpid()
        self._busy_ms = int(busy_timeout * 1000)
        self.legacy_rows_possible = False
        """Whether the table may hold rows written by persist-queue (known after open)."""

    # ----------------------------------------------------------------- plumbing

    @property
    def is_open(self) -> bool:
        """Whether the engine was opened and not closed (in this process)."""
        return self._opened and self._pid == os.getpid()

    def _start(self) -> Worker:
        if self._worker is None:
            self._worker = Worker(
                f"persistq-sqlite:{self.label}",
                self._execute,
                self._close_connection,
                None if self.memory else self._execute_inline,
            )
        return self._worker

    def _alive_worker(self) -> Worker:
        if self._pid != os.getpid():
            raise QueueClosed(
                "this queue was opened in another process (before a fork); open it again in this process"
            )
        if self._worker is None or not self._worker.alive:
            raise QueueClosed("the queue is closed")
        return self._worker

    async def _run(
        self,
        fn: Callable[..., T],
        *args: Any,
        kind: str = "write",
        undo: Callable[[T], Job[Any]] | None = None,
    ) -> T:
        return await run_job(self._alive_worker(), Job(fn, *args, kind=kind), undo)

    def _set_busy_wait(self, conn: sqlite3.Connection, inline: bool) -> None:
        # Inline batches run on an event loop: they must fail fast on another
        # connection's lock (and go to the worker thread) rather than wait.
        ms = 0 if inline else int(self.busy_timeout * 1000)
        if ms != self._busy_ms:
            conn.execute(f"PRAGMA busy_timeout={ms}")
            self._busy_ms = ms

    def _execute_inline(self, batch: list[Job[Any]]) -> bool:
        conn = self._conn
        if conn is None:
            return False
        self._set_busy_wait(conn, True)
        try:
            conn.execute("BEGIN IMMEDIATE" if any(j.kind == "write" for j in batch) else "BEGIN")
        except sqlite3.OperationalError:
            return False
        self._execute(batch, began=True)
        return True

    def _execute(self, batch: list[Job[Any]], began: bool = False) -> None:
        conn = self._conn
        if conn is not None and not began:
            self._set_busy_wait(conn, False)
        bare = [j for j in batch if j.kind == "bare"]
        txn = [j for j in batch if j.kind != "bare"]
        for job in bare:
            try:
                job.result = job.fn(*job.args)
            except sqlite3.Error as exc:
                job.error = _translate(exc, self.db_path)
                job.error.__cause__ = exc
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                job.error = exc
            conn = self._conn
        if not txn:
            return
        if conn is None:
            for job in txn:
                job.error = QueueClosed("the queue is closed")
            return
        write = any(j.kind == "write" for j in txn)
        try:
            if not began:
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        except sqlite3.Error as exc:
            for job in txn:
                job.error = _translate(exc, self.db_path)
                job.error.__cause__ = exc
            return
        single = len(txn) == 1
        ok: list[Job[Any]] = []
        for job in txn:
            try:
                if not single:
                    conn.execute("SAVEPOINT job")
                job.result = job.fn(conn, *job.args)
                if not single:
                    conn.execute("RELEASE job")
                ok.append(job)
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

    def _close_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    # --------------------------------------------------------------- open/close

    def _connect(self) -> None:
        if self._conn is not None:
            return
        if self._directory is not None:
            if os.path.exists(self._directory) and not os.path.isdir(self._directory):
                raise StorageError(f"queue path {self._directory!r} exists and is not a directory")
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
        try:
            if not self.memory:
                mode = self._enable_wal(conn)
                if str(mode).lower() != "wal":
                    raise StorageError(f"{self.db_path}: cannot use WAL journal mode (got {mode})")
            conn.execute(f"PRAGMA synchronous={_SYNCHRONOUS[self.durability]}")
            self._create(conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

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

    async def open(self) -> None:
        """Open the database and create the tables (idempotent)."""
        if self._opened:
            self._alive_worker()
            return
        worker = self._start()
        try:
            await run_job(worker, Job(self._connect, kind="bare"))
        except BaseException:
            worker.stop()
            self._worker = None
            raise
        self._opened = True

    def open_blocking(self) -> None:
        """Like :meth:`open`, blocking the calling thread."""
        if self._opened:
            self._alive_worker()
            return
        worker = self._start()
        try:
            worker.run_blocking(Job(self._connect, kind="bare"))
        except BaseException:
            worker.stop()
            self._worker = None
            raise
        self._opened = True

    async def close(self) -> None:
        """Finish queued jobs, close the connection and stop the thread."""
        worker = self._worker
        if worker is None or self._pid != os.getpid():
            return
        await stop_worker(worker)

    def close_nowait(self) -> None:
        """Stop the thread after its queued jobs, without waiting (for ``__del__``)."""
        worker = self._worker
        if worker is not None and self._pid == os.getpid():
            worker.stop()

    def _sql_data_version(self, conn: sqlite3.Connection) -> int:
        v: int = conn.execute("PRAGMA data_version").fetchone()[0]
        return v

    async def data_version(self) -> int:
        """A number that changes when another connection commits."""
        return await self._run(self._sql_data_version, kind="read")

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
        self.spec = spec
        self.serializer_name = serializer_name
        t = spec.table
        self._t = _quote(t)
        self._pending = _quote(f"persistq_pending_{t}")
        self._asc = spec.order != "filo"
        self._prio = spec.order == "priority"
        # Columns read back for every row: the priority column only exists on
        # priority tables.
        self._cols = "_id, data, timestamp, " + ("priority" if self._prio else "NULL")
        self._order_by = {"fifo": "_id ASC", "filo": "_id DESC", "priority": "priority ASC, _id ASC"}[
            spec.order
        ]

    def _create(self, conn: sqlite3.Connection) -> None:
        t = self.spec.table
        conn.execute("BEGIN IMMEDIATE")
        try:
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


def now() -> float:
    """The timestamp stored with each item (seconds since the epoch)."""
    return time.time()
