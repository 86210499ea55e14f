"""The PostgreSQL engines (queue, ack, dict) against a real server, at engine level, on asyncio and trio.

Most tests use the throwaway server ``make test`` starts (``PERSISTQ_PG_*``,
tables named ``postgres_…``); the tests that kill, restart or cut the server
off start a private one with ``scripts/postgres.sh``.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
if TESTS_DIR not in sys.path:  # spawn children get the parent's sys.path
    sys.path.insert(0, TESTS_DIR)

import _pg_children  # noqa: E402
from _pg_support import (  # noqa: E402
    fresh_tables,
    params,
    private_server,
    server_env,
    server_pid,
    sql,
    url,
)

from persistq._owner import new_owner, owner_alive, release_owner  # noqa: E402
from persistq.engines import _pg_listen  # noqa: E402
from persistq.engines.postgres import (  # noqa: E402
    PGParams,
    PostgresEngine,
    derived_name,
    parse_pg_url,
)
from persistq.engines.postgres_ack import PostgresAckEngine  # noqa: E402
from persistq.engines.postgres_dict import PostgresDictStore  # noqa: E402
from persistq.engines.sqlite import TableSpec  # noqa: E402
from persistq.engines.sqlite_ack import ACK_FAILED, ACKED, DELAYED, READY, UNACK, AckTableSpec  # noqa: E402
from persistq.errors import InvalidName, ItemNotFound, QueueClosed, SerializerMismatch, StorageError  # noqa: E402

CTX = multiprocessing.get_context("spawn")


@pytest.fixture
def env() -> dict[str, str]:
    """The shared throwaway server's settings."""
    return server_env()


@pytest.fixture
def table(env: dict[str, str]) -> Iterator[str]:
    """A fresh table name on the shared server, dropped afterwards."""
    with fresh_tables(env) as names:
        yield names[0]


@pytest.fixture
def tables(env: dict[str, str]) -> Iterator[list[str]]:
    """Three fresh table names on the shared server, dropped afterwards."""
    with fresh_tables(env, count=3) as names:
        yield names


@pytest.fixture(scope="module")
def private() -> Iterator[dict[str, str]]:
    """A private throwaway server for the fault tests (module-wide: starting one takes a second or two)."""
    server_env()  # same rules: skip or fail without PostgreSQL
    with private_server() as found:
        yield found


def _rows(*datas: bytes, prio: list[int] | None = None) -> list[tuple[bytes, float, int | None]]:
    return [(d, time.time(), None if prio is None else prio[i]) for i, d in enumerate(datas)]


@contextlib.asynccontextmanager
async def opened(engine: Any) -> AsyncIterator[Any]:
    """``engine``, opened, and closed afterwards."""
    await engine.open()
    try:
        yield engine
    finally:
        await engine.close()


