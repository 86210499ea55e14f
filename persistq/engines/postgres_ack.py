"""The PostgreSQL store of the ack queues: rows with a status, leases and attempts.

The same storage interface as :class:`~persistq.engines.mysql_ack.MySQLAckEngine`
(``put``/``claim``/``set_final``/``nack``/``extend``/``resume``/``release``/
``requeue_failed``/``clear_acked``/``count``/``counts``/``rows``/``update``/
``data_version``/``vacuum``), for FIFO, FILO, priority and unique tables. The
connections, retries, error translation, change counter, notifications and
password hygiene are :class:`~persistq.engines.postgres.PostgresDatabase`'s.

Table ``{table}``: ``_id BIGINT`` identity, ``data BYTEA``, ``timestamp``,
``status INT`` (0 inited, 1 ready, 2 unack, 3 delayed, 5 acked, 9
ack_failed), ``priority`` (priority tables), ``digest`` = ``sha256(data)``
with a ``UNIQUE`` index (unique tables), ``pq_attempts``, ``pq_lease`` (when
the current delivery's lease ends), ``pq_owner`` (``hostname/token`` of the
delivering queue object) and ``pq_ready_at`` (when a delayed row is due).
Partial indexes cover exactly what claims look up: the deliverable rows
(``status < 2``, in queue order), the leases in flight (``status = 2``) and
the delays (``status = 3``). A unique table refuses an item equal to any row
it stores, whatever its status; acked rows it trims beyond ``keep_acked``
leave their digest and put time in ``persistq_done_{table}``, which refuses
equal items too until ``clear_acked`` or ``forget_acked``.

**One clock: the server's.** Lease ends and delays are stored and compared
in the server's time (``statement_timestamp()`` as seconds since the epoch),
never in a client's, so consumers on machines whose clocks disagree still
agree on when a lease ends. Times handed back to the queue
(``Claim.next_due``, the result of :meth:`PostgresAckEngine.extend`) are in
this machine's ``time.time()``.

**A claim is one statement** (plus, at most every 0.1 s per queue object
and always before it reports that nothing is ready, one sweep statement that
makes due delays and expired leases ready, or failed once ``max_attempts``
deliveries are used up): ``WITH c AS (SELECT … WHERE status < 2 ORDER BY …
LIMIT n FOR UPDATE SKIP LOCKED) UPDATE … SET status = 2, pq_attempts =
pq_attempts + 1, pq_lease = now + lease, pq_owner = … RETURNING`` the new and
the previous state (the previous one undoes a cancelled claim). A row
selected by a claim is locked until that claim commits; other claims skip
it, and a row changed by a committed transaction meanwhile is re-checked
before it is taken. So no item is delivered twice while its lease is live.

Acks, nacks, releases, requeues and sweeps that make items ready commit a
notification as puts do (:meth:`~persistq.engines.postgres.PostgresDatabase.watch`).

**Owners across machines**: :meth:`PostgresAckEngine.resume` judges only
owners on this host (is their process alive?); items held by a process on
another machine come back when their lease ends, so ``visibility_timeout``
is the safety net for consumers on several machines.
"""

from __future__ import annotations

import hashlib
import math
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import ItemNotFound
from ._worker import NOT_NOW, Job
from .base import ORDER_BY
from .postgres import (
    _ADVISORY_NS,
    DEFAULT_POOL_SIZE,
    NOW_SQL,
    PGParams,
    PostgresDatabase,
    Tx,
    _chunks,
    check_table_name,
    derived_name,
    done_table,
    quote_ident,
)
from .sqlite import NewRow
from .sqlite_ack import ACK_FAILED, ACKED, DELAYED, INITED, READY, UNACK, AckRow, AckTableSpec, Claim

__all__ = ("PostgresAckEngine",)

_TRIM_EVERY_MAX = 100
"""Acked rows are trimmed at least once per this many acks of one engine."""
_SWEEP_EVERY = 0.1
"""Seconds between sweeps of a consumer that keeps finding rows to claim."""
_LOCKED_RETRY = 0.01
"""Seconds until a waiter looks again when a due row was locked by another consumer."""

# What a claim changed, to undo it: (_id, status, attempts, lease, owner, ready_at).
_Before = tuple[int, int, int, "float | None", "str | None", "float | None"]


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


