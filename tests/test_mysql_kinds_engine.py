"""The MySQL engines' every queue kind at engine level (no kind classes), against the throwaway MariaDB.

FILO, priority and unique tables of :class:`MySQLEngine`, the four ack kinds
of :class:`MySQLAckEngine` and :class:`MySQLDictStore`, on asyncio (aiomysql)
and trio (PyMySQL threads); several behaviours are checked against
:class:`SQLiteEngine` running the same steps.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import multiprocessing
import os
import random
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import anyio
import pytest
from _mysql_support import drop_tables, server_env
from _mysql_support import sql as _sql

from persistq._owner import owner_alive
from persistq.engines.mysql import MySQLEngine, MySQLParams, _pending_table
from persistq.engines.mysql_ack import MySQLAckEngine
from persistq.engines.mysql_dict import MAX_KEY_BYTES, KeyTooLong, MySQLDictStore
from persistq.engines.sqlite import SQLiteEngine, TableSpec
from persistq.engines.sqlite_ack import ACK_FAILED, ACKED, INITED, READY, UNACK, AckTableSpec, SQLiteAckEngine
from persistq.errors import InvalidName, ItemNotFound, SerializerMismatch, StorageError

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
if TESTS_DIR not in sys.path:  # spawn children get the parent's sys.path
    sys.path.insert(0, TESTS_DIR)

import _mysql_kinds_children  # noqa: E402

CTX = multiprocessing.get_context("spawn")
Order = Literal["fifo", "filo", "priority"]
ORDERS: list[Order] = ["fifo", "filo", "priority"]


@pytest.fixture
def env() -> dict[str, str]:
    """The server's settings; fail on CI without a server, else skip."""
    return server_env()


@pytest.fixture
def params(env: dict[str, str]) -> MySQLParams:
    """Where the engines under test live."""
    return MySQLParams(env["host"], int(env["port"]), env["user"], env["database"], env["password"])


@pytest.fixture
def table(env: dict[str, str]) -> Iterator[str]:
    """A table name unique to the test; its tables (queue, pending, dict) are dropped afterwards."""
    name = "mysqlkinds_" + uuid.uuid4().hex[:12]
    yield name
    drop_tables(env, name, _pending_table(name), f"dict_{name}", f"{name}_ack")


def new(*datas: bytes, priority: int | None = None) -> list[tuple[bytes, float, int | None]]:
    """Rows to put: each of ``datas`` with the same timestamp and ``priority``."""
    stamp = time.time()
    return [(d, stamp, priority) for d in datas]


@contextlib.asynccontextmanager
async def opened(engine: Any) -> AsyncIterator[Any]:
    """``engine``, opened, closed on the way out."""
    await engine.open()
    try:
        yield engine
    finally:
        await engine.close()


def queue_engine(params: MySQLParams, table: str, order: Order = "fifo", unique: bool = False) -> MySQLEngine:
    """A :class:`MySQLEngine` of ``table``."""
    return MySQLEngine(params, TableSpec(table, order, unique), "pickle")


def ack_engine(
    params: MySQLParams, table: str, order: Order = "fifo", unique: bool = False
) -> MySQLAckEngine:
    """A :class:`MySQLAckEngine` of ``table``."""
    return MySQLAckEngine(params, AckTableSpec(table, order, unique), "pickle")


def datas(rows: list[Any]) -> list[bytes]:
    """The data field of each row."""
    return [bytes(r[1]) for r in rows]


# ------------------------------------------------------------- queue engine


@pytest.mark.anyio
async def test_filo_claims_the_newest_first(params: MySQLParams, table: str) -> None:
    """A FILO table hands out the highest id first, and rows() lists that order."""
    async with opened(queue_engine(params, table, "filo")) as e:
        await e.put(new(b"a", b"b", b"c"))
        assert datas(await e.rows()) == [b"c", b"b", b"a"]
        assert datas(await e.claim(2)) == [b"c", b"b"]
        await e.put(new(b"d"))
        assert datas(await e.claim(5)) == [b"d", b"a"]
        assert await e.count() == 0


