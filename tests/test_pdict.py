"""PDict: the persistent str-keyed mapping, async (asyncio and trio) and sync."""

from __future__ import annotations

import gc
import inspect
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

import anyio
import persistqueue
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

import persistq.pdict
import persistq.serializers.json
from persistq.errors import InvalidName, QueueClosed, SerializationError, SerializerMismatch
from persistq.pdict import PDict
from persistq.sync.pdict import PDict as SyncPDict

pytestmark = pytest.mark.anyio

REPO = Path(__file__).resolve().parent.parent


class Unpicklable:
    """A value pickle refuses."""

    def __reduce__(self) -> Any:
        raise TypeError("no pickling")


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch) -> int:
    """Make iteration fetch 3 entries per storage call, to cross page boundaries."""
    monkeypatch.setattr(persistq.pdict, "PAGE_SIZE", 3)
    return 3


# ------------------------------------------------------------------ async


async def test_set_get_contains_len(qpath: str) -> None:
    """set stores a value that get, contains and len then see."""
    async with PDict(qpath, "d") as d:
        assert await d.len() == 0
        await d.set("a", {"x": [1, 2]})
        await d.set("b", b"\x00raw")
        assert await d.get("a") == {"x": [1, 2]}
        assert await d.get("b") == b"\x00raw"
        assert await d.contains("a")
        assert not await d.contains("zz")
        assert await d.len() == 2
        await d.set("a", 3)
        assert await d.get("a") == 3
        assert await d.len() == 2


async def test_get_default_and_missing_getitem(qpath: str) -> None:
    """get returns the default for a missing key; _getitem raises persist-queue's KeyError."""
    async with PDict(qpath, "d") as d:
        assert await d.get("nope") is None
        assert await d.get("nope", 7) == 7
        with pytest.raises(KeyError, match=r"Key: nope not exists\."):
            await d._getitem("nope")


async def test_delete_removes_and_raises_on_missing(qpath: str) -> None:
    """delete removes an entry, and a missing key raises KeyError."""
    async with PDict(qpath, "d") as d:
        await d.set("a", 1)
        await d.delete("a")
        assert not await d.contains("a")
        with pytest.raises(KeyError):
            await d.delete("a")


async def test_pop_with_and_without_default(qpath: str) -> None:
    """pop returns and removes the value; a missing key gives the default or KeyError."""
    async with PDict(qpath, "d") as d:
        await d.set("a", [1])
        assert await d.pop("a") == [1]
        assert await d.len() == 0
        assert await d.pop("a", "dflt") == "dflt"
        assert await d.pop("a", None) is None
        with pytest.raises(KeyError):
            await d.pop("a")


async def test_popitem_takes_the_last_inserted(qpath: str) -> None:
    """popitem returns entries last-in first-out, as dict, and KeyError when empty."""
    async with PDict(qpath, "d") as d:
        await d.update([("a", 1), ("b", 2), ("c", 3)])
        await d.set("a", 10)  # a replaced value keeps its place
        assert await d.popitem() == ("c", 3)
        assert await d.popitem() == ("b", 2)
        assert await d.popitem() == ("a", 10)
        with pytest.raises(KeyError):
            await d.popitem()


async def test_setdefault_stores_only_when_missing(qpath: str) -> None:
    """setdefault stores and returns the default once, then returns the stored value."""
    async with PDict(qpath, "d") as d:
        default: list[int] = [1]
        assert await d.setdefault("a", default) is default
        assert await d.setdefault("a", [2]) == [1]
        assert await d.setdefault("n") is None
        assert await d.get("a") == [1]
        assert await d.contains("n")


async def test_concurrent_setdefault_has_one_winner(qpath: str) -> None:
    """Of many concurrent setdefault calls on two objects, one stores and all see its value."""
    results: list[Any] = []
    async with PDict(qpath, "d") as d1, PDict(qpath, "d") as d2:

        async def one(d: PDict, i: int) -> None:
            results.append(await d.setdefault("k", i))

        async with anyio.create_task_group() as tg:
            for i in range(20):
                tg.start_soon(one, d1 if i % 2 else d2, i)
        assert len(set(results)) == 1
        assert await d1.get("k") == results[0]


