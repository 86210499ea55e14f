"""The MySQL engine's two drivers: aiomysql on asyncio, PyMySQL on worker threads (trio, or asked for)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
from collections import Counter
from collections.abc import Iterator

import anyio
import pytest
from _mysql_support import connect, kwargs, server_env, sql, unique_name

from persistq.errors import QueueClosed
from persistq.queues.mysql import MySQLQueue
from persistq.queues.mysql_ack import MySQLAckQueue
from persistq.sync.mysql import MySQLQueue as SyncMySQLQueue

# Every byte value, quotes, backslashes, NUL, a lone high byte: what escaping gets wrong.
AWKWARD_BYTES = bytes(range(256)) + b"'\"\\%s%%\x00\\'" + b"\xff"
AWKWARD_TEXT = 'it\'s a "quote" \\ back\\slash, 100% %s, NUL \x00, é, 漢字, 🙂'


@pytest.fixture
def env() -> dict[str, str]:
    """The server's settings; fail on CI without a server, else skip."""
    return server_env()


@pytest.fixture
def name(env: dict[str, str]) -> Iterator[str]:
    """A queue name unique to the test; its tables are dropped afterwards."""
    yield from unique_name(env, "d", ("queue_{name}", "persistq_pending_queue_{name}", "ack_queue_{name}"))


@pytest.mark.anyio
async def test_auto_picks_aiomysql_on_asyncio_and_pymysql_on_trio(
    env: dict[str, str], name: str, anyio_backend: str
) -> None:
    """driver="auto" runs aiomysql on asyncio and PyMySQL on storage threads on trio."""
    async with MySQLQueue(**kwargs(env, name)) as q:
        await q.put("x")
        assert await q.get() == "x"
        expected = "aiomysql" if anyio_backend == "asyncio" else "pymysql"
        assert q._engine.driver_in_use == expected
        # PyMySQL connections are run by storage-pool workers; aiomysql's by the loop.
        workers = [slot.worker for slot in q._engine._slots if slot.worker is not None]
        assert bool(workers) == (expected == "pymysql")


@pytest.mark.anyio
async def test_aiomysql_asked_for_on_trio_is_a_clear_error(
    env: dict[str, str], name: str, anyio_backend: str
) -> None:
    """driver="aiomysql" works on asyncio and raises ValueError naming the fix on trio."""
    q = MySQLQueue(**kwargs(env, name), driver="aiomysql")
    if anyio_backend == "asyncio":
        async with q:
            await q.put(1)
            assert await q.get() == 1
        return
    with pytest.raises(ValueError, match=r"asyncio only.*driver='auto'"):
        await q.open()
    await q.close()


def test_driver_is_validated_and_read_from_the_dsn(env: dict[str, str], name: str) -> None:
    """A bad driver is a ValueError; ?driver= in a DSN is honoured."""
    with pytest.raises(ValueError, match="'driver' must be one of auto, aiomysql, pymysql"):
        MySQLQueue(**kwargs(env, name), driver="mysqlclient")  # type: ignore[arg-type]
    dsn = (
        f"mysql://{env['user']}:{env['password']}@{env['host']}:{env['port']}/"
        f"{env['database']}?table={name}&driver=pymysql"
    )
    assert MySQLQueue(dsn).driver == "pymysql"
    with pytest.raises(ValueError, match="'driver' must be one of"):
        MySQLQueue(dsn.replace("pymysql", "nope"))


@pytest.mark.parametrize("driver", ["aiomysql", "pymysql"])
def test_both_drivers_store_awkward_values_exactly(env: dict[str, str], name: str, driver: str) -> None:
    """Every byte value and awkward text survive put, update and get on both drivers (asyncio)."""

    async def main() -> None:
        async with MySQLQueue(**kwargs(env, name), driver=driver, auto_commit=False) as q:
            assert q._engine.driver_in_use == driver
            await q.put(AWKWARD_BYTES)
            await q.put(AWKWARD_TEXT)
            await q.put_many([AWKWARD_BYTES * 3, {"k": AWKWARD_TEXT}])
            rows = await q.queue()
            await q.update(AWKWARD_TEXT * 2, id=rows[1]["id"])
            got = [await q.get() for _ in range(4)]
            assert got == [AWKWARD_BYTES, AWKWARD_TEXT * 2, AWKWARD_BYTES * 3, {"k": AWKWARD_TEXT}]
            assert len(q) == 0  # a blocking read, on its own connection under aiomysql
            await q.task_done()
        async with MySQLQueue(**kwargs(env, name), driver=driver) as again:
            # Got but not done (auto_commit=False): back in their old places after close.
            assert [await again.get() for _ in range(3)] == got[1:]

    asyncio.run(main())