def _wait_for(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


# ----------------------------------------------------------------- locations


def test_parse_pg_url_reads_every_part_and_percent_decodes() -> None:
    """User, password, host, port, database and ?table= come out of the URL, percent-decoded."""
    p = parse_pg_url("postgresql://us%40er:p%3Ass@db.example:6543/my%20db?table=jobs&connect_timeout=3")
    assert (p.user, p.password, p.host, p.port, p.database, p.table) == (
        "us@er",
        "p:ss",
        "db.example",
        6543,
        "my db",
        "jobs",
    )
    assert p.connect_timeout == 3.0
    assert parse_pg_url("postgres://u@h/d").port == 5432
    assert parse_pg_url("postgresql://u@h").database == "u"
    assert parse_pg_url("postgresql://u@[::1]:7/d").safe_dsn == "postgresql://u@[::1]:7/d"


@pytest.mark.parametrize(
    "bad",
    [
        "mysql://u:pw@h/d",
        "postgresql://u:pw@h:notaport/d",
        "postgresql://u:pw@h/d?bogus=1",
        "postgresql://u:pw@h/d?timeout=x",
    ],
)
def test_parse_pg_url_refuses_bad_urls_without_repeating_the_password(bad: str) -> None:
    """A wrong scheme, port, option or number is a ValueError whose message never shows the password."""
    with pytest.raises(ValueError) as info:
        parse_pg_url(bad)
    assert "pw" not in str(info.value).replace("postgresql", "")


def test_password_is_kept_out_of_repr_and_safe_dsn() -> None:
    """PGParams' repr, safe_dsn and an engine's repr and db_path never contain the password."""
    p = parse_pg_url("postgresql://u:s3cr3t-pw@h:1/d")
    engine = PostgresEngine(p, TableSpec("postgres_x"), "pickle")
    for text in (repr(p), p.safe_dsn, repr(engine), engine.db_path):
        assert "s3cr3t-pw" not in text
    assert p.password == "s3cr3t-pw"


def test_table_names_are_validated_and_long_derived_names_fit() -> None:
    """Bad or too long table names raise InvalidName; derived names stay within 63 characters."""
    p = PGParams()
    with pytest.raises(InvalidName):
        PostgresEngine(p, TableSpec('x"; DROP TABLE y; --'), "pickle")
    with pytest.raises(InvalidName):
        PostgresAckEngine(p, AckTableSpec("a" * 64), "pickle")
    long = "t" * 63
    name = derived_name("persistq_pending_", long)
    assert len(name) <= 63
    assert name != derived_name("persistq_pending_", "t" * 62 + "u")


# ------------------------------------------------------------- queue engine


@pytest.mark.anyio
@pytest.mark.parametrize("order", ["fifo", "filo", "priority"])
async def test_every_order_hands_items_out_in_its_order(env: dict[str, str], table: str, order: str) -> None:
    """FIFO gives oldest first, FILO newest first, priority lowest priority (then oldest) first."""
    spec = TableSpec(table, order)  # type: ignore[arg-type]
    async with opened(PostgresEngine(params(env), spec, "pickle")) as e:
        ids = await e.put(_rows(b"a", b"b", b"c", b"d", prio=[3, 1, 2, 1]))
        assert ids is not None
        assert ids == sorted(ids)
        assert await e.count() == 4
        got = [r[1] for r in await e.claim(2)] + [r[1] for r in await e.claim(10)]
        expected = {"fifo": b"abcd", "filo": b"dcba", "priority": b"bdca"}[order]
        assert got == [bytes([c]) for c in expected]
        assert await e.count() == 0
        assert await e.claim(1) == []


@pytest.mark.anyio
@pytest.mark.parametrize("order", ["fifo", "priority"])
async def test_unique_table_stores_a_duplicate_nowhere_and_returns_none(
    env: dict[str, str], table: str, order: str
) -> None:
    """On a unique table a put of stored bytes (or bytes repeated in one put) stores nothing, id None."""
    spec = TableSpec(table, order, unique=True)  # type: ignore[arg-type]
    async with opened(PostgresEngine(params(env), spec, "pickle")) as e:
        first = await e.put(_rows(b"x", b"y", b"x", prio=[1, 1, 1]))
        assert first is not None
        assert first[0] is not None
        assert first[1] is not None
        assert first[2] is None
        assert await e.put(_rows(b"y", prio=[0])) == [None]
        assert await e.count() == 2
        await e.claim(1)  # takes x: an equal item may be stored again
        again = await e.put(_rows(b"x", prio=[5]))
        assert again is not None
        assert again[0] is not None
        assert sorted(r[1] for r in await e.rows()) == [b"x", b"y"]


@pytest.mark.anyio
async def test_large_batches_and_big_items_round_trip(env: dict[str, str], table: str) -> None:
    """A put of 2,500 items (several statements) keeps their order; a 5 MB item comes back intact."""
    async with opened(PostgresEngine(params(env), TableSpec(table), "pickle")) as e:
        datas = [str(i).encode() for i in range(2500)]
        ids = await e.put([(d, time.time(), None) for d in datas])
        assert ids is not None
        assert len(set(ids)) == 2500
        assert [r[1] for r in await e.claim(2500)] == datas
        big = os.urandom(5 * 1024 * 1024)
        await e.put([(big, time.time(), None)])
        assert (await e.claim(1))[0][1] == big


@pytest.mark.anyio
async def test_claimed_rows_with_an_owner_wait_in_pending_until_finished_or_released(
    env: dict[str, str], table: str
) -> None:
    """With an owner a claim moves rows to pending; release puts them back in place, finish drops them."""
    async with opened(PostgresEngine(params(env), TableSpec(table), "pickle")) as e:
        await e.put(_rows(b"a", b"b", b"c"))
        rows = await e.claim(2, owner="tok")
        assert [r[1] for r in rows] == [b"a", b"b"]
        assert await e.count() == 1
        await e.update(rows[0][0], b"A")  # a pending row can be updated too
        await e.finish([rows[1][0]])
        assert await e.release("tok") == 1
        assert [r[1] for r in await e.rows()] == [b"A", b"c"]
        with pytest.raises(ItemNotFound):
            await e.update(123456789, b"z")


@pytest.mark.anyio
async def test_recover_gives_back_items_of_dead_owners_on_this_host_only(
    env: dict[str, str], table: str
) -> None:
    """recover() returns pending rows whose owner is dead, keeps a live owner's rows."""
    live, dead = new_owner(), new_owner()
    release_owner(dead)
    try:
        async with opened(PostgresEngine(params(env), TableSpec(table), "pickle")) as e:
            await e.put(_rows(b"a", b"b"))
            await e.claim(1, owner=live)
            await e.claim(1, owner=dead)
            assert await e.recover(owner_alive) == 1
            assert [r[1] for r in await e.rows()] == [b"b"]
    finally:
        release_owner(live)


@pytest.mark.anyio
async def test_claim_by_item_id_takes_exactly_that_item(env: dict[str, str], table: str) -> None:
    """claim(item_id=…) takes that row or nothing."""
    async with opened(PostgresEngine(params(env), TableSpec(table), "pickle")) as e:
        ids = await e.put(_rows(b"a", b"b", b"c"))
        assert ids is not None
        assert [r[1] for r in await e.claim(1, item_id=ids[1])] == [b"b"]
        assert await e.claim(1, item_id=ids[1]) == []


@pytest.mark.anyio
async def test_maxsize_holds_across_two_engines_putting_at_once(env: dict[str, str], table: str) -> None:
    """Two engines (four connections) racing bounded puts never store more than maxsize items."""
    p = params(env)
    async with (
        opened(PostgresEngine(p, TableSpec(table), "pickle", pool_size=2)) as a,
        opened(PostgresEngine(p, TableSpec(table), "pickle", pool_size=2)) as b,
    ):
        accepted: list[int] = []

        async def putter(e: PostgresEngine, k: int) -> None:
            for i in range(10):
                ids = await e.put(_rows(f"{k}:{i}".encode()), maxsize=25)
                if ids is not None:
                    accepted.append(1)

        async with anyio.create_task_group() as tg:
            for k in range(8):
                tg.start_soon(putter, a if k % 2 else b, k)
        assert len(accepted) == 25
        assert await a.count() == 25
        assert await b.count() == 25
        assert await a.put(_rows(b"more"), maxsize=25) is None
        assert await a.put(_rows(b"more"), maxsize=26) is not None


@pytest.mark.anyio
async def test_data_version_changes_when_another_engine_puts_or_claims(
    env: dict[str, str], table: str
) -> None:
    """Another connection's committed put and claim both change data_version; nothing else does."""
    p = params(env)
    async with (
        opened(PostgresEngine(p, TableSpec(table), "pickle")) as a,
        opened(PostgresEngine(p, TableSpec(table), "pickle")) as b,
    ):
        v0 = await a.data_version()
        assert await a.data_version() == v0
        await b.put(_rows(b"x", b"y"))
        v1 = await a.data_version()
        assert v1 != v0
        await b.claim(1)
        v2 = await a.data_version()
        assert v2 != v1
        await b.claim(1, item_id=-1)  # claims nothing: no change
        assert await a.data_version() == v2


@pytest.mark.anyio
async def test_a_second_serializer_is_refused(env: dict[str, str], table: str) -> None:
    """Opening a table with another serializer than the one recorded raises SerializerMismatch."""
    async with opened(PostgresEngine(params(env), TableSpec(table), "pickle")):
        pass
    with pytest.raises(SerializerMismatch):
        await PostgresEngine(params(env), TableSpec(table), "json").open()


@pytest.mark.anyio
async def test_closed_engine_refuses_work_and_vacuum_runs(env: dict[str, str], table: str) -> None:
    """vacuum() rebuilds the tables; after close() an operation raises QueueClosed."""
    e = PostgresEngine(params(env), TableSpec(table), "pickle")
    async with opened(e):
        await e.put(_rows(b"a"))
        await e.vacuum()
        assert await e.count() == 1
        assert e.count_blocking() == 1
    with pytest.raises(QueueClosed):
        await e.count()


@pytest.mark.anyio
async def test_cancelled_claim_gives_its_rows_back(env: dict[str, str], table: str) -> None:
    """A claim cancelled while it runs on the server leaves every item in the queue (cancel-atomic)."""
    async with opened(PostgresEngine(params(env), TableSpec(table), "pickle")) as e:
        await e.put(_rows(*[str(i).encode() for i in range(50)]))
        for _ in range(20):
            with anyio.move_on_after(0.0005):
                await e.claim(5)
        taken = 50 - await e.count()
        # Claims that returned took their rows; cancelled ones gave them back.
        assert taken % 5 == 0
        rest = [r[1] for r in await e.claim(50)]
        assert rest == [str(i).encode() for i in range(taken, 50)]


# --------------------------------------------------------------- ack engine


async def _ack(
    env: dict[str, str], table: str, order: str = "fifo", unique: bool = False
) -> PostgresAckEngine:
    e = PostgresAckEngine(params(env), AckTableSpec(table, order, unique), "pickle")  # type: ignore[arg-type]
    await e.open()
    return e


@pytest.mark.anyio
@pytest.mark.parametrize("order", ["fifo", "filo", "priority"])
async def test_ack_orders_and_acks(env: dict[str, str], table: str, order: str) -> None:
    """Ack claims deliver in queue order with attempts 1; acked rows leave the waiting count."""
    e = await _ack(env, table, order)
    try:
        await e.put(_rows(b"a", b"b", b"c", prio=[2, 3, 1]))
        claim = await e.claim(3, None, None, "o", 30.0, 0)
        expected = {"fifo": b"abc", "filo": b"cba", "priority": b"cab"}[order]
        assert [r[1] for r in claim.rows] == [bytes([c]) for c in expected]
        assert all(r[4] == UNACK and r[5] == 1 for r in claim.rows)
        assert await e.count() == 0
        await e.set_final([r[0] for r in claim.rows], ACKED, None)
        assert await e.counts() == {ACKED: 3}
        assert await e.clear_acked(None, 1, False) == 2
    finally:
        await e.close()


@pytest.mark.anyio
async def test_ack_lease_expiry_brings_an_item_back_and_max_attempts_dead_letters_it(
    env: dict[str, str], table: str
) -> None:
    """An unacked item returns when its lease ends (attempts counted) and fails after max_attempts."""
    e = await _ack(env, table)
    try:
        await e.put(_rows(b"job"))
        first = await e.claim(1, None, None, "o", 0.2, 2)
        assert first.rows[0][5] == 1
        none = await e.claim(1, None, None, "o", 0.2, 2)
        assert none.rows == []
        assert none.next_due is not None
        assert none.next_due > time.time() - 0.05
        await anyio.sleep(0.3)
        second = await e.claim(1, None, None, "o", 0.2, 2)
        assert [r[1] for r in second.rows] == [b"job"]
        assert second.rows[0][5] == 2
        await anyio.sleep(0.3)
        assert await e.counts(2) == {ACK_FAILED: 1}
        assert (await e.claim(1, None, None, "o", 0.2, 2)).rows == []
        assert await e.requeue_failed(None) == 1
        third = await e.claim(1, None, None, "o", None, 2)
        assert third.rows[0][5] == 1  # requeued with fresh attempts
    finally:
        await e.close()


@pytest.mark.anyio
async def test_ack_nack_with_delay_extend_and_errors(env: dict[str, str], table: str) -> None:
    """nack with a delay keeps the item back until due; extend moves a lease; bad ids raise ItemNotFound."""
    e = await _ack(env, table)
    try:
        ids = await e.put(_rows(b"a", b"b"))
        assert ids is not None
        claim = await e.claim(2, None, None, "o", 0.3, 0)
        await e.nack([ids[0]], 0.3, 0)
        assert (await e.counts())[DELAYED] == 1
        until = await e.extend(ids[1], 5.0)
        assert until > time.time() + 4
        assert (await e.claim(1, None, None, "o", None, 0)).rows == []
        await anyio.sleep(0.4)
        back = await e.claim(5, None, None, "o", None, 0)
        assert [r[1] for r in back.rows] == [b"a"]  # b's lease was extended
        await e.set_final([ids[0]], ACKED, None)
        with pytest.raises(ItemNotFound):
            await e.nack([ids[0]], 0, 0)
        with pytest.raises(ItemNotFound):
            await e.set_final([ids[1], 987654321], ACKED, None)
        with pytest.raises(ItemNotFound):
            await e.extend(ids[0], 1.0)
        assert (await e.counts())[UNACK] == 1  # the failed set_final changed nothing
        assert claim.rows[0][0] == ids[0]
    finally:
        await e.close()


@pytest.mark.anyio
async def test_unique_ack_refuses_equal_rows_of_every_status_and_trimmed_fingerprints(
    env: dict[str, str], table: str
) -> None:
    """A unique ack table refuses bytes equal to any stored row or to a trimmed row's fingerprint."""
    e = await _ack(env, table, "fifo", True)
    try:
        assert (await e.put(_rows(b"u")))[0] is not None  # type: ignore[index]
        assert await e.put(_rows(b"u")) == [None]
        claim = await e.claim(1, None, None, "o", None, 0)
        assert await e.put(_rows(b"u")) == [None]  # in flight
        await e.set_final([claim.rows[0][0]], ACKED, None)
        assert await e.put(_rows(b"u")) == [None]  # acked
        ids = await e.put(_rows(b"v", b"w"))
        assert ids is not None
        assert None not in ids
        await e.claim(2, None, None, "o", None, 0)
        await e.set_final([ids[0]], ACK_FAILED, None)
        assert await e.put(_rows(b"v")) == [None]  # failed
        await e.set_final([ids[1]], ACKED, 0)  # trims every acked row, keeping fingerprints
        assert await e.counts() == {9: 1}
        fresh = await e.put(_rows(b"u", b"w", b"x"))
        assert fresh is not None
        assert fresh[:2] == [None, None]
        assert fresh[2] is not None
        assert await e.clear_acked(None, 0, False) == 2  # the two fingerprints
        again = await e.put(_rows(b"u", b"w"))
        assert again is not None
        assert None not in again
    finally:
        await e.close()


@pytest.mark.anyio
async def test_ack_release_resume_and_next_in_order(env: dict[str, str], table: str) -> None:
    """release() returns an owner's items; resume(None) returns all; after_id walks and wraps around."""
    e = await _ack(env, table)
    try:
        ids = await e.put(_rows(b"a", b"b", b"c"))
        assert ids is not None
        after = await e.claim(1, None, ids[1], "o", None, 0)
        assert [r[1] for r in after.rows] == [b"c"]
        wrapped = await e.claim(1, None, ids[2], "o", None, 0)
        assert [r[1] for r in wrapped.rows] == [b"a"]
        assert await e.release("o", 0) == 2
        await e.claim(3, None, None, "p", None, 0)
        assert await e.resume(None, 0) == 3
        assert (await e.counts())[READY] == 3
        rows = await e.rows(READY)
        assert [r[1] for r in rows] == [b"a", b"b", b"c"]
        assert all(r[4] == READY for r in rows)
    finally:
        await e.close()


@pytest.mark.anyio
async def test_cancelled_ack_claim_restores_state_and_attempts(env: dict[str, str], table: str) -> None:
    """An ack claim cancelled while it runs leaves its rows as before, attempts included."""
    e = await _ack(env, table)
    try:
        await e.put(_rows(*[str(i).encode() for i in range(30)]))
        delivered = 0
        for _ in range(20):
            with anyio.move_on_after(0.0005):
                delivered += len((await e.claim(3, None, None, "o", None, 0)).rows)
        rows = await e.rows()
        assert sum(1 for r in rows if r[4] == UNACK) == delivered
        assert all(r[5] == (1 if r[4] == UNACK else 0) for r in rows)
    finally:
        await e.close()


# --------------------------------------------------------------- dict store


@pytest.mark.anyio
async def test_dict_store_keeps_insertion_order_and_compound_operations(
    env: dict[str, str], table: str
) -> None:
    """set/get/pop/popitem/setdefault/update/page behave like a dict kept in insertion order."""
    name = table  # dict_{name}
    d = PostgresDictStore(params(env), name, "pickle")
    try:
        async with opened(d):
            await d.set("a", b"1")
            await d.set("b", b"2")
            await d.set("a", b"3")  # keeps its place
            assert [(k, v) for _, k, v in await d.page("items", None, None)] == [("a", b"3"), ("b", b"2")]
            assert await d.setdefault("a", b"x") == b"3"
            assert await d.setdefault("c", b"4") is None
            assert await d.popitem() == ("c", b"4")
            await d.update([("z", b"9"), ("b", b"7"), ("z", b"8")])
            assert [k for _, k, _ in await d.page("keys", None, None)] == ["a", "b", "z"]
            assert await d.get("z") == b"8"
            assert await d.get("nope") is None
            first = await d.page("keys", None, 1)
            assert [k for _, k, _ in await d.page("keys", first[0][0], None)] == ["b", "z"]
            assert await d.pop("a") == b"3"
            assert await d.delete("a") is False
            assert await d.contains("b")
            assert await d.count() == 2
            assert await d.clear() == 2
            assert await d.popitem() is None
    finally:
        sql(env, f'DROP TABLE IF EXISTS "dict_{name}"')
        sql(env, "DELETE FROM persistq_meta WHERE tbl = %s", (f"dict_{name}",))


# ----------------------------------------------------------- many processes


@pytest.mark.parametrize("ack", [False, True], ids=["queue", "ack"])
def test_four_consumer_processes_move_thousands_of_items_none_lost_or_duplicated(
    env: dict[str, str], table: str, tmp_path: Path, ack: bool
) -> None:
    """2 producers and 4 consumers (processes, asyncio and trio) move 4,000 items: each delivered once."""
    u = url(env)
    per_producer = 2000
    barrier = CTX.Barrier(6)
    done = CTX.Event()
    results = [tmp_path / f"c{i}.json" for i in range(4)]
    consumers = [
        CTX.Process(
            target=_pg_children.consume,
            args=(u, table, ack, 1 + 9 * (i % 2), "trio" if i % 2 else "asyncio", str(r), barrier, done),
        )
        for i, r in enumerate(results)
    ]
    producers = [
        CTX.Process(
            target=_pg_children.produce,
            args=(u, table, ack, tag, per_producer, 1 + 24 * k, "trio" if k else "asyncio", barrier),
        )
        for k, tag in enumerate(("p", "q"))
    ]
    # Create the table first, so the children do not all race to create it.
    anyio.run(_open_and_close, u, table, ack)
    for proc in consumers + producers:
        proc.start()
    try:
        for proc in producers:
            proc.join(90)
            assert proc.exitcode == 0
        done.set()
        for proc in consumers:
            proc.join(90)
            assert proc.exitcode == 0
    finally:
        for proc in consumers + producers:
            if proc.is_alive():
                proc.kill()
    got: list[str] = []
    for r in results:
        got.extend(json.loads(r.read_text()))
    counts = Counter(got)
    assert [k for k, v in counts.items() if v > 1] == []
    expected = {f"{tag}:{i}" for tag in ("p", "q") for i in range(per_producer)}
    assert set(got) == expected
    # Every consumer took part (SKIP LOCKED lets them work side by side).
    assert all(json.loads(r.read_text()) for r in results)


async def _open_and_close(u: str, table: str, ack: bool) -> None:
    engine = _pg_children._engine(u, table, ack)
    await engine.open()
    await engine.close()


@pytest.mark.parametrize("ack", [False, True], ids=["queue", "ack"])
def test_sigkilled_consumers_claimed_items_come_back(
    env: dict[str, str], table: str, tmp_path: Path, ack: bool
) -> None:
    """A consumer SIGKILLed while holding items: resume()/recover() on this host gives exactly those back."""
    u = url(env)
    anyio.run(_fill, u, table, ack, 5)
    holding = CTX.Event()
    result = tmp_path / "held.json"
    child = CTX.Process(target=_pg_children.hold, args=(u, table, ack, 2, str(result), holding))
    child.start()
    try:
        assert holding.wait(60)
        os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
        child.join(30)
    finally:
        if child.is_alive():
            child.kill()
    held = json.loads(result.read_text())
    assert len(held["ids"]) == 2
    assert not owner_alive(held["owner"])
    anyio.run(_check_resumed, u, table, ack, held["ids"])


async def _fill(u: str, table: str, ack: bool, n: int) -> None:
    engine = _pg_children._engine(u, table, ack)
    async with opened(engine):
        await engine.put(_rows(*[str(i).encode() for i in range(n)]))


async def _check_resumed(u: str, table: str, ack: bool, ids: list[int]) -> None:
    engine = _pg_children._engine(u, table, ack)
    async with opened(engine):
        if ack:
            assert await engine.resume(owner_alive, 0) == 2
            claim = await engine.claim(10, None, None, "again", None, 0)
            again = {r[0]: r[5] for r in claim.rows}
            assert set(ids) <= set(again)
            assert all(again[i] == 2 for i in ids)
            assert len(again) == 5
        else:
            assert await engine.recover(owner_alive) == 2
            assert await engine.count() == 5
            assert [r[0] for r in await engine.claim(2)] == sorted(ids)  # back in their old places


# ------------------------------------------------------------------ wake-ups


def test_watch_callback_wakes_on_another_process_put_within_milliseconds(
    env: dict[str, str], table: str, tmp_path: Path
) -> None:
    """Another process's committed put runs this process's watch callback: latency p50/max over 200 puts."""
    p = params(env)
    engine = PostgresEngine(p, TableSpec(table), "pickle")
    engine.open_blocking()
    heard: list[float] = []
    unwatch = engine.watch(lambda: heard.append(time.time()))
    try:
        listener = _pg_listen.listener_for(p.key)
        assert listener is not None
        assert listener.listening.wait(30)
        _wait_for(lambda: len(heard) >= 1)  # the "now listening" call
        time.sleep(0.05)
        heard.clear()
        start = CTX.Event()
        result = tmp_path / "stamps.json"
        child = CTX.Process(
            target=_pg_children.put_slowly, args=(url(env), table, 200, 0.02, str(result), start)
        )
        child.start()
        try:
            start.set()
            child.join(120)
            assert child.exitcode == 0
        finally:
            if child.is_alive():
                child.kill()
        stamps = json.loads(result.read_text())
        _wait_for(lambda: len(heard) >= 200, 5)
        assert len(heard) == 200
        # The commit lies between the put's start and its return (the
        # notification often arrives before the putter's own thread is told).
        # From the start: an upper bound that includes the put's round trips.
        from_start = sorted((h - s[0]) * 1000 for h, s in zip(heard, stamps, strict=True))
        from_return = sorted((h - s[1]) * 1000 for h, s in zip(heard, stamps, strict=True))
        print(
            f"\nPostgreSQL NOTIFY wake-up across processes, 200 puts: from the put's start "
            f"p50 {statistics.median(from_start):.2f} ms, max {from_start[-1]:.2f} ms; "
            f"from its return p50 {statistics.median(from_return):.2f} ms, max {from_return[-1]:.2f} ms"
        )
        assert from_start[0] > 0  # heard only after the put began
        assert statistics.median(from_start) < 25
        assert from_start[-1] < 500
    finally:
        unwatch()
        engine.close_nowait()


def test_one_listener_serves_every_queue_and_closes_with_its_last_watcher(
    env: dict[str, str], tables: list[str]
) -> None:
    """Watches of several tables share one listening connection; only the notified table's callbacks run."""
    p = params(env)
    engines = [PostgresEngine(p, TableSpec(t), "pickle") for t in tables]
    for e in engines:
        e.open_blocking()
    hits: Counter[int] = Counter()
    unwatches = [e.watch(lambda k=k: hits.update([k])) for k, e in enumerate(engines)]
    try:
        listener = _pg_listen.listener_for(p.key)
        assert listener is not None
        assert listener.listening.wait(30)
        assert listener.connections == 1
        _wait_for(lambda: all(hits[k] >= 1 for k in range(3)))
        time.sleep(0.05)
        hits.clear()
        anyio.run(engines[1].put, _rows(b"x"))
        _wait_for(lambda: hits[1] >= 1)
        time.sleep(0.1)
        assert hits == Counter({1: 1})
    finally:
        for un in unwatches:
            un()
            un()  # idempotent
        for e in engines:
            e.close_nowait()
    assert _pg_listen.listener_for(p.key) is None
    _wait_for(lambda: not listener.listening.is_set(), 5)  # its connection is closed


def test_watch_callback_errors_do_not_stop_other_callbacks(env: dict[str, str], table: str) -> None:
    """A callback that raises is ignored; the next callback still runs and later notifications arrive."""
    p = params(env)
    engine = PostgresEngine(p, TableSpec(table), "pickle")
    engine.open_blocking()
    seen: list[int] = []

    def bad() -> None:
        raise RuntimeError("boom")

    un_bad = engine.watch(bad)
    un_good = engine.watch(lambda: seen.append(1))
    try:
        listener = _pg_listen.listener_for(p.key)
        assert listener is not None
        assert listener.listening.wait(30)
        _wait_for(lambda: len(seen) >= 1)
        before = len(seen)
        anyio.run(engine.put, _rows(b"1"))
        anyio.run(engine.put, _rows(b"2"))
        _wait_for(lambda: len(seen) >= before + 2)
    finally:
        un_bad()
        un_good()
        engine.close_nowait()


# --------------------------------------------------------------------- faults


def _restart(server: dict[str, str], how: signal.Signals) -> None:
    pid = server_pid(server)
    os.kill(pid, how)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.02)
    subprocess.run([server["start_cmd"]], check=True, timeout=90, capture_output=True)