async def test_update_from_mapping_pairs_and_keywords(qpath: str) -> None:
    """update accepts a mapping, an iterable of pairs, a keys() object and keywords."""

    class KeysOnly:
        def keys(self) -> list[str]:
            return ["k"]

        def __getitem__(self, key: str) -> int:
            return 5

    async with PDict(qpath, "d") as d:
        await d.update({"a": 1, "b": 2})
        await d.update([("c", 3)], d=4)
        await d.update(KeysOnly())
        await d.update()
        await d.update(a=0)
        assert await d.to_dict() == {"a": 0, "b": 2, "c": 3, "d": 4, "k": 5}


async def test_update_is_all_or_none(qpath: str) -> None:
    """update with one bad key or value writes nothing."""
    async with PDict(qpath, "d") as d:
        with pytest.raises(SerializationError):
            await d.update({"a": 1, "b": Unpicklable()})
        with pytest.raises(TypeError):
            await d.update([("a", 1), (2, 2)])  # type: ignore[list-item]
        assert await d.len() == 0


async def test_clear_empties(qpath: str) -> None:
    """clear deletes every entry."""
    async with PDict(qpath, "d") as d:
        await d.update({str(i): i for i in range(10)})
        await d.clear()
        assert await d.len() == 0
        assert await d.keys() == []


async def test_keys_values_items_to_dict_in_insertion_order(qpath: str) -> None:
    """keys/values/items/to_dict follow insertion order; a re-added key goes last."""
    async with PDict(qpath, "d") as d:
        for k in "cab":
            await d.set(k, k.upper())
        await d.set("c", "C2")
        await d.delete("a")
        await d.set("a", "A2")
        assert await d.keys() == ["c", "b", "a"]
        assert await d.values() == ["C2", "B", "A2"]
        assert await d.items() == [("c", "C2"), ("b", "B"), ("a", "A2")]
        assert await d.to_dict() == {"c": "C2", "b": "B", "a": "A2"}
        assert list((await d.to_dict()).items()) == await d.items()


async def test_async_iteration_crosses_pages(qpath: str, small_pages: int) -> None:
    """async for yields every key in order, a page at a time."""
    async with PDict(qpath, "d") as d:
        for n in (0, 3, 7):
            await d.clear()
            await d.update({f"k{i}": i for i in range(n)})
            assert [k async for k in d] == [f"k{i}" for i in range(n)]


async def test_reopen_keeps_contents(qpath: str) -> None:
    """Entries and their order survive close and reopen."""
    async with PDict(qpath, "d") as d:
        await d.update({"z": 1, "a": [2], "m": {"x": None}})
    async with PDict(qpath, "d") as d:
        assert await d.items() == [("z", 1), ("a", [2]), ("m", {"x": None})]


async def test_non_str_key_raises_type_error(qpath: str) -> None:
    """Every method refuses a non-str key with TypeError (persist-queue stored str(key))."""
    async with PDict(qpath, "d") as d:
        calls = [
            d.get(1),  # type: ignore[arg-type]
            d._getitem(1),  # type: ignore[arg-type]
            d.set(1, "x"),  # type: ignore[arg-type]
            d.delete(1),  # type: ignore[arg-type]
            d.contains(1),  # type: ignore[arg-type]
            d.pop(1, None),  # type: ignore[arg-type]
            d.setdefault(1, "x"),  # type: ignore[arg-type]
            d.update({1: "x"}),  # type: ignore[arg-type]
        ]
        for call in calls:
            with pytest.raises(TypeError, match="PDict keys are str"):
                await call
        assert await d.len() == 0


async def test_unencodable_value_raises_serialization_error_before_writing(qpath: str) -> None:
    """A value the serializer refuses raises SerializationError and writes nothing."""
    async with PDict(qpath, "d") as d:
        await d.set("a", 1)
        with pytest.raises(SerializationError):
            await d.set("a", Unpicklable())
        with pytest.raises(SerializationError):
            await d.setdefault("b", Unpicklable())
        assert await d.to_dict() == {"a": 1}


