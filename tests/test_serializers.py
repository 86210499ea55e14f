"""The serializers and the error hierarchy."""

from __future__ import annotations

import asyncio
import collections
import io
import json as stdjson
import os
import pickle as stdpickle
import queue
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import SQLITE_KINDS

import persistq
import persistq.sync
from persistq import serializers

ALL = [serializers.pickle, serializers.json, serializers.msgpack, serializers.cbor2]


@pytest.mark.parametrize("ser", ALL, ids=lambda s: s.NAME)
def test_dumps_loads_and_stream_records_roundtrip(ser: Any) -> None:
    """dumps/loads round-trip, and dump/load read records back one at a time."""
    values = [{"a": 1, "b": [1, 2]}, "text\r\n", 3, None, [1, {"x": "y"}]]
    for v in values:
        assert ser.loads(ser.dumps(v)) == v
    buf = io.BytesIO()
    for v in values:
        ser.dump(v, buf)
    buf.seek(0)
    assert [ser.load(buf) for _ in values] == values


@pytest.mark.parametrize("ser", ALL, ids=lambda s: s.NAME)
def test_sort_keys_makes_nested_key_order_irrelevant(ser: Any) -> None:
    """With sort_keys, dicts differing only in key order at any depth encode equally."""
    a = {"x": {"b": 1, "a": [{"d": 1, "c": 2}]}, "y": 2}
    b = {"y": 2, "x": {"a": [{"c": 2, "d": 1}], "b": 1}}
    assert ser.dumps(a, sort_keys=True) == ser.dumps(b, sort_keys=True)


def test_msgpack_returns_lists_not_tuples() -> None:
    """msgpack gives lists back as lists (persist-queue returned tuples)."""
    assert serializers.msgpack.loads(serializers.msgpack.dumps([1, [2]])) == [1, [2]]


def test_serializers_import_without_explicit_submodule_import() -> None:
    """persistq.serializers.json etc. work after a bare 'import persistq'."""
    code = "import persistq; print(persistq.serializers.json.dumps([1]), persistq.serializers.cbor2.NAME)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "b'[1]' cbor2"