@pytest.mark.anyio
@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL], ids=["fast-shutdown", "sigkill"])
async def test_the_same_engine_survives_a_server_restart(
    private: dict[str, str], how: signal.Signals
) -> None:
    """After the server is stopped (or SIGKILLed) and started again, the same engine objects carry on."""
    p = params(private)
    name = _fresh("postgres_restart")
    async with (
        opened(PostgresEngine(p, TableSpec(name), "pickle")) as e,
        opened(PostgresAckEngine(p, AckTableSpec(name + "_ack"), "pickle")) as a,
    ):
        await e.put(_rows(b"before"))
        await a.put(_rows(b"before"))
        await anyio.to_thread.run_sync(_restart, private, how)
        await e.put(_rows(b"after"))
        assert [r[1] for r in await e.claim(5)] == [b"before", b"after"]
        assert [r[1] for r in (await a.claim(5, None, None, "o", None, 0)).rows] == [b"before"]


@pytest.mark.anyio
async def test_down_server_is_a_storage_error_naming_host_without_password(private: dict[str, str]) -> None:
    """While the server is down an operation fails with StorageError (host:port, no password), then works."""
    p = params(private)
    async with opened(PostgresEngine(p, TableSpec(_fresh("postgres_down")), "pickle")) as e:
        await e.put(_rows(b"x"))
        pid = server_pid(private)
        os.kill(pid, signal.SIGINT)
        await anyio.to_thread.run_sync(lambda: _wait_for(lambda: not _alive(pid)))
        try:
            with pytest.raises(StorageError) as info:
                await e.count()
            text = str(info.value)
            assert f"{p.host}:{p.port}" in text
            assert p.password not in text
            assert p.password not in repr(info.value.__cause__ or "")
        finally:
            await anyio.to_thread.run_sync(
                lambda: subprocess.run([private["start_cmd"]], check=True, timeout=90, capture_output=True)
            )
        assert await e.count() == 1


