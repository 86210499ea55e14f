"""The conformance suite: every kind and PDict behaves the same on every engine (asyncio, trio, sync).

Each test runs once per engine in ``tests/_engines.py`` (SQLite, MySQL/MariaDB,
PostgreSQL), for every kind it applies to; the location is all that differs.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from _engines import ENGINES, Place, open_kwargs, place

import persistq
import persistq.sync
from persistq.errors import Empty, Full

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Kind:
    """A queue kind, its blocking twin, and what it promises."""

    name: str
    cls: Any
    twin: Any
    order: str
    unique: bool = False
    ack: bool = False

    def expected(self, items: list[int]) -> list[int]:
        """The order ``items`` (put in this order, priority = value) come out."""
        if self.order == "filo":
            return list(reversed(items))
        if self.order == "priority":
            return sorted(items)
        return list(items)


KINDS = [
    Kind("FIFOQueue", persistq.FIFOQueue, persistq.sync.FIFOQueue, "fifo"),
    Kind("FILOQueue", persistq.FILOQueue, persistq.sync.FILOQueue, "filo"),
    Kind("UniqueQ", persistq.UniqueQ, persistq.sync.UniqueQ, "fifo", unique=True),
    Kind("PriorityQueue", persistq.PriorityQueue, persistq.sync.PriorityQueue, "priority"),
    Kind("AckQueue", persistq.AckQueue, persistq.sync.AckQueue, "fifo", ack=True),
    Kind("FILOAckQueue", persistq.FILOAckQueue, persistq.sync.FILOAckQueue, "filo", ack=True),
    Kind("UniqueAckQ", persistq.UniqueAckQ, persistq.sync.UniqueAckQ, "fifo", unique=True, ack=True),
    Kind("PriorityAckQueue", persistq.PriorityAckQueue, persistq.sync.PriorityAckQueue, "priority", ack=True),
]
ITEMS = [3, 1, 4, 2]


@pytest.fixture(params=ENGINES)
def where(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Place]:
    """A fresh location and queue name on each engine."""
    with place(str(request.param), tmp_path) as p:
        yield p


def make(kind: Kind, where: Place, face: str = "async", **kwargs: Any) -> Any:
    """Open ``kind`` at ``where`` (async object, or the blocking twin with ``face="sync"``)."""
    cls = kind.twin if face == "sync" else kind.cls
    return cls(where.location, name=where.name, **open_kwargs(where.engine), **kwargs)


async def put(kind: Kind, q: Any, item: int, **kwargs: Any) -> Any:
    """Put ``item``, with priority = item on priority kinds."""
    if kind.order == "priority":
        return await q.put(item, priority=item, **kwargs)
    return await q.put(item, **kwargs)


async def drain(kind: Kind, q: Any) -> list[Any]:
    """Get (and ack) every waiting item, in delivery order."""
    out = []
    while True:
        try:
            item = await q.get_nowait()
        except Empty:
            return out
        if kind.ack:
            await q.ack(item)
        out.append(item)


@pytest.mark.anyio
@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
async def test_order_survives_reopen(kind: Kind, where: Place) -> None:
    """Items come out in the kind's order, from this object and from a new one after reopening."""
    async with make(kind, where) as q:
        for item in ITEMS:
            await put(kind, q, item)
        assert await q.qsize() == len(ITEMS)
        first = await q.get()
        if kind.ack:
            await q.ack(first)
        assert first == kind.expected(ITEMS)[0]
    async with make(kind, where) as q:
        assert await drain(kind, q) == kind.expected(ITEMS)[1:]
        assert await q.qsize() == 0


@pytest.mark.anyio
@pytest.mark.parametrize("kind", [k for k in KINDS if k.unique], ids=lambda k: k.name)
async def test_unique_kinds_store_one_copy(kind: Kind, where: Place) -> None:
    """A put of an item equal to a waiting one stores nothing and returns None, on every engine."""
    async with make(kind, where) as q:
        assert isinstance(await q.put({"a": 1, "b": [1, 2]}), int)
        assert await q.put({"b": [1, 2], "a": 1}) is None
        ids = await q.put_many(["x", "x", "y"])
        assert ids[1] is None
        assert ids[0] is not None
        assert ids[2] is not None
        assert await q.qsize() == 3
        assert await drain(kind, q) == [{"a": 1, "b": [1, 2]}, "x", "y"]
        if kind.ack:
            assert await q.put("x") is None  # an acked item is remembered (persist-queue's UNIQUE)
        else:
            assert isinstance(await q.put("x"), int)  # a got item may come again