def test_missing_optional_package_names_the_extra() -> None:
    """Without msgpack installed, its serializer says which extra to install."""
    code = (
        "import sys; sys.modules['msgpack'] = None\n"
        "import persistq\n"
        "try:\n    persistq.serializers.msgpack.dumps(1)\n"
        "except persistq.MissingDependencyError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "persistq[msgpack]" in out.stdout


def test_json_refuses_pickle_bytes() -> None:
    """The json serializer never falls back to pickle for bytes it did not write."""
    with pytest.raises(ValueError):
        serializers.json.loads(serializers.pickle.dumps({"a": 1}))


def test_error_hierarchy() -> None:
    """Empty/Full are also stdlib and asyncio exceptions; all derive from PersistQError."""
    assert issubclass(persistq.Empty, queue.Empty)
    assert issubclass(persistq.Empty, asyncio.QueueEmpty)
    assert issubclass(persistq.Full, queue.Full)
    assert issubclass(persistq.Full, asyncio.QueueFull)
    for exc in (
        persistq.Empty,
        persistq.Full,
        persistq.StorageError,
        persistq.CorruptionError,
        persistq.SerializationError,
        persistq.SerializerMismatch,
        persistq.InvalidName,
        persistq.QueueClosed,
        persistq.ItemNotFound,
        persistq.PortalError,
        persistq.MissingDependencyError,
    ):
        assert issubclass(exc, persistq.PersistQError)
    assert issubclass(persistq.CorruptionError, persistq.StorageError)
    assert issubclass(persistq.InvalidName, ValueError)


# ------------------------------------------------- serializers of both shapes


class StreamOnly:
    """persist-queue's file-queue shape: dump/load only, one JSON line per record, no sort_keys."""

    NAME = "stream-json"

    def dump(self, value: Any, fp: Any) -> None:
        fp.write(stdjson.dumps(value).encode("utf-8") + b"\n")

    def load(self, fp: Any) -> Any:
        return stdjson.loads(fp.readline())


class BytesOnly:
    """persist-queue's SQL shape: dumps/loads only."""

    NAME = "bytes-json"

    def dumps(self, value: Any) -> bytes:
        return stdjson.dumps(value).encode("utf-8")

    def loads(self, data: bytes) -> Any:
        return stdjson.loads(data)


# persist-queue's own test_protocol serializer: pickle's dump, and a load that reads to the end.
READS_TO_END = collections.namedtuple("Serializer", ["dump", "load"])(
    serializers.pickle.dump, lambda fp: fp.read()
)

SHAPES = [
    pytest.param(StreamOnly(), id="dump-load"),
    pytest.param(BytesOnly(), id="dumps-loads"),
    pytest.param(
        collections.namedtuple("PickleStream", ["dump", "load"])(stdpickle.dump, stdpickle.load),
        id="pickle-stream",
    ),
]


@pytest.mark.anyio
@pytest.mark.parametrize("ser", SHAPES)
@pytest.mark.parametrize("kind", SQLITE_KINDS, ids=lambda k: k.__name__)
async def test_every_sql_kind_takes_either_shape(qpath: str, kind: Any, ser: Any) -> None:
    """Every SQLite kind stores and returns items with a dump/load or a dumps/loads serializer."""
    items = [{"b": [1, 2], "a": "x"}, "text\r\n", 3]
    async with kind(qpath, serializer=ser) as q:
        for item in items:
            await q.put(item)
    async with kind(qpath, serializer=ser) as q:
        got = [await q.get() for _ in items]
        if isinstance(q, persistq.SQLiteAckQueue):
            for item in got:
                await q.ack(item)
    assert got == (items[::-1] if kind is persistq.FILOSQLiteQueue else items)


@pytest.mark.anyio
@pytest.mark.parametrize("ser", SHAPES)
async def test_file_queue_takes_either_shape(qpath: str, ser: Any) -> None:
    """The file Queue stores and returns items with a dump/load or a dumps/loads serializer."""
    items = [{"b": [1, 2], "a": "x"}, "text\r\n", 3]
    async with persistq.Queue(qpath, serializer=ser, chunksize=2) as q:
        await q.put_many(items[:2])
        await q.put(items[2])
    async with persistq.Queue(qpath, serializer=ser) as q:
        assert [await q.get() for _ in items] == items


@pytest.mark.anyio
@pytest.mark.parametrize("ser", SHAPES)
async def test_pdict_takes_either_shape(qpath: str, ser: Any) -> None:
    """PDict stores and returns values with a dump/load or a dumps/loads serializer."""
    async with persistq.PDict(qpath, "d", serializer=ser) as d:
        await d.set("k", {"v": [1, "two"]})
    async with persistq.PDict(qpath, "d", serializer=ser) as d:
        assert await d.get("k") == {"v": [1, "two"]}


def test_persistqueue_protocol_serializer_on_the_file_queue(qpath: str) -> None:
    """persist-queue's test_protocol shape (pickle.dump, load reading to EOF) gives the pickle bytes back."""
    with persistq.sync.Queue(qpath, serializer=READS_TO_END) as q:
        q.put(b"a")
        assert q.get() == stdpickle.dumps(b"a", protocol=4)
        q.task_done()
    assert serializers.pickle.protocol == 4


def test_persistqueue_protocol_serializer_on_sql_queues(tmp_path: Path) -> None:
    """The same dump/load-only serializer works on SQLiteQueue, UniqueQ and PDict (no TypeError)."""
    expected = stdpickle.dumps(b"a", protocol=4)
    with persistq.sync.SQLiteQueue(str(tmp_path / "s"), serializer=READS_TO_END) as q:
        q.put(b"a")
        assert q.get() == expected
    with persistq.sync.UniqueQ(str(tmp_path / "u"), serializer=READS_TO_END) as u:
        u.put(b"a")
        assert u.put(b"a") is None
        assert stdpickle.loads(u.get()) == b"a"  # the canonical pickle (no memo), not the same bytes
    with persistq.sync.PDict(str(tmp_path / "pd"), "d", serializer=READS_TO_END) as d:
        d["k"] = b"a"
        assert d["k"] == expected


@pytest.mark.anyio
async def test_unique_sorts_keys_through_dump_or_canonically(tmp_path: Path) -> None:
    """UniqueQ dedups nested key orders with a dump taking sort_keys and with one that does not."""
    a = {"x": {"b": 1, "a": 2}, "y": [{"d": 1, "c": 2}]}
    b = {"y": [{"c": 2, "d": 1}], "x": {"a": 2, "b": 1}}
    with_sort_keys = collections.namedtuple("S", ["dump", "load"])(
        serializers.json.dump, serializers.json.load
    )
    for i, ser in enumerate((StreamOnly(), with_sort_keys)):
        async with persistq.UniqueQ(str(tmp_path / str(i)), serializer=ser) as q:
            assert await q.put(a) is not None
            assert await q.put(b) is None
            assert await q.qsize() == 1
            assert await q.get() == a


class WritesText:
    """A dump that writes str to the binary stream: an encode failure."""

    def dump(self, value: Any, fp: Any) -> None:
        fp.write(str(value))

    def load(self, fp: Any) -> Any:
        return fp.read()


class ReturnsText:
    """A dumps that returns str, not bytes."""

    def dumps(self, value: Any) -> Any:
        return str(value)

    def loads(self, data: bytes) -> Any:
        return data


@pytest.mark.anyio
@pytest.mark.parametrize("ser", [WritesText(), ReturnsText()], ids=["dump-writes-str", "dumps-returns-str"])
async def test_bad_encoding_is_a_serialization_error_before_anything_is_written(
    tmp_path: Path, ser: Any
) -> None:
    """A dump writing str, or a dumps returning str, raises SerializationError and stores nothing."""
    async with persistq.SQLiteQueue(str(tmp_path / "s"), serializer=ser) as q:
        with pytest.raises(persistq.SerializationError):
            await q.put("x")
        assert await q.qsize() == 0
    async with persistq.Queue(str(tmp_path / "f"), serializer=ser) as fq:
        with pytest.raises(persistq.SerializationError):
            await fq.put("x")
        assert await fq.qsize() == 0


class StopsEarly:
    """A load that reads less than dump wrote (a fixed 4 bytes): its value cannot be trusted."""

    NAME = "stops-early"

    def dump(self, value: Any, fp: Any) -> None:
        fp.write(stdjson.dumps(value).encode("utf-8"))

    def load(self, fp: Any) -> Any:
        return fp.read(4)


@pytest.mark.anyio
async def test_load_that_stops_early_is_refused_and_the_item_stays(qpath: str) -> None:
    """A stream load that does not read its whole record raises SerializationError; the item stays."""
    async with persistq.SQLiteQueue(qpath, serializer=StopsEarly()) as q:
        await q.put("a long value")
        with pytest.raises(persistq.SerializationError, match="read 4 of"):
            await q.get()
        assert await q.qsize() == 1


def test_custom_stream_serializer_is_recorded_and_checked(qpath: str) -> None:
    """A dump/load serializer's NAME is recorded; reopening with another is SerializerMismatch."""
    with persistq.sync.SQLiteQueue(qpath, serializer=StreamOnly()) as q:
        q.put(1)
    with pytest.raises(persistq.SerializerMismatch, match="stream-json"):
        persistq.sync.SQLiteQueue(qpath, serializer=BytesOnly())
    assert serializers.serializer_name(StreamOnly()) == "stream-json"
    assert serializers.Codec(StreamOnly()).stream
    assert not serializers.Codec(serializers.pickle).stream


class AsyncStream:
    """persist-queue's AsyncQueue accepted async def dump/load."""

    async def dump(self, value: Any, fp: Any) -> None:
        fp.write(b"")

    async def load(self, fp: Any) -> Any:
        return None


class AsyncCallable:
    """An object whose __call__ is async def: a coroutine function in disguise."""

    async def __call__(self, *args: Any) -> bytes:
        return b""


@pytest.mark.parametrize(
    "ser",
    [
        pytest.param(AsyncStream(), id="async-def"),
        pytest.param(
            collections.namedtuple("S", ["dumps", "loads"])(AsyncCallable(), AsyncCallable()), id="async-call"
        ),
    ],
)
def test_async_serializer_is_a_clear_type_error(tmp_path: Path, ser: Any) -> None:
    """async dump/load (or dumps/loads) raise TypeError naming them, for every kind, at construction."""
    for make in (
        lambda: persistq.SQLiteQueue(str(tmp_path / "s"), serializer=ser),
        lambda: persistq.Queue(str(tmp_path / "f"), serializer=ser),
        lambda: persistq.PDict(str(tmp_path / "p"), "d", serializer=ser),
    ):
        with pytest.raises(TypeError, match=r"asynchronous .*synchronously"):
            make()
    assert not os.path.exists(tmp_path / "s")


@pytest.mark.anyio
async def test_dumps_returning_an_awaitable_is_a_serialization_error(qpath: str) -> None:
    """A dumps returning a coroutine (undetectable up front) raises SerializationError; nothing stored."""

    async def later() -> bytes:
        return b""

    ser = collections.namedtuple("S", ["dumps", "loads"])(lambda v: later(), lambda b: b)
    async with persistq.SQLiteQueue(qpath, serializer=ser) as q:
        with pytest.raises(persistq.SerializationError, match="awaitable"):
            await q.put(1)
        assert await q.qsize() == 0


@pytest.mark.parametrize(
    "ser",
    [object(), collections.namedtuple("S", ["dumps", "load"])(stdpickle.dumps, stdpickle.load)],
    ids=["nothing", "mixed-halves"],
)
def test_serializer_without_a_pair_is_a_type_error(qpath: str, ser: Any) -> None:
    """A serializer with neither dumps/loads nor dump/load raises TypeError saying so."""
    with pytest.raises(TypeError, match=r"neither dumps\(\)/loads\(\) nor dump\(\)/load\(\)"):
        persistq.SQLiteQueue(qpath, serializer=ser)


SHAPES_SCRIPT = """
import json, sys
import persistq.sync as persistqueue

class LineJSON:  # persist-queue's file-queue serializer shape: dump/load only
    NAME = "line-json"
    def dump(self, value, fp):
        fp.write(json.dumps(value).encode() + b"\\n")
    def load(self, fp):
        return json.loads(fp.readline())

role, base = sys.argv[1], sys.argv[2]
if role == "write":
    with persistqueue.SQLiteQueue(base + "/sql", serializer=LineJSON()) as q:
        q.put({"n": 1})
        q.put(["two"])
    with persistqueue.Queue(base + "/file", serializer=LineJSON()) as f:
        f.put({"n": 3})
    with persistqueue.PDict(base + "/dict", "d", serializer=LineJSON()) as d:
        d["k"] = {"n": 4}
    print("written")
else:
    with persistqueue.SQLiteQueue(base + "/sql", serializer=LineJSON()) as q:
        print(q.get(), q.get(), q.qsize())
    with persistqueue.Queue(base + "/file", serializer=LineJSON()) as f:
        print(f.get())
        f.task_done()
    with persistqueue.PDict(base + "/dict", "d", serializer=LineJSON()) as d:
        print(d["k"])
"""


def test_dump_load_serializer_script_across_processes(tmp_path: Path) -> None:
    """A dump/load-only serializer writes SQL, file and PDict queues in one process; another reads them."""
    script = tmp_path / "shapes.py"
    script.write_text(SHAPES_SCRIPT)
    run = [sys.executable, str(script)]
    w = subprocess.run([*run, "write", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert (w.returncode, w.stdout.strip(), w.stderr) == (0, "written", "")
    # On disk: each SQL row holds exactly what dump() wrote; the serializer's NAME is recorded.
    con = sqlite3.connect(str(tmp_path / "sql" / "data.db"))
    try:
        rows = con.execute('SELECT data FROM "queue_default" ORDER BY _id').fetchall()
        recorded = con.execute("SELECT value FROM persistq_meta WHERE key='serializer'").fetchone()
    finally:
        con.close()
    assert rows == [(b'{"n": 1}\n',), (b'["two"]\n',)]
    assert recorded == ("line-json",)
    r = subprocess.run([*run, "read", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["{'n': 1} ['two'] 0", "{'n': 3}", "{'n': 4}"]