def _fresh(prefix: str) -> str:
    """A table name not used before (the private server lives for the whole module)."""
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.anyio
async def test_terminated_connections_are_reconnected_and_the_batch_rerun(private: dict[str, str]) -> None:
    """Every engine connection killed server-side between operations: the next ones just reconnect."""
    p = params(private)
    async with opened(
        PostgresEngine(p, TableSpec(_fresh("postgres_terminated")), "pickle", pool_size=2)
    ) as e:
        for round_ in range(3):
            sql(
                private,
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'persistq'",
            )
            ids = await e.put(_rows(str(round_).encode()))
            assert ids is not None
        assert [r[1] for r in await e.claim(10)] == [b"0", b"1", b"2"]


@pytest.mark.anyio
async def test_wrong_password_is_a_storage_error_that_never_shows_it(private: dict[str, str]) -> None:
    """A refused login raises StorageError naming user and database, never the password given."""
    p = params(private, password="not-the-Right-one")
    with pytest.raises(StorageError) as info:
        await PostgresEngine(p, TableSpec(_fresh("postgres_pw")), "pickle").open()
    assert "not-the-Right-one" not in str(info.value)
    assert "persistq" in str(info.value)
    assert "authentication" in str(info.value)


@pytest.mark.anyio
async def test_a_lock_held_elsewhere_fails_after_lock_timeout_instead_of_hanging(
    private: dict[str, str],
) -> None:
    """A table locked by another session makes an operation fail with StorageError after lock_timeout."""
    p = params(private)
    name = _fresh("postgres_locked")
    async with opened(PostgresEngine(p, TableSpec(name), "pickle", lock_timeout=0.3)) as e:
        import psycopg

        with psycopg.connect(
            host=private["host"],
            port=int(private["port"]),
            user=private["user"],
            password=private["password"],
            dbname=private["database"],
        ) as blocker:
            blocker.execute(f'LOCK TABLE "{name}" IN ACCESS EXCLUSIVE MODE')
            started = time.monotonic()
            with pytest.raises(StorageError, match="lock_timeout"):
                await e.count()
            assert time.monotonic() - started < 5
            blocker.rollback()
        assert await e.count() == 0