def test_many_concurrent_tasks_share_transactions_without_loss(env: dict[str, str], name: str) -> None:
    """200 tasks putting and 200 getting at once on 2 pooled aiomysql connections: each item exactly once."""

    async def main() -> Counter[int]:
        got: Counter[int] = Counter()
        async with MySQLQueue(**kwargs(env, name), pool_size=2) as q:

            async def produce(k: int) -> None:
                for i in range(5):
                    await q.put(k * 5 + i)

            async def consume() -> None:
                for _ in range(5):
                    got[await q.get(timeout=30)] += 1

            await asyncio.gather(*[produce(k) for k in range(200)], *[consume() for _ in range(200)])
            assert await q.qsize() == 0
            # The load spread over both pooled aiomysql connections.
            assert all(slot.conn is not None for slot in q._engine._slots)
            assert len(q._engine._slots) == 2
        return got

    got = asyncio.run(main())
    assert got == Counter(range(1000))


def test_ack_queue_on_pymysql_under_asyncio(env: dict[str, str], name: str) -> None:
    """MySQLAckQueue with driver="pymysql" on asyncio: put, get, nack, ack, counts."""

    async def main() -> None:
        async with MySQLAckQueue(**kwargs(env, name), driver="pymysql") as q:
            assert q._engine.driver_in_use == "pymysql"
            await q.put_many(["a", "b"])
            a = await q.get()
            await q.nack(a)
            assert {await q.get(), await q.get()} == {"a", "b"}
            await q.ack_failed("a")
            await q.ack("b")
            assert await q.acked_count() == 1
            assert await q.ack_failed_count() == 1

    asyncio.run(main())


def test_a_queue_is_bound_to_the_event_loop_that_opened_it(env: dict[str, str], name: str) -> None:
    """Using an aiomysql queue from another event loop raises QueueClosed; close still works."""

    async def open_it() -> MySQLQueue:
        q = MySQLQueue(**kwargs(env, name))
        await q.open()
        await q.put("kept")
        return q

    q = asyncio.run(open_it())

    async def use_it() -> None:
        with pytest.raises(QueueClosed, match="another event loop"):
            await q.put("lost?")
        await q.close()

    asyncio.run(use_it())
    assert sql(env, f"SELECT COUNT(*) FROM `queue_{name}`")[0][0] == 1


def test_an_unclosed_queue_warns_and_frees_its_sockets(env: dict[str, str], name: str) -> None:
    """A queue dropped unclosed after its loop ended warns ResourceWarning and closes its sockets."""
    fds = len(os.listdir("/proc/self/fd"))

    async def leave_open() -> None:
        q = MySQLQueue(**kwargs(env, name), pool_size=2)
        await q.open()
        await asyncio.gather(q.put(1), q.put(2), q.put(3))

    def run_and_collect() -> None:
        asyncio.run(leave_open())
        gc.collect()

    with pytest.warns(ResourceWarning) as record:
        run_and_collect()
    assert any("was not closed" in str(w.message) for w in record)
    assert len(os.listdir("/proc/self/fd")) <= fds
    assert sql(env, f"SELECT COUNT(*) FROM `queue_{name}`")[0][0] == 3


def test_sync_twin_runs_pymysql_threads_unless_told(env: dict[str, str], name: str) -> None:
    """The sync twin's "auto" means PyMySQL threads (faster there); "aiomysql" runs on its portal loop."""
    with SyncMySQLQueue(**kwargs(env, name)) as q:
        q.put(1)
        assert q.get() == 1
        assert q.driver == "auto"
        assert q._q._engine.driver_in_use == "pymysql"
    with SyncMySQLQueue(**kwargs(env, name), driver="aiomysql") as q:
        q.put(2)
        assert q.get() == 2
        assert q._q._engine.driver_in_use == "aiomysql"