@pytest.mark.anyio
async def test_priority_lowest_first_then_oldest_with_the_priority_in_the_fourth_field(
    env: dict[str, str], params: MySQLParams, table: str
) -> None:
    """Priority claims go by (priority, _id); rows read back carry the priority as SQLiteEngine's do."""
    async with opened(queue_engine(params, table, "priority")) as e:
        stamp = time.time()
        ids = await e.put(
            [(b"a", stamp, 5), (b"b", stamp, 1), (b"c", stamp, 5), (b"d", stamp, -3), (b"e", stamp, 1)]
        )
        assert ids is not None
        assert None not in ids
        await e.put(new(b"f", priority=2**62))
        assert [(r[1], r[3]) for r in await e.rows()] == [
            (b"d", -3),
            (b"b", 1),
            (b"e", 1),
            (b"a", 5),
            (b"c", 5),
            (b"f", 2**62),
        ]
        (first,) = await e.claim(1)
        assert (first[1], first[3]) == (b"d", -3)
        assert [(r[1], r[3]) for r in await e.claim(2)] == [(b"b", 1), (b"e", 1)]
        (by_id,) = await e.claim(1, ids[2])
        assert (by_id[0], by_id[1], by_id[3]) == (ids[2], b"c", 5)
        assert await e.count() == 2
    index = _sql(env, f"SHOW INDEX FROM `{table}` WHERE Key_name = 'prio_id'")
    assert [(r[3], r[4]) for r in index] == [(1, "priority"), (2, "_id")]


@pytest.mark.anyio
async def test_priority_rows_given_back_keep_their_priority_and_place(
    env: dict[str, str], params: MySQLParams, table: str
) -> None:
    """release, restore and recover put pending rows back with their priority, in their old places."""
    async with opened(queue_engine(params, table, "priority")) as e:
        stamp = time.time()
        await e.put([(b"a", stamp, 3), (b"b", stamp, 1), (b"c", stamp, 2)])
        held = await e.claim(2, owner="tok")
        assert [(r[1], r[3]) for r in held] == [(b"b", 1), (b"c", 2)]
        pending = _sql(env, f"SELECT data, priority FROM `{_pending_table(table)}` ORDER BY _id")
        assert [(bytes(d), p) for d, p in pending] == [(b"b", 1), (b"c", 2)]
        await e.put(new(b"d", priority=1))
        assert await e.release("tok") == 2
        assert [(r[1], r[3]) for r in await e.rows()] == [(b"b", 1), (b"d", 1), (b"c", 2), (b"a", 3)]
        taken = await e.claim(1)
        await e.restore(taken)
        assert [(r[1], r[3]) for r in await e.rows()] == [(b"b", 1), (b"d", 1), (b"c", 2), (b"a", 3)]
        held = await e.claim(3, owner="tok2")
        await e.finish([held[0][0]])
        assert await e.recover(lambda owner: False) == 2
        assert [(r[1], r[3]) for r in await e.rows()] == [(b"d", 1), (b"c", 2), (b"a", 3)]
        assert _sql(env, f"SELECT COUNT(*) FROM `{_pending_table(table)}`") == [(0,)]


@pytest.mark.anyio
@pytest.mark.parametrize("order", ORDERS)
async def test_unique_put_of_equal_bytes_stores_nothing(
    env: dict[str, str], params: MySQLParams, table: str, order: Order
) -> None:
    """A duplicate of a waiting item, or within the put, gets id None; an item got may be put again."""
    prio = 0 if order == "priority" else None
    async with opened(queue_engine(params, table, order, unique=True)) as e:
        ids = await e.put(new(b"a", b"b", b"a", priority=prio))
        assert ids is not None
        assert ids[2] is None
        assert None not in ids[:2]
        again = await e.put(new(b"b", b"c", priority=prio))
        assert again is not None
        assert again[0] is None
        assert again[1] is not None
        assert await e.count() == 3
        stored = _sql(env, f"SELECT data, data_hash FROM `{table}`")
        assert all(bytes(h) == hashlib.sha256(bytes(d)).digest() for d, h in stored)
        (got,) = await e.claim(1)
        assert got[1] == (b"c" if order == "filo" else b"a")
        back = await e.put(new(got[1], priority=prio))
        assert back is not None
        assert back[0] is not None
        assert sorted(datas(await e.rows())) == [b"a", b"b", b"c"]


async def _unique_story(e: Any, prio: bool) -> list[Any]:
    """Puts, claims with and without an owner, release and restore on a unique table; what each step saw."""

    def p(i: int) -> int | None:
        return i if prio else None

    stamp = time.time()
    out: list[Any] = []

    def seen(rows: list[Any]) -> list[tuple[bytes, int | None]]:
        return [(bytes(r[1]), r[3]) for r in rows]

    ids = await e.put([(b"a", stamp, p(2)), (b"b", stamp, p(1)), (b"a", stamp, p(0)), (b"c", stamp, p(1))])
    out.append([i is None for i in ids])
    out.append(seen(await e.rows()))
    out.append(seen(await e.claim(1)))
    held = await e.claim(1, owner="tok")
    out.append(seen(held))
    again = await e.put([(held[0][1], stamp, p(5)), (b"d", stamp, p(0))])
    out.append([i is None for i in again])
    out.append(await e.release("tok"))
    out.append(seen(await e.rows()))
    taken = await e.claim(2)
    await e.restore(taken)
    out.append(seen(await e.rows()))
    dup = await e.put([(taken[0][1], stamp, p(9))])
    out.append([i is None for i in dup])
    out.append(await e.count())
    return out


