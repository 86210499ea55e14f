"""The SQLite store of the ack queues: rows with a status, leases and attempts.

Tables are persist-queue's (``ack_queue_{name}``, ``ack_filo_queue_{name}``,
``ack_unique_queue_{name}``: ``_id``, ``data``, ``timestamp``, ``status``);
persistq adds columns with ``ALTER TABLE … ADD COLUMN`` (never replacing any):

* ``pq_attempts``: how many times the row was delivered;
* ``pq_lease``: when the current delivery's lease ends (``NULL``: no lease);
* ``pq_owner``: the owner token of the delivering queue object;
* ``pq_ready_at``: when a delayed row (status 3) becomes ready.

A unique table refuses an item equal to any row it stores, whatever its
status (persist-queue's ``UNIQUE (data)``): programs use the acked rows as
their "already done" set. Acked rows trimmed beyond ``max_acked_length`` leave
their SHA-256 and put time in ``persistq_done_{table}``, which puts consult
too, so the guarantee outlives the rows; ``clear_acked`` and ``forget_acked``
are what let an equal item in again.

Status values are persist-queue's (0 inited, 1 ready, 2 unack, 5 acked,
9 ack_failed) plus 3, *delayed*: a row nacked with a delay. Expired leases and
due delays are swept at the start of every claim, in the same transaction, so
every process sees the same state without a background thread.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ..errors import ItemNotFound
from ._worker import Job
from .base import (
    ACK_FAILED,
    ACKED,
    DELAYED,
    INITED,
    ORDER_BY,
    READY,
    UNACK,
    AckBefore,
    AckClaim,
    AckRow,
    AckTableSpec,
)
from .sqlite import Durability, SQLiteDatabase, _quote, done_table

__all__ = (
    "ACKED",
    "ACK_FAILED",
    "DELAYED",
    "INITED",
    "READY",
    "UNACK",
    "AckRow",
    "AckTableSpec",
    "Claim",
    "SQLiteAckEngine",
)

_Before = AckBefore
Claim = AckClaim


class SQLiteAckEngine(SQLiteDatabase):
    """Ack-queue storage (bytes in, bytes out) in an SQLite database.

    Every operation is one job in the worker's batched write transaction, so
    claims are atomic across threads and processes.

    Args:
        path, db_file_name, durability, busy_timeout: as ``SQLiteDatabase``.
        spec: the table, its order and uniqueness.
        serializer_name: recorded with a new table; another one is refused.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        db_file_name: str | None,
        spec: AckTableSpec,
        serializer_name: str,
        durability: Durability = "full",
        busy_timeout: float = 10.0,
    ) -> None:
        super().__init__(path, db_file_name, durability, busy_timeout, spec.table)
        self.spec = spec
        self.serializer_name = serializer_name
        self.max_attempts = 0
        """Set by the queue: expired leases past this many attempts fail."""
        self._t = _quote(spec.table)
        self._done = _quote(done_table(spec.table))
        self._prio = spec.order == "priority"
        self._cols = (
            "_id, data, timestamp, " + ("priority" if self._prio else "NULL") + ", status, pq_attempts"
        )
        self._order_by = ORDER_BY[spec.order]

    def _create(self, conn: sqlite3.Connection) -> None:
        t = self.spec.table
        conn.execute("BEGIN IMMEDIATE")
        try:
            existed = self._table_exists(conn, t)
            extra = ", priority INTEGER" if self._prio else ""
            unique = ", UNIQUE (data)" if self.spec.unique else ""
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self._t} (_id INTEGER PRIMARY KEY AUTOINCREMENT, "
                f"data BLOB, timestamp FLOAT, status INTEGER{extra}{unique})"
            )
            have = {row[1] for row in conn.execute(f"PRAGMA table_info({self._t})")}
            for column, decl in (
                ("pq_attempts", "INTEGER NOT NULL DEFAULT 0"),
                ("pq_lease", "REAL"),
                ("pq_owner", "TEXT"),
                ("pq_ready_at", "REAL"),
            ):
                if column not in have:
                    conn.execute(f"ALTER TABLE {self._t} ADD COLUMN {column} {decl}")
            ready_cols = "priority, _id" if self._prio else "_id"
            for suffix, sql in (
                ("ready", f"({ready_cols}) WHERE status < 2"),
                ("lease", "(pq_lease) WHERE status = 2"),
                ("delayed", "(pq_ready_at) WHERE status = 3"),
                ("status", "(status, _id)"),
            ):
                name = _quote(f"persistq_{t}_{suffix}")
                conn.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {self._t} {sql}")
            if self.spec.unique:
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {self._done} "
                    "(digest BLOB PRIMARY KEY, timestamp FLOAT NOT NULL) WITHOUT ROWID"
                )
            self._check_serializer(conn, t, self.serializer_name, existed)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    # ------------------------------------------------------------------- put

    def _sql_put(
        self,
        conn: sqlite3.Connection,
        items: Sequence[tuple[bytes, float, int | None]],
        maxsize: int,
        alts: Sequence[bytes | None] | None = None,
    ) -> list[int | None] | None:
        if maxsize > 0 and self._sql_waiting(conn) + len(items) > maxsize:
            return None
        ids: list[int | None] = []
        unique = self.spec.unique
        for i, (data, ts, priority) in enumerate(items):
            alt = alts[i] if alts is not None else None
            if unique and self._remembered(conn, data, alt):
                ids.append(None)
                continue
            ids.append(self._insert(conn, data, ts, priority))
        return ids

    def _remembered(self, conn: sqlite3.Connection, data: bytes, alt: bytes | None) -> bool:
        """Whether an item equal to ``data`` (or to ``alt``, its other encoding) is
        stored in another encoding or was finished and trimmed."""
        if alt is not None and conn.execute(f"SELECT 1 FROM {self._t} WHERE data=?", (alt,)).fetchone():
            return True
        digests = [hashlib.sha256(data).digest()]
        if alt is not None:
            digests.append(hashlib.sha256(alt).digest())
        marks = ", ".join("?" * len(digests))
        found = conn.execute(f"SELECT 1 FROM {self._done} WHERE digest IN ({marks})", digests).fetchone()
        return found is not None

    def _insert(self, conn: sqlite3.Connection, data: bytes, ts: float, priority: int | None) -> int | None:
        vals: tuple[Any, ...]
        if self._prio:
            cols, vals = "data, timestamp, status, priority", (data, ts, INITED, priority)
        else:
            cols, vals = "data, timestamp, status", (data, ts, INITED)
        marks = ", ".join("?" * len(vals))
        # A unique table refuses an item equal to any stored row: waiting, in
        # flight, acked or failed (persist-queue's UNIQUE (data)).
        verb = "INSERT OR IGNORE" if self.spec.unique else "INSERT"
        cur = conn.execute(f"{verb} INTO {self._t} ({cols}) VALUES ({marks})", vals)
        return cur.lastrowid if cur.rowcount else None

    def _sql_delete(self, conn: sqlite3.Connection, ids: Sequence[int | None]) -> None:
        conn.executemany(f"DELETE FROM {self._t} WHERE _id=?", [(i,) for i in ids if i is not None])

    async def put(
        self,
        items: Sequence[tuple[bytes, float, int | None]],
        maxsize: int = 0,
        alts: Sequence[bytes | None] | None = None,
    ) -> list[int | None] | None:
        """Insert items (status inited); ``None`` if ``maxsize`` would be passed.

        On a unique table an item equal to a live row is not inserted (its id
        is ``None``). Cancel-atomic: a cancelled caller's rows are removed.
        """
        return await self._run(
            self._sql_put, items, maxsize, alts, undo=lambda ids: Job(self._sql_delete, ids or [])
        )

    def put_now(
        self,
        items: Sequence[tuple[bytes, float, int | None]],
        maxsize: int = 0,
        alts: Sequence[bytes | None] | None = None,
    ) -> list[int | None] | None:
        """:meth:`put` done now on the calling loop thread, or ``NOT_NOW`` (synchronous fast path)."""
        return self._now(self._sql_put, items, maxsize, alts)

    # ----------------------------------------------------------------- claim

    def _sweep(self, conn: sqlite3.Connection, now: float, max_attempts: int) -> None:
        """Make due delayed rows ready, and expired leases ready (or failed)."""
        conn.execute(
            f"UPDATE {self._t} SET status=?, pq_ready_at=NULL WHERE status=? AND pq_ready_at <= ?",
            (READY, DELAYED, now),
        )
        self._expire(conn, f"status={UNACK} AND pq_lease <= ?", (now,), max_attempts)

    def _expire(
        self, conn: sqlite3.Connection, where: str, params: tuple[Any, ...], max_attempts: int
    ) -> int:
        """Take rows out of flight: ready again, or failed once attempts are used up."""
        n = 0
        if max_attempts > 0:
            n += conn.execute(
                f"UPDATE {self._t} SET status=?, pq_lease=NULL, pq_owner=NULL "
                f"WHERE {where} AND pq_attempts >= ?",
                (ACK_FAILED, *params, max_attempts),
            ).rowcount
        n += conn.execute(
            f"UPDATE {self._t} SET status=?, pq_lease=NULL, pq_owner=NULL WHERE {where}",
            (READY, *params),
        ).rowcount
        return n

    def _next_due(self, conn: sqlite3.Connection) -> float | None:
        row = conn.execute(
            f"SELECT min(t) FROM (SELECT min(pq_ready_at) AS t FROM {self._t} WHERE status=3 "
            f"UNION ALL SELECT min(pq_lease) FROM {self._t} WHERE status=2)"
        ).fetchone()
        return None if row[0] is None else float(row[0])

    def _sql_claim(
        self,
        conn: sqlite3.Connection,
        n: int,
        item_id: int | None,
        after_id: int | None,
        owner: str,
        lease: float | None,
        max_attempts: int,
    ) -> Claim:
        now = time.time()
        self._sweep(conn, now, max_attempts)
        t = self._t
        if item_id is not None:
            ids = [r[0] for r in conn.execute(f"SELECT _id FROM {t} WHERE _id=? AND status < 2", (item_id,))]
        elif after_id is not None:
            # next_in_order: the first ready row after after_id in queue order,
            # wrapping around to the start when there is none.
            cmp = "<" if self.spec.order == "filo" else ">"
            ids = [
                r[0]
                for r in conn.execute(
                    f"SELECT _id FROM {t} WHERE status < 2 AND _id {cmp} ? ORDER BY {self._order_by} LIMIT ?",
                    (after_id, n),
                )
            ]
            if not ids:
                ids = [
                    r[0]
                    for r in conn.execute(
                        f"SELECT _id FROM {t} WHERE status < 2 ORDER BY {self._order_by} LIMIT ?", (n,)
                    )
                ]
        else:
            ids = [
                r[0]
                for r in conn.execute(
                    f"SELECT _id FROM {t} WHERE status < 2 ORDER BY {self._order_by} LIMIT ?", (n,)
                )
            ]
        if not ids:
            return Claim([], [], self._next_due(conn))
        marks = ", ".join("?" * len(ids))
        state = "status, pq_attempts, pq_lease, pq_owner, pq_ready_at"
        before: list[_Before] = conn.execute(
            f"SELECT _id, {state} FROM {t} WHERE _id IN ({marks})", ids
        ).fetchall()
        conn.execute(
            f"UPDATE {t} SET status=?, pq_attempts=pq_attempts+1, pq_lease=?, pq_owner=? "
            f"WHERE _id IN ({marks})",
            (UNACK, None if lease is None else now + lease, owner, *ids),
        )
        by_id = {r[0]: r for r in conn.execute(f"SELECT {self._cols} FROM {t} WHERE _id IN ({marks})", ids)}
        rows: list[AckRow] = [by_id[i] for i in ids]
        return Claim(rows, before, None)

    def _sql_unclaim(self, conn: sqlite3.Connection, before: Sequence[_Before]) -> None:
        conn.executemany(
            f"UPDATE {self._t} SET status=?, pq_attempts=?, pq_lease=?, pq_owner=?, pq_ready_at=? "
            "WHERE _id=?",
            [(b[1], b[2], b[3], b[4], b[5], b[0]) for b in before],
        )

    async def claim(
        self,
        n: int,
        item_id: int | None,
        after_id: int | None,
        owner: str,
        lease: float | None,
        max_attempts: int,
    ) -> Claim:
        """Deliver up to ``n`` ready rows (or row ``item_id``): status unack, attempts + 1.

        Atomic across processes; cancel-atomic (a cancelled caller's rows get
        their previous state back, attempts included).
        """
        return await self._run(
            self._sql_claim,
            n,
            item_id,
            after_id,
            owner,
            lease,
            max_attempts,
            undo=lambda c: Job(self._sql_unclaim, c.before),
        )

    # ------------------------------------------------------------- ack/nack

    def _missing(self, conn: sqlite3.Connection, ids: Sequence[int]) -> list[int]:
        return [
            i for i in ids if conn.execute(f"SELECT 1 FROM {self._t} WHERE _id=?", (i,)).fetchone() is None
        ]

    def _sql_set_final(
        self, conn: sqlite3.Connection, ids: Sequence[int], status: int, keep_acked: int | None
    ) -> None:
        missing = self._missing(conn, ids)
        if missing:
            raise ItemNotFound(missing[0], f"not in {self.spec.table}")
        conn.executemany(
            f"UPDATE {self._t} SET status=?, pq_lease=NULL, pq_owner=NULL, pq_ready_at=NULL WHERE _id=?",
            [(status, i) for i in ids],
        )
        if status == ACKED and keep_acked is not None:
            self._trim_acked(conn, keep_acked)

    def _trim_acked(self, conn: sqlite3.Connection, keep: int) -> None:
        # Keep only the newest `keep` acked rows; the (status, _id) index finds
        # the cut-off without a scan of the whole table.
        row = conn.execute(
            f"SELECT _id FROM {self._t} WHERE status=? ORDER BY _id DESC LIMIT 1 OFFSET ?", (ACKED, keep)
        ).fetchone()
        if row is not None:
            if self.spec.unique:
                # What the rows stood for stays remembered: their fingerprints.
                self._remember(
                    conn,
                    conn.execute(
                        f"SELECT data, timestamp FROM {self._t} WHERE status=? AND _id <= ?", (ACKED, row[0])
                    ),
                )
            conn.execute(f"DELETE FROM {self._t} WHERE status=? AND _id <= ?", (ACKED, row[0]))

    def _remember(self, conn: sqlite3.Connection, rows: Iterable[tuple[bytes, float]]) -> None:
        conn.executemany(
            f"INSERT OR IGNORE INTO {self._done} (digest, timestamp) VALUES (?, ?)",
            [(hashlib.sha256(data).digest(), ts) for data, ts in rows],
        )

    async def set_final(self, ids: Sequence[int], status: int, keep_acked: int | None) -> None:
        """Mark rows acked or ack_failed (any current status); trim acked rows to ``keep_acked``.

        Raises:
            ItemNotFound: an id is not stored (nothing is changed).
        """
        await self._run(self._sql_set_final, ids, status, keep_acked)

    def _sql_nack(
        self, conn: sqlite3.Connection, ids: Sequence[int], delay: float, max_attempts: int
    ) -> None:
        for i in ids:
            row = conn.execute(f"SELECT status FROM {self._t} WHERE _id=?", (i,)).fetchone()
            if row is None:
                raise ItemNotFound(i, f"not in {self.spec.table}")
            if row[0] in (ACKED, ACK_FAILED):
                raise ItemNotFound(i, "it is already acked or failed; use requeue_failed() for failed items")
        marks = ", ".join("?" * len(ids))
        where = f"_id IN ({marks}) AND status={UNACK}"
        if delay > 0:
            if max_attempts > 0:
                self._expire(
                    conn, f"{where} AND pq_attempts >= {int(max_attempts)}", tuple(ids), max_attempts
                )
            conn.execute(
                f"UPDATE {self._t} SET status=?, pq_ready_at=?, pq_lease=NULL, pq_owner=NULL WHERE {where}",
                (DELAYED, time.time() + delay, *ids),
            )
        else:
            self._expire(conn, where, tuple(ids), max_attempts)

    async def nack(self, ids: Sequence[int], delay: float, max_attempts: int) -> None:
        """Give in-flight rows back: ready (after ``delay``), or failed once attempts are used up.

        Rows that are waiting already are left as they are.

        Raises:
            ItemNotFound: an id is not stored, or is acked/failed (nothing changed).
        """
        await self._run(self._sql_nack, ids, delay, max_attempts)

    def _sql_extend(self, conn: sqlite3.Connection, item_id: int, seconds: float) -> float:
        until = time.time() + seconds
        cur = conn.execute(
            f"UPDATE {self._t} SET pq_lease=? WHERE _id=? AND status=?", (until, item_id, UNACK)
        )
        if cur.rowcount == 0:
            raise ItemNotFound(item_id, "not in flight")
        return until

    async def extend(self, item_id: int, seconds: float) -> float:
        """Set an in-flight row's lease to end ``seconds`` from now; return the new end."""
        return await self._run(self._sql_extend, item_id, seconds)

    def _sql_resume(
        self, conn: sqlite3.Connection, alive: Callable[[str], bool] | None, max_attempts: int
    ) -> int:
        if alive is None:
            return self._expire(conn, f"status={UNACK}", (), max_attempts)
        now = time.time()
        n = self._expire(conn, f"status={UNACK} AND pq_lease <= ?", (now,), max_attempts)
        owners = [
            r[0] for r in conn.execute(f"SELECT DISTINCT pq_owner FROM {self._t} WHERE status=?", (UNACK,))
        ]
        for owner in owners:
            # Rows delivered by persist-queue carry no owner: nobody can tell
            # whether their consumer lives, so they are resumed as it did.
            if owner is None or not alive(owner):
                if owner is None:
                    n += self._expire(conn, f"status={UNACK} AND pq_owner IS NULL", (), max_attempts)
                else:
                    n += self._expire(conn, f"status={UNACK} AND pq_owner=?", (owner,), max_attempts)
        return n

    async def resume(self, alive: Callable[[str], bool] | None, max_attempts: int) -> int:
        """Return in-flight rows to ready: all (``alive=None``), or those whose
        lease expired or whose owner is gone. Returns how many."""
        return await self._run(self._sql_resume, alive, max_attempts)

    def _sql_release(self, conn: sqlite3.Connection, owner: str, max_attempts: int) -> int:
        return self._expire(conn, f"status={UNACK} AND pq_owner=?", (owner,), max_attempts)

    async def release(self, owner: str, max_attempts: int) -> int:
        """Give back every row still in flight with ``owner`` (its queue is closing)."""
        return await self._run(self._sql_release, owner, max_attempts)

    def _sql_requeue(self, conn: sqlite3.Connection, ids: Sequence[int] | None) -> int:
        if ids is None:
            return conn.execute(
                f"UPDATE {self._t} SET status=?, pq_attempts=0 WHERE status=?", (READY, ACK_FAILED)
            ).rowcount
        n = 0
        for i in ids:
            n += conn.execute(
                f"UPDATE {self._t} SET status=?, pq_attempts=0 WHERE _id=? AND status=?",
                (READY, i, ACK_FAILED),
            ).rowcount
        return n

    async def requeue_failed(self, ids: Sequence[int] | None) -> int:
        """Make failed rows (all, or ``ids``) ready again with fresh attempts."""
        return await self._run(self._sql_requeue, ids)

    def _sql_clear(
        self, conn: sqlite3.Connection, max_delete: int | None, keep_latest: int, clear_failed: bool
    ) -> int:
        statuses = (ACKED, ACK_FAILED) if clear_failed else (ACKED,)
        marks = ", ".join("?" * len(statuses))
        limit = -1 if not max_delete else int(max_delete)
        n: int = conn.execute(
            f"DELETE FROM {self._t} WHERE _id IN (SELECT _id FROM {self._t} WHERE status IN ({marks}) "
            "ORDER BY _id DESC LIMIT ? OFFSET ?)",
            (*statuses, limit, max(0, int(keep_latest))),
        ).rowcount
        if self.spec.unique:
            n += conn.execute(f"DELETE FROM {self._done}").rowcount
        return n

    async def clear_acked(self, max_delete: int | None, keep_latest: int, clear_failed: bool) -> int:
        """Delete acked (and optionally failed) rows, keeping the newest ``keep_latest``;
        on a unique table forget every fingerprint too. Returns how many rows and
        fingerprints were deleted."""
        return await self._run(self._sql_clear, max_delete, keep_latest, clear_failed)

    def _sql_forget(self, conn: sqlite3.Connection, before: float) -> int:
        n: int = conn.execute(
            f"DELETE FROM {self._t} WHERE status=? AND timestamp < ?", (ACKED, before)
        ).rowcount
        if self.spec.unique:
            n += conn.execute(f"DELETE FROM {self._done} WHERE timestamp < ?", (before,)).rowcount
        return n

    async def forget_acked(self, older_than: float) -> int:
        """Delete acked rows, and fingerprints, of items put more than ``older_than`` seconds ago.

        Returns how many rows and fingerprints were deleted.
        """
        return await self._run(self._sql_forget, time.time() - older_than)

    # ------------------------------------------------------------ inspection

    def _sql_waiting(self, conn: sqlite3.Connection) -> int:
        n: int = conn.execute(f"SELECT count(*) FROM {self._t} WHERE status IN (0, 1, 3)").fetchone()[0]
        return n

    def _sql_count_now(self, conn: sqlite3.Connection) -> int:
        self._sweep(conn, time.time(), self.max_attempts)
        return self._sql_waiting(conn)

    async def count(self) -> int:
        """Rows waiting to be delivered (inited, ready, delayed), after settling
        expired leases and due delays."""
        return await self._run(self._sql_count_now)

    def count_blocking(self) -> int:
        """Like :meth:`count`, blocking the calling thread."""
        self.open_blocking()
        return self._alive_worker().run_blocking(Job(self._sql_waiting, kind="read"))

    def _sql_counts(self, conn: sqlite3.Connection, max_attempts: int) -> dict[int, int]:
        # Expired leases and due delays are settled first, so the counts say
        # what a get would find now.
        self._sweep(conn, time.time(), max_attempts)
        return {s: c for s, c in conn.execute(f"SELECT status, count(*) FROM {self._t} GROUP BY status")}

    async def counts(self, max_attempts: int = 0) -> dict[int, int]:
        """Rows per status (after settling expired leases and due delays)."""
        return await self._run(self._sql_counts, max_attempts)

    def _sql_rows(self, conn: sqlite3.Connection, status: int | None) -> list[tuple[Any, ...]]:
        where = "" if status is None else f"WHERE status={int(status)}"
        return conn.execute(
            f"SELECT {self._cols}, pq_lease, pq_ready_at FROM {self._t} {where} ORDER BY _id"
        ).fetchall()

    async def rows(self, status: int | None = None) -> list[tuple[Any, ...]]:
        """Rows (all, or of one status) with status, attempts, lease end and ready time."""
        return await self._run(self._sql_rows, status, kind="read")

    def _sql_update(self, conn: sqlite3.Connection, item_id: int, data: bytes) -> None:
        if conn.execute(f"UPDATE {self._t} SET data=? WHERE _id=?", (data, item_id)).rowcount == 0:
            raise ItemNotFound(item_id, f"not in {self.spec.table}")

    async def update(self, item_id: int, data: bytes) -> None:
        """Replace a row's data."""
        await self._run(self._sql_update, item_id, data)
