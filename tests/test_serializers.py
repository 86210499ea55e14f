"""The serializers and the error hierarchy."""

from __future__ import annotations

import asyncio
import io
import queue
import subprocess
import sys
from typing import Any

import pytest

import persistq
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