@pytest.mark.anyio
@pytest.mark.parametrize("order", ORDERS)
async def test_unique_claim_pending_restore_match_sqlite(
    params: MySQLParams, table: str, tmp_path: Path, order: Order
) -> None:
    """Unique tables on MySQL and SQLite see the same through puts, holds, release and restore.

    A put equal to an item held in the pending table is stored; when the held
    item is given back, the stored copy stands for both; restored rows keep a
    hash that still refuses their duplicates.
    """
    prio = order == "priority"
    async with opened(
        SQLiteEngine(str(tmp_path / "q"), None, TableSpec(table, order, True), "pickle")
    ) as lite:
        expected = await _unique_story(lite, prio)
    async with opened(queue_engine(params, table, order, unique=True)) as e:
        assert await _unique_story(e, prio) == expected


@pytest.mark.anyio
async def test_unique_update_keeps_the_hash_of_waiting_and_pending_items(
    params: MySQLParams, table: str
) -> None:
    """Updating a waiting or pending item moves its hash with its bytes; to a waiting equal, it fails."""
    async with opened(queue_engine(params, table, unique=True)) as e:
        a, b = await e.put(new(b"a", b"b"))
        assert a is not None
        assert b is not None
        await e.update(b, b"B")
        assert (await e.put(new(b"B")))[0] is None
        fresh = await e.put(new(b"b"))
        assert fresh is not None
        assert fresh[0] is not None
        with pytest.raises(StorageError):
            await e.update(b, b"a")
        (held,) = await e.claim(1, owner="tok")
        assert held[1] == b"a"
        await e.update(held[0], b"Z")
        assert await e.release("tok") == 1
        assert (await e.put(new(b"Z")))[0] is None
        assert (await e.put(new(b"a")))[0] is not None
        assert sorted(datas(await e.rows())) == [b"B", b"Z", b"a", b"b"]
        with pytest.raises(ItemNotFound):
            await e.update(10**12, b"x")


@pytest.mark.anyio
@pytest.mark.parametrize("ack", [False, True], ids=["queue", "ack"])
async def test_unique_puts_of_equal_items_in_opposite_orders_do_not_deadlock(
    params: MySQLParams, table: str, ack: bool
) -> None:
    """Concurrent puts of the same items in opposite orders, on four connections, store every item once.

    Each would wait for the other's uncommitted rows (an InnoDB deadlock,
    again in every retry): puts of several items on a unique table take
    turns on the table's lock row instead.
    """
    make = ack_engine if ack else queue_engine
    engines = [make(params, table, unique=True) for _ in range(4)]
    async with contextlib.AsyncExitStack() as stack:
        for engine in engines:
            await stack.enter_async_context(opened(engine))
        for rnd in range(100):
            items = [f"{rnd}:{k}".encode() for k in range(20)]
            stored: list[int] = []

            async def put(
                engine: Any, reverse: bool, items: list[bytes] = items, stored: list[int] = stored
            ) -> None:
                ids = await engine.put(new(*(items[::-1] if reverse else items)))
                stored.extend(i for i in ids if i is not None)

            async with anyio.create_task_group() as tg:
                for k, engine in enumerate(engines):
                    tg.start_soon(put, engine, bool(k % 2))
            assert len(stored) == len(items)


@pytest.mark.anyio
@pytest.mark.parametrize("unique", [False, True])
async def test_put_accepts_alts_and_ignores_them(params: MySQLParams, table: str, unique: bool) -> None:
    """put(rows, maxsize, alts) has SQLiteEngine's signature; alts are not probed on MySQL."""
    async with opened(queue_engine(params, table, unique=unique)) as e:
        assert None not in (await e.put(new(b"y"), 0, None) or [None])
        ids = await e.put(new(b"x"), 0, [b"y"])
        assert ids is not None
        assert ids[0] is not None
        assert datas(await e.rows()) == [b"y", b"x"]


@pytest.mark.anyio
@pytest.mark.parametrize(("order", "unique"), [("priority", False), ("fifo", True)])
async def test_maxsize_holds_on_priority_and_unique_tables(
    params: MySQLParams, table: str, order: Order, unique: bool
) -> None:
    """A bounded put that would pass maxsize stores nothing and returns None."""
    async with opened(queue_engine(params, table, order, unique)) as e:
        assert await e.put(new(b"a", b"b", priority=0), 2) is not None
        assert await e.put(new(b"c", priority=0), 2) is None
        await e.claim(1)
        assert await e.put(new(b"c", priority=0), 2) is not None
        assert await e.count() == 2


