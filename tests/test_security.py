"""Security: hostile names are refused, files are owner-only, safe serializers never unpickle."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest
from conftest import SQLITE_KINDS

import persistq
import persistq.sync
from persistq import serializers

HOSTILE = ["x; DROP TABLE queue_default", "a'b", 'a"b', "a`b", "x/*", "../x", "q\x00", ""]
KINDS = SQLITE_KINDS


@pytest.mark.parametrize("name", HOSTILE)
@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.__name__)
def test_hostile_names_never_reach_sql(kind: Any, name: str, tmp_path: Path) -> None:
    """Names that could change an SQL statement raise InvalidName before any I/O."""
    with pytest.raises(persistq.InvalidName):
        kind(str(tmp_path / "q"), name=name)
    assert not (tmp_path / "q").exists()


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_pdict_names_are_refused(name: str, tmp_path: Path) -> None:
    """PDict names are validated like queue names."""
    with pytest.raises(persistq.InvalidName):
        persistq.PDict(str(tmp_path / "d"), name)


def _modes(root: Path) -> dict[str, int]:
    return {str(p): stat.S_IMODE(p.stat().st_mode) for p in [root, *root.iterdir()]}


@pytest.mark.parametrize("opener", ["sqlite", "ack", "file", "pdict"])
def test_queue_files_are_owner_only(opener: str, tmp_path: Path) -> None:
    """Directories and files a queue creates are readable by their owner only."""
    path = tmp_path / "q"
    old = os.umask(0o022)
    try:
        if opener == "sqlite":
            with persistq.sync.SQLiteQueue(str(path)) as q:
                q.put(1)
        elif opener == "ack":
            with persistq.sync.SQLiteAckQueue(str(path)) as a:
                a.put(1)
        elif opener == "file":
            with persistq.sync.Queue(str(path)) as f:
                f.put(1)
        else:
            with persistq.sync.PDict(str(path), "d") as d:
                d["k"] = 1
    finally:
        os.umask(old)
    for name, mode in _modes(path).items():
        assert mode & 0o077 == 0, f"{name} is {oct(mode)}"


SAFE = [serializers.json, serializers.msgpack, serializers.cbor2]


@pytest.mark.parametrize("ser", SAFE, ids=lambda s: s.NAME)
def test_safe_serializers_never_fall_back_to_pickle(ser: Any, tmp_path: Path) -> None:
    """A queue using json/msgpack/cbor2 rejects pickled bytes planted in its table."""
    import sqlite3

    class Boom:
        def __reduce__(self) -> Any:
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    path = tmp_path / "q"
    with persistq.sync.SQLiteQueue(str(path), serializer=ser) as q:
        q.put("placeholder")
    con = sqlite3.connect(str(path / "data.db"))
    con.execute('UPDATE "queue_default" SET data=?', (serializers.pickle.dumps(Boom()),))
    con.commit()
    con.close()
    with persistq.sync.SQLiteQueue(str(path), serializer=ser) as q:
        with pytest.raises(persistq.SerializationError):
            q.get()
        assert q.qsize() == 1
    assert not (tmp_path / "pwned").exists()
