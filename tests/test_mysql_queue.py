"""``MySQLQueue`` (async and sync) against the throwaway MariaDB that ``make test`` starts."""

from __future__ import annotations

import asyncio
import itertools
import json
import multiprocessing
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from _mysql_support import connect as _connect
from _mysql_support import dsn as _dsn
from _mysql_support import free_port as _free_port
from _mysql_support import kwargs as _kwargs
from _mysql_support import server_env, unique_name
from conftest import run_threads

import persistq
import persistq.sync
from persistq.engines.mysql import MySQLParams, parse_dsn
from persistq.errors import InvalidName, SerializerMismatch, StorageError
from persistq.queues.mysql import MySQLQueue
from persistq.sync.mysql import MySQLQueue as SyncMySQLQueue

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
if TESTS_DIR not in sys.path:  # spawn children get the parent's sys.path
    sys.path.insert(0, TESTS_DIR)

import _mysql_children  # noqa: E402

CTX = multiprocessing.get_context("spawn")


@pytest.fixture
def env() -> dict[str, str]:
    """The server's settings; fail on CI without a server, else skip."""
    return server_env()


@pytest.fixture
def name(env: dict[str, str]) -> Iterator[str]:
    """A queue name unique to the test; its tables are dropped afterwards."""
    yield from unique_name(env, "t", ("queue_{name}", "persistq_pending_queue_{name}"))


# --------------------------------------------------------------------- async API


@pytest.mark.anyio
async def test_async_fifo_api(env: dict[str, str], name: str) -> None:
    """put/get/put_many/get_many/qsize/queue/update/get(id)/raw keep FIFO order on the server."""
    async with MySQLQueue(**_kwargs(env, name)) as q:
        assert await q.empty()
        first = await q.put("a")
        ids = await q.put_many(["b", "c", {"d": 4}])
        assert ids == [first + 1, first + 2, first + 3]
        assert await q.qsize() == 4
        assert [r["data"] for r in await q.queue()] == ["a", "b", "c", {"d": 4}]
        assert await q.update("B", id=ids[0]) == ids[0]
        raw = await q.get(id=ids[1], raw=True)
        assert raw["pqid"] == ids[1]
        assert raw["data"] == "c"
        assert isinstance(raw["timestamp"], float)
        assert await q.get() == "a"
        assert await q.get_many(10) == ["B", {"d": 4}]
        with pytest.raises(persistq.Empty):
            await q.get_nowait()
        with pytest.raises(persistq.Empty):
            await q.get(timeout=0.05)
        with pytest.raises(persistq.ItemNotFound):
            await q.update("x", id=10**12)
        await q.shrink_disk_usage()
        assert q.size == 0
    assert q.closed
    with pytest.raises(persistq.QueueClosed):
        await q.put(1)


@pytest.mark.anyio
async def test_async_maxsize_task_done_join(env: dict[str, str], name: str) -> None:
    """maxsize makes put wait or raise Full; join returns once every got item is done."""
    async with MySQLQueue(**_kwargs(env, name), maxsize=2) as q:
        await q.put(1)
        await q.put(2)
        assert await q.full()
        with pytest.raises(persistq.Full):
            await q.put_nowait(3)
        with pytest.raises(persistq.Full):
            await q.put(3, timeout=0.05)

        async def consumer() -> None:
            for _ in range(3):
                await q.get()
                await q.task_done()

        async with anyio.create_task_group() as tg:
            tg.start_soon(consumer)
            await q.put(3, timeout=5)
            with anyio.fail_after(5):
                await q.join()
        assert await q.qsize() == 0


@pytest.mark.anyio
async def test_async_get_woken_by_other_connection(env: dict[str, str], name: str) -> None:
    """A blocked get is woken within the poll interval by a put through another queue object."""
    async with (
        MySQLQueue(**_kwargs(env, name), poll_interval=0.02) as q1,
        MySQLQueue(**_kwargs(env, name)) as q2,
    ):

        async def later() -> None:
            await anyio.sleep(0.2)
            await q2.put("x")

        async with anyio.create_task_group() as tg:
            tg.start_soon(later)
            start = anyio.current_time()
            assert await q1.get(timeout=10) == "x"
            assert anyio.current_time() - start < 2


@pytest.mark.anyio
async def test_async_cancelled_get_leaves_item(env: dict[str, str], name: str) -> None:
    """A get cancelled while waiting takes nothing; the item put afterwards is still there."""
    async with MySQLQueue(**_kwargs(env, name)) as q:
        with anyio.move_on_after(0.1):
            await q.get()
        await q.put("kept")
        assert await q.qsize() == 1
        assert await q.get() == "kept"