@pytest.mark.anyio
async def test_data_version_sees_a_priority_get_from_the_middle_of_the_ids(
    params: MySQLParams, table: str
) -> None:
    """A get that takes neither the lowest nor the highest id still changes data_version."""
    async with (
        opened(queue_engine(params, table, "priority")) as e1,
        opened(queue_engine(params, table, "priority")) as e2,
    ):
        stamp = time.time()
        await e1.put([(b"a", stamp, 5), (b"b", stamp, 1), (b"c", stamp, 5)])
        before = await e1.data_version()
        assert await e1.data_version() == before
        assert datas(await e2.claim(1)) == [b"b"]
        assert await e1.data_version() != before


@pytest.mark.anyio
async def test_a_table_made_for_another_kind_is_refused(params: MySQLParams, table: str) -> None:
    """Opening a FIFO table as a priority or unique table fails with a StorageError naming the column."""
    async with opened(queue_engine(params, table)) as e:
        await e.put(new(b"a"))
    with pytest.raises(StorageError, match="priority"):
        await queue_engine(params, table, "priority").open()
    with pytest.raises(StorageError, match="data_hash"):
        await queue_engine(params, table, unique=True).open()


@pytest.mark.anyio
async def test_table_names_up_to_64_characters(env: dict[str, str], params: MySQLParams) -> None:
    """A 64-character name works for every kind (the pending table's name is shortened); 65 is refused."""
    name = ("mysqlkinds_" + uuid.uuid4().hex).ljust(64, "x")
    try:
        async with opened(queue_engine(params, name, "priority", unique=True)) as e:
            await e.put(new(b"a", priority=1))
            assert datas(await e.claim(1, owner="tok")) == [b"a"]
            assert await e.release("tok") == 1
        assert len(_pending_table(name)) <= 64
    finally:
        drop_tables(env, name, _pending_table(name))
    for make in (queue_engine, ack_engine):
        with pytest.raises(InvalidName):
            make(params, name + "x")
    with pytest.raises(InvalidName):
        MySQLDictStore(params, name[:60], "pickle")  # dict_ + 60 > 64


@pytest.mark.anyio
async def test_servers_without_returning_or_skip_locked_get_the_same_results(
    params: MySQLParams, table: str
) -> None:
    """The statements for MySQL 8 (no RETURNING) and MariaDB < 10.6 (no SKIP LOCKED) on this server agree."""
    async with (
        opened(queue_engine(params, table, "priority", unique=True)) as e,
        opened(ack_engine(params, table + "_ack", unique=True)) as a,
        opened(MySQLDictStore(params, table, "pickle")) as d,
    ):
        # What the engines learnt of the server at open picks the statements:
        # this runs the other servers' statements on this one.
        for engine in (e, a, d):
            engine._server = dataclasses.replace(engine._server, returning=False, skip_locked=False)
        ids = await e.put(new(b"a", b"b", b"a", b"c", priority=1))
        assert ids is not None
        assert [i is None for i in ids] == [False, False, True, False]
        assert ids[0] < ids[1] < ids[3]
        assert [(r[0], r[1]) for r in await e.claim(2)] == [(ids[0], b"a"), (ids[1], b"b")]
        put = await a.put(new(b"x", b"x", b"y"))
        assert put is not None
        assert [i is None for i in put] == [False, True, False]
        (x,) = (await a.claim(1, None, None, "tok", None, 0)).rows
        await a.set_final([x[0]], ACKED, 0)  # acked and trimmed: its fingerprint stays
        assert [i is None for i in await a.put(new(b"y", b"x", b"z")) or []] == [True, True, False]
        await d.set("k", b"1")
        assert await d.pop("k") == b"1"
        assert await d.pop("k") is None


# --------------------------------------------------------------- ack engine


@pytest.mark.anyio
@pytest.mark.parametrize("unique", [False, True])
@pytest.mark.parametrize("order", ORDERS)
async def test_ack_claim_order_of_every_kind(
    params: MySQLParams, table: str, order: Order, unique: bool
) -> None:
    """Ack claims follow the kind's order over new and given-back rows, and carry the priority."""
    async with opened(ack_engine(params, table, order, unique)) as e:
        prio = order == "priority"
        stamp = time.time()
        await e.put(
            [
                (b"a", stamp, 3 if prio else None),
                (b"b", stamp, 1 if prio else None),
                (b"c", stamp, 2 if prio else None),
            ]
        )
        expected = {"fifo": [b"a", b"b", b"c"], "filo": [b"c", b"b", b"a"], "priority": [b"b", b"c", b"a"]}[
            order
        ]
        first = (await e.claim(1, None, None, "tok", None, 0)).rows
        assert datas(first) == expected[:1]
        assert first[0][4:] == (UNACK, 1)
        assert first[0][3] == ({b"a": 3, b"b": 1, b"c": 2}[first[0][1]] if prio else None)
        await e.nack([first[0][0]], 0, 0)
        # A row given back keeps its place among the new ones.
        claim = await e.claim(3, None, None, "tok", None, 0)
        assert datas(claim.rows) == expected
        assert [r[5] for r in claim.rows] == [2, 1, 1]
        assert [r[3] for r in claim.rows] == (
            [{b"a": 3, b"b": 1, b"c": 2}[d] for d in expected] if prio else [None] * 3
        )
        rows = await e.rows(None)
        assert [(r[1], r[3], r[4]) for r in rows] == [
            (d, {b"a": 3, b"b": 1, b"c": 2}[d] if prio else None, UNACK) for d in (b"a", b"b", b"c")
        ]
        assert (await e.claim(1, None, None, "tok", None, 0)).rows == []


