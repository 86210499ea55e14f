"""The MySQL / MariaDB store of the ack queues: rows with a status, leases and attempts.

The same storage interface as :class:`~persistq.engines.sqlite_ack.SQLiteAckEngine`
(``put``/``claim``/``set_final``/``nack``/``extend``/``resume``/``release``/
``requeue_failed``/``clear_acked``/``count``/``counts``/``rows``/``update``/
``data_version``/``vacuum``), so the ack queue kind composes with either. The
connection pool, retries, error translation and password hygiene are
:class:`~persistq.engines.mysql.MySQLDatabase`'s.

Table ``ack_queue_{name}`` (InnoDB): ``_id BIGINT AUTO_INCREMENT``, ``data
LONGBLOB``, ``timestamp DOUBLE``, ``status INT`` (0 inited, 1 ready, 2 unack,
3 delayed, 5 acked, 9 ack_failed), ``pq_attempts``, ``pq_lease`` (when the
current delivery's lease ends), ``pq_owner`` (``hostname/token`` of the
delivering queue object) and ``pq_ready_at`` (when a delayed row is due), with
indexes on ``(status, _id)``, ``(status, pq_lease)`` and ``(status,
pq_ready_at)``: every look-up a claim makes walks one of them, never the table.

**One clock: the server's.** Lease ends and delays are stored and compared in
the server's time (``@@timestamp``: seconds since the epoch with microseconds,
independent of any time zone setting), never in a client's. Consumers on
machines whose clocks disagree by seconds therefore still agree on when a
lease ends; with client clocks, a consumer whose clock runs ahead would take
items whose leases are still live for everybody else. Times handed back to the
queue (``Claim.next_due``, the result of :meth:`MySQLAckEngine.extend`) are
converted to this machine's ``time.time()``.

**A claim is one transaction in one hop.** At most every 0.1 s per queue
object, and always before it reports that nothing is ready, it reads the
server's time and the earliest lease end and due delay (O(1) index look-ups);
only when one of those has passed does it sweep: ``SELECT … FOR UPDATE SKIP LOCKED`` of the expired
leases and due delays, then ``UPDATE`` of exactly those rows (ready again, or
failed once ``max_attempts`` deliveries are used up). Then ``SELECT … WHERE
status = 0 … ORDER BY _id LIMIT n FOR UPDATE SKIP LOCKED`` (and the same for
status 1, the given-back rows, in one ``UNION ALL`` when the last sweep saw
any), and ``UPDATE`` of the rows taken to status 2 with ``pq_attempts + 1``,
the lease end (``@@timestamp`` + lease) and the owner, then
``COMMIT``. A row is locked from the moment a claim selects it until that
claim commits, and other claims skip it rather than wait; once committed it is
status 2 with a live lease, which no claim selects. So no item is delivered
twice while its lease is live, across any number of processes and machines.

**Owners across machines.** :meth:`MySQLAckEngine.resume` (``auto_resume``)
can judge only owners on this host (it asks whether their process still
runs); items held by a process on another machine come back when their lease
ends. ``visibility_timeout`` is therefore the safety net for consumers on
several machines: without it, an item whose consumer machine died stays in
flight until ``resume_unack_tasks()``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import ItemNotFound
from ._worker import Job
from .mysql import (
    MySQLQueueTable,
    _delete_ids,
    _id_chunks,
    _insert_many,
    _insert_rows,
    _opt_int,
    _q,
    _select_ids,
    done_table,
)
from .sqlite import NewRow
from .sqlite_ack import ACK_FAILED, ACKED, DELAYED, INITED, READY, UNACK, AckRow, AckTableSpec, Claim

__all__ = ("MySQLAckEngine",)

_NO_LIMIT = 18446744073709551615  # MySQL's way to say "no LIMIT" before an OFFSET
_TRIM_EVERY_MAX = 100
"""Acked rows are trimmed at least once per this many acks of one engine."""
_SWEEP_EVERY = 0.1
"""Seconds between sweeps of a consumer that keeps finding rows to claim."""
_LOCKED_RETRY = 0.01
"""Seconds until a waiter looks again when a due row was locked by another consumer."""

# What a claim changed, to undo it: (_id, status, attempts, lease, owner, ready_at).
_Before = tuple[int, int, int, "float | None", "str | None", "float | None"]
# The server's time and what the probe found: (now, has inited rows, has ready
# rows, earliest lease end, earliest due delay).
_Probe = tuple[float, bool, bool, "float | None", "float | None"]


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


class MySQLAckEngine(MySQLQueueTable):
    """Ack-queue storage (bytes in, bytes out) in a MySQL / MariaDB table.

    Every operation is one transaction run in one worker hop; an operation
    that returned is committed. ``put`` and ``claim`` are cancel-atomic: a
    cancelled caller's rows are deleted again / get their previous state back.

    The four ack kinds, with :class:`~persistq.engines.sqlite_ack.SQLiteAckEngine`'s
    semantics: FIFO and FILO (lowest / highest ``_id`` delivered first);
    priority (a ``priority BIGINT`` column and an index on ``(status,
    priority, _id)``: lowest priority first, then lowest ``_id``; delivered
    rows carry the priority as their fourth field); unique (a ``data_hash
    BINARY(32)`` column, SHA-256 of the data, with a UNIQUE index: a put of
    bytes equal to a stored row, waiting, in flight, acked or failed, stores
    nothing and its id is ``None``; acked rows trimmed beyond ``keep_acked``
    leave their hash in ``persistq_done_{table}``, which refuses equal puts
    too, until ``clear_acked`` or ``forget_acked``).

    Args: as :class:`~persistq.engines.mysql.MySQLQueueTable`, with an
    :class:`~persistq.engines.sqlite_ack.AckTableSpec`.
    """

    def _prepare(self, spec: AckTableSpec) -> None:
        self.spec = spec
        self.max_attempts = 0
        """Set by the queue: expired leases past this many attempts fail."""
        self._desc = spec.order == "filo"
        # Claims walk (status, priority, _id) on a priority table, (status, _id) otherwise.
        self._ready_index = "status_prio" if self._prio else "status_id"
        self._state_cols = f"{self._STATE}, {self._priority_col}"
        self._done = _q(done_table(spec.table))
        self._acks_untrimmed = 0
        # When this engine last swept, and whether ready rows existed then
        # (or were made since by this engine): claims between sweeps look at
        # ready rows only if so.
        self._swept_at = -math.inf
        self._ready_hint = True

    def _create(self, cur: Any) -> None:
        t = self.spec.table
        columns, extra, indexes = self._layout(cur, "status_prio (status, priority, _id)")
        existed = bool(columns)
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {self._t} ("
            "_id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, data LONGBLOB, timestamp DOUBLE, "
            "status INT, pq_attempts INT NOT NULL DEFAULT 0, pq_lease DOUBLE NULL, "
            f"pq_owner VARCHAR(255) NULL, pq_ready_at DOUBLE NULL{extra}, "
            "INDEX status_id (status, _id), INDEX status_lease (status, pq_lease), "
            f"INDEX status_ready (status, pq_ready_at){indexes}) ENGINE=InnoDB"
        )
        if self._unique:
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS {self._done} (data_hash BINARY(32) NOT NULL PRIMARY KEY, "
                "timestamp DOUBLE NOT NULL) ENGINE=InnoDB"
            )
        self._check_serializer(cur, t, self.serializer_name, existed)

    # ------------------------------------------------------------- helpers

    def _update_ids(
        self, cur: Any, assignments: str, params: Sequence[Any], ids: Sequence[int], guard: str = ""
    ) -> int:
        """``UPDATE`` rows by primary key; return how many matched.

        ``FORCE INDEX (PRIMARY)`` with ``_id IN (…)``: one primary-key look-up
        per id even when the statistics think the table tiny (a scan would
        wait for rows other consumers hold). ``guard`` (``" AND …"``) is
        checked on each row under its lock.
        """
        n: int = 0
        for chunk in _id_chunks(ids):
            marks = ", ".join(["%s"] * len(chunk))
            n += cur.execute(
                f"UPDATE {self._t} FORCE INDEX (PRIMARY) SET {assignments} WHERE _id IN ({marks}){guard}",
                [*params, *chunk],
            )
        return n

    def _local(self, server_time: float, server_now: float) -> float:
        """A server time expressed in this machine's clock."""
        return time.time() + (server_time - server_now)

    # ----------------------------------------------------------------- put

    def _sql_waiting(self, cur: Any) -> int:
        cur.execute(f"SELECT COUNT(*) FROM {self._t} WHERE status IN (0, 1, 3)")
        return int(cur.fetchone()[0])

    def _sql_put(
        self,
        cur: Any,
        items: Sequence[NewRow],
        maxsize: int,
        alts: Sequence[bytes | None] | None = None,
    ) -> list[int | None] | None:
        if not self._room(cur, len(items), maxsize):
            return None
        columns = self._put_columns("status")
        rows = [self._new_values(data, ts, priority, INITED) for data, ts, priority in items]
        ids = _insert_rows(cur, self._server, self._t, columns, rows, self._unique)
        if self._unique:
            # An equal stored row, whatever its status, refused its item above;
            # an item finished and trimmed is refused by its fingerprint. The
            # look-up comes after the insert and locks: the insert waited for
            # a trim that was deleting an equal row, and a locking read sees
            # the fingerprint that trim committed.
            stored = {r[-1]: i for r, i in zip(rows, ids, strict=True) if i is not None}
            if stored:
                done = self._done
                found = _select_ids(
                    cur, done, f"{done}.data_hash", list(stored), " LOCK IN SHARE MODE", column="data_hash"
                )
                refused = {stored[bytes(r[0])] for r in found}
                if refused:
                    _delete_ids(cur, self._t, sorted(refused))
                    ids = [None if i in refused else i for i in ids]
        return ids

    def _sql_delete(self, cur: Any, ids: Sequence[int | None]) -> None:
        _delete_ids(cur, self._t, [i for i in ids if i is not None])

    async def put(
        self,
        items: Sequence[NewRow],
        maxsize: int = 0,
        alts: Sequence[bytes | None] | None = None,
    ) -> list[int | None] | None:
        """Insert items (status inited) in one transaction; ``None`` if ``maxsize`` would be passed.

        On a unique table an item equal to a stored row of any status, to a
        remembered fingerprint, or to an earlier item of ``items`` is not
        inserted and its id is ``None``. ``alts`` is
        accepted so both engines have one signature, and ignored: no table on
        MySQL holds persist-queue's unique encoding. Cancel-atomic: a
        cancelled caller's rows are deleted again.
        """
        return await self._run(
            self._sql_put, items, maxsize, alts, undo=lambda ids: Job(self._sql_delete, ids or [])
        )

    # --------------------------------------------------------------- sweep

    def _probe(self, cur: Any) -> _Probe:
        t = self._t
        cur.execute(
            f"SELECT @@timestamp, (SELECT MIN(_id) FROM {t} WHERE status = {INITED}), "
            f"(SELECT MIN(_id) FROM {t} WHERE status = {READY}), "
            f"(SELECT MIN(pq_lease) FROM {t} WHERE status = {UNACK}), "
            f"(SELECT MIN(pq_ready_at) FROM {t} WHERE status = {DELAYED})"
        )
        now, inited, ready, lease, due = cur.fetchone()
        return float(now), inited is not None, ready is not None, _opt_float(lease), _opt_float(due)

    def _sweep(self, cur: Any, max_attempts: int) -> tuple[_Probe, bool]:
        """Make due delayed rows and expired leases ready (or failed).

        Returns the probe (server time, …) and whether any row became ready.
        Rows locked by another transaction are skipped, never waited for: that
        transaction is sweeping, settling or claiming them itself.
        """
        probe = self._probe(cur)
        now, _, _, lease, due = probe
        t = self._t
        made_ready = False
        if due is not None and due <= now:
            cur.execute(
                f"SELECT _id FROM {t} FORCE INDEX (status_ready) "
                f"WHERE status = {DELAYED} AND pq_ready_at <= %s{self._skip}",
                (now,),
            )
            ids = [int(r[0]) for r in cur.fetchall()]
            if ids:
                self._update_ids(cur, f"status = {READY}, pq_ready_at = NULL", (), ids)
                made_ready = True
        if lease is not None and lease <= now:
            cur.execute(
                f"SELECT _id, pq_attempts FROM {t} FORCE INDEX (status_lease) "
                f"WHERE status = {UNACK} AND pq_lease <= %s{self._skip}",
                (now,),
            )
            found = [(int(r[0]), int(r[1])) for r in cur.fetchall()]
            failed = [i for i, a in found if 0 < max_attempts <= a]
            ready = [i for i, a in found if not 0 < max_attempts <= a]
            if failed:
                self._update_ids(cur, f"status = {ACK_FAILED}, pq_lease = NULL, pq_owner = NULL", (), failed)
            if ready:
                self._update_ids(cur, f"status = {READY}, pq_lease = NULL, pq_owner = NULL", (), ready)
                made_ready = True
        return probe, made_ready

    def _expire_where(self, cur: Any, where: str, params: Sequence[Any], max_attempts: int) -> int:
        """Take rows out of flight: ready again, or failed once attempts are used up.

        ``where`` starts with ``status = 2``: the ``(status, pq_lease)`` index
        walks only the rows in flight.
        """
        n: int = 0
        self._ready_hint = True
        if max_attempts > 0:
            n += cur.execute(
                f"UPDATE {self._t} FORCE INDEX (status_lease) SET status = {ACK_FAILED}, pq_lease = NULL, "
                f"pq_owner = NULL WHERE {where} AND pq_attempts >= %s",
                (*params, max_attempts),
            )
        n += cur.execute(
            f"UPDATE {self._t} FORCE INDEX (status_lease) SET status = {READY}, pq_lease = NULL, "
            f"pq_owner = NULL WHERE {where}",
            tuple(params),
        )
        return n

    def _swept(self, cur: Any, max_attempts: int) -> tuple[_Probe, bool]:
        """:meth:`_sweep`, remembering when and whether ready (given-back) rows exist."""
        probe, swept = self._sweep(cur, max_attempts)
        self._swept_at = time.monotonic()
        self._ready_hint = probe[2] or swept
        return probe, swept

    def _next_due(self, cur: Any, probe: _Probe, swept: bool) -> float | None:
        """When the earliest lease or delay ends, in this machine's clock."""
        if swept:
            probe = self._probe(cur)
        now, _, _, lease, due = probe
        times = [x for x in (lease, due) if x is not None]
        if not times:
            return None
        soonest = min(times)
        if soonest <= now:
            # Due, but another transaction held the row: look again shortly.
            return time.time() + _LOCKED_RETRY
        return self._local(soonest, now)

    # --------------------------------------------------------------- claim

    _STATE = "_id, data, timestamp, status, pq_attempts, pq_lease, pq_owner, pq_ready_at"

    def _select_ready(
        self, cur: Any, statuses: Sequence[int], n: int, after_id: int | None
    ) -> list[tuple[Any, ...]]:
        if not statuses:
            return []
        order = self._order_by
        cmp = "<" if self._desc else ">"
        parts: list[str] = []
        args: list[Any] = []
        for status in statuses:
            after = ""
            if after_id is not None:
                after = f" AND _id {cmp} %s"
                args.append(after_id)
            # The (status, _id) or (status, priority, _id) index walked in
            # order: only the rows taken are read and locked; rows other
            # claims hold are skipped.
            parts.append(
                f"SELECT {self._state_cols} FROM {self._t} FORCE INDEX ({self._ready_index}) "
                f"WHERE status = {int(status)}{after} ORDER BY {order} LIMIT %s{self._skip}"
            )
            args.append(n)
        sql = parts[0] if len(parts) == 1 else " UNION ALL ".join(f"({p})" for p in parts)
        cur.execute(sql, args)
        rows = list(cur.fetchall())
        if self._prio:
            rows.sort(key=lambda r: (int(r[8]), int(r[0])))
        else:
            rows.sort(key=lambda r: int(r[0]), reverse=self._desc)
        # Rows beyond n (from the second status) stay locked only until COMMIT.
        return rows[:n]

    def _sql_claim(
        self,
        cur: Any,
        n: int,
        item_id: int | None,
        after_id: int | None,
        owner: str,
        lease: float | None,
        max_attempts: int,
    ) -> Claim:
        # The sweep (expired leases, due delays) and the probe telling which
        # statuses hold rows cost a round trip; a busy consumer makes them at
        # most every _SWEEP_EVERY seconds, so expiries are noticed that much
        # later at worst. A claim that finds nothing always sweeps first.
        probe: _Probe | None = None
        swept = False
        if time.monotonic() - self._swept_at >= _SWEEP_EVERY:
            probe, swept = self._swept(cur, max_attempts)
        while True:
            if item_id is not None:
                cur.execute(
                    f"SELECT {self._state_cols} FROM {self._t} "
                    f"WHERE _id = %s AND status IN (0, 1){self._skip}",
                    (item_id,),
                )
                found = list(cur.fetchall())
            else:
                statuses = [INITED, READY] if self._ready_hint else [INITED]
                found = self._select_ready(cur, statuses, n, after_id)
                if not found and after_id is not None:
                    # next_in_order wraps around to the start of the queue.
                    found = self._select_ready(cur, statuses, n, None)
            if found or probe is not None:
                break
            probe, swept = self._swept(cur, max_attempts)
        if not found:
            assert probe is not None  # the loop sweeps before it gives up
            if item_id is None:
                # Ready rows exist, but other consumers hold every one of them.
                self._contended = probe[1] or self._ready_hint
            return Claim([], [], self._next_due(cur, probe, swept))
        self._contended = False
        ids = [int(r[0]) for r in found]
        # The lease runs on the server's clock: @@timestamp, read by the UPDATE itself.
        owner_id = self._host_prefix + owner
        lease_sql = "NULL" if lease is None else "@@timestamp + %s"
        self._update_ids(
            cur,
            f"status = {UNACK}, pq_attempts = pq_attempts + 1, pq_lease = {lease_sql}, pq_owner = %s",
            (owner_id,) if lease is None else (float(lease), owner_id),
            ids,
        )
        # The rows are locked since the SELECT: their new state is exactly this.
        rows: list[AckRow] = [
            (int(r[0]), bytes(r[1]), float(r[2]), _opt_int(r[8]), UNACK, int(r[4]) + 1) for r in found
        ]
        before: list[_Before] = [
            (int(r[0]), int(r[3]), int(r[4]), _opt_float(r[5]), r[6], _opt_float(r[7])) for r in found
        ]
        return Claim(rows, before, None)

    def _sql_unclaim(self, cur: Any, before: Sequence[_Before]) -> None:
        self._ready_hint = True
        if before:
            cur.executemany(
                f"UPDATE {self._t} SET status = %s, pq_attempts = %s, pq_lease = %s, pq_owner = %s, "
                "pq_ready_at = %s WHERE _id = %s",
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

        One transaction, one hop: sweep of expired leases and due delays,
        ``SELECT … FOR UPDATE SKIP LOCKED``, ``UPDATE``, ``COMMIT``. Atomic
        across processes and machines; the lease is measured on the server's
        clock. Cancel-atomic: a cancelled caller's rows get their previous
        state back, attempts included. ``Claim.next_due`` (when nothing was
        ready) is in this machine's clock.
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

    # ------------------------------------------------------------ ack/nack

    def _raise_missing(self, cur: Any, ids: Sequence[int]) -> None:
        present = {int(r[0]) for r in _select_ids(cur, self._t, f"{self._t}._id", ids)}
        for i in ids:
            if i not in present:
                raise ItemNotFound(i, f"not in {self.spec.table}")

    def _sql_set_final(self, cur: Any, ids: Sequence[int], status: int, keep_acked: int | None) -> None:
        unique = list(dict.fromkeys(ids))
        matched = self._update_ids(
            cur,
            "status = %s, pq_lease = NULL, pq_owner = NULL, pq_ready_at = NULL",
            (int(status),),
            unique,
        )
        if matched < len(unique):
            self._raise_missing(cur, unique)  # raising rolls the whole job back
        if status == ACKED and keep_acked is not None:
            # Trimming reads keep_acked index entries, so it runs once per
            # max(1, min(keep_acked // 10, 100)) acks of this engine: at most
            # that many extra acked rows per queue object stay a little longer.
            self._acks_untrimmed += len(unique)
            if self._acks_untrimmed >= max(1, min(keep_acked // 10, _TRIM_EVERY_MAX)):
                self._trim_acked(cur, keep_acked)
                self._acks_untrimmed = 0

    def _trim_acked(self, cur: Any, keep: int) -> None:
        # Keep only the newest `keep` acked rows: the (status, _id) index,
        # walked backwards, finds the older ones; each is deleted by primary
        # key and only if it is still acked.
        cur.execute(
            f"SELECT _id FROM {self._t} FORCE INDEX (status_id) WHERE status = {ACKED} "
            "ORDER BY _id DESC LIMIT %s OFFSET %s",
            (_NO_LIMIT, keep),
        )
        old = [int(r[0]) for r in cur.fetchall()]
        if old:
            old.reverse()  # ascending: concurrent trims lock in the same order
            if self._unique:
                self._remember(cur, old)
            _delete_ids(cur, self._t, old, f" AND status = {ACKED}")

    def _remember(self, cur: Any, ids: Sequence[int]) -> None:
        """Keep the fingerprints of acked rows ``ids`` about to be deleted (locking them)."""
        t = self._t
        rows = [
            (bytes(r[0]), float(r[1]))
            for r in _select_ids(cur, t, f"{t}.data_hash, {t}.timestamp, {t}.status", ids, " FOR UPDATE")
            if int(r[2]) == ACKED
        ]
        if rows:
            keep = " ON DUPLICATE KEY UPDATE data_hash = data_hash"
            _insert_many(cur, self._done, ("data_hash", "timestamp"), rows, keep)

    async def set_final(self, ids: Sequence[int], status: int, keep_acked: int | None) -> None:
        """Mark rows acked or ack_failed (any current status); trim acked rows to ``keep_acked``.

        The trim runs every ``max(1, min(keep_acked // 10, 100))`` acks of
        this engine (each time for ``keep_acked`` < 20): up to that many acked
        rows beyond ``keep_acked`` may remain per queue object.

        Raises:
            ItemNotFound: an id is not stored (nothing is changed).
        """
        await self._run(self._sql_set_final, ids, status, keep_acked)

    def _sql_nack(self, cur: Any, ids: Sequence[int], delay: float, max_attempts: int) -> None:
        unique = list(dict.fromkeys(ids))
        t = self._t
        state = {
            int(r[0]): (int(r[1]), int(r[2]))
            for r in _select_ids(cur, self._t, f"{t}._id, status, pq_attempts", unique, " FOR UPDATE")
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
            self._update_ids(cur, f"status = {ACK_FAILED}, pq_lease = NULL, pq_owner = NULL", (), failed)
        if back and delay > 0:
            self._update_ids(
                cur,
                f"status = {DELAYED}, pq_ready_at = @@timestamp + %s, pq_lease = NULL, pq_owner = NULL",
                (float(delay),),
                back,
            )
        elif back:
            self._ready_hint = True
            self._update_ids(cur, f"status = {READY}, pq_lease = NULL, pq_owner = NULL", (), back)

    async def nack(self, ids: Sequence[int], delay: float, max_attempts: int) -> None:
        """Give in-flight rows back: ready (after ``delay``, on the server's clock), or
        failed once attempts are used up. Rows that are waiting already are left as they are.

        Raises:
            ItemNotFound: an id is not stored, or is acked/failed (nothing changed).
        """
        await self._run(self._sql_nack, ids, delay, max_attempts)

    def _sql_extend(self, cur: Any, item_id: int, seconds: float) -> float:
        n = cur.execute(
            f"UPDATE {self._t} SET pq_lease = @@timestamp + %s WHERE _id = %s AND status = {UNACK}",
            (float(seconds), item_id),
        )
        if n == 0:
            raise ItemNotFound(item_id, "not in flight")
        return time.time() + seconds

    async def extend(self, item_id: int, seconds: float) -> float:
        """Set an in-flight row's lease to end ``seconds`` from now (server clock);
        return the new end in this machine's clock."""
        return await self._run(self._sql_extend, item_id, seconds)

    def _sql_resume(self, cur: Any, alive: Callable[[str], bool] | None, max_attempts: int) -> int:
        if alive is None:
            return self._expire_where(cur, f"status = {UNACK}", (), max_attempts)
        cur.execute("SELECT @@timestamp")
        now = float(cur.fetchone()[0])
        n = self._expire_where(cur, f"status = {UNACK} AND pq_lease <= %s", (now,), max_attempts)
        cur.execute(f"SELECT DISTINCT pq_owner FROM {self._t} WHERE status = {UNACK}")
        prefix = self._host_prefix
        for (owner,) in cur.fetchall():
            if owner is None:
                # Nobody can tell whether an owner-less delivery's consumer lives.
                n += self._expire_where(cur, f"status = {UNACK} AND pq_owner IS NULL", (), max_attempts)
            elif str(owner).startswith(prefix) and not alive(str(owner)[len(prefix) :]):
                n += self._expire_where(cur, f"status = {UNACK} AND pq_owner = %s", (owner,), max_attempts)
            # Owners on other hosts: their items come back when their lease ends.
        return n

    async def resume(self, alive: Callable[[str], bool] | None, max_attempts: int) -> int:
        """Return in-flight rows to ready: all (``alive=None``), or those whose lease
        expired or whose owner, a process on this host, is gone. Returns how many.

        Owners on other hosts are never judged: this host cannot tell whether
        they still work on their items (their leases bring them back).
        """
        return await self._run(self._sql_resume, alive, max_attempts)

    def _sql_release(self, cur: Any, owner: str, max_attempts: int) -> int:
        return self._expire_where(
            cur, f"status = {UNACK} AND pq_owner = %s", (self._host_prefix + owner,), max_attempts
        )

    async def release(self, owner: str, max_attempts: int) -> int:
        """Give back every row still in flight with ``owner`` (its queue is closing)."""
        return await self._run(self._sql_release, owner, max_attempts)

    def _sql_requeue(self, cur: Any, ids: Sequence[int] | None) -> int:
        self._ready_hint = True
        assignments = f"status = {READY}, pq_attempts = 0"
        if ids is None:
            return int(
                cur.execute(
                    f"UPDATE {self._t} FORCE INDEX (status_id) SET {assignments} WHERE status = {ACK_FAILED}"
                )
            )
        return self._update_ids(cur, assignments, (), list(dict.fromkeys(ids)), f" AND status = {ACK_FAILED}")

    async def requeue_failed(self, ids: Sequence[int] | None) -> int:
        """Make failed rows (all, or ``ids``) ready again with fresh attempts."""
        return await self._run(self._sql_requeue, ids)

    def _sql_clear(self, cur: Any, max_delete: int | None, keep_latest: int, clear_failed: bool) -> int:
        statuses = f"({ACKED}, {ACK_FAILED})" if clear_failed else f"({ACKED})"
        limit = _NO_LIMIT if not max_delete else int(max_delete)
        cur.execute(
            f"SELECT _id FROM {self._t} WHERE status IN {statuses} ORDER BY _id DESC LIMIT %s OFFSET %s",
            (limit, max(0, int(keep_latest))),
        )
        ids = sorted(int(r[0]) for r in cur.fetchall())
        n = _delete_ids(cur, self._t, ids, f" AND status IN {statuses}")
        if self._unique:
            n += int(cur.execute(f"DELETE FROM {self._done}"))
        return n

    async def clear_acked(self, max_delete: int | None, keep_latest: int, clear_failed: bool) -> int:
        """Delete acked (and optionally failed) rows, keeping the newest ``keep_latest``;
        on a unique table forget every fingerprint too. Returns how many rows and
        fingerprints were deleted."""
        return await self._run(self._sql_clear, max_delete, keep_latest, clear_failed)

    def _sql_forget(self, cur: Any, before: float) -> int:
        cur.execute(
            f"SELECT _id FROM {self._t} FORCE INDEX (status_id) WHERE status = {ACKED} AND timestamp < %s",
            (before,),
        )
        ids = sorted(int(r[0]) for r in cur.fetchall())
        n = _delete_ids(cur, self._t, ids, f" AND status = {ACKED}")
        if self._unique:
            n += int(cur.execute(f"DELETE FROM {self._done} WHERE timestamp < %s", (before,)))
        return n

    async def forget_acked(self, older_than: float) -> int:
        """Delete acked rows, and fingerprints, of items put more than ``older_than`` seconds ago
        (this machine's clock, as put timestamps are). Returns how many."""
        return await self._run(self._sql_forget, time.time() - older_than)

    # ---------------------------------------------------------- inspection

    def _sql_count_now(self, cur: Any) -> int:
        self._sweep(cur, self.max_attempts)
        return self._sql_waiting(cur)

    async def count(self) -> int:
        """Rows waiting to be delivered (inited, ready, delayed), after settling
        expired leases and due delays."""
        return await self._run(self._sql_count_now)

    def count_blocking(self) -> int:
        """Like :meth:`count` without settling, blocking the calling thread."""
        self.open_blocking()
        return self._run_blocking(self._sql_waiting)

    def _sql_counts(self, cur: Any, max_attempts: int) -> dict[int, int]:
        # Expired leases and due delays are settled first, so the counts say
        # what a get would find now.
        self._sweep(cur, max_attempts)
        cur.execute(f"SELECT status, COUNT(*) FROM {self._t} GROUP BY status")
        return {int(s): int(c) for s, c in cur.fetchall()}

    async def counts(self, max_attempts: int = 0) -> dict[int, int]:
        """Rows per status (after settling expired leases and due delays)."""
        return await self._run(self._sql_counts, max_attempts)

    def _sql_rows(self, cur: Any, status: int | None) -> list[tuple[Any, ...]]:
        where = "" if status is None else f"WHERE status = {int(status)}"
        cur.execute(
            f"SELECT _id, data, timestamp, status, pq_attempts, pq_lease, pq_ready_at, "
            f"{self._priority_col} FROM {self._t} {where} ORDER BY _id"
        )
        return [
            (
                int(r[0]),
                bytes(r[1]),
                float(r[2]),
                _opt_int(r[7]),
                int(r[3]),
                int(r[4]),
                _opt_float(r[5]),
                _opt_float(r[6]),
            )
            for r in cur.fetchall()
        ]

    async def rows(self, status: int | None = None) -> list[tuple[Any, ...]]:
        """Rows (all, or of one status) as ``(_id, data, timestamp, priority, status,
        attempts, lease end, ready time)``; times are the server's."""
        return await self._run(self._sql_rows, status, kind="read")

    def _sql_update(self, cur: Any, item_id: int, data: bytes) -> None:
        if self._set_data(cur, self._t, item_id, data) == 0:
            raise ItemNotFound(item_id, f"not in {self.spec.table}")

    async def update(self, item_id: int, data: bytes) -> None:
        """Replace a row's data; committed on return."""
        await self._run(self._sql_update, item_id, data)

    def _sql_data_version(self, cur: Any) -> int:
        t = self._t
        # Index look-ups only, plus a count over the rows in flight: a put
        # moves MAX(_id), a claim the smallest waiting id, a nack or requeue
        # the ready rows, an ack / nack / expiry the in-flight set.
        cur.execute(
            f"SELECT (SELECT MAX(_id) FROM {t}), "
            f"(SELECT MIN(_id) FROM {t} WHERE status = {INITED}), "
            f"(SELECT MIN(_id) FROM {t} WHERE status = {READY}), "
            f"(SELECT MAX(_id) FROM {t} WHERE status = {READY}), "
            f"(SELECT MIN(pq_ready_at) FROM {t} WHERE status = {DELAYED}), "
            f"(SELECT COUNT(*) FROM {t} WHERE status = {UNACK}), "
            f"(SELECT SUM(_id) FROM {t} WHERE status = {UNACK})"
        )
        return self._version(tuple(cur.fetchone()))

    async def data_version(self) -> int:
        """A number that changes when another connection commits a put, a claim, an ack or a nack.

        While every ready row is locked by other consumers it changes at each
        call, so waiters retry until those rows are taken or given back.
        """
        return await self._run(self._sql_data_version, kind="read")