@pytest.mark.anyio
async def test_async_auto_commit_false_returns_unfinished_items(env: dict[str, str], name: str) -> None:
    """With auto_commit=False an item got but not done comes back after close; task_done removes it."""
    async with MySQLQueue(**_kwargs(env, name), auto_commit=False) as q:
        await q.put_many(["one", "two"])
        assert await q.get() == "one"
        await q.task_done()
        assert await q.get() == "two"
        assert await q.qsize() == 0
    async with MySQLQueue(**_kwargs(env, name)) as q:
        assert await q.get_nowait() == "two"
        assert await q.qsize() == 0


@pytest.mark.anyio
async def test_task_done_from_tasks_that_got_nothing(
    env: dict[str, str], name: str, anyio_backend: str
) -> None:
    """auto_commit=False: task_done in other tasks finishes the oldest items once each; join; ValueError."""
    items = [f"job-{i}" for i in range(8)]
    async with MySQLQueue(**_kwargs(env, name), auto_commit=False) as q:
        await q.put_many(items)
        assert [await q.get() for _ in items] == items
        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(q.task_done)
        assert q.statistics().pending == 3
        if anyio_backend == "asyncio":
            await asyncio.gather(*[q.task_done() for _ in range(3)])
        else:
            async with anyio.create_task_group() as tg:
                for _ in range(3):
                    tg.start_soon(q.task_done)
        with anyio.fail_after(10):
            await q.join()
        with pytest.raises(ValueError, match="too many times"):
            await q.task_done()
        await q.put_many(["x", "y", "z"])
        assert [await q.get() for _ in range(3)] == ["x", "y", "z"]
        async with anyio.create_task_group() as tg:
            tg.start_soon(q.task_done)  # holds none: finishes "x", the oldest handed out
    async with MySQLQueue(**_kwargs(env, name)) as q:
        assert await q.get_many(10, block=False) == ["y", "z"]


def test_sync_task_done_from_a_worker_thread(env: dict[str, str], name: str) -> None:
    """A consumer thread hands items to a worker thread whose task_done finishes them; join returns."""
    items = list(range(20))
    with SyncMySQLQueue(**_kwargs(env, name), auto_commit=False) as q:
        q.put_many(items)
        handoff: list[Any] = []
        ready = threading.Semaphore(0)

        def consumer() -> None:
            for _ in items:
                handoff.append(q.get(timeout=10))
                ready.release()

        def worker() -> None:
            for _ in items[:15]:
                assert ready.acquire(timeout=10)
                q.task_done()

        assert run_threads([consumer, worker]) == []
        assert handoff == items
        assert q.statistics().pending == 5
    with SyncMySQLQueue(**_kwargs(env, name)) as q:
        assert q.get_many(30, block=False) == items[15:]


@pytest.mark.anyio
async def test_async_items_of_one_mebibyte(env: dict[str, str], name: str) -> None:
    """Items of 1 MiB (beyond persist-queue's 64 KiB BLOB) survive put, put_many and get."""
    big = os.urandom(1 << 20)
    async with MySQLQueue(**_kwargs(env, name)) as q:
        await q.put(big)
        await q.put_many([big, big[::-1], b"\x00'\\\"" * 1000])
        assert await q.get() == big
        assert await q.get_many(3) == [big, big[::-1], b"\x00'\\\"" * 1000]


@pytest.mark.anyio
async def test_serializer_mismatch(env: dict[str, str], name: str) -> None:
    """A table written with pickle refuses to open with json."""
    async with MySQLQueue(**_kwargs(env, name)) as q:
        await q.put(1)
    q = MySQLQueue(**_kwargs(env, name), serializer=persistq.serializers.json)
    with pytest.raises(SerializerMismatch):
        await q.open()
    await q.close()


class _StreamPickle:
    """persist-queue's file-queue serializer shape: dump/load only."""

    NAME = "stream-pickle"

    def dump(self, value: Any, fp: Any) -> None:
        pickle.dump(value, fp, protocol=4)

    def load(self, fp: Any) -> Any:
        return pickle.load(fp)


@pytest.mark.anyio
async def test_dump_load_only_serializer(env: dict[str, str], name: str) -> None:
    """A serializer with only dump/load stores and returns items on the server, also after a reopen."""
    async with MySQLQueue(**_kwargs(env, name), serializer=_StreamPickle()) as q:
        await q.put({"a": [1, 2]})
        await q.put_many(["b", b"c"])
    async with MySQLQueue(**_kwargs(env, name), serializer=_StreamPickle()) as q:
        assert await q.get_many(3) == [{"a": [1, 2]}, "b", b"c"]
    with persistq.sync.MySQLQueue(**_kwargs(env, name), serializer=_StreamPickle()) as sq:
        sq.put(("t", 1))
        assert sq.get() == ("t", 1)