@pytest.mark.anyio
async def test_unique_ack_queue_remembers_finished_items(where: Place) -> None:
    """UniqueAckQ refuses items equal to acked or failed ones, past max_acked_length too, until forgotten."""
    kind = next(k for k in KINDS if k.name == "UniqueAckQ")
    async with make(kind, where, max_acked_length=2) as q:
        ids = await q.put_many([f"p{i}" for i in range(6)])
        assert None not in ids
        for _ in range(5):
            await q.ack(await q.get())
        assert await q.acked_count() <= 3  # trimmed (servers trim every few acks)
        failed = await q.get()
        await q.ack_failed(failed)
        # Waiting, in flight, acked, trimmed, failed: every one is refused.
        assert await q.put_many([f"p{i}" for i in range(6)]) == [None] * 6
    async with make(kind, where) as q:
        assert await q.put("p0") is None  # remembered across objects
        assert await q.put("new") is not None
        assert await q.requeue_failed() == 1  # the same row, with its id, is ready again
        again = await q.get(raw=True)
        assert (again["pqid"], again["data"]) == (ids[5], "p5")
        await q.ack(id=again["pqid"])
        assert await q.forget_acked(3600) == 0  # nothing is an hour old
        assert await q.forget_acked(0) >= 6  # rows and fingerprints of every acked item
        items = [f"p{i}" for i in range(6)]
        assert None not in await q.put_many(items)
        assert await q.qsize() == 7  # "new" was waiting, so forget_acked left it
        while await q.qsize():
            await q.ack(await q.get())
        assert await q.put_many(items) == [None] * 6
        assert await q.clear_acked_data(keep_latest=0) >= 6
        assert None not in await q.put_many(items)


@pytest.mark.anyio
@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
async def test_empty_full_and_timeouts(kind: Kind, where: Place) -> None:
    """get_nowait on an empty queue raises Empty, get(timeout) waits then raises, maxsize bounds puts."""
    async with make(kind, where, maxsize=2) as q:
        with pytest.raises(Empty):
            await q.get_nowait()
        with pytest.raises(Empty):
            await q.get(timeout=0.05)
        await put(kind, q, 1)
        await put(kind, q, 2)
        with pytest.raises(Full):
            await put(kind, q, 3, block=False)
        with pytest.raises(Full):
            await put(kind, q, 3, timeout=0.05)
        assert await q.full()


@pytest.mark.anyio
@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
async def test_blocked_get_wakes_on_another_objects_put(kind: Kind, where: Place) -> None:
    """A get blocked on one object returns the item another object (another connection) puts."""
    async with make(kind, where) as consumer, make(kind, where) as producer:
        got: list[Any] = []

        async def consume() -> None:
            got.append(await consumer.get(timeout=10))

        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            await anyio.sleep(0.1)
            await put(kind, producer, 7)
        assert got == [7]


@pytest.mark.anyio
@pytest.mark.parametrize("kind", [k for k in KINDS if not k.ack], ids=lambda k: k.name)
async def test_items_not_done_come_back(kind: Kind, where: Place) -> None:
    """auto_commit=False: an item got and not task_done comes back after close; a done one does not."""
    async with make(kind, where, auto_commit=False) as q:
        for item in (1, 2):
            await put(kind, q, item)
        first = await q.get()
        await q.task_done()
        second = await q.get()
    assert sorted([first, second]) == [1, 2]
    async with make(kind, where) as q:
        assert await drain(kind, q) == [second]


@pytest.mark.anyio
@pytest.mark.parametrize("kind", [k for k in KINDS if k.ack], ids=lambda k: k.name)
async def test_ack_nack_and_dead_letters(kind: Kind, where: Place) -> None:
    """ack settles, nack gives back, max_attempts moves an item to the dead letters, requeue revives it."""
    async with make(kind, where, max_attempts=2) as q:
        for item in (1, 2):
            await put(kind, q, item)
        a = await q.get()
        await q.ack(a)
        b = await q.get()
        assert await q.unack_count() == 1
        await q.nack(b)
        assert await q.ready_count() == 1
        assert await q.get() == b  # attempt 2
        await q.nack(b)  # past max_attempts: failed, not ready
        assert await q.ready_count() == 0
        assert await q.ack_failed_count() == 1
        assert [r["data"] for r in await q.failed()] == [b]
        assert await q.requeue_failed() == 1
        assert await q.get() == b
        await q.ack_failed(b)
        assert await q.ack_failed_count() == 1
    async with make(kind, where) as q:
        assert await q.acked_count() >= 1
        assert await q.ack_failed_count() == 1