def test_listener_reconnects_after_a_restart_and_calls_every_watcher(private: dict[str, str]) -> None:
    """After a server restart the listener reconnects, calls each watcher once, and hears new puts."""
    p = params(private)
    engine = PostgresEngine(p, TableSpec(_fresh("postgres_listen_restart")), "pickle")
    engine.open_blocking()
    calls: list[float] = []
    unwatch = engine.watch(lambda: calls.append(time.time()))
    try:
        listener = _pg_listen.listener_for(p.key)
        assert listener is not None
        assert listener.listening.wait(30)
        _wait_for(lambda: len(calls) == 1)
        _restart(private, signal.SIGINT)
        _wait_for(lambda: listener.connections == 2 and len(calls) >= 2)
        seen = len(calls)
        anyio.run(engine.put, _rows(b"x"))
        _wait_for(lambda: len(calls) > seen)
    finally:
        unwatch()
        engine.close_nowait()


@pytest.mark.anyio
async def test_a_statement_running_past_statement_timeout_is_cancelled(
    env: dict[str, str], table: str
) -> None:
    """statement_timeout is set on every connection: a statement running longer fails with StorageError."""
    e = PostgresEngine(params(env, statement_timeout=0.3), TableSpec(table), "pickle")
    async with opened(e):
        assert await e._run(lambda tx: tx.one("SHOW statement_timeout")[0], kind="read") == "300ms"
        started = time.monotonic()
        with pytest.raises(StorageError, match="statement timeout"):
            await e._run(lambda tx: tx.one("SELECT pg_sleep(5)"), kind="read")
        assert time.monotonic() - started < 3
        assert await e.count() == 0  # the connection is still usable