async def _ack_story(e: Any, prio: bool) -> list[Any]:
    """Puts, claims (in order, by id, next after an id), nacks, acks and re-puts; what each step saw."""

    def p(i: int) -> int | None:
        return i if prio else None

    stamp = time.time()
    out: list[Any] = []

    def seen(rows: list[Any]) -> list[tuple[bytes, int | None, int, int]]:
        return [(bytes(r[1]), r[3], r[4], r[5]) for r in rows]

    async def claim(n: int, item_id: int | None = None, after_id: int | None = None) -> list[Any]:
        rows: list[Any] = (await e.claim(n, item_id, after_id, "tok", None, 0)).rows
        out.append(seen(rows))
        return rows

    ids = await e.put([(d, stamp, p(k % 3)) for k, d in enumerate([b"a", b"b", b"c", b"a", b"d", b"e"])])
    out.append([i is None for i in ids])
    first = await claim(2)
    await claim(1, after_id=first[0][0])
    await e.nack([first[0][0]], 0, 0)
    await claim(1, after_id=first[1][0])
    await e.set_final([first[1][0]], ACKED, None)
    again = await e.put([(first[1][1], stamp, p(1)), (first[0][1], stamp, p(0))])
    out.append([i is None for i in again])
    rest = await claim(10)
    await e.nack([r[0] for r in rest[:2]], 0, 0)
    await claim(10)
    out.append([(bytes(r[1]), r[3], r[4], r[5]) for r in await e.rows(None)])
    return out


@pytest.mark.anyio
@pytest.mark.parametrize("unique", [False, True])
@pytest.mark.parametrize("order", ORDERS)
async def test_ack_kinds_match_sqlite(
    params: MySQLParams, table: str, tmp_path: Path, order: Order, unique: bool
) -> None:
    """Every ack kind sees the same on MySQL as on SQLite through puts, claims, next-in-order, nacks, acks."""
    prio = order == "priority"
    spec = AckTableSpec(table, order, unique)
    async with opened(SQLiteAckEngine(str(tmp_path / "q"), None, spec, "pickle")) as lite:
        expected = await _ack_story(lite, prio)
    async with opened(ack_engine(params, table, order, unique)) as e:
        assert await _ack_story(e, prio) == expected


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("order", "unique"), [("filo", False), ("priority", False), ("fifo", True), ("priority", True)]
)
async def test_ack_nack_fail_and_dead_letters(
    params: MySQLParams, table: str, order: Order, unique: bool
) -> None:
    """max_attempts makes a twice-nacked row a dead letter; requeue, fail, clear and errors as FIFO ack."""
    async with opened(ack_engine(params, table, order, unique)) as e:
        x, y = await e.put(new(b"x", b"y", priority=7 if order == "priority" else None))
        assert x is not None
        assert y is not None
        one = (await e.claim(1, x, None, "tok", None, 2)).rows
        assert [(r[0], r[5]) for r in one] == [(x, 1)]
        await e.nack([x], 0, 2)
        assert (await e.counts(2)) == {READY: 1, INITED: 1}
        assert [(r[0], r[5]) for r in (await e.claim(1, x, None, "tok", None, 2)).rows] == [(x, 2)]
        await e.nack([x], 0, 2)
        assert await e.counts(2) == {ACK_FAILED: 1, INITED: 1}
        dead = await e.rows(ACK_FAILED)
        assert [(r[0], r[1], r[5]) for r in dead] == [(x, b"x", 2)]
        assert dead[0][3] == (7 if order == "priority" else None)
        with pytest.raises(ItemNotFound):
            await e.nack([x], 0, 2)  # failed rows are requeued, not nacked
        await e.set_final([y], ACKED, None)
        assert await e.requeue_failed(None) == 1
        again = (await e.claim(1, None, None, "tok", None, 2)).rows
        assert [(r[0], r[5]) for r in again] == [(x, 1)]
        await e.set_final([x], ACK_FAILED, None)
        assert await e.counts(2) == {ACKED: 1, ACK_FAILED: 1}
        assert await e.clear_acked(None, 0, True) == 2
        assert await e.rows(None) == []
        with pytest.raises(ItemNotFound):
            await e.set_final([x], ACKED, None)


