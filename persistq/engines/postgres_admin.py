"""Inspection and maintenance of queue tables on a PostgreSQL server: every SQL the admin API needs.

The counterpart of :mod:`~persistq.engines.mysql_admin` (same functions, same
results): blocking functions on one short-lived psycopg connection each, in
autocommit mode, so reads hold no snapshot or lock a queue would wait for;
:mod:`persistq.admin` runs them on a worker thread. Tables are recognised by
the prefixes the queue kinds give them, their in-flight side tables by the
name the engine derives. :func:`purge` deletes in one transaction;
:func:`optimize` runs ``VACUUM``.

Driver errors leave here as :class:`~.inspection.InspectionError` naming the
server without the password; a malformed URL is a
:class:`~.inspection.LocationError`.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any

from ._pg_listen import CHANNEL
from .base import ORDER_BY, UNACK
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
from .postgres import NOW_SQL, PGParams, done_table, parse_pg_url, pending_table, quote_ident

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

SCHEMES = schemes_of("postgresql")
"""The URL schemes of a PostgreSQL target."""


def _parse(url: str) -> PGParams:
    try:
        return parse_pg_url(url)
    except ValueError as exc:
        raise LocationError(str(exc)) from None


def safe_location(url: str) -> str:
    """The URL without its password (``postgresql://…`` if it cannot be parsed)."""
    try:
        return parse_pg_url(url).safe_dsn
    except ValueError:
        return "postgresql://…"


def server_keywords(url: str) -> dict[str, Any]:
    """Keywords of the server and database (no PostgreSQL class takes them: kinds open by URL)."""
    params = _parse(url)
    return {"host": params.host, "port": params.port, "user": params.user, "database": params.database}


@contextlib.contextmanager
def _connect(url: str) -> Iterator[tuple[Any, PGParams]]:
    params = _parse(url)
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - the postgres extra is installed in tests
        from ..errors import MissingDependencyError

        raise MissingDependencyError("psycopg", "postgres") from exc
    where = params.safe_dsn
    try:
        conn = psycopg.connect(
            host=params.host,
            port=params.port,
            user=params.user,
            password=params.password,
            dbname=params.database,
            connect_timeout=max(1, int(params.connect_timeout)),
            autocommit=True,
        )
    except psycopg.Error as exc:
        message = str(exc).replace(params.password, "***") if params.password else str(exc)
        raise InspectionError(f"{where}: cannot connect: {message.strip()}") from None
    try:
        yield conn, params
    except psycopg.Error as exc:
        message = str(exc).replace(params.password, "***") if params.password else str(exc)
        raise InspectionError(f"{where}: {message.strip()}") from None
    finally:
        conn.close()


def _tables(conn: Any, kinds: Sequence[KindSpec]) -> list[QueueRef]:
    names = sorted(
        str(r[0])
        for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        ).fetchall()
    )
    serializers: dict[str, str] = {}
    if "persistq_meta" in names:
        rows = conn.execute("SELECT tbl, value FROM persistq_meta WHERE key = 'serializer'").fetchall()
        serializers = {str(r[0]): str(r[1]) for r in rows}
    return [t for n in names if (t := classify(n, kinds, serializers)) is not None]


def _chosen(conn: Any, params: PGParams, kinds: Sequence[KindSpec], table: str | None) -> list[QueueRef]:
    # The URL's ?table= names a queue, as it does for the queue classes; --table wins.
    return pick(_tables(conn, kinds), table or params.table, "the database")


def list_queues(url: str, kinds: Sequence[KindSpec], table: str | None = None) -> list[QueueRef]:
    """The queues in the URL's database (those ``table``, else the URL's ``?table=``, names)."""
    with _connect(url) as (conn, params):
        return _chosen(conn, params, kinds, table)


def _exists(conn: Any, table: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s)", (quote_ident(table),)).fetchone()
    return row[0] is not None


def _size(conn: Any, table: str) -> int:
    if not _exists(conn, table):
        return 0
    return int(
        conn.execute("SELECT pg_total_relation_size(%s::regclass)", (quote_ident(table),)).fetchone()[0]
    )


def _stats(conn: Any, ref: QueueRef) -> QueueInfo:
    assert ref.table is not None
    t = quote_ident(ref.table)
    pending = pending_table(ref.table)
    counts = empty_counts(ref)
    oldest: float | None = None
    size = _size(conn, ref.table)
    if ref.order == "key":
        counts["entries"] = int(conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0])
    elif ref.ack:
        rows = conn.execute(f"SELECT status, COUNT(*), MIN(timestamp) FROM {t} GROUP BY status").fetchall()
        oldest = status_counts(counts, rows)
        # Leases are kept in the server's clock.
        expired = conn.execute(f"SELECT COUNT(*) FROM {t} WHERE status = {UNACK} AND pq_lease <= {NOW_SQL}")
        counts["expired"] = int(expired.fetchone()[0])
    else:
        n, oldest = conn.execute(f"SELECT COUNT(*), MIN(timestamp) FROM {t}").fetchone()
        counts["ready"] = int(n)
        if _exists(conn, pending):
            in_flight, ts = conn.execute(
                f"SELECT COUNT(*), MIN(timestamp) FROM {quote_ident(pending)}"
            ).fetchone()
            counts["in_flight"] = int(in_flight)
            oldest = oldest_of(oldest, ts)
            size += _size(conn, pending)
    return queue_info(ref, "postgresql", counts, oldest_of(oldest), size, "full")