@pytest.mark.anyio
async def test_opens_and_widens_a_persist_queue_table(env: dict[str, str], name: str) -> None:
    """A table with persist-queue's INT/BLOB/FLOAT schema opens in place and is widened."""
    conn = _connect(env)
    try:
        with conn.cursor() as cur:
            cur.execute(
                f"CREATE TABLE `queue_{name}` (_id INTEGER PRIMARY KEY AUTO_INCREMENT, "
                "data BLOB, timestamp FLOAT)"
            )
            for item in ("old1", "old2"):
                cur.execute(
                    f"INSERT INTO `queue_{name}` (data, timestamp) VALUES (%s, %s)",
                    (pickle.dumps(item), time.time()),
                )
    finally:
        conn.close()
    async with MySQLQueue(**_kwargs(env, name)) as q:
        await q.put(b"x" * 100_000)
        assert await q.get() == "old1"
        assert await q.get() == "old2"
        assert await q.get() == b"x" * 100_000
    conn = _connect(env)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS "
                "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s",
                (f"queue_{name}",),
            )
            types = dict(cur.fetchall())
    finally:
        conn.close()
    assert types == {"_id": "bigint", "data": "longblob", "timestamp": "double"}


# ---------------------------------------------------------------------- sync API


def test_sync_api_and_threads(env: dict[str, str], name: str) -> None:
    """The blocking twin: persist-queue's positional constructor, FIFO, threads, with-block."""
    with SyncMySQLQueue(
        env["host"], env["user"], env["password"], env["database"], name, int(env["port"])
    ) as q:
        assert q.table_name == f"queue_{name}"
        assert env["password"] not in repr(q)
        assert q.put("a") > 0
        q.put_many(range(200))
        assert q.qsize() == 201
        assert q.size == 201
        assert len(q) == 201
        assert q.get() == "a"
        got: list[int] = []
        lock = threading.Lock()

        def worker() -> None:
            while True:
                try:
                    item = q.get(timeout=0.3)
                except persistq.sync.Empty:
                    return
                with lock:
                    got.append(item)
                q.task_done()

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(got) == list(range(200))
        assert q.empty()
        with pytest.raises(persistq.sync.Empty):
            q.get_nowait()
        q.shrink_disk_usage()
    assert q.closed


def test_sync_blocking_get_woken_by_put(env: dict[str, str], name: str) -> None:
    """A blocked sync get returns soon after another queue object puts."""
    with SyncMySQLQueue(_dsn(env, name)) as q1, SyncMySQLQueue(dsn=_dsn(env, name)) as q2:
        timer = threading.Timer(0.2, q2.put, ("late",))
        timer.start()
        start = time.monotonic()
        assert q1.get(timeout=10) == "late"
        assert time.monotonic() - start < 2
        timer.join()


# --------------------------------------------------------------- DSN and faults


def test_dsn_parsing() -> None:
    """A DSN gives host, port, user, percent-decoded password, database and table."""
    parsed = parse_dsn("mysql://us%40er:p%3Aw%2Fd@db.example.org:3307/mydb?table=jobs&charset=utf8")
    assert parsed == {
        "host": "db.example.org",
        "port": 3307,
        "user": "us@er",
        "password": "p:w/d",
        "database": "mydb",
        "name": "jobs",
        "charset": "utf8",
    }
    assert parse_dsn("mariadb://u@h/d") == {"host": "h", "user": "u", "database": "d"}
    with pytest.raises(ValueError, match="mysql://"):
        parse_dsn("postgres://u:p@h/d")
    with pytest.raises(ValueError, match="unknown"):
        parse_dsn("mysql://u:p@h/d?colour=red")
    q = MySQLQueue("mysql://u:secret-pw@h:3307/d?table=jobs", pool_size=1)
    assert (q.host, q.port, q.user, q.database, q.name, q.table_name) == (
        "h",
        3307,
        "u",
        "d",
        "jobs",
        "queue_jobs",
    )
    assert "secret-pw" not in repr(q)
    assert "secret-pw" not in repr(q._params)
    with pytest.raises(ValueError, match="conflicting"):
        MySQLQueue("mysql://u:p@h/d", passwd="other")
    with pytest.raises(ValueError):
        MySQLQueue(host="h", user="u")
    with pytest.raises(InvalidName):
        MySQLQueue("mysql://u:p@h/d", name="x" * 59)
    assert MySQLParams("h", 1, "u", "d", "pw").safe_dsn == "mysql://u@h:1/d"