async def test_undecodable_value_raises_serialization_error(qpath: str) -> None:
    """Stored bytes the serializer cannot decode raise SerializationError naming the key."""
    async with PDict(qpath, "d") as d:
        await d._store.set("bad", b"not a pickle")
        with pytest.raises(SerializationError, match="'bad'"):
            await d.get("bad")


async def test_serializer_is_recorded_and_checked(qpath: str) -> None:
    """A table made with json reads back with json and refuses pickle."""
    async with PDict(qpath, "d", serializer=persistq.serializers.json) as d:
        await d.set("a", {"b": [1]})
    async with PDict(qpath, "d", serializer=persistq.serializers.json) as d:
        assert await d.get("a") == {"b": [1]}
    d = PDict(qpath, "d")
    with pytest.raises(SerializerMismatch):
        await d.open()
    await d.close()


async def test_closed_pdict_raises_queue_closed(qpath: str) -> None:
    """Operations on a closed PDict raise QueueClosed; close is idempotent."""
    d = PDict(qpath, "d")
    await d.set("a", 1)  # opens lazily
    await d.aclose()
    await d.close()
    assert d.closed
    with pytest.raises(QueueClosed):
        await d.get("a")


async def test_bad_arguments_are_refused(qpath: str) -> None:
    """A bad name, durability or timeout fails in the constructor."""
    with pytest.raises(InvalidName):
        PDict(qpath, "no spaces")
    with pytest.raises(ValueError):
        PDict(qpath, "d", durability="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        PDict(qpath, "d", timeout=-1)


async def test_memory_pdict() -> None:
    """ ":memory:" gives a private, working PDict."""
    async with PDict(":memory:", "d", durability="off") as d:
        await d.set("a", 1)
        assert await d.to_dict() == {"a": 1}


async def _stall_worker(d: PDict, seconds: float) -> None:
    """Keep the PDict's storage thread busy for ``seconds`` (a bare job: it never runs inline on the loop)."""
    await d._store._run(lambda: time.sleep(seconds), kind="bare")


@pytest.mark.parametrize("op", ["pop", "popitem", "set", "delete", "setdefault"])
async def test_cancelled_write_changes_nothing(qpath: str, op: str) -> None:
    """A write cancelled while its job waits or runs is undone: the entry keeps its value and place."""
    async with PDict(qpath, "d") as d:
        await d.update({"a": 1, "k": "old", "z": 3})
        calls = {
            "pop": lambda: d.pop("k"),
            "popitem": lambda: d.popitem(),
            "set": lambda: d.set("k", "new"),
            "delete": lambda: d.delete("k"),
            "setdefault": lambda: d.setdefault("new", 1),
        }
        async with anyio.create_task_group() as tg:
            tg.start_soon(_stall_worker, d, 0.3)
            await anyio.sleep(0.05)
            with anyio.move_on_after(0.05) as scope:
                await calls[op]()
        assert scope.cancelled_caught
        assert await d.items() == [("a", 1), ("k", "old"), ("z", 3)]


async def test_unclosed_pdict_warns() -> None:
    """An opened PDict collected without close() raises a ResourceWarning and stops its thread."""
    d = PDict(":memory:", "d")
    await d.open()
    with pytest.warns(ResourceWarning, match="was not closed"):
        d.__del__()
    del d
    gc.collect()


async def test_two_names_share_one_database(qpath: str) -> None:
    """Two names in one database are independent tables; one name in two objects is shared."""
    async with PDict(qpath, "one") as a, PDict(qpath, "two") as b, PDict(qpath, "one") as a2:
        await a.set("k", "from one")
        await b.set("k", "from two")
        assert await a2.get("k") == "from one"
        assert await b.get("k") == "from two"
        await a2.delete("k")
        assert not await a.contains("k")
        assert await b.len() == 1


async def test_async_reads_and_writes_persistqueue_pdict_in_place(qpath: str) -> None:
    """A persist-queue 1.1.0 PDict database opens in place, and persist-queue reads our writes."""
    pq = persistqueue.PDict(qpath, "legacy")
    pq["a"] = {"x": 1}
    pq[1] = "int key"  # persist-queue stores str(1)
    pq.close()
    async with PDict(qpath, "legacy") as d:
        assert await d.to_dict() == {"a": {"x": 1}, "1": "int key"}
        await d.set("a", [2])
        await d.set("new", "persistq")
        await d.delete("1")
    pq = persistqueue.PDict(qpath, "legacy")
    try:
        assert pq["a"] == [2]
        assert pq["new"] == "persistq"
        assert "1" not in pq
        assert len(pq) == 2
    finally:
        pq.close()


# ------------------------------------------------------------------- sync


def test_sync_is_a_mutable_mapping(qpath: str) -> None:
    """The sync PDict is a MutableMapping whose protocol works on the stored data."""
    with SyncPDict(qpath, "d") as d:
        assert isinstance(d, MutableMapping)
        d["a"] = 1
        d["b"] = [2]
        assert d["a"] == 1
        assert "a" in d
        assert "x" not in d
        assert len(d) == 2
        assert list(d) == ["a", "b"]
        assert list(d.keys()) == ["a", "b"]
        assert list(d.values()) == [1, [2]]
        assert list(d.items()) == [("a", 1), ("b", [2])]
        assert ("a", 1) in d.items()
        assert "b" in d.keys()  # noqa: SIM118 - the KeysView's own __contains__
        assert len(d.items()) == 2
        del d["a"]
        assert dict(d) == {"b": [2]}


def test_sync_missing_key_errors(qpath: str) -> None:
    """d[missing] raises persist-queue's KeyError; del d[missing] raises KeyError (a deviation)."""
    with SyncPDict(qpath, "d") as d:
        with pytest.raises(KeyError, match=r"Key: nope not exists\."):
            d["nope"]
        with pytest.raises(KeyError):
            del d["nope"]
        with pytest.raises(KeyError):
            d.delete("nope")


def test_sync_named_methods(qpath: str) -> None:
    """get, set, delete, contains, len, pop, popitem, setdefault, update, clear, to_dict work."""
    with SyncPDict(qpath, "d") as d:
        d.set("a", 1)
        assert d.get("a") == 1
        assert d.get("z", "dflt") == "dflt"
        assert d.contains("a")
        assert d.len() == 1
        d.update({"b": 2}, c=3)
        d.update([("d", 4)])
        assert d.to_dict() == {"a": 1, "b": 2, "c": 3, "d": 4}
        assert d.pop("b") == 2
        assert d.pop("b", None) is None
        with pytest.raises(KeyError):
            d.pop("b")
        assert d.popitem() == ("d", 4)
        assert d.setdefault("a", 100) == 1
        assert d.setdefault("e", 5) == 5
        d.delete("e")
        assert d.to_dict() == {"a": 1, "c": 3}
        d.clear()
        assert len(d) == 0
        with pytest.raises(KeyError):
            d.popitem()


def test_sync_equality_with_any_mapping(qpath: str) -> None:
    """== compares the contents with any Mapping, and two PDicts with each other."""
    with SyncPDict(qpath, "one") as a, SyncPDict(qpath, "two") as b:
        a.update(x=1, y=2)
        assert a == {"y": 2, "x": 1}
        assert a != {"x": 1}
        assert a != [("x", 1), ("y", 2)]
        b.update(a)
        assert a == b
        b["x"] = 0
        assert a != b


def test_sync_update_from_another_sync_pdict(qpath: str) -> None:
    """update(other PDict) reads the other mapping on the caller's thread."""
    with SyncPDict(qpath, "one") as a, SyncPDict(qpath, "two") as b:
        a.update({f"k{i}": i for i in range(5)})
        b.update(a, extra=True)
        assert b.to_dict() == {**a.to_dict(), "extra": True}


def test_sync_iteration_crosses_pages(qpath: str, small_pages: int) -> None:
    """Iterating keys, values and items reads every entry in order, a page at a time."""
    with SyncPDict(qpath, "d") as d:
        d.update({f"k{i}": i for i in range(8)})
        assert list(d) == [f"k{i}" for i in range(8)]
        assert list(d.values()) == list(range(8))
        assert list(d.items()) == [(f"k{i}", i) for i in range(8)]


def test_sync_reopen_keeps_contents(qpath: str) -> None:
    """Entries survive close and reopen of the sync PDict."""
    with SyncPDict(qpath, "d") as d:
        d["a"] = 1
        d["b"] = {"c": [3]}
    with SyncPDict(qpath, "d") as d:
        assert d == {"a": 1, "b": {"c": [3]}}
        assert d.closed is False
    assert d.closed


def test_sync_non_str_key_raises_type_error(qpath: str) -> None:
    """d[1], d[1] = x, 1 in d and friends raise TypeError: keys are str."""
    with SyncPDict(qpath, "d") as d:
        with pytest.raises(TypeError, match="PDict keys are str"):
            d[1] = "x"  # type: ignore[index]
        with pytest.raises(TypeError):
            d[1]  # type: ignore[index]
        with pytest.raises(TypeError):
            1 in d  # type: ignore[comparison-overlap]  # noqa: B015
        with pytest.raises(TypeError):
            d.get(1)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            d.update({1: 2})  # type: ignore[arg-type]
        assert len(d) == 0


def test_sync_unencodable_value_raises_serialization_error(qpath: str) -> None:
    """A value pickle refuses raises SerializationError, and nothing is written."""
    with SyncPDict(qpath, "d") as d:
        with pytest.raises(SerializationError):
            d["a"] = Unpicklable()
        assert "a" not in d


def test_sync_closed_raises_queue_closed(qpath: str) -> None:
    """A closed sync PDict raises QueueClosed; close is idempotent."""
    d = SyncPDict(qpath, "d")
    d.close()
    d.close()
    with pytest.raises(QueueClosed):
        d["a"] = 1


def test_sync_reads_and_writes_persistqueue_pdict_in_place(qpath: str) -> None:
    """The sync PDict opens a persist-queue PDict database in place; persist-queue reads our writes."""
    pq = persistqueue.PDict(qpath, "legacy")
    pq["a"] = 1
    pq["b"] = {"nested": [1, 2]}
    pq.close()
    with SyncPDict(qpath, "legacy") as d:
        assert d == {"a": 1, "b": {"nested": [1, 2]}}
        d["a"] = "changed"
        d["c"] = 3
        del d["b"]
        pq = persistqueue.PDict(qpath, "legacy")  # both open at once
        try:
            assert pq["a"] == "changed"
            assert pq["c"] == 3
            assert "b" not in pq
            pq["d"] = "from persist-queue"
        finally:
            pq.close()
        assert d["d"] == "from persist-queue"
        assert list(d) == ["a", "c", "d"]


def test_sync_twin_matches_async_methods() -> None:
    """The sync PDict has the async one's methods and parameters (plus the mapping dunders)."""

    def public(cls: type) -> dict[str, Any]:
        return {
            n: v
            for n, v in inspect.getmembers(cls)
            if not n.startswith("_") and (callable(v) or isinstance(v, property))
        }

    a, s = public(PDict), public(SyncPDict)
    assert set(a) - {"aclose"} == set(s)
    for name in set(s) - {"closed"}:
        sig_a = [(p.name, p.kind, p.default) for p in inspect.signature(a[name]).parameters.values()]
        sig_s = [(p.name, p.kind, p.default) for p in inspect.signature(s[name]).parameters.values()]
        assert sig_a == sig_s, name
        assert inspect.iscoroutinefunction(a[name]), name
        assert s[name].__doc__, name
    sig = inspect.signature
    assert list(sig(PDict.__init__).parameters.items()) == list(sig(SyncPDict.__init__).parameters.items())


_MP_CHILD = """
import sys
from persistq.sync.pdict import PDict
path, out = sys.argv[1:]
with PDict(path, "meta") as meta, PDict(path, "shared") as d:
    winner = meta.setdefault("winner", out)
    got = []
    while True:
        try:
            key, value = d.popitem()
        except KeyError:
            break
        got.append(key)
with open(out, "w") as f:
    f.write(winner + "\\n" + "\\n".join(got))
"""


def test_processes_share_a_pdict_atomically(qpath: str, tmp_path: Path) -> None:
    """Processes popitem from one PDict: each entry goes to exactly one; setdefault has one winner."""
    jobs = {f"job{i:03d}": i for i in range(150)}
    with SyncPDict(qpath, "shared", durability="normal") as d:
        d.update(jobs)
    outs = [str(tmp_path / f"out{i}") for i in range(3)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", _MP_CHILD, qpath, out], env=env) for out in outs]
    for p in procs:
        assert p.wait(timeout=60) == 0
    winners, got = set(), []
    for out in outs:
        first, *rest = Path(out).read_text(encoding="utf-8").split("\n")
        winners.add(first)
        got += [k for k in rest if k]
    assert len(winners) == 1
    assert sorted(got) == sorted(jobs)
    with SyncPDict(qpath, "shared") as d, SyncPDict(qpath, "meta") as meta:
        assert len(d) == 0
        assert meta == {"winner": winners.pop()}


# -------------------------------------------------------- stateful model

KEYS = st.sampled_from(["a", "b", "c", "dé", "", "x\x00y"])
VALUES = st.integers() | st.text(max_size=5) | st.lists(st.integers(), max_size=3) | st.none()


class PDictAgainstDict(RuleBasedStateMachine):
    """The sync PDict behaves as a plain dict, across reopens."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="persistq-pdict-")
        self.d = SyncPDict(self.dir, "model")
        self.model: dict[str, Any] = {}

    @rule(key=KEYS, value=VALUES)
    def set(self, key: str, value: Any) -> None:
        self.d[key] = value
        self.model[key] = value

    @rule(key=KEYS)
    def delete(self, key: str) -> None:
        if key in self.model:
            del self.d[key]
            del self.model[key]
        else:
            with pytest.raises(KeyError):
                del self.d[key]

    @rule(key=KEYS, default=st.none() | st.just("dflt"))
    def pop(self, key: str, default: Any) -> None:
        if default is None and key not in self.model:
            with pytest.raises(KeyError):
                self.d.pop(key)
        elif default is None:
            assert self.d.pop(key) == self.model.pop(key)
        else:
            assert self.d.pop(key, default) == self.model.pop(key, default)

    @rule()
    def popitem(self) -> None:
        if self.model:
            assert self.d.popitem() == self.model.popitem()
        else:
            with pytest.raises(KeyError):
                self.d.popitem()

    @rule(key=KEYS, value=VALUES)
    def setdefault(self, key: str, value: Any) -> None:
        assert self.d.setdefault(key, value) == self.model.setdefault(key, value)

    @rule(pairs=st.lists(st.tuples(KEYS, VALUES), max_size=4))
    def update(self, pairs: list[tuple[str, Any]]) -> None:
        self.d.update(pairs)
        self.model.update(pairs)

    @rule()
    def clear(self) -> None:
        self.d.clear()
        self.model.clear()

    @rule(key=KEYS)
    def get(self, key: str) -> None:
        assert self.d.get(key, "missing") == self.model.get(key, "missing")

    @rule(key=KEYS)
    def contains(self, key: str) -> None:
        assert (key in self.d) == (key in self.model)

    @rule()
    def reopen(self) -> None:
        self.d.close()
        self.d = SyncPDict(self.dir, "model")

    @invariant()
    def same_length(self) -> None:
        assert len(self.d) == len(self.model)

    @rule()
    def same_iteration(self) -> None:
        assert list(self.d) == list(self.model)
        assert list(self.d.items()) == list(self.model.items())
        assert self.d == self.model

    def teardown(self) -> None:
        self.d.close()
        shutil.rmtree(self.dir, ignore_errors=True)


PDictAgainstDict.TestCase.settings = settings(
    max_examples=20, stateful_step_count=30, deadline=None, database=None
)
TestPDictAgainstDict = PDictAgainstDict.TestCase
TestPDictAgainstDict.__doc__ = "The sync PDict matches a dict model under random operations and reopens."


def test_mapping_registration() -> None:
    """The async PDict is not a Mapping (its methods are coroutines); the sync one is."""
    assert not isinstance(PDict(":memory:", "d"), Mapping)
    assert issubclass(SyncPDict, Mapping)