@pytest.mark.anyio
async def test_ack_priority_lease_expiry_redelivers_the_row(params: MySQLParams, table: str) -> None:
    """A priority row whose lease ends is delivered again, with its priority and a second attempt."""
    async with opened(ack_engine(params, table, "priority")) as e:
        stamp = time.time()
        await e.put([(b"late", stamp, 9), (b"soon", stamp, -1)])
        first = (await e.claim(1, None, None, "tok", 0.3, 0)).rows
        assert [(r[1], r[3], r[5]) for r in first] == [(b"soon", -1, 1)]
        await e.set_final([(await e.claim(1, None, None, "tok", None, 0)).rows[0][0]], ACKED, None)
        empty = await e.claim(1, None, None, "tok", None, 0)
        assert empty.rows == []
        assert empty.next_due is not None
        await anyio.sleep(max(0.0, empty.next_due - time.time()) + 0.05)
        again = (await e.claim(1, None, None, "tok2", None, 0)).rows
        assert [(r[1], r[3], r[5]) for r in again] == [(b"soon", -1, 2)]


@pytest.mark.anyio
@pytest.mark.parametrize("order", ORDERS)
async def test_unique_ack_refuses_equal_rows_of_every_status_and_trimmed_fingerprints(
    params: MySQLParams, table: str, order: Order
) -> None:
    """An equal row of any status (new, in flight, given back, acked, failed) or a trimmed row's
    fingerprint refuses a put; clear_acked and forget_acked let it in again."""
    prio = 0 if order == "priority" else None
    async with opened(ack_engine(params, table, order, unique=True)) as e:
        ids = await e.put(new(b"a", b"b", b"a", priority=prio))
        assert ids is not None
        assert ids[2] is None
        a, b = ids[0], ids[1]
        assert a is not None
        assert b is not None
        await e.claim(1, a, None, "tok", None, 0)
        assert await e.put(new(b"a", priority=prio)) == [None]
        await e.nack([a], 0, 0)
        assert await e.put(new(b"a", priority=prio)) == [None]
        await e.claim(1, a, None, "tok", None, 0)
        await e.set_final([a], ACKED, None)
        put = await e.put(new(b"c", b"a", b"d", b"a", priority=prio))
        assert put is not None
        assert put[1] is None  # acked
        assert put[3] is None
        assert put[0] is not None
        assert put[2] is not None
        assert put[0] < put[2]
        live = [(r[1], r[4]) for r in await e.rows(None)]
        assert sorted(live) == [(b"a", ACKED), (b"b", INITED), (b"c", INITED), (b"d", INITED)]
        await e.set_final([b], ACK_FAILED, None)
        assert await e.put(new(b"b", b"b", priority=prio)) == [None, None]  # failed
        c = put[0]
        with pytest.raises(StorageError):
            await e.update(c, b"d")
        await e.update(c, b"C")
        assert await e.put(new(b"C", priority=prio)) == [None]
        assert None not in (await e.put(new(b"c", priority=prio)) or [None])
        await e.set_final([c], ACKED, 0)  # trims every acked row (a, C), keeping fingerprints
        assert all(r[4] != ACKED for r in await e.rows(None))
        assert await e.put(new(b"a", b"C", priority=prio)) == [None, None]
        assert await e.forget_acked(3600) == 0
        assert await e.forget_acked(0) == 2
        assert None not in (await e.put(new(b"a", b"C", priority=prio)) or [None])


# --------------------------------------------------------------- dict store


@pytest.mark.anyio
async def test_dict_order_replace_keeps_place_and_deleted_keys_go_to_the_end(
    params: MySQLParams, table: str
) -> None:
    """Entries come in insertion order; a re-set keeps its place, a deleted key set again goes last."""
    async with opened(MySQLDictStore(params, table, "pickle")) as d:
        for key, value in (("b", b"1"), ("a", b"2"), ("c", b"3")):
            await d.set(key, value)
        await d.set("b", b"4")
        assert [(k, v) for _, k, v in await d.page("items", None, None)] == [
            ("b", b"4"),
            ("a", b"2"),
            ("c", b"3"),
        ]
        assert await d.delete("a")
        assert not await d.delete("a")
        await d.set("a", b"5")
        assert [k for _, k, v in await d.page("keys", None, None)] == ["b", "c", "a"]
        assert all(v == b"" for _, _, v in await d.page("keys", None, None))
        first = await d.page("items", None, 2)
        assert [k for _, k, _ in first] == ["b", "c"]
        assert [k for _, k, _ in await d.page("items", first[-1][0], 2)] == ["a"]
        assert await d.get("b") == b"4"
        assert await d.get("zz") is None
        assert await d.contains("c")
        assert not await d.contains("zz")
        assert await d.count() == 3


