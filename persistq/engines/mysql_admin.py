"""Inspection and maintenance of queue tables on a MySQL / MariaDB server: every SQL the admin API needs.

Blocking functions on one short-lived PyMySQL connection each (autocommit,
so reads never hold a snapshot or locks that a queue would wait for);
:mod:`persistq.admin` runs them on a worker thread. Tables are recognised by
the prefixes the queue kinds give them (passed in as
:class:`~.inspection.KindSpec`), their in-flight side tables by the name the
engine derives (:func:`~.mysql._pending_table`). :func:`purge` deletes in one
transaction; :func:`optimize` runs ``OPTIMIZE TABLE``.

Driver errors leave here as :class:`~.inspection.InspectionError` naming the
server without the password; a malformed DSN is a
:class:`~.inspection.LocationError`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from .base import ORDER_BY
from .inspection import (
    PEEK_STATUSES,
    InspectionError,
    KindSpec,
    LocationError,
    QueueInfo,
    QueueRef,
    RawRecord,
    StoreInfo,
    VacuumResult,
    VerifyReport,
    ack_record,
    classify,
    empty_counts,
    oldest_of,
    one,
    pick,
    plain_record,
    queue_info,
    status_counts,
)
from .locations import schemes_of
from .mysql import MySQLParams, _message, _pending_table, _pymysql, _q, done_table, parse_dsn
from .sqlite_ack import UNACK

__all__ = (
    "SCHEMES",
    "inspect",
    "list_queues",
    "optimize",
    "peek",
    "purge",
    "safe_location",
    "server_keywords",
    "verify",
)

SCHEMES = schemes_of("mysql")
"""The URL schemes of a MySQL / MariaDB target."""

_CONNECT_TIMEOUT = 10


def _parse(dsn: str) -> dict[str, Any]:
    try:
        return parse_dsn(dsn)
    except ValueError as exc:
        raise LocationError(str(exc)) from None


def _params(p: dict[str, Any]) -> MySQLParams:
    return MySQLParams(
        host=str(p.get("host", "")),
        port=int(p.get("port", 3306)),
        user=str(p.get("user", "")),
        database=str(p.get("database", "")),
        password=str(p.get("password", "")),
    )


def safe_location(dsn: str) -> str:
    """The DSN without its password (``mysql://…`` if it cannot be parsed)."""
    try:
        return _params(parse_dsn(dsn)).safe_dsn
    except ValueError:
        return "mysql://…"


def server_keywords(dsn: str) -> dict[str, Any]:
    """Keywords that open a MySQL queue class on the DSN's server and database (not its table)."""
    params = _params(_parse(dsn))
    return {
        "host": params.host,
        "port": params.port,
        "user": params.user,
        "password": params.password,
        "database": params.database,
    }


@contextlib.contextmanager
def _connect(dsn: str) -> Iterator[tuple[Any, dict[str, Any]]]:
    p = _parse(dsn)
    pymysql = _pymysql()
    where = safe_location(dsn)
    try:
        conn = pymysql.connect(
            host=p.get("host", "localhost"),
            port=p.get("port", 3306),
            user=p.get("user", ""),
            password=p.get("password", ""),
            database=p.get("database"),
            connect_timeout=_CONNECT_TIMEOUT,
            autocommit=True,
        )
    except pymysql.MySQLError as exc:
        raise InspectionError(f"{where}: cannot connect: {exc.args[-1] if exc.args else exc}") from None
    try:
        yield conn, p
    except pymysql.MySQLError as exc:
        raise InspectionError(f"{where}: {_message(exc)}") from exc
    finally:
        conn.close()


def _tables(conn: Any, kinds: Sequence[KindSpec]) -> list[QueueRef]:
    with conn.cursor() as cur:
        cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()")
        names = sorted(str(r[0]) for r in cur.fetchall())
        serializers: dict[str, str] = {}
        if "persistq_meta" in names:
            cur.execute("SELECT tbl, value FROM persistq_meta WHERE `key` = 'serializer'")
            serializers = {str(r[0]): str(r[1]) for r in cur.fetchall()}
    return [t for n in names if (t := classify(n, kinds, serializers)) is not None]


def _chosen(conn: Any, p: dict[str, Any], kinds: Sequence[KindSpec], table: str | None) -> list[QueueRef]:
    # The DSN's ?table= names a queue, as it does for the queue classes; --table wins.
    return pick(_tables(conn, kinds), table or p.get("name"), "the database")


def list_queues(dsn: str, kinds: Sequence[KindSpec], table: str | None = None) -> list[QueueRef]:
    """The queues in the DSN's database (those ``table``, else the DSN's ``?table=``, names)."""
    with _connect(dsn) as (conn, p):
        return _chosen(conn, p, kinds, table)


def _sizes(cur: Any, tables: Sequence[str]) -> dict[str, int]:
    marks = ", ".join(["%s"] * len(tables))
    cur.execute(
        "SELECT table_name, data_length + index_length FROM information_schema.tables "
        f"WHERE table_schema = DATABASE() AND table_name IN ({marks})",
        tuple(tables),
    )
    return {str(r[0]): int(r[1] or 0) for r in cur.fetchall()}


def _stats(cur: Any, ref: QueueRef, durability: str) -> QueueInfo:
    assert ref.table is not None
    t = _q(ref.table)
    pending = _pending_table(ref.table)
    sizes = _sizes(cur, (ref.table, pending))
    counts = empty_counts(ref)
    oldest: float | None = None
    if ref.order == "key":
        cur.execute(f"SELECT COUNT(*) FROM {t}")
        counts["entries"] = int(cur.fetchone()[0])
    elif ref.ack:
        cur.execute(f"SELECT status, COUNT(*), MIN(timestamp) FROM {t} GROUP BY status")
        oldest = status_counts(counts, cur.fetchall())
        # Leases are kept in the server's clock.
        cur.execute(f"SELECT COUNT(*) FROM {t} WHERE status = {UNACK} AND pq_lease <= @@timestamp")
        counts["expired"] = int(cur.fetchone()[0])
    else:
        cur.execute(f"SELECT COUNT(*), MIN(timestamp) FROM {t}")
        n, oldest = cur.fetchone()
        counts["ready"] = int(n)
        if pending in sizes:
            cur.execute(f"SELECT COUNT(*), MIN(timestamp) FROM {_q(pending)}")
            in_flight, ts = cur.fetchone()
            counts["in_flight"] = int(in_flight)
            oldest = oldest_of(oldest, ts)
    return queue_info(ref, "mysql", counts, oldest_of(oldest), sum(sizes.values()), durability)


def inspect(dsn: str, kinds: Sequence[KindSpec], table: str | None = None) -> StoreInfo:
    """Counts per status, oldest item age and size of each queue in the DSN's database.

    Durability is the server's ``innodb_flush_log_at_trx_commit`` (``1``:
    each commit on disk, reported as ``"full"`` per queue).
    """
    with _connect(dsn) as (conn, p):
        tables = _chosen(conn, p, kinds, table)
        with conn.cursor() as cur:
            cur.execute("SELECT @@innodb_flush_log_at_trx_commit")
            flush = cur.fetchone()[0]
            durability = f"innodb_flush_log_at_trx_commit={flush}"
            per_queue = "full" if str(flush) == "1" else durability
            queues = [_stats(cur, t, per_queue) for t in tables]
    return StoreInfo(
        target=safe_location(dsn),
        engine="mysql",
        durability=durability,
        bytes_on_disk=sum(q.bytes or 0 for q in queues),
        queues=queues,
    )


def _columns(cur: Any, table: str) -> set[str]:
    cur.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = DATABASE() AND table_name = %s",
        (table,),
    )
    return {str(r[0]).lower() for r in cur.fetchall()}