def inspect(url: str, kinds: Sequence[KindSpec], table: str | None = None) -> StoreInfo:
    """Counts per status, oldest item age and size of each queue in the URL's database.

    Durability is the server's ``synchronous_commit`` (``on``: each commit on
    disk, reported as ``"full"`` per queue).
    """
    with _connect(url) as (conn, params):
        tables = _chosen(conn, params, kinds, table)
        sync = str(conn.execute("SHOW synchronous_commit").fetchone()[0])
        durability = f"synchronous_commit={sync}"
        queues = [_stats(conn, t) for t in tables]
        if sync != "on":
            queues = [dataclasses.replace(q, durability=durability) for q in queues]
    return StoreInfo(
        target=safe_location(url),
        engine="postgresql",
        durability=durability,
        bytes_on_disk=sum(q.bytes or 0 for q in queues),
        queues=queues,
    )


def peek(
    url: str, kinds: Sequence[KindSpec], table: str | None, n: int, status: str = "ready"
) -> tuple[QueueRef, list[RawRecord]]:
    """The next ``n`` records of one queue in get order, without taking them (see ``sqlite_admin.peek``)."""
    statuses = PEEK_STATUSES[status]
    with _connect(url) as (conn, params):
        ref = one(_chosen(conn, params, kinds, table), None, safe_location(url))
        assert ref.table is not None
        t = quote_ident(ref.table)
        if ref.order == "key":
            rows = conn.execute(f"SELECT key, data FROM {t} ORDER BY seq LIMIT %s", (n,)).fetchall()
            return ref, [RawRecord(bytes(d), key=str(k)) for k, d in rows]
        prio = ref.order == "priority"
        extra = ", priority" if prio else ""
        order = ORDER_BY[ref.order]
        if ref.ack:
            rows = conn.execute(
                f"SELECT _id, data, timestamp, status, pq_attempts{extra} FROM {t} "
                f"WHERE status = ANY(%s) ORDER BY {order} LIMIT %s",
                (list(statuses), n),
            ).fetchall()
            return ref, [ack_record(tuple(r), prio) for r in rows]
        if status not in ("ready", "all"):
            return ref, []
        rows = conn.execute(f"SELECT _id, data, timestamp{extra} FROM {t} ORDER BY {order} LIMIT %s", (n,))
        return ref, [plain_record(tuple(r), prio) for r in rows.fetchall()]


def verify(url: str, kinds: Sequence[KindSpec], table: str | None = None) -> VerifyReport:
    """Read every row of each queue table (a damaged page fails the read); each failure is a problem."""
    report = VerifyReport([])
    with _connect(url) as (conn, params):
        import psycopg

        for q in _chosen(conn, params, kinds, table):
            try:
                conn.execute(
                    f"SELECT COUNT(*), SUM(length(data)) FROM {quote_ident(str(q.table))}"
                ).fetchone()
            except psycopg.Error as exc:
                report.problems.append(f"{q.table}: {str(exc).strip()}")
            report.checked.append(str(q.table))
    return report


def purge(
    url: str, kinds: Sequence[KindSpec], table: str | None = None, in_flight: bool = False
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
    with _connect(url) as (conn, params):
        tables = _chosen(conn, params, kinds, table)
        if not tables:
            raise InspectionError(f"{safe_location(url)}: holds no queue")
        with conn.transaction():
            for q in tables:
                assert q.table is not None
                where = f" WHERE status <> {UNACK}" if q.ack and not in_flight else ""
                n = conn.execute(f"DELETE FROM {quote_ident(q.table)}{where}").rowcount
                pending = pending_table(q.table)
                if in_flight and not q.ack and _exists(conn, pending):
                    n += conn.execute(f"DELETE FROM {quote_ident(pending)}").rowcount
                done = done_table(q.table)
                if q.ack and _exists(conn, done):
                    # A purged unique ack queue forgets what it finished, too.
                    n += conn.execute(f"DELETE FROM {quote_ident(done)}").rowcount
                out[q.table] = int(n)
                # The engines' change counters and listeners see the purge, as any commit.
                conn.execute(
                    "INSERT INTO persistq_changes (tbl, shard, n) VALUES (%s, 0, 1) "
                    "ON CONFLICT (tbl, shard) DO UPDATE SET n = persistq_changes.n + 1",
                    (q.table,),
                )
                conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, q.table))
    return out


def optimize(url: str, kinds: Sequence[KindSpec], table: str | None = None) -> VacuumResult:
    """``VACUUM`` each queue table chosen and its in-flight table; the sizes before and after."""
    with _connect(url) as (conn, params):
        tables = _chosen(conn, params, kinds, table)
        names = [
            name
            for q in tables
            for name in (str(q.table), pending_table(str(q.table)))
            if name == q.table or (not q.ack and _exists(conn, name))
        ]
        before = sum(_size(conn, name) for name in names)
        for name in names:
            conn.execute(f"VACUUM {quote_ident(name)}")
        after = sum(_size(conn, name) for name in names)
    return VacuumResult(before, after)
