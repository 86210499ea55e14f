"""Databases written by persist-queue 1.1.0 open in place, and stay readable by it.

persist-queue runs on the test thread (its default ``multithreading=False``
ties a connection to the thread that opened it), synchronously, even inside
the async tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import persistqueue
import persistqueue.serializers.cbor2
import persistqueue.serializers.json
import persistqueue.serializers.msgpack
import persistqueue.serializers.pickle
import pytest

import persistq
import persistq.serializers.cbor2
import persistq.serializers.json
import persistq.serializers.msgpack
import persistq.serializers.pickle
import persistq.sync

# serializer name -> (persist-queue's module, persistq's module)
SERIALIZERS = {
    "pickle": (persistqueue.serializers.pickle, persistq.serializers.pickle),
    "json": (persistqueue.serializers.json, persistq.serializers.json),
    "msgpack": (persistqueue.serializers.msgpack, persistq.serializers.msgpack),
    "cbor2": (persistqueue.serializers.cbor2, persistq.serializers.cbor2),
}

# How the queue is named and stored: constructor keywords for both libraries.
LAYOUTS = {
    "default": {},
    "name": {"name": "jobs-2"},
    "db_file_name": {"db_file_name": "other.db"},
}

# order -> (persist-queue's class, persistq's async class, persistq's sync class)
ORDERS = {
    "fifo": (persistqueue.SQLiteQueue, persistq.SQLiteQueue, persistq.sync.SQLiteQueue),
    "filo": (persistqueue.FILOSQLiteQueue, persistq.FILOSQLiteQueue, persistq.sync.FILOSQLiteQueue),
}

COMMON_ITEMS: list[Any] = [
    {"id": 1, "name": "alpha", "tags": ["x", "y"]},
    "plain string, ünïcode ✓",
    {"nested": {"list": [1, 2, [3, 4]], "map": {"k": None, "f": 1.5, "t": True}}},
    [1, "two", 3.0, None, {"deep": [[], {}]}],
    12345678901234,
    -7.25,
    "",
]
BINARY_ITEMS: list[Any] = [b"\x00\x01raw bytes\xff", {"blob": b"\xde\xad\xbe\xef", "n": [b"", b"x"]}]
NEW_ITEMS: list[Any] = [{"written by": "persistq", "list": [1, [2]]}, "persistq string", [3, 2, 1]]


def _items(serializer: str) -> list[Any]:
    """Items for ``serializer``: JSON has no bytes; pickle also keeps tuples."""
    if serializer == "json":
        return list(COMMON_ITEMS)
    if serializer == "pickle":
        return [*COMMON_ITEMS, *BINARY_ITEMS, ("a", 1, (2, 3))]
    return [*COMMON_ITEMS, *BINARY_ITEMS]


def _lists(value: Any) -> Any:
    """persist-queue's msgpack decodes arrays as tuples; turn them into lists to compare."""
    if isinstance(value, (list, tuple)):
        return [_lists(v) for v in value]
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    return value


def _get_order(order: str, items: list[Any]) -> list[Any]:
    return list(items) if order == "fifo" else list(reversed(items))


def _after_mixed(order: str, old_left: list[Any], new: list[Any]) -> list[Any]:
    """Get order of old items still waiting (``old_left``, in get order) plus ``new`` items put after."""
    if order == "fifo":
        return old_left + new
    return _get_order(order, new) + old_left


def _pq_write(order: str, path: str, serializer: str, layout: str, items: list[Any]) -> list[int]:
    pq_cls = ORDERS[order][0]
    q = pq_cls(path, auto_commit=True, serializer=SERIALIZERS[serializer][0], **LAYOUTS[layout])
    try:
        return [q.put(item) for item in items]
    finally:
        q.close()


def _pq_read_all(order: str, path: str, serializer: str, layout: str) -> tuple[int, list[Any]]:
    """Open with persist-queue; return its qsize() on open and every item, in its get order."""
    pq_cls = ORDERS[order][0]
    q = pq_cls(path, auto_commit=True, serializer=SERIALIZERS[serializer][0], **LAYOUTS[layout])
    try:
        size = q.qsize()
        got = [q.get(block=False) for _ in range(size)]
        with pytest.raises(persistqueue.Empty):
            q.get(block=False)
        return size, got
    finally:
        q.close()


def _same(serializer: str, got: list[Any], expected: list[Any]) -> None:
    if serializer == "msgpack":
        assert _lists(got) == expected
    else:
        assert got == expected


PARAMS = pytest.mark.parametrize(
    ("serializer", "layout", "order"),
    [(s, lay, o) for s in SERIALIZERS for lay in LAYOUTS for o in ORDERS],
)