def peek(
    dsn: str, kinds: Sequence[KindSpec], table: str | None, n: int, status: str = "ready"
) -> tuple[QueueRef, list[RawRecord]]:
    """The next ``n`` records of one queue in get order, without taking them (see ``sqlite_admin.peek``)."""
    statuses = PEEK_STATUSES[status]
    with _connect(dsn) as (conn, p):
        ref = one(_chosen(conn, p, kinds, None if table is None else table), None, safe_location(dsn))
        assert ref.table is not None
        t = _q(ref.table)
        with conn.cursor() as cur:
            if ref.order == "key":
                # MySQLDictStore's layout: the key in column k (UTF-8), insertion order in seq.
                columns = _columns(cur, ref.table)
                key = "k" if "k" in columns else "`key`"
                order = "seq" if "seq" in columns else key
                cur.execute(f"SELECT {key}, data FROM {t} ORDER BY {order} LIMIT %s", (n,))
                return ref, [
                    RawRecord(bytes(d), key=k.decode() if isinstance(k, bytes) else str(k))
                    for k, d in cur.fetchall()
                ]
            prio = ref.order == "priority"
            extra = ", priority" if prio else ""
            order = ORDER_BY[ref.order]
            if ref.ack:
                marks = ", ".join(["%s"] * len(statuses))
                cur.execute(
                    f"SELECT _id, data, timestamp, status, pq_attempts{extra} FROM {t} "
                    f"WHERE status IN ({marks}) ORDER BY {order} LIMIT %s",
                    (*statuses, n),
                )
                return ref, [ack_record(r, prio) for r in cur.fetchall()]
            if status not in ("ready", "all"):
                return ref, []
            cur.execute(f"SELECT _id, data, timestamp{extra} FROM {t} ORDER BY {order} LIMIT %s", (n,))
            return ref, [plain_record(r, prio) for r in cur.fetchall()]