@pytest.mark.anyio
@pytest.mark.parametrize("kind", [k for k in KINDS if k.ack], ids=lambda k: k.name)
async def test_unacked_items_of_a_closed_object_come_back(kind: Kind, where: Place) -> None:
    """An item got and neither acked nor nacked is delivered again by the next object (auto_resume)."""
    async with make(kind, where) as q:
        await put(kind, q, 5)
        assert await q.get() == 5
    async with make(kind, where) as q:
        assert await q.get(timeout=5) == 5
        await q.ack(5)


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
def test_sync_twin(kind: Kind, where: Place) -> None:
    """The blocking twin on each engine: order, qsize, reopen, with-statement."""
    with make(kind, where, "sync") as q:
        for item in ITEMS:
            if kind.order == "priority":
                q.put(item, priority=item)
            else:
                q.put(item)
        assert q.qsize() == len(ITEMS)
    with make(kind, where, "sync") as q:
        out = []
        while q.qsize():
            item = q.get()
            if kind.ack:
                q.ack(item)
            else:
                q.task_done()
            out.append(item)
        assert out == kind.expected(ITEMS)
        with pytest.raises(Empty):
            q.get(block=False)


def _pdict(where: Place, face: str = "async") -> Any:
    cls = persistq.sync.PDict if face == "sync" else persistq.PDict
    return cls(where.location, where.name)


@pytest.mark.anyio
async def test_pdict(where: Place) -> None:
    """PDict on each engine: set/get/order/pop/popitem/setdefault/update/len, and reopen."""
    async with _pdict(where) as d:
        await d.set("b", 1)
        await d.set("a", {"x": [1]})
        await d.set("b", 2)  # an existing key keeps its place
        assert await d.keys() == ["b", "a"]
        assert await d.get("b") == 2
        assert await d.get("missing", "dflt") == "dflt"
        assert await d.setdefault("c", 3) == 3
        assert await d.setdefault("c", 4) == 3
        await d.update({"d": 4, "e": 5})
        assert await d.len() == 5
        assert await d.pop("d") == 4
        assert await d.popitem() == ("e", 5)
        assert await d.contains("a")
    async with _pdict(where) as d:
        assert await d.items() == [("b", 2), ("a", {"x": [1]}), ("c", 3)]
        await d.clear()
        assert await d.len() == 0


def test_sync_pdict(where: Place) -> None:
    """The blocking PDict on each engine is a MutableMapping that persists."""
    with _pdict(where, "sync") as d:
        d["k"] = [1, 2]
        d["j"] = "v"
        del d["j"]
        assert dict(d) == {"k": [1, 2]}
    with _pdict(where, "sync") as d:
        assert d["k"] == [1, 2]
        with pytest.raises(KeyError):
            d["j"]


def test_mysql_pdict_refuses_a_key_it_cannot_index(tmp_path: Path) -> None:
    """On MySQL a PDict key over 3,072 UTF-8 bytes raises persistq.KeyTooLong (a ValueError); 3,072 fit."""
    with place("mysql", tmp_path) as where, _pdict(where, "sync") as d:
        d["é" * 1536] = 1
        with pytest.raises(persistq.KeyTooLong):
            d["k" * 3073] = 2
        assert list(d) == ["é" * 1536]


# --------------------------------------------------------------- locations


@pytest.mark.parametrize(
    "cls",
    [persistq.FIFOQueue, persistq.UniqueQ, persistq.AckQueue, persistq.PriorityAckQueue, persistq.PDict],
)
def test_unknown_scheme_is_refused(cls: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A URL with an unknown scheme raises ValueError and creates no directory named 'redis:'."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="unknown location scheme 'redis://'"):
        cls("redis://localhost:6379/0", "x") if cls is persistq.PDict else cls("redis://localhost:6379/0")
    assert list(tmp_path.iterdir()) == []


def test_file_queue_refuses_a_server_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The file Queue stores in a directory: a server URL raises ValueError without the password."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="directory") as info:
        persistq.Queue("mysql://u:s3cret@127.0.0.1:1/db")
    assert "s3cret" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_missing_extra_is_named() -> None:
    """A URL whose engine's driver is not installed raises MissingDependencyError naming the extra."""
    code = (
        "import sys; sys.modules['pymysql'] = None\n"
        "import persistq\n"
        "try:\n"
        "    persistq.UniqueQ('mysql://u:p@127.0.0.1:1/db')\n"
        "except persistq.MissingDependencyError as e:\n"
        "    print('OK', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("OK")
    assert "persistq[mysql]" in out.stdout


@pytest.mark.parametrize("engine", ["mysql", "postgresql"])
def test_server_url_password_stays_out_of_attributes(engine: str) -> None:
    """The password of a URL location is not in path, repr or an error; ?table= names the queue."""
    pytest.importorskip("pymysql" if engine == "mysql" else "psycopg")
    q = persistq.FIFOQueue(f"{engine}://user:pa55word@127.0.0.1:1/db?table=jobs")
    assert q.name == "jobs"
    assert "pa55word" not in q.path
    assert "pa55word" not in repr(q)
    assert q.path.startswith(engine)