@pytest.mark.anyio
async def test_a_batch_whose_connection_dies_twice_fails_after_one_rerun(
    env: dict[str, str], table: str
) -> None:
    """A connection lost before COMMIT is reconnected and the batch rerun once; lost again: StorageError."""
    e = PostgresEngine(params(env), TableSpec(table), "pickle")
    runs: list[int] = []

    def doomed(tx: Any) -> None:
        runs.append(1)
        tx.one("SELECT pg_terminate_backend(pg_backend_pid())")

    async with opened(e):
        with pytest.raises(StorageError, match="lost the connection"):
            await e._run(doomed)
        assert len(runs) == 2
        assert await e.count() == 0  # a fresh connection serves the next operation


@pytest.mark.anyio
async def test_a_connection_lost_during_commit_is_reported_as_unknown_and_not_retried(
    env: dict[str, str], table: str
) -> None:
    """A put whose connection dies inside COMMIT raises a StorageError saying the outcome is unknown, once."""
    e = PostgresEngine(params(env), TableSpec(table), "pickle")
    async with opened(e):
        counter = f'"{table}_commits"'
        # A deferred constraint trigger runs at COMMIT: it counts (a sequence is
        # not transactional) and then kills its own session.
        sql(env, f"CREATE SEQUENCE {counter}")
        sql(
            env,
            f'CREATE FUNCTION "{table}_die"() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN '
            f"PERFORM nextval('{counter}'); PERFORM pg_terminate_backend(pg_backend_pid()); "
            "RETURN NULL; END $$",
        )
        sql(
            env,
            f'CREATE CONSTRAINT TRIGGER "{table}_at_commit" AFTER INSERT ON "{table}" '
            f'DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION "{table}_die"()',
        )
        try:
            with pytest.raises(StorageError, match="may or may not have been applied"):
                await e.put(_rows(b"x"))
            assert sql(env, f"SELECT last_value FROM {counter}") == [(1,)]  # COMMIT was sent once
            sql(env, f'DROP TRIGGER "{table}_at_commit" ON "{table}"')
            assert await e.put(_rows(b"y")) is not None
            assert [r[1] for r in await e.rows()] == [b"y"]  # the server rolled the first one back
        finally:
            sql(env, f'DROP TRIGGER IF EXISTS "{table}_at_commit" ON "{table}"')
            sql(env, f'DROP FUNCTION IF EXISTS "{table}_die"()')
            sql(env, f"DROP SEQUENCE IF EXISTS {counter}")


@pytest.mark.anyio
async def test_open_after_close_is_refused(env: dict[str, str], table: str) -> None:
    """A closed engine reports is_open False and cannot be opened again."""
    e = PostgresEngine(params(env), TableSpec(table), "pickle")
    await e.open()
    assert e.is_open
    await e.close()
    assert not e.is_open
    with pytest.raises(QueueClosed):
        await e.open()
