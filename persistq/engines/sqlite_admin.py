"""Inspection and maintenance of SQLite queue databases: every SQL the admin API needs.

Blocking functions (:mod:`persistq.admin` runs them on a worker thread).
Inspection (:func:`inspect`, :func:`peek`, :func:`verify`, :func:`list_queues`)
opens the database read-only (``mode=ro``) and takes no lock that a queue
would wait for, so it never changes a queue and is safe while producers and
consumers run. :func:`purge` deletes in one ``BEGIN IMMEDIATE`` transaction;
:func:`vacuum` runs ``VACUUM`` and a WAL checkpoint. Each waits up to
:data:`BUSY_MS` for other writers.

Every :mod:`sqlite3` error leaves here as a
:class:`~persistq.engines.inspection.InspectionError` (a
:class:`~persistq.engines.inspection.CorruptQueueError` for a file that is not
a database) whose message names the database, so callers never handle a
driver's exception.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from urllib.parse import quote

from .base import ORDER_BY
from .inspection import (
    PEEK_STATUSES,
    CorruptQueueError,
    InspectionError,
    KindSpec,
    QueueInfo,
    QueueRef,
    RawRecord,
    StoreInfo,
    VacuumResult,
    VerifyReport,
    ack_record,
    classify,
    disk_bytes,
    empty_counts,
    oldest_of,
    one,
    pick,
    plain_record,
    queue_info,
    status_counts,
)
from .sqlite import SQLITE_MAGIC, done_table
from .sqlite_ack import UNACK

__all__ = (
    "BUSY_MS",
    "DEFAULT_DB_FILE",
    "check_file",
    "copy_database",
    "databases",
    "inspect",
    "list_queues",
    "peek",
    "pending_table",
    "purge",
    "vacuum",
    "verify",
)

BUSY_MS = 10_000
"""Milliseconds a call waits for another process's write lock."""
DEFAULT_DB_FILE = "data.db"
"""The database file a queue directory holds unless ``db_file_name`` says otherwise."""
_META = "persistq_meta"

_ORDER_BY: dict[str, str] = {**ORDER_BY, "key": "rowid"}


def pending_table(table: str) -> str:
    """The table holding items of ``table`` got with ``auto_commit=False`` and not yet done.

    The name :class:`~persistq.engines.sqlite.SQLiteEngine` gives it;
    ``tests/test_admin.py`` checks that the two agree.
    """
    return f"persistq_pending_{table}"


def _files(db: str) -> list[str]:
    return [db, f"{db}-wal", f"{db}-shm"]


def _q(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


# ------------------------------------------------------------------ errors


def _message(exc: sqlite3.Error) -> str:
    if isinstance(exc, sqlite3.DatabaseError) and "not a database" in str(exc):
        return f"corrupt queue: {exc}"
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc)):
        return f"{exc}: another process held the write lock for {BUSY_MS // 1000} s; try again"
    return str(exc) or type(exc).__name__


_CORRUPT_CODES = (11, 26)  # SQLITE_CORRUPT, SQLITE_NOTADB


def _error(message: str, exc: sqlite3.Error) -> InspectionError:
    corrupt = getattr(exc, "sqlite_errorcode", None) in _CORRUPT_CODES or any(
        s in str(exc) for s in ("not a database", "malformed")
    )
    cls = CorruptQueueError if corrupt else InspectionError
    error = cls(message)
    error.__cause__ = exc
    return error


@contextlib.contextmanager
def _read_only(path: str) -> Iterator[sqlite3.Connection]:
    """A read-only connection: inspection never changes a queue."""
    try:
        conn = sqlite3.connect(f"file:{quote(os.path.abspath(path))}?mode=ro", uri=True, timeout=10)
    except sqlite3.Error as exc:
        raise _error(f"{path}: cannot open the database: {exc}", exc) from exc
    try:
        conn.execute(f"PRAGMA busy_timeout={BUSY_MS}")
        yield conn
    except sqlite3.Error as exc:
        if isinstance(exc, sqlite3.OperationalError) and "locked" not in str(exc):
            raise _error(f"{path}: {exc}", exc) from exc
        raise _error(f"{path}: {_message(exc)}", exc) from exc
    finally:
        conn.close()


@contextlib.contextmanager
def _read_write(path: str, translate: bool = True) -> Iterator[sqlite3.Connection]:
    try:
        conn = sqlite3.connect(path, timeout=BUSY_MS / 1000, isolation_level=None)
    except sqlite3.Error as exc:
        raise _error(_message(exc), exc) from exc
    try:
        conn.execute(f"PRAGMA busy_timeout={BUSY_MS}")
        yield conn
    except sqlite3.Error as exc:
        if not translate:
            raise
        raise _error(_message(exc), exc) from exc
    finally:
        conn.close()


# ------------------------------------------------------------------ locating


def databases(directory: str, names: Sequence[str]) -> list[str]:
    """The database files a queue directory may mean, best first.

    ``[data.db]`` when it is there (whatever else is), else every regular
    ``*.db`` file, sorted: one means that file, several need a choice.
    """
    if DEFAULT_DB_FILE in names:
        return [os.path.join(directory, DEFAULT_DB_FILE)]
    return sorted(
        os.path.join(directory, n)
        for n in names
        if n.endswith(".db") and os.path.isfile(os.path.join(directory, n))
    )