@pytest.mark.anyio
async def test_unreachable_server_names_host_and_port(env: dict[str, str], name: str) -> None:
    """A bad port or host fails at open with StorageError naming host:port, never the password."""
    port = _free_port()
    secret = "very-secret-pw-123"
    q = MySQLQueue(host="127.0.0.1", port=port, user="u", password=secret, database="d", timeout=2)
    assert secret not in repr(q)
    with pytest.raises(StorageError) as info:
        await q.open()
    assert f"127.0.0.1:{port}" in str(info.value)
    assert secret not in str(info.value)
    assert secret not in repr(info.value)
    await q.close()
    q = MySQLQueue(f"mysql://u:{secret}@no-such-host.invalid:3306/d", timeout=2)
    with pytest.raises(StorageError) as info:
        await q.open()
    assert "no-such-host.invalid:3306" in str(info.value)
    assert secret not in str(info.value)
    await q.close()


def test_sync_unreachable_server_fails_in_constructor(env: dict[str, str]) -> None:
    """The sync constructor connects, so a bad port raises StorageError there."""
    port = _free_port()
    with pytest.raises(StorageError, match=f"127.0.0.1:{port}"):
        SyncMySQLQueue("127.0.0.1", "u", "pw-xyz", "d", port=port, timeout=2)


