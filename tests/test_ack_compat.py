"""Ack-queue databases written by persist-queue 1.1.0 open in place, and stay readable by it.

persist-queue writes a table with an item in every status (inited, ready,
unack, acked, ack_failed); persistq opens it (sync, and async on asyncio and
trio), checks the statuses and counts, delivers, settles and puts; then
persist-queue reads the table back (persistq's added columns ``pq_attempts``,
``pq_lease``, ``pq_owner``, ``pq_ready_at`` must not disturb it).

persist-queue runs on the test thread (its default ``multithreading=False``
ties a connection to the thread that opened it), synchronously, even inside
the async tests. The checks are written once, as a coroutine: :func:`_v`
awaits an async queue's results and passes a sync queue's through, and the
sync test drives the coroutine by hand (it never suspends).
"""

from __future__ import annotations

import inspect
import sqlite3
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import persistqueue
import pytest

import persistq
import persistq.sync
from persistq import AckStatus

# kind -> (persist-queue's class, persistq's async class, persistq's sync class, table)
KINDS = {
    "fifo": (persistqueue.SQLiteAckQueue, persistq.SQLiteAckQueue, persistq.sync.SQLiteAckQueue, "ack_queue"),
    "filo": (
        persistqueue.FILOSQLiteAckQueue,
        persistq.FILOSQLiteAckQueue,
        persistq.sync.FILOSQLiteAckQueue,
        "ack_filo_queue",
    ),
    "unique": (persistqueue.UniqueAckQ, persistq.UniqueAckQ, persistq.sync.UniqueAckQ, "ack_unique_queue"),
}
OLD_ITEMS: list[Any] = ["job-0", {"job": 1, "args": [1, 2]}, "job-2", ("job", 3), "job-4", "job-5"]
NEW_ITEMS: list[Any] = ["new-0", {"new": 1, "list": [3]}]


async def _v(value: Any) -> Any:
    """The result of a queue call: awaited for an async queue, as is for a sync one."""
    if inspect.isawaitable(value):
        return await value
    return value


def _drive(coro: Coroutine[Any, Any, None]) -> None:
    """Run a coroutine that never suspends (its queue is a sync one)."""
    try:
        coro.send(None)
    except StopIteration:
        return
    coro.close()
    raise AssertionError("the sync checks suspended")


async def _open(mode: str, kind: str, path: str, **kwargs: Any) -> Any:
    if mode == "sync":
        return KINDS[kind][2](path, **kwargs)
    q = KINDS[kind][1](path, **kwargs)
    await q.open()
    return q


def _queue_order(kind: str, ids: list[int]) -> list[int]:
    return sorted(ids, reverse=kind == "filo")


def _pq_write(kind: str, path: str) -> tuple[list[Any], list[int]]:
    """persist-queue: put OLD_ITEMS, get 4, ack one, nack one, ack_failed one, leave one unack.

    Returns the ids of OLD_ITEMS and of the 4 items got, in delivery order.
    (persist-queue code stays in plain helpers, see :func:`_pq_read_back`.)
    """
    pq = KINDS[kind][0](path)
    try:
        ids = [pq.put(item) for item in OLD_ITEMS]
        got = [pq.get(block=False, raw=True) for _ in range(4)]
        pq.ack(got[0])
        pq.nack(got[1])
        pq.ack_failed(got[2])
        return ids, [g["pqid"] for g in got]
    finally:
        pq.close()


def _pq_state(kind: str, path: str) -> tuple[list[int], dict[int, int]]:
    """Write the persist-queue table; return the ids of OLD_ITEMS and the status each must have."""
    ids, got = _pq_write(kind, path)
    assert got == _queue_order(kind, ids)[:4]
    status = dict.fromkeys(ids, int(AckStatus.inited))
    status[got[0]] = AckStatus.acked
    status[got[1]] = AckStatus.ready
    status[got[2]] = AckStatus.ack_failed
    status[got[3]] = AckStatus.unack
    return ids, status