def check_file(path: str) -> None:
    """Refuse a file that is not empty and does not start like an SQLite database.

    Raises:
        CorruptQueueError: a bad header.
        OSError: the file cannot be read.
    """
    with open(path, "rb") as f:
        head = f.read(len(SQLITE_MAGIC))
    if head and head != SQLITE_MAGIC:
        raise CorruptQueueError(f"corrupt queue: {path} is not an SQLite database (bad file header)")


# ------------------------------------------------------------------ inspection


def _tables(conn: sqlite3.Connection, kinds: Sequence[KindSpec]) -> list[QueueRef]:
    names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
    serializers: dict[str, str] = {}
    if _META in names:
        serializers = dict(conn.execute(f"SELECT tbl, value FROM {_META} WHERE key='serializer'"))
    return [t for n in names if (t := classify(n, kinds, serializers)) is not None]


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {r[1] for r in conn.execute(f"PRAGMA table_info({_q(table)})")}


def _has_table(conn: sqlite3.Connection, table: str) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (table,)).fetchone()
    return row is not None


def _stats(conn: sqlite3.Connection, ref: QueueRef, dbstat: bool) -> QueueInfo:
    assert ref.table is not None
    qt = _q(ref.table)
    counts = empty_counts(ref)
    oldest: float | None = None
    if ref.order == "key":
        counts["entries"] = conn.execute(f"SELECT count(*) FROM {qt}").fetchone()[0]
    elif ref.ack:
        oldest = status_counts(
            counts, conn.execute(f"SELECT status, count(*), min(timestamp) FROM {qt} GROUP BY status")
        )
        if "pq_lease" in _columns(conn, ref.table):
            counts["expired"] = conn.execute(
                f"SELECT count(*) FROM {qt} WHERE status={UNACK} AND pq_lease <= ?", (time.time(),)
            ).fetchone()[0]
    else:
        counts["ready"], oldest = conn.execute(f"SELECT count(*), min(timestamp) FROM {qt}").fetchone()
        pending = pending_table(ref.table)
        if _has_table(conn, pending):
            n, ts = conn.execute(f"SELECT count(*), min(timestamp) FROM {_q(pending)}").fetchone()
            counts["in_flight"] = n
            oldest = oldest_of(oldest, ts)
    size = None
    if dbstat:
        size = conn.execute(
            "SELECT sum(pgsize) FROM dbstat WHERE name IN "
            "(SELECT name FROM sqlite_master WHERE tbl_name IN (?, ?))",
            (ref.table, pending_table(ref.table)),
        ).fetchone()[0]
    return queue_info(ref, "sqlite", counts, oldest, size)


def list_queues(path: str, kinds: Sequence[KindSpec], table: str | None = None) -> list[QueueRef]:
    """The queues in the database ``path`` (those ``table`` names: a table or queue name).

    Raises:
        InspectionError: ``table`` names no queue, or several; the database
            cannot be read.
    """
    with _read_only(path) as conn:
        return pick(_tables(conn, kinds), table, path)


def inspect(path: str, kinds: Sequence[KindSpec], table: str | None = None) -> StoreInfo:
    """Counts per status, oldest item age and size of each queue in the database ``path``.

    Sizes come from the ``dbstat`` virtual table where SQLite was built with
    it (else ``None``); ``bytes_on_disk`` adds the database, WAL and
    shared-memory files.
    """
    with _read_only(path) as conn:
        journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
        tables = pick(_tables(conn, kinds), table, path)
        try:
            conn.execute("SELECT 1 FROM dbstat LIMIT 1").fetchall()
            dbstat = True
        except sqlite3.Error:
            dbstat = False
        queues = [_stats(conn, t, dbstat) for t in tables]
    return StoreInfo(
        target=path,
        engine="sqlite",
        durability=None,
        bytes_on_disk=disk_bytes(_files(path)),
        queues=queues,
        database=os.path.abspath(path),
        journal_mode=journal,
    )


def peek(
    path: str, kinds: Sequence[KindSpec], table: str | None, n: int, status: str = "ready"
) -> tuple[QueueRef, list[RawRecord]]:
    """The next ``n`` records of one queue in get order, without taking them.

    Args:
        status: ack queues: which records (a key of
            :data:`~persistq.engines.inspection.PEEK_STATUSES`); other queues
            have only ``"ready"`` records (``"all"`` is the same there).
    """
    statuses = PEEK_STATUSES[status]
    with _read_only(path) as conn:
        ref = one(_tables(conn, kinds), table, path)
        assert ref.table is not None
        qt, order = _q(ref.table), _ORDER_BY[ref.order]
        prio = ref.order == "priority"
        extra = ", priority" if prio else ""
        if ref.order == "key":
            rows = conn.execute(f"SELECT key, data FROM {qt} ORDER BY {order} LIMIT ?", (n,)).fetchall()
            return ref, [RawRecord(bytes(d), key=k) for k, d in rows]
        if ref.ack:
            attempts = "pq_attempts" if "pq_attempts" in _columns(conn, ref.table) else "NULL"
            marks = ", ".join("?" * len(statuses))
            rows = conn.execute(
                f"SELECT _id, data, timestamp, status, {attempts}{extra} FROM {qt} "
                f"WHERE status IN ({marks}) ORDER BY {order} LIMIT ?",
                (*statuses, n),
            ).fetchall()
            return ref, [ack_record(r, prio) for r in rows]
        if status not in ("ready", "all"):
            return ref, []
        rows = conn.execute(
            f"SELECT _id, data, timestamp{extra} FROM {qt} ORDER BY {order} LIMIT ?", (n,)
        ).fetchall()
        return ref, [plain_record(r, prio) for r in rows]