class PostgresAckEngine(PostgresDatabase):
    """Ack-queue storage (bytes in, bytes out) in a PostgreSQL table.

    Every operation is one transaction run in one worker hop; an operation
    that returned is committed. ``put`` and ``claim`` are cancel-atomic: a
    cancelled caller's rows are deleted again / get their previous state back.

    Args:
        params: server, account and database.
        spec: the table, its order (``"fifo"``, ``"filo"``, ``"priority"``)
            and whether it is unique (an item equal to a live row, one not
            acked or failed, is not stored; a finished equal row gives way).
        serializer_name: recorded with a new table; another one is refused.
        pool_size: connections (and storage workers).
        lock_timeout: seconds a statement waits for a lock.
    """

    legacy_rows_possible = False
    """No persist-queue table exists to open in place (persist-queue has no PostgreSQL queue)."""

    def __init__(
        self,
        params: PGParams,
        spec: AckTableSpec,
        serializer_name: str,
        pool_size: int = DEFAULT_POOL_SIZE,
        lock_timeout: float = 10.0,
    ) -> None:
        check_table_name(spec.table)
        if spec.order not in ("fifo", "filo", "priority"):
            raise ValueError(f"unknown order {spec.order!r}")
        super().__init__(params, spec.table, pool_size, lock_timeout)
        self.spec = spec
        self.serializer_name = serializer_name
        self.max_attempts = 0
        """Set by the queue: expired leases past this many attempts fail."""
        self._t = quote_ident(spec.table)
        self._done = quote_ident(done_table(spec.table))
        self._prio = spec.order == "priority"
        self._unique = spec.unique
        self._desc = spec.order == "filo"
        self._order_by = ORDER_BY[spec.order]
        self._pcol = "priority" if self._prio else "NULL::bigint"
        # Owners are "hostname/token": only this host can tell whether a
        # process of this host is alive (see resume()).
        self._host_prefix = socket.gethostname()[:120] + "/"
        # A claim found ready rows but all were locked by other consumers:
        # pollers must retry even if no commit changes the counter.
        self._contended = False
        self._tick = 0
        self._acks_untrimmed = 0
        self._swept_at = -math.inf

    def _create(self, tx: Tx) -> None:
        t = self.spec.table
        existed = self._table_exists(tx, t)
        extra = ", priority BIGINT" if self._prio else ""
        unique = ", digest BYTEA GENERATED ALWAYS AS (sha256(data)) STORED UNIQUE" if self._unique else ""
        tx.execute(
            f"CREATE TABLE IF NOT EXISTS {self._t} (_id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, "
            f"data BYTEA NOT NULL, timestamp DOUBLE PRECISION NOT NULL, status INT NOT NULL{extra}, "
            "pq_attempts INT NOT NULL DEFAULT 0, pq_lease DOUBLE PRECISION, pq_owner TEXT, "
            f"pq_ready_at DOUBLE PRECISION{unique})"
        )
        ready_cols = "priority, _id" if self._prio else "_id"
        for suffix, definition in (
            ("_ready", f"({ready_cols}) WHERE status < 2"),
            ("_lease", f"(pq_lease) WHERE status = {UNACK}"),
            ("_delayed", f"(pq_ready_at) WHERE status = {DELAYED}"),
            ("_status", "(status, _id)"),
        ):
            index = quote_ident(derived_name("pq_", t, suffix))
            tx.execute(f"CREATE INDEX IF NOT EXISTS {index} ON {self._t} {definition}")
        if self._unique:
            tx.execute(
                f"CREATE TABLE IF NOT EXISTS {self._done} "
                "(digest BYTEA PRIMARY KEY, timestamp DOUBLE PRECISION NOT NULL)"
            )
        self._check_serializer(tx, t, self.serializer_name, existed)

    def _local(self, server_time: float, server_now: float) -> float:
        """A server time expressed in this machine's clock."""
        return time.time() + (server_time - server_now)

    # ------------------------------------------------------------------- put

    def _sql_waiting(self, tx: Tx) -> int:
        return int(tx.one(f"SELECT count(*) FROM {self._t} WHERE status IN (0, 1, 3)")[0])

    def _sql_put(
        self, tx: Tx, items: Sequence[NewRow], maxsize: int, alts: Sequence[bytes | None] | None = None
    ) -> list[int | None] | None:
        if not items:
            return []
        if maxsize > 0:
            # Bounded puts of every process take turns on the table's advisory
            # lock, so two of them cannot both see room for one item.
            tx.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_ADVISORY_NS, self.spec.table))
            if self._sql_waiting(tx) + len(items) > maxsize:
                return None
        cols = "data, timestamp, status, priority" if self._prio else "data, timestamp, status"
        source = (
            f"SELECT d, t, {INITED}, p FROM unnest(%s::bytea[], %s::float8[], %s::bigint[]) AS u(d, t, p)"
            if self._prio
            else f"SELECT d, t, {INITED} FROM unnest(%s::bytea[], %s::float8[]) AS u(d, t)"
        )
        conflict = " ON CONFLICT (digest) DO NOTHING" if self._unique else ""
        returning = " RETURNING _id, digest" if self._unique else " RETURNING _id"
        ids: list[int | None] = []
        for chunk in _chunks(items):
            arrays: list[Any] = [[r[0] for r in chunk], [r[1] for r in chunk]]
            if self._prio:
                arrays.append([r[2] for r in chunk])
            mark, mark_args = tx.mark_cte("ins")
            found = tx.all(
                f"WITH ins AS (INSERT INTO {self._t} ({cols}) {source}{conflict}{returning}), {mark} "
                "SELECT * FROM ins",
                arrays + mark_args,
            )
            if found:
                tx.touch(marked=True)
            if not self._unique:
                # One statement's identity values grow in the order of its rows.
                ids.extend(sorted(int(r[0]) for r in found))
                continue
            # An equal stored row, whatever its status, refused its item
            # (ON CONFLICT); an item finished and trimmed is refused by its
            # fingerprint. Looked up in a statement of its own, after the
            # insert: the insert waited for a trim deleting an equal row, and
            # this statement's snapshot sees the fingerprint it committed.
            by_digest = {bytes(r[1]): int(r[0]) for r in found}
            if by_digest:
                refused = [
                    by_digest.pop(bytes(r[0]))
                    for r in tx.all(
                        f"SELECT digest FROM {self._done} WHERE digest = ANY(%s)", (list(by_digest),)
                    )
                ]
                if refused:
                    tx.execute(f"DELETE FROM {self._t} WHERE _id = ANY(%s)", (refused,))
            digests = [hashlib.sha256(r[0]).digest() for r in chunk]
            ids.extend(by_digest.pop(d, None) for d in digests)
        return ids

    def _sql_delete(self, tx: Tx, ids: Sequence[int | None]) -> None:
        real = [i for i in ids if i is not None]
        if real:
            tx.execute(f"DELETE FROM {self._t} WHERE _id = ANY(%s)", (real,))
            tx.touch()

    def put_now(self, items: Sequence[Any], maxsize: int = 0, alts: Any = None) -> Any:
        """Always ``NOT_NOW``: a server round trip never runs inline on an event loop."""
        return NOT_NOW

    def claim_now(self, n: int = 1, item_id: int | None = None, owner: str | None = None) -> Any:
        """Always ``NOT_NOW`` (see :meth:`put_now`)."""
        return NOT_NOW

    async def put(
        self, items: Sequence[NewRow], maxsize: int = 0, alts: Sequence[bytes | None] | None = None
    ) -> list[int | None] | None:
        """Insert items (status inited) in one transaction; ``None`` if ``maxsize`` would be passed.

        On a unique table an item equal to a stored row of any status, or to
        a remembered fingerprint, is not stored (its id is ``None``). ``alts``
        is accepted for interface parity and ignored.
        Cancel-atomic: a cancelled caller's rows are deleted again.
        """
        return await self._run(
            self._sql_put, items, maxsize, None, undo=lambda ids: Job(self._sql_delete, ids or [])
        )

    # ----------------------------------------------------------------- sweep

    def _expire_sql(self, where: str) -> str:
        return (
            f"UPDATE {self._t} SET status = CASE WHEN %s > 0 AND pq_attempts >= %s "
            f"THEN {ACK_FAILED} ELSE {READY} END, pq_lease = NULL, pq_owner = NULL WHERE {where}"
        )

    def _sweep(self, tx: Tx, max_attempts: int) -> int:
        """Make due delayed rows and expired leases ready (or failed); return how many became ready.

        Rows locked by another transaction are skipped, never waited for:
        that transaction is sweeping, settling or claiming them itself.
        """
        t = self._t
        m = int(max_attempts)
        row = tx.one(
            f"WITH d AS (UPDATE {t} SET status = {READY}, pq_ready_at = NULL WHERE _id IN "
            f"(SELECT _id FROM {t} WHERE status = {DELAYED} AND pq_ready_at <= {NOW_SQL} "
            "FOR UPDATE SKIP LOCKED) RETURNING 1), "
            f"e AS (UPDATE {t} SET status = CASE WHEN %s > 0 AND pq_attempts >= %s "
            f"THEN {ACK_FAILED} ELSE {READY} END, pq_lease = NULL, pq_owner = NULL WHERE _id IN "
            f"(SELECT _id FROM {t} WHERE status = {UNACK} AND pq_lease <= {NOW_SQL} "
            "FOR UPDATE SKIP LOCKED) RETURNING status) "
            f"SELECT (SELECT count(*) FROM d), (SELECT count(*) FROM e), "
            f"(SELECT count(*) FROM e WHERE status = {READY})",
            (m, m),
        )
        self._swept_at = time.monotonic()
        delayed, expired, ready = int(row[0]), int(row[1]), int(row[2])
        if delayed or expired:
            tx.touch()
        return delayed + ready

    def _probe(self, tx: Tx) -> tuple[float, float | None, float | None, bool]:
        """The server's time, the earliest lease end and due delay, and whether deliverable rows exist."""
        t = self._t
        row = tx.one(
            f"SELECT {NOW_SQL}, (SELECT min(pq_lease) FROM {t} WHERE status = {UNACK}), "
            f"(SELECT min(pq_ready_at) FROM {t} WHERE status = {DELAYED}), "
            f"EXISTS (SELECT 1 FROM {t} WHERE status < 2)"
        )
        return float(row[0]), _opt_float(row[1]), _opt_float(row[2]), bool(row[3])

    def _next_due(self, now: float, lease: float | None, due: float | None) -> float | None:
        """When the earliest lease or delay ends, in this machine's clock."""
        times = [x for x in (lease, due) if x is not None]
        if not times:
            return None
        soonest = min(times)
        if soonest <= now:
            # Due, but another transaction held the row: look again shortly.
            return time.time() + _LOCKED_RETRY
        return self._local(soonest, now)

    # ----------------------------------------------------------------- claim

    def _take(
        self, tx: Tx, n: int, item_id: int | None, after_id: int | None, owner_id: str, lease: float | None
    ) -> list[Any]:
        t = self._t
        args: list[Any] = []
        if item_id is not None:
            pick = f"SELECT * FROM {t} WHERE _id = %s AND status < 2 FOR UPDATE SKIP LOCKED"
            args.append(item_id)
        else:
            after = ""
            if after_id is not None:
                after = f" AND _id {'<' if self._desc else '>'} %s"
                args.append(after_id)
            # The partial index of deliverable rows, walked in queue order:
            # only the rows taken are read and locked.
            pick = (
                f"SELECT * FROM {t} WHERE status < 2{after} ORDER BY {self._order_by} "
                f"LIMIT {int(n)} FOR UPDATE SKIP LOCKED"  # a literal plans faster than a parameter
            )
        lease_sql = "NULL" if lease is None else f"{NOW_SQL} + %s"
        if lease is not None:
            args.append(float(lease))
        args.append(owner_id)
        mark, mark_args = tx.mark_cte("u")
        prio = "c.priority" if self._prio else "NULL::bigint"
        return tx.all(
            f"WITH c AS ({pick}), u AS (UPDATE {t} SET status = {UNACK}, pq_attempts = {t}.pq_attempts + 1, "
            f"pq_lease = {lease_sql}, pq_owner = %s FROM c WHERE {t}._id = c._id "
            f"RETURNING {t}._id AS i, {t}.data AS d, {t}.timestamp AS ts, {prio} AS p, {t}.pq_attempts AS a, "
            "c.status AS os, c.pq_attempts AS oa, c.pq_lease AS ol, c.pq_owner AS oo, c.pq_ready_at AS orr), "
            f"{mark} SELECT i, d, ts, p, a, os, oa, ol, oo, orr FROM u",
            args + mark_args,
        )

    def _sql_claim(
        self,
        tx: Tx,
        n: int,
        item_id: int | None,
        after_id: int | None,
        owner: str,
        lease: float | None,
        max_attempts: int,
    ) -> Claim:
        # The sweep costs a statement; a busy consumer makes it at most every
        # _SWEEP_EVERY seconds, so expiries are noticed that much later at
        # worst. A claim that finds nothing always sweeps first.
        owner_id = self._host_prefix + owner
        swept = False
        if time.monotonic() - self._swept_at >= _SWEEP_EVERY:
            self._sweep(tx, max_attempts)
            swept = True
        while True:
            found = self._take(tx, n, item_id, after_id, owner_id, lease)
            if not found and item_id is None and after_id is not None:
                # next_in_order wraps around to the start of the queue.
                found = self._take(tx, n, None, None, owner_id, lease)
            if found or swept:
                break
            self._sweep(tx, max_attempts)
            swept = True
        if not found:
            now, lease_end, due, deliverable = self._probe(tx)
            if item_id is None:
                # Deliverable rows exist, but other consumers hold every one of them.
                self._contended = deliverable
            return Claim([], [], self._next_due(now, lease_end, due))
        self._contended = False
        tx.touch(marked=True)
        rows: list[AckRow] = [
            (int(r[0]), bytes(r[1]), float(r[2]), _opt_int(r[3]), UNACK, int(r[4])) for r in found
        ]
        before: list[_Before] = [
            (int(r[0]), int(r[5]), int(r[6]), _opt_float(r[7]), r[8], _opt_float(r[9])) for r in found
        ]
        if self._prio:
            order = sorted(range(len(rows)), key=lambda k: (rows[k][3] is None, rows[k][3] or 0, rows[k][0]))
        else:
            order = sorted(range(len(rows)), key=lambda k: rows[k][0], reverse=self._desc)
        return Claim([rows[k] for k in order], [before[k] for k in order], None)

    def _sql_unclaim(self, tx: Tx, before: Sequence[_Before]) -> None:
        if not before:
            return
        cols = list(zip(*before, strict=True))
        tx.execute(
            f"UPDATE {self._t} AS t SET status = b.s, pq_attempts = b.a, pq_lease = b.l, pq_owner = b.o, "
            "pq_ready_at = b.r FROM unnest(%s::bigint[], %s::int[], %s::int[], %s::float8[], %s::text[], "
            "%s::float8[]) AS b(i, s, a, l, o, r) WHERE t._id = b.i",
            [list(c) for c in cols],
        )
        tx.touch()

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

        One statement (``SELECT … FOR UPDATE SKIP LOCKED`` and ``UPDATE`` in
        one), plus a sweep of expired leases and due delays at most every
        0.1 s. Atomic across processes and machines; the lease is measured
        on the server's clock. Cancel-atomic: a cancelled caller's rows get
        their previous state back, attempts included. ``Claim.next_due``
        (when nothing was ready) is in this machine's clock.
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

    # -------------------------------------------------------------- ack/nack

    def _raise_missing(self, tx: Tx, ids: Sequence[int]) -> None:
        present = {int(r[0]) for r in tx.all(f"SELECT _id FROM {self._t} WHERE _id = ANY(%s)", (list(ids),))}
        for i in ids:
            if i not in present:
                raise ItemNotFound(i, f"not in {self.spec.table}")

    def _sql_set_final(self, tx: Tx, ids: Sequence[int], status: int, keep_acked: int | None) -> None:
        unique = list(dict.fromkeys(ids))
        if not unique:
            return
        matched = tx.count(
            f"UPDATE {self._t} SET status = %s, pq_lease = NULL, pq_owner = NULL, pq_ready_at = NULL "
            "WHERE _id = ANY(%s)",
            (int(status), unique),
        )
        if matched < len(unique):
            self._raise_missing(tx, unique)  # raising rolls the whole job back
        tx.touch()
        if status == ACKED and keep_acked is not None:
            # Trimming reads keep_acked index entries, so it runs once per
            # max(1, min(keep_acked // 10, 100)) acks of this engine: at most
            # that many extra acked rows per queue object stay a little longer.
            self._acks_untrimmed += len(unique)
            if self._acks_untrimmed >= max(1, min(keep_acked // 10, _TRIM_EVERY_MAX)):
                self._trim_acked(tx, keep_acked)
                self._acks_untrimmed = 0

    def _trim_acked(self, tx: Tx, keep: int) -> None:
        # Keep only the newest `keep` acked rows: the (status, _id) index,
        # walked backwards, finds the older ones; rows others hold are skipped.
        t = self._t
        delete = (
            f"DELETE FROM {t} WHERE _id IN (SELECT _id FROM {t} WHERE status = {ACKED} "
            "ORDER BY _id DESC OFFSET %s FOR UPDATE SKIP LOCKED)"
        )
        if self._unique:
            # What the trimmed rows stood for stays remembered: their fingerprints.
            delete = (
                f"WITH gone AS ({delete} RETURNING digest, timestamp) INSERT INTO {self._done} "
                "(digest, timestamp) SELECT digest, timestamp FROM gone ON CONFLICT (digest) DO NOTHING"
            )
        tx.execute(delete, (max(0, int(keep)),))

    async def set_final(self, ids: Sequence[int], status: int, keep_acked: int | None) -> None:
        """Mark rows acked or ack_failed (any current status); trim acked rows to ``keep_acked``.

        The trim runs every ``max(1, min(keep_acked // 10, 100))`` acks of
        this engine: up to that many acked rows beyond ``keep_acked`` may
        remain per queue object.

        Raises:
            ItemNotFound: an id is not stored (nothing is changed).
        """
        await self._run(self._sql_set_final, ids, status, keep_acked)

    def _sql_nack(self, tx: Tx, ids: Sequence[int], delay: float, max_attempts: int) -> None:
        unique = list(dict.fromkeys(ids))
        if not unique:
            return
        t = self._t
        state = {
            int(r[0]): (int(r[1]), int(r[2]))
            for r in tx.all(
                f"SELECT _id, status, pq_attempts FROM {t} WHERE _id = ANY(%s) ORDER BY _id FOR UPDATE",
                (unique,),
            )
        }
        for i in unique:
            if i not in state:
                raise ItemNotFound(i, f"not in {self.spec.table}")
            if state[i][0] in (ACKED, ACK_FAILED):
                raise ItemNotFound(i, "it is already acked or failed; use requeue_failed() for failed items")
        inflight = [i for i in unique if state[i][0] == UNACK]
        failed = [i for i in inflight if 0 < max_attempts <= state[i][1]]
        back = [i for i in inflight if not 0 < max_attempts <= state[i][1]]
        if failed:
            tx.execute(
                f"UPDATE {t} SET status = {ACK_FAILED}, pq_lease = NULL, pq_owner = NULL WHERE _id = ANY(%s)",
                (failed,),
            )
        if back and delay > 0:
            tx.execute(
                f"UPDATE {t} SET status = {DELAYED}, pq_ready_at = {NOW_SQL} + %s, pq_lease = NULL, "
                "pq_owner = NULL WHERE _id = ANY(%s)",
                (float(delay), back),
            )
        elif back:
            tx.execute(
                f"UPDATE {t} SET status = {READY}, pq_lease = NULL, pq_owner = NULL WHERE _id = ANY(%s)",
                (back,),
            )
        if inflight:
            tx.touch()

    async def nack(self, ids: Sequence[int], delay: float, max_attempts: int) -> None:
        """Give in-flight rows back: ready (after ``delay``, on the server's clock), or
        failed once attempts are used up. Rows that are waiting already are left as they are.

        Raises:
            ItemNotFound: an id is not stored, or is acked/failed (nothing changed).
        """
        await self._run(self._sql_nack, ids, delay, max_attempts)

    def _sql_extend(self, tx: Tx, item_id: int, seconds: float) -> float:
        n = tx.count(
            f"UPDATE {self._t} SET pq_lease = {NOW_SQL} + %s WHERE _id = %s AND status = {UNACK}",
            (float(seconds), item_id),
        )
        if n == 0:
            raise ItemNotFound(item_id, "not in flight")
        return time.time() + seconds

    async def extend(self, item_id: int, seconds: float) -> float:
        """Set an in-flight row's lease to end ``seconds`` from now (server clock);
        return the new end in this machine's clock."""
        return await self._run(self._sql_extend, item_id, seconds)

    def _expire_where(self, tx: Tx, where: str, params: Sequence[Any], max_attempts: int) -> int:
        """Take rows out of flight: ready again, or failed once attempts are used up; return how many."""
        m = int(max_attempts)
        n = tx.count(self._expire_sql(where), (m, m, *params))
        if n:
            tx.touch()
        return n

    def _sql_resume(self, tx: Tx, alive: Callable[[str], bool] | None, max_attempts: int) -> int:
        if alive is None:
            return self._expire_where(tx, f"status = {UNACK}", (), max_attempts)
        n = self._expire_where(tx, f"status = {UNACK} AND pq_lease <= {NOW_SQL}", (), max_attempts)
        prefix = self._host_prefix
        for (owner,) in tx.all(f"SELECT DISTINCT pq_owner FROM {self._t} WHERE status = {UNACK}"):
            if owner is None:
                # Nobody can tell whether an owner-less delivery's consumer lives.
                n += self._expire_where(tx, f"status = {UNACK} AND pq_owner IS NULL", (), max_attempts)
            elif str(owner).startswith(prefix) and not alive(str(owner)[len(prefix) :]):
                n += self._expire_where(tx, f"status = {UNACK} AND pq_owner = %s", (owner,), max_attempts)
            # Owners on other hosts: their items come back when their lease ends.
        return n

    async def resume(self, alive: Callable[[str], bool] | None, max_attempts: int) -> int:
        """Return in-flight rows to ready: all (``alive=None``), or those whose lease
        expired or whose owner, a process on this host, is gone. Returns how many.

        Owners on other hosts are never judged: this host cannot tell whether
        they still work on their items (their leases bring them back).
        """
        return await self._run(self._sql_resume, alive, max_attempts)

    def _sql_release(self, tx: Tx, owner: str, max_attempts: int) -> int:
        return self._expire_where(
            tx, f"status = {UNACK} AND pq_owner = %s", (self._host_prefix + owner,), max_attempts
        )

    async def release(self, owner: str, max_attempts: int) -> int:
        """Give back every row still in flight with ``owner`` (its queue is closing)."""
        return await self._run(self._sql_release, owner, max_attempts)

    def _sql_requeue(self, tx: Tx, ids: Sequence[int] | None) -> int:
        assignments = f"status = {READY}, pq_attempts = 0"
        if ids is None:
            n = tx.count(f"UPDATE {self._t} SET {assignments} WHERE status = {ACK_FAILED}")
        else:
            n = tx.count(
                f"UPDATE {self._t} SET {assignments} WHERE _id = ANY(%s) AND status = {ACK_FAILED}",
                (list(dict.fromkeys(ids)),),
            )
        if n:
            tx.touch()
        return n

    async def requeue_failed(self, ids: Sequence[int] | None) -> int:
        """Make failed rows (all, or ``ids``) ready again with fresh attempts."""
        return await self._run(self._sql_requeue, ids)

    def _sql_clear(self, tx: Tx, max_delete: int | None, keep_latest: int, clear_failed: bool) -> int:
        statuses = f"({ACKED}, {ACK_FAILED})" if clear_failed else f"({ACKED})"
        t = self._t
        n = tx.count(
            f"DELETE FROM {t} WHERE _id IN (SELECT _id FROM {t} WHERE status IN {statuses} "
            f"ORDER BY _id DESC LIMIT %s OFFSET %s FOR UPDATE SKIP LOCKED) AND status IN {statuses}",
            (int(max_delete) if max_delete else None, max(0, int(keep_latest))),
        )
        if self._unique:
            n += tx.count(f"DELETE FROM {self._done}")
        return n

    async def clear_acked(self, max_delete: int | None, keep_latest: int, clear_failed: bool) -> int:
        """Delete acked (and optionally failed) rows, keeping the newest ``keep_latest``;
        on a unique table forget every fingerprint too. Returns how many rows and
        fingerprints were deleted."""
        return await self._run(self._sql_clear, max_delete, keep_latest, clear_failed)

    def _sql_forget(self, tx: Tx, before: float) -> int:
        t = self._t
        n = tx.count(
            f"DELETE FROM {t} WHERE _id IN (SELECT _id FROM {t} WHERE status = {ACKED} AND timestamp < %s "
            f"FOR UPDATE SKIP LOCKED) AND status = {ACKED}",
            (before,),
        )
        if self._unique:
            n += tx.count(f"DELETE FROM {self._done} WHERE timestamp < %s", (before,))
        return n

    async def forget_acked(self, older_than: float) -> int:
        """Delete acked rows, and fingerprints, of items put more than ``older_than`` seconds ago
        (this machine's clock, as put timestamps are). Returns how many."""
        return await self._run(self._sql_forget, time.time() - older_than)

    # ------------------------------------------------------------ inspection

    def _sql_count_now(self, tx: Tx) -> int:
        self._sweep(tx, self.max_attempts)
        return self._sql_waiting(tx)

    async def count(self) -> int:
        """Rows waiting to be delivered (inited, ready, delayed), after settling
        expired leases and due delays."""
        return await self._run(self._sql_count_now)

    def count_blocking(self) -> int:
        """Like :meth:`count` without settling, blocking the calling thread."""
        self.open_blocking()
        return self._run_blocking(self._sql_waiting)

    def _sql_counts(self, tx: Tx, max_attempts: int) -> dict[int, int]:
        # Expired leases and due delays are settled first, so the counts say
        # what a get would find now.
        self._sweep(tx, max_attempts)
        return {int(s): int(c) for s, c in tx.all(f"SELECT status, count(*) FROM {self._t} GROUP BY status")}

    async def counts(self, max_attempts: int = 0) -> dict[int, int]:
        """Rows per status (after settling expired leases and due delays)."""
        return await self._run(self._sql_counts, max_attempts)

    def _sql_rows(self, tx: Tx, status: int | None) -> list[tuple[Any, ...]]:
        where = "" if status is None else f"WHERE status = {int(status)}"
        found = tx.all(
            f"SELECT _id, data, timestamp, {self._pcol}, status, pq_attempts, pq_lease, pq_ready_at "
            f"FROM {self._t} {where} ORDER BY _id"
        )
        return [
            (
                int(r[0]),
                bytes(r[1]),
                float(r[2]),
                _opt_int(r[3]),
                int(r[4]),
                int(r[5]),
                _opt_float(r[6]),
                _opt_float(r[7]),
            )
            for r in found
        ]

    async def rows(self, status: int | None = None) -> list[tuple[Any, ...]]:
        """Rows (all, or of one status) as ``(_id, data, timestamp, priority, status,
        attempts, lease end, ready time)``; times are the server's, priority ``None``
        unless a priority table."""
        return await self._run(self._sql_rows, status, kind="read")

    def _sql_update(self, tx: Tx, item_id: int, data: bytes) -> None:
        if tx.count(f"UPDATE {self._t} SET data = %s WHERE _id = %s", (data, item_id)) == 0:
            raise ItemNotFound(item_id, f"not in {self.spec.table}")
        tx.touch()

    async def update(self, item_id: int, data: bytes) -> None:
        """Replace a row's data; committed on return."""
        await self._run(self._sql_update, item_id, data)

    def _sql_data_version(self, tx: Tx) -> int:
        version = self._sql_changes(tx)
        if self._contended:
            self._tick += 1
        return hash((version, self._tick))

    async def data_version(self) -> int:
        """A number that changes when anyone commits a put, a claim, an ack, a nack or a sweep.

        While every ready row is locked by other consumers it changes at each
        call, so waiters retry until those rows are taken or given back.
        """
        return await self._run(self._sql_data_version, kind="read")

    async def vacuum(self) -> None:
        """Rebuild the table to give free space back (``VACUUM (FULL, ANALYZE)``)."""
        await self._run(self._vacuum_job, (self._t,), kind="bare")