def _pq_unique_put(path: str, items: list[Any]) -> tuple[list[int | None], int]:
    """persist-queue ``UniqueAckQ``: put ``items``; return their ids and ``qsize()``."""
    pq = persistqueue.UniqueAckQ(path)
    try:
        return [pq.put(item) for item in items], pq.qsize()
    finally:
        pq.close()


def _pq_read_back(kind: str, path: str) -> dict[str, Any]:
    """persist-queue: open (auto_resume), read statuses and counts, get every item and ack it.

    Plain code without ``pytest.raises`` or assertions: a kept traceback would
    hold this frame, and the queue, in a reference cycle; freed later by the GC
    on another thread (persistq's), persist-queue's ``__del__`` fails there
    (its connections are bound to the thread that opened them).
    """
    pq = KINDS[kind][0](path)
    try:
        seen: dict[str, Any] = {
            "statuses": {r["id"]: r["status"] for r in pq.queue()},
            "counts": {
                "acked": pq.acked_count(),
                "ack_failed": pq.ack_failed_count(),
                "unack": pq.unack_count(),
            },
            "qsize": pq.qsize(),
        }
        got = []
        while True:
            try:
                got.append(pq.get(block=False, raw=True))
            except persistqueue.Empty:
                break
        seen["got"] = got
        seen["acked"] = [pq.ack(g) for g in got]
        seen["acked_count_after"] = pq.acked_count()
        return seen
    finally:
        pq.close()


def _check_status_values(statuses: dict[int, Any]) -> None:
    # Plain ints (as persist-queue reads them back), equal to persistq.AckStatus values.
    assert all(type(s) is int for s in statuses.values()), statuses
    assert set(statuses.values()) <= {int(s) for s in AckStatus}


async def _check_in_place(mode: str, kind: str, path: str) -> None:
    ids, status = _pq_state(kind, path)
    item_of = dict(zip(ids, OLD_ITEMS, strict=True))
    by_status = {s: [i for i in ids if status[i] == s] for s in AckStatus}
    (unack_id,) = by_status[AckStatus.unack]
    (failed_id,) = by_status[AckStatus.ack_failed]

    # 1. Opened without resume: every status is as persist-queue left it.
    q = await _open(mode, kind, path, auto_resume=False)
    try:
        rows = await _v(q.queue())
        statuses = {r["id"]: r["status"] for r in rows}
        _check_status_values(statuses)
        assert statuses == status
        assert {r["id"]: r["data"] for r in rows} == item_of
        assert await _v(q.acked_count()) == 1
        assert await _v(q.ack_failed_count()) == 1
        assert await _v(q.unack_count()) == 1
        assert await _v(q.ready_count()) == 1
        assert await _v(q.qsize()) == 3  # inited + ready
        assert await _v(q.active_size()) == 4  # inited + ready + unack
        frow = next(r for r in rows if r["id"] == failed_id)
        assert await _v(q.failed()) == [
            {"pqid": failed_id, "data": item_of[failed_id], "timestamp": frow["timestamp"], "attempts": 0}
        ]  # persist-queue counted no attempts
    finally:
        await _v(q.close())

    # 2. Opened with auto_resume=True: persist-queue recorded no owner for its
    # in-flight item, so nobody can tell whether its consumer still lives; it
    # is resumed (as persist-queue itself does at open).
    q = await _open(mode, kind, path, auto_resume=True)
    try:
        statuses = {r["id"]: r["status"] for r in await _v(q.queue())}
        assert statuses[unack_id] == AckStatus.ready
        assert await _v(q.unack_count()) == 0
        assert await _v(q.ready_count()) == 2
        waiting = _queue_order(kind, [i for i in ids if status[i] in (0, 1, 2)])
        got = []
        for _ in waiting:
            got.append(await _v(q.get(block=False, raw=True)))
        with pytest.raises(persistq.Empty):
            await _v(q.get_nowait())
        assert [g["pqid"] for g in got] == waiting  # in persist-queue's order
        assert [g["data"] for g in got] == [item_of[i] for i in waiting]
        # Settle with persistq; the last one stays in flight (a graceful close gives it back).
        await _v(q.ack(got[0]))
        await _v(q.nack(got[1]))
        await _v(q.ack_failed(got[2]))
        new_ids = [await _v(q.put(item)) for item in NEW_ITEMS]
        assert None not in new_ids
        if kind == "unique":
            assert await _v(q.put(NEW_ITEMS[0])) is None
        assert await _v(q.acked_count()) == 2
        assert await _v(q.ack_failed_count()) == 2
        assert await _v(q.unack_count()) == 1
    finally:
        await _v(q.close())

    # 3. persist-queue reads the table back.
    expected_status = dict(status)
    expected_status.update(
        {
            got[0]["pqid"]: AckStatus.acked,
            got[1]["pqid"]: AckStatus.ready,
            got[2]["pqid"]: AckStatus.ack_failed,
            got[3]["pqid"]: AckStatus.ready,
        }
    )
    expected_status.update(dict.fromkeys(new_ids, int(AckStatus.inited)))
    item_of.update(zip(new_ids, NEW_ITEMS, strict=True))
    seen = _pq_read_back(kind, path)
    _check_status_values(seen["statuses"])
    assert seen["statuses"] == expected_status
    assert seen["counts"] == {"acked": 2, "ack_failed": 2, "unack": 0}
    waiting = _queue_order(kind, [got[1]["pqid"], got[3]["pqid"], *new_ids])
    assert seen["qsize"] == len(waiting)
    assert [b["pqid"] for b in seen["got"]] == waiting
    assert [b["data"] for b in seen["got"]] == [item_of[i] for i in waiting]
    assert seen["acked"] == waiting
    assert seen["acked_count_after"] == 2 + len(waiting)

    # 4. And persistq sees persist-queue's acks.
    q = await _open(mode, kind, path)
    try:
        assert await _v(q.acked_count()) == 2 + len(waiting)
        assert await _v(q.ack_failed_count()) == 2
        assert await _v(q.active_size()) == 0
    finally:
        await _v(q.close())