def verify(dsn: str, kinds: Sequence[KindSpec], table: str | None = None) -> VerifyReport:
    """``CHECK TABLE`` of each queue table; every error, warning or status other than OK is a problem."""
    report = VerifyReport([])
    with _connect(dsn) as (conn, p), conn.cursor() as cur:
        for q in _chosen(conn, p, kinds, table):
            cur.execute(f"CHECK TABLE {_q(str(q.table))}")
            report.checked.append(str(q.table))
            for row in cur.fetchall():
                if row[2] in ("error", "warning") or (row[2] == "status" and row[3] != "OK"):
                    report.problems.append(f"{q.table}: {row[3]}")
    return report


def _existing(cur: Any, table: str) -> bool:
    cur.execute(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = %s",
        (table,),
    )
    return bool(cur.fetchone()[0])


def purge(
    dsn: str, kinds: Sequence[KindSpec], table: str | None = None, in_flight: bool = False
) -> dict[str, int]:
    """Delete the items of the queues chosen (see :func:`list_queues`) in one transaction.

    Ack queues keep their in-flight rows, and plain queues the items got
    with ``auto_commit=False``, unless ``in_flight`` is true.

    Returns:
        Items deleted per table.

    Raises:
        InspectionError: no queue matched, or the server failed.
    """
    out: dict[str, int] = {}
    with _connect(dsn) as (conn, p):
        tables = _chosen(conn, p, kinds, table)
        if not tables:
            raise InspectionError(f"{safe_location(dsn)}: holds no queue")
        conn.begin()
        try:
            with conn.cursor() as cur:
                for q in tables:
                    assert q.table is not None
                    t = _q(q.table)
                    where = f" WHERE status <> {UNACK}" if q.ack and not in_flight else ""
                    n = cur.execute(f"DELETE FROM {t}{where}")
                    pending = _pending_table(q.table)
                    if in_flight and not q.ack and _existing(cur, pending):
                        n += cur.execute(f"DELETE FROM {_q(pending)}")
                    done = done_table(q.table)
                    if q.ack and _existing(cur, done):
                        # A purged unique ack queue forgets what it finished, too.
                        n += cur.execute(f"DELETE FROM {_q(done)}")
                    out[q.table] = int(n)
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
    return out


def optimize(dsn: str, kinds: Sequence[KindSpec], table: str | None = None) -> VacuumResult:
    """``OPTIMIZE TABLE`` each queue table chosen and its in-flight table: InnoDB rebuilds them.

    The sizes are not measured on a server: the result is ``(0, 0)``.
    """
    with _connect(dsn) as (conn, p), conn.cursor() as cur:
        for q in _chosen(conn, p, kinds, table):
            assert q.table is not None
            pending = _pending_table(q.table)
            for name in (q.table, pending) if not q.ack and _existing(cur, pending) else (q.table,):
                cur.execute(f"OPTIMIZE TABLE {_q(name)}")
                for row in cur.fetchall():
                    if len(row) >= 4 and str(row[2]).lower() == "error":
                        raise InspectionError(f"{safe_location(dsn)}: OPTIMIZE TABLE {name} failed: {row[3]}")
    return VacuumResult(0, 0)
