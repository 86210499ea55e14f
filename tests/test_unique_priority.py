"""UniqueQ and PriorityQueue, async on asyncio and trio, and their sync twins."""

from __future__ import annotations

import os
import sqlite3
from typing import Any

import pytest

import persistq
import persistq.sync
from persistq import serializers

SERIALIZERS = [serializers.pickle, serializers.json, serializers.msgpack, serializers.cbor2]


@pytest.mark.anyio
@pytest.mark.parametrize("ser", SERIALIZERS, ids=lambda s: s.NAME)
async def test_unique_ignores_equal_items_at_every_depth(qpath: str, ser: Any) -> None:
    """An item equal to a waiting one (keys in any order, at any depth) is not added."""
    a = {"x": {"b": 1, "a": [{"d": 1, "c": 2}]}, "y": "s" * 3}
    b = {"y": "".join(["s"] * 3), "x": {"a": [{"c": 2, "d": 1}], "b": 1}}
    async with persistq.UniqueQ(qpath, serializer=ser) as q:
        first = await q.put(a)
        assert isinstance(first, int)
        assert await q.put(b) is None
        assert await q.put_nowait(b) is None
        assert await q.qsize() == 1
        assert await q.get() == a
        assert isinstance(await q.put(b), int)  # got items may be put again
        ids = await q.put_many([1, 1, 2])
        assert ids[1] is None
        assert ids[0] is not None
        assert ids[2] is not None
        assert await q.qsize() == 3


@pytest.mark.anyio
async def test_priority_lowest_first_fifo_among_equals(qpath: str) -> None:
    """Lower priority numbers come out first; equal priorities in insertion order."""
    async with persistq.PriorityQueue(qpath) as q:
        await q.put("low", priority=10)
        await q.put("high-1", priority=-5)
        await q.put("mid", priority=5)
        await q.put("high-2", priority=-5)
        await q.put_nowait("default")
        await q.put_many(["m1", "m2"], priority=5)
        got = [await q.get() for _ in range(7)]
        assert got == ["high-1", "high-2", "default", "mid", "m1", "m2", "low"]


@pytest.mark.anyio
async def test_priority_survives_reopen_and_auto_commit_false(qpath: str) -> None:
    """Priority order holds across reopen; un-done items come back with their priority."""
    async with persistq.PriorityQueue(qpath, auto_commit=False) as q:
        await q.put("c", priority=3)
        await q.put("a", priority=1)
        await q.put("b", priority=2)
        assert await q.get() == "a"
    async with persistq.PriorityQueue(qpath, auto_commit=False) as q:
        assert [await q.get(), await q.get(), await q.get()] == ["a", "b", "c"]
        for _ in range(3):
            await q.task_done()
        assert await q.qsize() == 0


@pytest.mark.anyio
async def test_priority_task_done_never_deletes_unconsumed_rows(qpath: str) -> None:
    """auto_commit=False task_done deletes only the got item (persist-queue deleted others)."""
    async with persistq.PriorityQueue(qpath, auto_commit=False) as q:
        await q.put("low", priority=10)
        await q.put("high", priority=1)
        await q.put("mid", priority=5)
        assert await q.get() == "high"
        await q.task_done()
    async with persistq.PriorityQueue(qpath) as q:
        assert [r["data"] for r in await q.queue()] == ["mid", "low"]


@pytest.mark.anyio
@pytest.mark.parametrize("bad", ["1", 1.5, True, None])
async def test_priority_must_be_an_int(qpath: str, bad: Any) -> None:
    """A priority that is not an int raises TypeError and stores nothing."""
    async with persistq.PriorityQueue(qpath) as q:
        with pytest.raises(TypeError):
            await q.put("x", priority=bad)
        assert await q.qsize() == 0


@pytest.mark.anyio
async def test_priority_get_uses_the_index(qpath: str) -> None:
    """The next-item lookup of a priority queue is an index search, not a table scan."""
    async with persistq.PriorityQueue(qpath) as q:
        await q.put(1)
        conn = q._engine._conn
        assert conn is not None
        sql = 'SELECT _id FROM "priority_queue_default" ORDER BY priority ASC, _id ASC LIMIT 1'
        plan = conn.execute("EXPLAIN QUERY PLAN " + sql).fetchall()
        text = " ".join(str(row[-1]) for row in plan)
        assert "USING INDEX" in text or "USING COVERING INDEX" in text, text
        assert "TEMP B-TREE" not in text, text


def test_sync_unique_and_priority(qpath: str) -> None:
    """The blocking twins behave like the async classes."""
    with persistq.sync.UniqueQ(qpath) as u:
        assert u.put({"a": 1, "b": 2}) is not None
        assert u.put({"b": 2, "a": 1}) is None
        assert u.qsize() == 1
    with persistq.sync.PriorityQueue(qpath) as p:
        p.put("b", 2)
        p.put_nowait("a", 1)
        assert [p.get(), p.get()] == ["a", "b"]


def test_persist_queue_unique_and_priority_databases_open_in_place(qpath: str) -> None:
    """unique_queue_* and priority_queue_* tables written by persist-queue 1.1.0 keep working."""
    import persistqueue

    pu = persistqueue.UniqueQ(qpath)
    pu.put("u1")
    pu.put("u2")
    pu.close()
    pp = persistqueue.PriorityQueue(qpath)
    pp.put("p-low", priority=9)
    pp.put("p-high", priority=1)
    pp.close()
    with persistq.sync.UniqueQ(qpath) as u:
        assert u.put("u3") is not None
        assert u.put("u3") is None
        assert [u.get(), u.get(), u.get()] == ["u1", "u2", "u3"]
    with persistq.sync.PriorityQueue(qpath) as p:
        p.put("p-mid", 5)
        assert [p.get(), p.get(), p.get()] == ["p-high", "p-mid", "p-low"]
        p.put("again", 3)
    con = sqlite3.connect(os.path.join(qpath, "data.db"))
    try:
        names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    finally:
        con.close()
    assert "persistq_priority_queue_default_priority" in names
    back = persistqueue.PriorityQueue(qpath)
    assert back.get() == "again"
    back.close()


@pytest.mark.parametrize("ser_name", ["pickle", "msgpack", "cbor2", "json"])
def test_unique_recognises_items_persist_queue_stored(qpath: str, ser_name: str) -> None:
    """In a persist-queue UniqueQ table, each library recognises the other's duplicates."""
    import importlib

    import persistqueue

    theirs = importlib.import_module(f"persistqueue.serializers.{ser_name}")
    ours = getattr(serializers, ser_name)
    pu = persistqueue.UniqueQ(qpath, serializer=theirs)
    pu.put("job-1")
    pu.put({"b": 1, "a": 2})
    pu.close()
    with persistq.sync.UniqueQ(qpath, serializer=ours) as u:
        assert u.put("job-1") is None
        assert u.put({"a": 2, "b": 1}) is None
        assert u.put("job-2") is not None
        assert u.qsize() == 3
    back = persistqueue.UniqueQ(qpath, serializer=theirs)
    assert back.put("job-2") is None  # persist-queue recognises what persistq stored
    back.close()