@pytest.mark.parametrize("kind", list(KINDS))
def test_sync_ack_queue_opens_persistqueue_database_in_place(kind: str, qpath: str) -> None:
    """persistq.sync keeps a persist-queue ack table's statuses and order, and persist-queue reads it back."""
    _drive(_check_in_place("sync", kind, qpath))


@pytest.mark.anyio
@pytest.mark.parametrize("kind", list(KINDS))
async def test_async_ack_queue_opens_persistqueue_database_in_place(kind: str, qpath: str) -> None:
    """The async ack queue keeps a persist-queue table's statuses and order; persist-queue reads it back."""
    await _check_in_place("async", kind, qpath)


@pytest.mark.parametrize("kind", list(KINDS))
def test_persistq_columns_are_added_not_substituted(kind: str, qpath: str) -> None:
    """persistq adds pq_attempts, pq_lease, pq_owner and pq_ready_at after persist-queue's four columns."""
    _pq_write(kind, qpath)
    with KINDS[kind][2](qpath):
        pass
    con = sqlite3.connect(str(Path(qpath) / "data.db"))
    try:
        columns = [r[1] for r in con.execute(f"PRAGMA table_info({KINDS[kind][3]}_default)")]
    finally:
        con.close()
    assert columns == [
        "_id",
        "data",
        "timestamp",
        "status",
        "pq_attempts",
        "pq_lease",
        "pq_owner",
        "pq_ready_at",
    ]


def test_unique_ack_queue_refuses_items_equal_to_live_items_of_the_other_library(qpath: str) -> None:
    """UniqueAckQ: persistq refuses an item equal to a live one put by persist-queue, and vice versa."""
    ids, _ = _pq_unique_put(qpath, ["job-1", {"b": 2, "a": 1}])
    assert None not in ids
    with persistq.sync.UniqueAckQ(qpath) as q:
        assert q.put("job-1") is None
        assert q.put({"a": 1, "b": 2}) is None
        assert q.put("job-2") is not None
        assert q.qsize() == 3
    assert _pq_unique_put(qpath, ["job-2"]) == ([None], 3)