def verify(path: str, kinds: Sequence[KindSpec], table: str | None = None) -> VerifyReport:
    """``PRAGMA integrity_check`` of the whole database; ``checked`` lists the queue tables."""
    with _read_only(path) as conn:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
        checked = [str(q.table) for q in pick(_tables(conn, kinds), table, path)]
    return VerifyReport(checked, [f"{path}: {r[0]}" for r in rows if r[0] != "ok"])


# ------------------------------------------------------------------ maintenance


def purge(
    path: str, kinds: Sequence[KindSpec], table: str | None = None, in_flight: bool = False
) -> dict[str, int]:
    """Delete the items of the queues ``table`` names (all queues for ``None``) in one transaction.

    Ack queues keep their in-flight rows, and plain queues the items got
    with ``auto_commit=False``, unless ``in_flight`` is true. A unique ack
    queue's fingerprints of finished items go too (counted as items).

    Returns:
        Items deleted per table.

    Raises:
        InspectionError: no queue matched; the database is busy or damaged.
    """
    tables = list_queues(path, kinds, table)
    if not tables:
        raise InspectionError(f"{path}: holds no queue")
    out: dict[str, int] = {}
    with _read_write(path) as conn:
        conn.execute("BEGIN IMMEDIATE")
        try:
            for q in tables:
                assert q.table is not None
                qt = _q(q.table)
                if q.ack and not in_flight:
                    n = conn.execute(f"DELETE FROM {qt} WHERE status <> {UNACK}").rowcount
                else:
                    n = conn.execute(f"DELETE FROM {qt}").rowcount
                pending = pending_table(q.table)
                if in_flight and _has_table(conn, pending):
                    n += conn.execute(f"DELETE FROM {_q(pending)}").rowcount
                done = done_table(q.table)
                if q.ack and _has_table(conn, done):
                    # A purged unique ack queue forgets what it finished, too.
                    n += conn.execute(f"DELETE FROM {_q(done)}").rowcount
                out[q.table] = n
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return out


def vacuum(path: str) -> VacuumResult:
    """``VACUUM`` the whole database, then truncate its WAL: free pages go back to the file system."""
    before = disk_bytes(_files(path))
    with _read_write(path) as conn:
        conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return VacuumResult(before, disk_bytes(_files(path)))


def copy_database(
    src: str,
    dst: str,
    kinds: Sequence[KindSpec],
    progress: Callable[[int, int], None] | None = None,
) -> tuple[str, list[str]]:
    """Copy the database ``src`` consistently into the new directory ``dst`` (safe while it is in use).

    The copy has ``src``'s file name, WAL journal mode, and passed
    ``PRAGMA integrity_check``; a failed copy leaves no file behind.

    Args:
        progress: called with ``(pages copied, pages in all)`` as the copy goes.

    Returns:
        The copy's path and the queue tables it holds.

    Raises:
        InspectionError: ``dst`` exists and is not an empty directory, or the
            copy fails its check.
    """
    if os.path.isdir(dst) and os.listdir(dst):
        raise InspectionError(f"destination {dst!r} exists and is not an empty directory")
    if os.path.exists(dst) and not os.path.isdir(dst):
        raise InspectionError(f"destination {dst!r} exists and is not a directory")
    os.makedirs(dst, mode=0o700, exist_ok=True)
    out = os.path.join(dst, os.path.basename(src))
    os.close(os.open(out, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600))
    try:
        # Errors of either side are reported by the source's context, naming it.
        with _read_only(src) as source, _read_write(out, translate=False) as copy:
            pages = source.execute("PRAGMA page_count").fetchone()[0]

            def step(status: int, remaining: int, total: int) -> None:
                if progress is not None:
                    progress(total - remaining, total)

            if progress is not None:
                progress(0, pages)
            source.backup(copy, pages=1024, progress=step)
            copy.execute("PRAGMA journal_mode=WAL")
            check = copy.execute("PRAGMA integrity_check").fetchall()
            if [r[0] for r in check] != ["ok"]:
                raise InspectionError(f"the copy {out} fails its integrity check: {check[0][0]}")
            tables = [str(q.table) for q in _tables(copy, kinds)]
    except BaseException:
        for f in _files(out):
            with contextlib.suppress(OSError):
                os.unlink(f)
        raise
    return out, tables