@PARAMS
def test_sync_queue_opens_persistqueue_database_in_place(
    serializer: str, layout: str, order: str, qpath: str
) -> None:
    """persistq.sync reads a persist-queue database in order, and persist-queue reads what it adds."""
    old = _items(serializer)
    ids = _pq_write(order, qpath, serializer, layout, old)
    expected = _get_order(order, old)
    expected_ids = _get_order(order, ids)
    k = len(old) // 2
    sync_cls = ORDERS[order][2]
    with sync_cls(qpath, serializer=SERIALIZERS[serializer][1], **LAYOUTS[layout]) as q:
        assert q.qsize() == len(old)
        waiting = q.queue()
        assert [w["data"] for w in waiting] == expected
        assert [w["id"] for w in waiting] == expected_ids
        first = q.get(raw=True)
        assert first["pqid"] == expected_ids[0]
        assert first["data"] == expected[0]
        assert isinstance(first["timestamp"], float)
        got = [first["data"]] + [q.get_nowait() for _ in range(k - 1)]
        assert got == expected[:k]
        for item in NEW_ITEMS:
            q.put(item)
        assert q.qsize() == len(old) - k + len(NEW_ITEMS)
    after = _after_mixed(order, expected[k:], NEW_ITEMS)
    size, got_back = _pq_read_all(order, qpath, serializer, layout)
    assert size == len(after)
    _same(serializer, got_back, after)
    with sync_cls(qpath, serializer=SERIALIZERS[serializer][1], **LAYOUTS[layout]) as q:
        assert q.qsize() == 0


@pytest.mark.anyio
@PARAMS
async def test_async_queue_opens_persistqueue_database_in_place(
    serializer: str, layout: str, order: str, qpath: str
) -> None:
    """The async queue reads a persist-queue database in order, and persist-queue reads what it adds."""
    old = _items(serializer)
    ids = _pq_write(order, qpath, serializer, layout, old)
    expected = _get_order(order, old)
    expected_ids = _get_order(order, ids)
    k = len(old) // 2
    async_cls = ORDERS[order][1]
    async with async_cls(qpath, serializer=SERIALIZERS[serializer][1], **LAYOUTS[layout]) as q:
        assert await q.qsize() == len(old)
        waiting = await q.queue()
        assert [w["data"] for w in waiting] == expected
        assert [w["id"] for w in waiting] == expected_ids
        first = await q.get(raw=True)
        assert first["pqid"] == expected_ids[0]
        assert first["data"] == expected[0]
        assert isinstance(first["timestamp"], float)
        got = [first["data"]] + [await q.get_nowait() for _ in range(k - 1)]
        assert got == expected[:k]
        for item in NEW_ITEMS:
            await q.put(item)
        assert await q.qsize() == len(old) - k + len(NEW_ITEMS)
    after = _after_mixed(order, expected[k:], NEW_ITEMS)
    size, got_back = _pq_read_all(order, qpath, serializer, layout)
    assert size == len(after)
    _same(serializer, got_back, after)
    async with async_cls(qpath, serializer=SERIALIZERS[serializer][1], **LAYOUTS[layout]) as q:
        assert await q.empty()


@pytest.mark.parametrize("order", list(ORDERS))
@pytest.mark.parametrize("serializer", list(SERIALIZERS))
def test_persistqueue_reads_database_created_by_persistq(serializer: str, order: str, qpath: str) -> None:
    """A database persistq creates and fills is read by persist-queue, in order, with the same values."""
    items = _items(serializer)
    sync_cls = ORDERS[order][2]
    with sync_cls(qpath, serializer=SERIALIZERS[serializer][1], name="made-here") as q:
        ids = q.put_many(items)
    pq_cls = ORDERS[order][0]
    pq = pq_cls(qpath, name="made-here", auto_commit=True, serializer=SERIALIZERS[serializer][0])
    try:
        assert pq.qsize() == len(items)
        assert [row["id"] for row in sorted(pq.queue(), key=lambda r: r["id"])] == ids
        got = [pq.get(block=False) for _ in items]
    finally:
        pq.close()
    _same(serializer, got, _get_order(order, items))


def test_database_shared_by_several_persistqueue_tables_opens_in_place(tmp_path: Path) -> None:
    """One persist-queue file holding a FIFO and a FILO table, under several names, opens table by table."""
    path = str(tmp_path / "shared")
    tables = [
        (persistqueue.SQLiteQueue, persistq.sync.SQLiteQueue, "default", "fifo"),
        (persistqueue.SQLiteQueue, persistq.sync.SQLiteQueue, "second", "fifo"),
        (persistqueue.FILOSQLiteQueue, persistq.sync.FILOSQLiteQueue, "default", "filo"),
    ]
    for pq_cls, _, name, _order in tables:
        pq = pq_cls(path, name=name, auto_commit=True, db_file_name="all.db")
        try:
            for i in range(3):
                pq.put(f"{name}-{i}")
        finally:
            pq.close()
    for _, cls, name, order in tables:
        with cls(path, name=name, db_file_name="all.db") as q:
            got = [q.get_nowait() for _ in range(q.qsize())]
        assert got == _get_order(order, [f"{name}-{i}" for i in range(3)])