def _read(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def test_four_consumers_two_producers_each_item_exactly_once(
    env: dict[str, str], name: str, tmp_path: Path
) -> None:
    """4 consumer and 2 producer processes move 20,000 items through one table: none lost, none twice."""
    n = 10_000
    dsn = _dsn(env, name)
    with SyncMySQLQueue(dsn):
        pass  # create the table before the children race to it
    barrier = CTX.Barrier(6)
    done = CTX.Event()
    kinds = ["sync", "asyncio", "trio", "sync"]
    results = [tmp_path / f"c{i}.json" for i in range(4)]
    consumers = [
        CTX.Process(
            target=_mysql_children.consume, args=(dsn, kind, 50, str(res), barrier, done), daemon=True
        )
        for kind, res in zip(kinds, results, strict=True)
    ]
    producers = [
        CTX.Process(target=_mysql_children.produce, args=(dsn, kind, tag, n, 200, barrier), daemon=True)
        for kind, tag in (("asyncio", "a"), ("sync", "b"))
    ]
    procs = consumers + producers
    for p in procs:
        p.start()
    try:
        deadline = time.monotonic() + 90
        for p in producers:
            p.join(max(0.0, deadline - time.monotonic()))
        assert [p.exitcode for p in producers] == [0, 0]
        done.set()
        for p in consumers:
            p.join(max(0.0, deadline - time.monotonic()))
        assert [p.exitcode for p in consumers] == [0, 0, 0, 0]
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join()
    got = [item for res in results for item in _read(res)]
    counts = Counter(got)
    assert not [item for item, c in counts.items() if c > 1], "items delivered twice"
    assert set(counts) == {f"{t}:{i}" for t in "ab" for i in range(n)}
    assert all(_read(res) for res in results), "a consumer got nothing"
    for res in results:  # each producer's items arrive in order at each consumer
        for tag in "ab":
            seq = [int(s.split(":")[1]) for s in _read(res) if s.startswith(tag)]
            assert seq == sorted(seq)


def _server_pid() -> int:
    with open(os.environ["PERSISTQ_MYSQL_PIDFILE"], encoding="utf-8") as f:
        return int(f.read().strip())


def _kill_server() -> None:
    pid = _server_pid()
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError(f"the server (pid {pid}) did not die")


def _restart_server() -> None:
    subprocess.run([os.environ["PERSISTQ_MYSQL_START_CMD"]], check=True, timeout=90, capture_output=True)


@pytest.mark.serial
@pytest.mark.parametrize("driver", ["aiomysql", "pymysql"])
def test_server_killed_and_restarted(env: dict[str, str], name: str, driver: str) -> None:
    """With the server SIGKILLed, calls raise clear StorageError; after a restart nothing put is lost."""
    if not os.environ.get("PERSISTQ_MYSQL_PIDFILE") or not os.environ.get("PERSISTQ_MYSQL_START_CMD"):
        pytest.skip("needs PERSISTQ_MYSQL_PIDFILE and PERSISTQ_MYSQL_START_CMD (scripts/mariadb.sh)")
    where = f"{env['host']}:{env['port']}"
    errors: list[BaseException | None] = []
    with (
        SyncMySQLQueue(_dsn(env, name), timeout=3, driver=driver) as q,
        SyncMySQLQueue(_dsn(env, name + "e"), timeout=3, poll_interval=0.02, driver=driver) as empty,
    ):
        put = [f"before:{i}" for i in range(50)]
        for item in put[:10]:
            q.put(item)
        q.put_many(put[10:])
        # A consumer of an empty table stays blocked until the server dies.
        t = threading.Thread(target=lambda: errors.append(_capture(empty.get, True, 30)))
        t.start()
        time.sleep(0.2)
        try:
            _kill_server()
            t.join(15)
            assert not t.is_alive(), "a blocked get did not notice the dead server"
            for call in (lambda: q.put("during"), q.get, q.qsize, lambda: q.put_many(["x", "y"])):
                with pytest.raises(StorageError) as info:
                    call()
                assert where in str(info.value)
                assert env["password"] not in str(info.value)
        finally:
            _restart_server()
        assert len(errors) == 1
        assert isinstance(errors[0], StorageError)
        assert where in str(errors[0])
        q.put("after")
        assert q.qsize() == 51
        assert [q.get() for _ in range(51)] == [*put, "after"]
        empty.put("works")
        assert empty.get() == "works"
    conn = _connect(env)
    try:
        with conn.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS `queue_{name}e`, `persistq_pending_queue_{name}e`")
    finally:
        conn.close()


def _capture(fn: Any, *args: Any) -> BaseException | None:
    try:
        fn(*args)
    except BaseException as exc:  # noqa: BLE001 - handed to the test
        return exc
    return None


@pytest.mark.anyio
async def test_waiting_get_polls_less_while_idle_and_still_wakes(env: dict[str, str], name: str) -> None:
    """An idle blocked get backs its polling off to max_poll_interval, and a put elsewhere still wakes it."""
    async with (
        MySQLQueue(**_kwargs(env, name), poll_interval=0.02, max_poll_interval=0.2) as consumer,
        MySQLQueue(**_kwargs(env, name)) as producer,
    ):
        assert consumer.max_poll_interval == 0.2
        polls: list[float] = []
        version = consumer._engine.data_version

        async def counted() -> int:
            polls.append(anyio.current_time())
            return await version()

        consumer._engine.data_version = counted  # type: ignore[method-assign]
        with pytest.raises(persistq.Empty):
            await consumer.get(timeout=1.5)
        # Fixed 20 ms polling would be about 75 checks; backing off to 0.2 s leaves about 10.
        assert 4 <= len(polls) <= 16, polls
        gaps = [b - a for a, b in itertools.pairwise(polls)]
        assert max(gaps) < 0.2 + 0.1
        assert gaps[-1] > gaps[0] * 4

        async def put_later() -> None:
            await anyio.sleep(0.5)
            await producer.put("wake")

        async with anyio.create_task_group() as tg:
            tg.start_soon(put_later)
            assert await consumer.get(timeout=5) == "wake"
    with pytest.raises(ValueError, match="max_poll_interval"):
        MySQLQueue(**_kwargs(env, name), max_poll_interval=0)


@pytest.mark.serial
@pytest.mark.parametrize("driver", ["aiomysql", "pymysql"])
def test_a_hung_server_fails_calls_instead_of_hanging(env: dict[str, str], name: str, driver: str) -> None:
    """With the server frozen (SIGSTOP), calls fail with StorageError after the read timeout, then recover."""
    if not os.environ.get("PERSISTQ_MYSQL_PIDFILE"):
        pytest.skip("needs PERSISTQ_MYSQL_PIDFILE (scripts/mariadb.sh)")
    where = f"{env['host']}:{env['port']}"

    async def main() -> None:
        async with MySQLQueue(**_kwargs(env, name), timeout=1, driver=driver) as q:
            assert q._engine.params.read_timeout == 8
            await q.put_many(["a", "b"])
            pid = _server_pid()
            os.kill(pid, signal.SIGSTOP)
            try:
                started = time.monotonic()
                with pytest.raises(StorageError) as info:
                    await q.put("during")
                elapsed = time.monotonic() - started
                assert where in str(info.value)
                # The read timeout (8 s), then one reconnect whose handshake times out (1 s).
                assert 7 < elapsed < 30, elapsed
            finally:
                os.kill(pid, signal.SIGCONT)
            await q.put("after")
            assert [await q.get(), await q.get(), await q.get()] == ["a", "b", "after"]
            assert await q.qsize() == 0

    asyncio.run(main())