@pytest.mark.anyio
async def test_dict_pop_popitem_setdefault_update_and_clear(params: MySQLParams, table: str) -> None:
    """pop, popitem (newest first), setdefault (stores once), update (last value wins) and clear."""
    async with opened(MySQLDictStore(params, table, "pickle")) as d:
        await d.update([("x", b"1"), ("y", b"2"), ("x", b"3"), ("z", b"4")])
        assert [(k, v) for _, k, v in await d.page("items", None, None)] == [
            ("x", b"3"),
            ("y", b"2"),
            ("z", b"4"),
        ]
        assert await d.setdefault("y", b"new") == b"2"
        assert await d.setdefault("w", b"5") is None
        assert await d.get("w") == b"5"
        assert await d.pop("y") == b"2"
        assert await d.pop("y") is None
        assert await d.popitem() == ("w", b"5")
        assert await d.popitem() == ("z", b"4")
        await d.update([])
        assert await d.clear() == 1
        assert await d.popitem() is None
        assert await d.count() == 0


@pytest.mark.anyio
async def test_dict_keys_longer_than_3072_bytes_raise_key_too_long(params: MySQLParams, table: str) -> None:
    """A key of more than 3072 UTF-8 bytes raises KeyTooLong (a ValueError) and writes nothing; 3072 fit."""
    async with opened(MySQLDictStore(params, table, "pickle")) as d:
        longest = "\u20ac" * (MAX_KEY_BYTES // 3)  # 3 bytes each: exactly 3072
        await d.set(longest, b"ok")
        assert await d.get(longest) == b"ok"
        too_long = longest + "a"
        with pytest.raises(KeyTooLong) as info:
            await d.set(too_long, b"no")
        assert isinstance(info.value, ValueError)
        assert info.value.size == MAX_KEY_BYTES + 1
        with pytest.raises(KeyTooLong):
            await d.setdefault(too_long, b"no")
        with pytest.raises(KeyTooLong):
            await d.update([("fine", b"1"), (too_long, b"no")])
        assert await d.get(too_long) is None
        assert not await d.contains(too_long)
        assert await d.pop(too_long) is None
        assert [k for _, k, _ in await d.page("keys", None, None)] == [longest]


@pytest.mark.anyio
async def test_dict_keys_compare_exactly(params: MySQLParams, table: str) -> None:
    """Keys differing in case, trailing spaces, accents or only by being empty are different keys."""
    keys = ["a", "A", "a ", "", "é", "e\u0301", "\U0001f600"]
    async with opened(MySQLDictStore(params, table, "pickle")) as d:
        for i, key in enumerate(keys):
            await d.set(key, str(i).encode())
        assert await d.count() == len(keys)
        for i, key in enumerate(keys):
            assert await d.get(key) == str(i).encode()
        assert [k for _, k, _ in await d.page("keys", None, None)] == keys


@pytest.mark.anyio
async def test_dict_concurrent_popitems_take_each_entry_once(params: MySQLParams, table: str) -> None:
    """Many popitem calls over two stores and six connections: every entry is popped exactly once."""
    async with (
        opened(MySQLDictStore(params, table, "pickle", pool_size=3)) as d1,
        opened(MySQLDictStore(params, table, "pickle", pool_size=3)) as d2,
    ):
        await d1.update([(f"k{i}", str(i).encode()) for i in range(60)])
        popped: list[tuple[str, bytes]] = []

        async def popper(d: MySQLDictStore) -> None:
            while (entry := await d.popitem()) is not None:
                popped.append(entry)

        async with anyio.create_task_group() as tg:
            for i in range(8):
                tg.start_soon(popper, d1 if i % 2 else d2)
        assert sorted(popped) == sorted((f"k{i}", str(i).encode()) for i in range(60))
        assert await d1.count() == 0


@pytest.mark.anyio
async def test_dict_entries_outlive_the_store_and_keep_their_serializer(
    params: MySQLParams, table: str
) -> None:
    """A reopened store finds the entries in order; another serializer is refused."""
    async with opened(MySQLDictStore(params, table, "json")) as d:
        await d.set("one", b"1")
        await d.set("two", b"2")
        await d.vacuum()
    async with opened(MySQLDictStore(params, table, "json")) as d:
        assert [(k, v) for _, k, v in await d.page("items", None, None)] == [("one", b"1"), ("two", b"2")]
    with pytest.raises(SerializerMismatch):
        await MySQLDictStore(params, table, "pickle").open()


@pytest.mark.anyio
async def test_dict_data_version_changes_with_every_commit_of_another_store(
    params: MySQLParams, table: str
) -> None:
    """data_version moves on a new key, a replaced value (same length), a pop and a clear by another store."""
    async with (
        opened(MySQLDictStore(params, table, "pickle")) as d1,
        opened(MySQLDictStore(params, table, "pickle")) as d2,
    ):
        seen = [await d1.data_version()]
        assert await d1.data_version() == seen[0]
        changes: list[Callable[[], Awaitable[object]]] = [
            lambda: d2.set("a", b"1"),
            lambda: d2.set("b", b"2"),
            lambda: d2.set("a", b"3"),
            lambda: d2.pop("a"),
            d2.clear,
        ]
        for change in changes:
            await change()
            seen.append(await d1.data_version())
            assert seen[-1] != seen[-2]


# ------------------------------------------------------------ multi-process


@pytest.mark.parametrize("ack", [False, True], ids=["queue", "ack"])
@pytest.mark.parametrize(
    ("order", "unique"), [("priority", False), ("fifo", True)], ids=["priority", "unique"]
)
def test_four_processes_put_and_claim_every_item_once(
    env: dict[str, str], table: str, tmp_path: Path, order: Order, unique: bool, ack: bool
) -> None:
    """4 processes put (on a unique table: all the same items) and then claim: none lost, none twice."""
    per = 100
    rng = random.Random(15)
    if unique:
        # Every process puts all items: exactly one copy of each is stored.
        plans = [[(f"item{i}", 0) for i in rng.sample(range(per * 2), per * 2)] for _ in range(4)]
        expected = {f"item{i}" for i in range(per * 2)}
    else:
        plans = [[(f"p{k}:{i}", rng.randint(-5, 5)) for i in range(per)] for k in range(4)]
        expected = {d for plan in plans for d, _ in plan}
    barrier = CTX.Barrier(4)
    results = [tmp_path / f"r{k}.json" for k in range(4)]
    children = [
        CTX.Process(
            target=_mysql_kinds_children.put_then_claim,
            args=(
                env,
                table,
                order,
                unique,
                ack,
                "trio" if k % 2 else "asyncio",
                plans[k],
                1 + k % 3,
                str(results[k]),
                barrier,
            ),
        )
        for k in range(4)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(90)
        assert child.exitcode == 0
    reports = [json.loads(r.read_text()) for r in results]
    stored = [i for rep in reports for i in rep["put"] if i is not None]
    assert len(stored) == len(set(stored)) == len(expected)
    got = [tuple(g) for rep in reports for g in rep["got"]]
    assert sorted(g[0] for g in got) == sorted(stored)
    assert {g[1] for g in got} == expected
    assert len(got) == len(expected)
    if not unique:
        priorities = {d: p for plan in plans for d, p in plan}
        assert all(g[2] == priorities[g[1]] for g in got)
    left = _sql(env, f"SELECT COUNT(*) FROM `{table}`" + (f" WHERE status <> {ACKED}" if ack else ""))
    assert left == [(0,)]


@pytest.mark.anyio
@pytest.mark.parametrize("ack", [False, True], ids=["queue", "ack"])
async def test_sigkilled_holder_items_come_back_with_priority_and_hash(
    env: dict[str, str], params: MySQLParams, table: str, tmp_path: Path, ack: bool
) -> None:
    """A SIGKILLed holder's items on a unique priority table come back in place; duplicates stay refused."""
    make = ack_engine if ack else queue_engine
    async with opened(make(params, table, "priority", unique=True)) as e:
        stamp = time.time()
        await e.put([(b"a", stamp, 2), (b"b", stamp, 1), (b"c", stamp, 3)])
        result = tmp_path / "held.json"
        child = CTX.Process(
            target=_mysql_kinds_children.hold, args=(env, table, "priority", True, ack, 2, str(result))
        )
        child.start()
        try:
            with anyio.fail_after(60):
                while not result.exists():
                    await anyio.sleep(0.05)
            os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
        finally:
            await anyio.to_thread.run_sync(child.join, 30)
        held = [(d, p) for _, d, p in json.loads(result.read_text())]
        assert held == [("b", 1), ("a", 2)]
        if ack:
            assert await e.resume(owner_alive, 0) == 2
            rows = (await e.claim(3, None, None, "tok", None, 0)).rows
            assert [(r[1], r[3], r[5]) for r in rows] == [(b"b", 1, 2), (b"a", 2, 2), (b"c", 3, 1)]
            await e.nack([r[0] for r in rows], 0, 0)
        else:
            assert await e.recover(owner_alive) == 2
            assert [(r[1], r[3]) for r in await e.rows()] == [(b"b", 1), (b"a", 2), (b"c", 3)]
        assert await e.put(new(b"a", b"b", priority=0)) == [None, None]