@pytest.mark.anyio
async def test_cancelled_puts_and_gets_are_undone(env: dict[str, str], name: str) -> None:
    """Callers cancelled mid-operation leave no half-done put or get behind, on either driver."""
    async with MySQLQueue(**kwargs(env, name)) as q:
        for _ in range(20):
            with anyio.move_on_after(0.0005):
                await q.put("maybe")
        n = await q.qsize()
        got = 0
        for _ in range(40):
            with anyio.move_on_after(0.0005):
                await q.get(timeout=1)
                got += 1
        # Every put either happened (and is there or was got) or was rolled back.
        assert await q.qsize() == n - got


def _kill_other_connections(env: dict[str, str]) -> int:
    """KILL every connection of the test account but this one; return how many."""
    conn = connect(env)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = %s AND ID <> CONNECTION_ID()",
                (env["user"],),
            )
            ids = [int(r[0]) for r in cur.fetchall()]
            for i in ids:
                with contextlib.suppress(Exception):  # it may have ended meanwhile
                    cur.execute(f"KILL CONNECTION {i}")
            return len(ids)
    finally:
        conn.close()


@pytest.mark.serial
@pytest.mark.parametrize("driver", ["aiomysql", "pymysql"])
def test_killed_connections_are_replaced_without_losing_or_repeating_items(
    env: dict[str, str], name: str, driver: str
) -> None:
    """Connections killed by the server between calls are re-opened and the calls retried, on both drivers."""

    async def main() -> None:
        async with (
            MySQLQueue(**kwargs(env, name), driver=driver) as q,
            MySQLAckQueue(**kwargs(env, name), driver=driver) as aq,
        ):
            await q.put_many([0, 1])
            await aq.put_many(["a", "b"])
            got = []
            assert _kill_other_connections(env) == 2  # one per queue object (pool_size=1)
            for step in range(3):
                await q.put(10 + step)
                assert _kill_other_connections(env) == 1  # q's, opened again for the put
                got.append(await q.get())
                assert _kill_other_connections(env) == 1
                item = await aq.get()
                assert _kill_other_connections(env) == 1
                await aq.nack(item) if step < 2 else await aq.ack(item)
                assert _kill_other_connections(env) == 1
            got += [await q.get() for _ in range(await q.qsize())]
            assert got == [0, 1, 10, 11, 12]
            assert await aq.acked_count() == 1
            assert await aq.qsize() == 1

    asyncio.run(main())


@pytest.mark.serial
@pytest.mark.parametrize("driver", ["aiomysql", "pymysql"])
def test_a_connection_killed_mid_transaction_is_retried_once_and_applied_once(
    env: dict[str, str], name: str, driver: str
) -> None:
    """A put whose connection is KILLed while it waits inside its transaction is retried and stored once."""
    table = f"queue_{name}"

    async def main() -> None:
        async with MySQLQueue(**kwargs(env, name), driver=driver, maxsize=100) as q:
            admin = connect(env)
            try:
                with admin.cursor() as cur:
                    admin.begin()
                    # Bounded puts lock this row first: the put below waits here, mid-transaction.
                    cur.execute(
                        "SELECT 1 FROM persistq_meta WHERE tbl = %s AND `key` = 'lock' FOR UPDATE", (table,)
                    )
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(q.put, "once")
                        await anyio.sleep(0.5)
                        cur.execute(
                            "SELECT ID FROM information_schema.PROCESSLIST "
                            "WHERE USER = %s AND ID <> CONNECTION_ID() AND INFO LIKE '%%FOR UPDATE%%'",
                            (env["user"],),
                        )
                        waiting = [int(r[0]) for r in cur.fetchall()]
                        assert len(waiting) == 1, waiting
                        cur.execute(f"KILL CONNECTION {waiting[0]}")
                        await anyio.sleep(0.3)
                        admin.commit()  # the retried put can take the lock now
            finally:
                admin.close()
            assert [r["data"] for r in await q.queue()] == ["once"]

    asyncio.run(main())
