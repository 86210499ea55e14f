"""persistq beside persist-queue 1.1.0 and diskcache: one process run, equal durability.

Usage::

    python benchmarks/run_benchmark.py [N=1000] [console|rst|json] [--repeats 3] [--only REGEX]
                                       [--big 1000000] [--peer-big 100000] [--out-dir benchmarks]

persist-queue's own interface (``N`` items per scenario, output format), with more scenarios, more peers and
honest timing. ``make bench`` runs ``run_benchmark.py 1000 console``.

How to read the numbers
-----------------------
* Every figure is **µs per item**, lower is better: the wall time of the measured phase divided by the
  items it moved. Only the operations are timed: queue construction/opening, pre-filling and closing happen
  outside the timed window. Each case runs once as a warm-up (with N/10 items), then ``--repeats`` times; the
  table shows the **median**. Within a scenario the repeats of persistq and of its peers alternate, so a load
  spike from other jobs on the machine hits both sides alike.
* **speedup** = peer µs / persistq µs. ``> 1`` means persistq is faster by that factor, ``< 1`` slower.
* Durability is equal on both sides of a row unless the row says otherwise: ``full`` = fsync per commit
  (SQLite WAL + ``synchronous=FULL``, as persist-queue's ``SQLiteQueue``); ``normal`` = SQLite WAL +
  ``synchronous=NORMAL`` (as diskcache); ``off`` = never fsync (as persist-queue's file ``Queue`` between
  chunk rotations and its ``AsyncQueue`` always). persist-queue's ``AsyncSQLiteQueue`` uses a rollback
  journal with ``synchronous=FULL``: durable.
* "get N" includes what consumes the item: ``task_done()`` (queues) or ``ack()`` (ack queues).
* Threaded and task scenarios report wall time / items: 8 threads putting N/8 items each, or 8 producers
  and 8 consumers moving N items; likewise 100 (+100) tasks. persist-queue's async classes exist for asyncio
  only; the trio rows are compared with persist-queue on asyncio.
* persist-queue's async classes are slow (2-20 ms per item), so their cases move N/4 items, and a few
  secondary rows (interleaved, UniqueQ/PriorityQueue/ack/file/MySQL) move N/2 (``HALF_N``), to keep ``make
  bench`` under 10 minutes; per-item figures do not depend on N. Backlog rows: persist-queue does 200 gets.
* The machine is shared and noisy (see the load averages in ``RESULTS.md``): single runs move by ±20 %;
  trust ratios more than absolute times, and large ratios more than small ones.

Outputs: the table on stdout (``console``, ``rst`` or ``json``), ``RESULTS.md`` (command, machine, table,
DESIGN §4 targets) and ``results.png`` (items/s per scenario, log scale) in ``--out-dir``. Progress goes to
stderr.

Only public APIs of every library are used. persist-queue's ``PriorityQueue`` has no bulk insert, so its
100,000-item backlog is written with ``sqlite3`` straight into the table it created (rows in its own format).
Server rows run for every engine of ``_scenarios.SERVER_ENGINES`` that is configured: MySQL when
``PERSISTQ_MYSQL_HOST/PORT/USER/PASSWORD/DATABASE`` are set (``scripts/mariadb.sh``).

How the script is built
-----------------------
``build_scenarios`` is the one table: a list of :class:`Scenario` rows, each naming persistq's
:class:`Case` and its peers' — a ``QueueSpec`` (library, class, face ``sync``/``asyncio``/``trio``,
durability, keywords, engine) and an operation (``put``, ``get``, ``interleaved``, ``put_many``,
``get_many``, ``parallel`` with producer/consumer threads or tasks, ``backlog``). One runner
(:class:`Runner`, :func:`build_run`) times every case the same way; a case that appears in several rows is
measured once. Adding a row is adding a record; adding a server engine is adding it to ``_scenarios``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from pickle import dumps as _pickle_dumps
from pickle import loads as pickle_loads
from typing import Any

import anyio
from _scenarios import (
    DC,
    LIBRARIES_PRESENT,
    PERSISTQ,
    PQ,
    RAW,
    SERVER_ENGINES,
    AsyncDriver,
    QueueSpec,
    SyncDriver,
    configured_engines,
    md_table,
    package_version,
    select,
)

try:
    import persistqueue.serializers.pickle as pq_pickle
except ImportError:  # the peer is optional: its rows are skipped
    pq_pickle = None

try:
    import trio  # noqa: F401  (anyio's trio backend)

    HAVE_TRIO = True
except ImportError:
    HAVE_TRIO = False

HERE = Path(__file__).resolve().parent


def pq_pickle_dumps(x: Any) -> bytes:
    """Pickle as persistq's default serializer does (protocol 4)."""
    return _pickle_dumps(x, protocol=4)


THREADS = 8
TASKS = 100
BATCH = 100
SLOW_PEER = 0.25  # persist-queue's async classes (2-20 ms per item) run with N/4 items
PEER_BIG_GETS = 50  # gets per run from persist-queue's PriorityQueue with its long backlog (a scan per get)
# Scenarios run with N/2 items, to keep `make bench` under 10 minutes on a loaded 2-core machine: rows
# that do two operations per item (interleaved), the secondary kinds and the server rows (their per-item
# cost is what counts, not the item count).
HALF_N = re.compile(r"interleaved|^sync-(UniqueQ|PriorityQueue|ack)-|^sync-file-|^threads-ack|file-full")
ATTEMPTS = 3  # a run that raises is reported and retried; the case fails after this many attempts
DEADLINE = 300.0  # seconds: a threaded/task phase that takes longer is reported as an error, not a hang


def payload(i: int) -> dict[str, Any]:
    """The item every scenario moves (peers.md's payload), pickled by every library."""
    return {"id": i, "body": "x" * 100}


def make_items(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [payload(i) for i in range(start, start + n)]


def chunks(seq: Sequence[Any], parts: int) -> list[Sequence[Any]]:
    """Split ``seq`` into ``parts`` nearly equal slices (some may be empty)."""
    k, r = divmod(len(seq), parts)
    out, pos = [], 0
    for p in range(parts):
        size = k + (1 if p < r else 0)
        out.append(seq[pos : pos + size])
        pos += size
    return out


def quotas(n: int, parts: int) -> list[int]:
    return [len(c) for c in chunks(range(n), parts)]


# --------------------------------------------------------------------------- the table's records


@dataclass(frozen=True)
class Case:
    """One measured thing: a queue of ``spec`` driven through ``op``.

    Equal cases (the label aside) are one case: a peer named by several scenarios is measured once.
    """

    spec: QueueSpec
    op: str  # put, get, interleaved, put_many, get_many, parallel, backlog (RAW: put, get, interleaved)
    name: str = field(default="", compare=False)  # the label; default: the spec's
    producers: int = 0  # parallel: producer threads (sync) or tasks (async)
    consumers: int = 0  # parallel: consumer threads or tasks
    waiting: int = 0  # backlog: items waiting
    max_gets: int | None = None  # backlog: gets per run at most
    scale: float = 1.0  # runs with N * scale items (slow peers: µs/item does not depend on it)
    beside: str = ""  # floors: the scenario they are measured beside (never shared with another row)

    @property
    def lib(self) -> str:
        return self.spec.lib

    @property
    def label(self) -> str:
        return self.name or self.spec.label()


@dataclass
class Scenario:
    """One row of the results table: persistq's case, its peers', and (optionally) the floor beside it."""

    sid: str
    title: str
    ours: Case
    peers: list[Case] = field(default_factory=list)
    note: str = ""
    group: str = ""  # consecutive scenarios with the same group are measured together, interleaved
    floor: tuple[str, str] | None = None  # (durability, op): report the overhead in hand-offs
    scale: float = 1.0  # N * scale items for every case first measured here (see HALF_N)
    floors: list[Case] = field(init=False)  # measured with the scenario, interleaved

    def __post_init__(self) -> None:
        self.floors = [] if self.floor is None else floor_cases(self.sid, *self.floor)


@dataclass
class Measurement:
    us: float | None  # median µs per item
    samples: list[float]
    items: int
    error: str | None = None


# --------------------------------------------------------------------------- the table

SEQ = {"put": "put N", "get": "get N (+task_done)", "interleaved": "put+get interleaved"}


def ours(cls: str, face: str = "sync", durability: str | None = None, **kw: Any) -> QueueSpec:
    """A persistq queue: ``engine=`` and ``consume=`` go to the spec, the rest to the constructor."""
    engine, consume = kw.pop("engine", ""), kw.pop("consume", None)
    return QueueSpec(PERSISTQ, cls, face, durability, tuple(sorted(kw.items())), engine, consume)


def pq(cls: str, face: str = "sync", **kw: Any) -> QueueSpec:
    """A persist-queue queue (``engine=`` goes to the spec)."""
    engine = kw.pop("engine", "")
    return QueueSpec(PQ, cls, face, None, tuple(sorted(kw.items())), engine)


DEQUE = QueueSpec(DC, "Deque")


def par(spec: QueueSpec, producers: int, consumers: int, name: str = "", scale: float = 1.0) -> Case:
    """``producers`` threads (sync) or tasks (async) put N items; ``consumers`` take them all."""
    return Case(spec, "parallel", name, producers, consumers, scale=scale)


def workers(what: str, producers: int, consumers: int) -> str:
    return f"{producers} {what} put N" if not consumers else f"{producers}+{consumers} {what} put/get N"


def build_scenarios(args: argparse.Namespace) -> list[Scenario]:
    """Every row, in the order they run and print (``--only`` keeps those whose id or title matches)."""
    sc: list[Scenario] = []

    def row(sid: str, title: str, mine: Case, *peers: Case | None, **extra: Any) -> None:
        present = [p for p in peers if p is not None and LIBRARIES_PRESENT[p.lib]]
        sc.append(Scenario(sid, title, mine, present, **extra))

    # --- SQLite FIFO, sync, sequential; peers at equal durability (none offers a queue without fsync)
    for dur in ("full", "normal", "off"):
        for op, opname in SEQ.items():
            peer = {"full": Case(pq("SQLiteQueue"), op), "normal": Case(DEQUE, op), "off": None}[dur]
            row(
                f"sync-sqlite-{dur}-{opname}",
                f"sync SQLiteQueue {dur}: {opname}",
                Case(ours("SQLiteQueue", durability=dur), op),
                peer,
                floor=(dur, op),
            )
    row(
        "sync-sqlite-full-get-only",
        "sync SQLiteQueue full: get N (no task_done)",
        Case(ours("SQLiteQueue", durability="full", consume=""), "get"),
        Case(pq("SQLiteQueue"), "get"),
        note="persist-queue's task_done is a no-op with auto_commit=True",
    )

    # --- other SQLite kinds, sync, full
    for cls in ("UniqueQ", "PriorityQueue"):
        for op in ("put", "get"):
            row(
                f"sync-{cls}-{SEQ[op]}", f"sync {cls} full: {SEQ[op]}", Case(ours(cls), op), Case(pq(cls), op)
            )
    for op, opname in (("put", "put N"), ("get", "get+ack N")):
        row(
            f"sync-ack-{opname}",
            f"sync SQLiteAckQueue full: {opname}",
            Case(ours("SQLiteAckQueue"), op),
            Case(pq("SQLiteAckQueue"), op),
        )

    # --- file queue, sync
    for dur in ("full", "off"):
        for op, opname in SEQ.items():
            row(
                f"sync-file-{dur}-{opname}",
                f"sync file Queue {dur}: {opname}",
                Case(ours("Queue", durability=dur), op),
                Case(pq("Queue"), op, "persist-queue Queue (fsync per chunk)"),
                note="" if dur == "off" else "persistq fsyncs every put/task_done; persist-queue does not",
            )

    # --- threads (sync API)
    for dur in ("full", "normal"):
        for prod, cons in ((THREADS, 0), (THREADS, THREADS)):
            label = workers("threads", prod, cons)
            peer = (
                par(
                    pq("SQLiteQueue", multithreading=True),
                    prod,
                    cons,
                    f"persist-queue SQLiteQueue(multithreading=True), {label.split(' ')[0]} threads",
                )
                if dur == "full"
                else par(DEQUE, prod, cons)
            )
            row(
                f"threads-{dur}-{prod}-{cons}",
                f"sync SQLiteQueue {dur}: {label}",
                par(ours("SQLiteQueue", durability=dur), prod, cons),
                peer,
            )
    row(
        f"threads-ack-{THREADS}-{THREADS}",
        f"sync SQLiteAckQueue full: {THREADS}+{THREADS} threads put/get+ack N",
        par(ours("SQLiteAckQueue"), THREADS, THREADS),
        par(
            pq("SQLiteAckQueue", multithreading=True),
            THREADS,
            THREADS,
            "persist-queue SQLiteAckQueue(multithreading=True)",
        ),
    )

    # --- async, sequential and tasks; persist-queue's async classes exist on asyncio only
    backends = ["asyncio"] + (["trio"] if HAVE_TRIO else [])
    pq_async_sqlite = pq("AsyncSQLiteQueue", "asyncio")
    pq_async_file = pq("AsyncQueue", "asyncio")
    for face in backends:
        for op, opname in SEQ.items():
            row(
                f"async-{face}-sqlite-{op}",
                f"async SQLiteQueue full ({face}): {opname}",
                Case(ours("SQLiteQueue", face), op),
                Case(pq_async_sqlite, op, "persist-queue AsyncSQLiteQueue (asyncio)", scale=SLOW_PEER),
                floor=("full", op),
            )
        # Below full a commit costs less than a hop: these run on the caller's loop (no peer has the mode).
        for dur in ("normal", "off"):
            for op in ("put", "get"):
                row(
                    f"async-{face}-sqlite-{dur}-{op}",
                    f"async SQLiteQueue {dur} ({face}): {SEQ[op]}",
                    Case(ours("SQLiteQueue", face, dur), op),
                    floor=(dur, op),
                )
        for dur in ("full", "off") if face == "asyncio" else ("off",):
            for op in ("put", "get"):
                row(
                    f"async-{face}-file-{dur}-{op}",
                    f"async file Queue {dur} ({face}): {SEQ[op]}",
                    Case(ours("Queue", face, dur), op),
                    Case(
                        pq_async_file, op, "persist-queue AsyncQueue (asyncio, never fsyncs)", scale=SLOW_PEER
                    ),
                )
        for prod, cons in ((TASKS, 0), (TASKS, TASKS)):
            row(
                f"tasks-{face}-sqlite-{prod}-{cons}",
                f"async SQLiteQueue full ({face}): {workers('tasks', prod, cons)}",
                par(ours("SQLiteQueue", face), prod, cons),
                par(pq_async_sqlite, prod, cons, "persist-queue AsyncSQLiteQueue (asyncio)", SLOW_PEER),
            )
        row(
            f"tasks-{face}-file-off-{TASKS}-{TASKS}",
            f"async file Queue off ({face}): {workers('tasks', TASKS, TASKS)}",
            par(ours("Queue", face, "off"), TASKS, TASKS),
            par(pq_async_file, TASKS, TASKS, "persist-queue AsyncQueue (asyncio)", SLOW_PEER),
        )

    # --- batches of 100 (durable); persist-queue has no put_many: compared with its per-item loop
    for cls in ("SQLiteQueue", "Queue"):
        for op, loop in (("put_many", "put"), ("get_many", "get")):
            row(
                f"sync-{cls}-{op}",
                f"sync {cls} full: {op} x{BATCH}",
                Case(ours(cls), op),
                Case(pq("SQLiteQueue"), loop, f"persist-queue SQLiteQueue ({loop} loop: no {op})")
                if cls == "SQLiteQueue"
                else None,
            )
    for face in backends:
        for op in ("put_many", "get_many"):
            row(
                f"async-{face}-{op}",
                f"async SQLiteQueue full ({face}): {op} x{BATCH}",
                Case(ours("SQLiteQueue", face), op),
            )

    # --- gets with a long backlog; persist-queue's PriorityQueue scans its table per get: a shorter one
    for cls in ("SQLiteQueue", "PriorityQueue"):
        for waiting in (1000, args.big):
            peer_waiting = args.peer_big if cls == "PriorityQueue" and waiting != 1000 else waiting
            row(
                f"backlog-{cls}-{waiting}",
                f"sync {cls} full: get with {waiting:,} waiting",
                Case(ours(cls), "backlog", waiting=waiting),
                Case(
                    pq(cls),
                    "backlog",
                    f"persist-queue {cls}, {peer_waiting:,} waiting",
                    waiting=peer_waiting,
                    max_gets=200 if peer_waiting == waiting else PEER_BIG_GETS,
                ),
                note="get only (auto_commit=True consumes); the 1,000 and the long backlog are measured "
                "interleaved, so load changes hit both",
                group=f"backlog-{cls}",
            )

    # --- server engines (each configured one): the FIFO queue beside persist-queue's, if it has one
    for engine, _cfg in configured_engines():
        fifo, e = engine.fifo_class, engine.name
        peer = pq(engine.peer_class, engine=e) if engine.peer_class else None
        for op in ("put", "get"):
            row(
                f"{e}-{SEQ[op]}",
                f"{fifo}: {SEQ[op]}",
                Case(ours(fifo, engine=e), op),
                peer and Case(peer, op),
            )
        row(
            f"{e}-threads",
            f"{fifo}: {workers('threads', THREADS, 0)}",
            par(ours(fifo, engine=e), THREADS, 0),
            peer and par(peer, THREADS, 0),
        )

    for s in sc:
        if HALF_N.search(s.sid) or s.ours.spec.engine:
            s.scale = 0.5
    return select(sc, args.only, lambda s: s.sid, lambda s: s.title)


# --------------------------------------------------------------------------- timed phases
# Each takes the driver, the open queue, the items and the case; returns the seconds of the timed phase.


def _each(fn: Callable[[Any, Any], Any], q: Any, xs: Sequence[Any]) -> float:
    t0 = time.perf_counter()
    for x in xs:
        fn(q, x)
    return time.perf_counter() - t0


def _batches(data: list[Any]) -> list[list[Any]]:
    return [data[i : i + BATCH] for i in range(0, len(data), BATCH)]


def _put(drv: SyncDriver, q: Any, data: list[Any], case: Case) -> float:
    return _each(drv.put, q, data)


def _get(drv: SyncDriver, q: Any, data: list[Any], case: Case) -> float:
    get = drv.get
    t0 = time.perf_counter()
    for _ in range(len(data)):
        get(q)
    return time.perf_counter() - t0


def _interleaved(drv: SyncDriver, q: Any, data: list[Any], case: Case) -> float:
    put, get = drv.put, drv.get
    t0 = time.perf_counter()
    for x in data:
        put(q, x)
        get(q)
    return time.perf_counter() - t0


def _put_many(drv: SyncDriver, q: Any, data: list[Any], case: Case) -> float:
    return _each(drv.put_many, q, _batches(data))


def _get_many(drv: SyncDriver, q: Any, data: list[Any], case: Case) -> float:
    get_many, n, got = drv.get_many, len(data), 0
    t0 = time.perf_counter()
    while got < n:
        got += len(get_many(q, BATCH))
    return time.perf_counter() - t0


def _threads(drv: SyncDriver, q: Any, data: list[Any], case: Case) -> float:
    """``producers`` threads put the items between them; ``consumers`` threads take them all (wall time)."""
    producers, consumers, n = case.producers, case.consumers, len(data)
    errors: list[BaseException] = []
    barrier = threading.Barrier(producers + consumers + 1)
    deadline = [0.0]

    def produce(part: Sequence[Any]) -> None:
        try:
            barrier.wait()
            for x in part:
                drv.put(q, x)
        except BaseException as exc:  # noqa: BLE001  (re-raised after the join)
            errors.append(exc)

    def consume(quota: int) -> None:
        try:
            barrier.wait()
            got = 0
            while got < quota:
                if drv.try_get(q):
                    got += 1
                elif time.monotonic() > deadline[0] or errors:
                    raise TimeoutError(f"consumer got {got} of {quota}")
        except BaseException as exc:  # noqa: BLE001  (re-raised after the join)
            errors.append(exc)

    threads = [threading.Thread(target=produce, args=(p,)) for p in chunks(data, producers)]
    threads += (
        [threading.Thread(target=consume, args=(k,)) for k in quotas(n, consumers)] if consumers else []
    )
    try:
        for t in threads:
            t.start()
        deadline[0] = time.monotonic() + DEADLINE
        barrier.wait()
        t0 = time.perf_counter()
        for t in threads:
            t.join()
        dt = time.perf_counter() - t0
    finally:
        for t in threads:
            t.join()
    if errors:
        raise errors[0]
    return dt


SYNC_PHASES: dict[str, Callable[[SyncDriver, Any, list[Any], Case], float]] = {
    "put": _put,
    "get": _get,
    "interleaved": _interleaved,
    "put_many": _put_many,
    "get_many": _get_many,
    "parallel": _threads,
}
FILLED = ("get", "get_many")  # phases that start from a queue holding the items (filled untimed)


async def _aeach(fn: Callable[[Any, Any], Awaitable[Any]], q: Any, xs: Sequence[Any]) -> float:
    t0 = time.perf_counter()
    for x in xs:
        await fn(q, x)
    return time.perf_counter() - t0


async def _aput(drv: AsyncDriver, q: Any, data: list[Any], case: Case) -> float:
    return await _aeach(drv.put, q, data)


async def _aget(drv: AsyncDriver, q: Any, data: list[Any], case: Case) -> float:
    t0 = time.perf_counter()
    for _ in range(len(data)):
        await drv.get(q)
    return time.perf_counter() - t0


async def _ainterleaved(drv: AsyncDriver, q: Any, data: list[Any], case: Case) -> float:
    t0 = time.perf_counter()
    for x in data:
        await drv.put(q, x)
        await drv.get(q)
    return time.perf_counter() - t0


async def _aput_many(drv: AsyncDriver, q: Any, data: list[Any], case: Case) -> float:
    return await _aeach(drv.put_many, q, _batches(data))


async def _aget_many(drv: AsyncDriver, q: Any, data: list[Any], case: Case) -> float:
    n, got = len(data), 0
    t0 = time.perf_counter()
    while got < n:
        got += len(await drv.get_many(q, BATCH))
    return time.perf_counter() - t0


async def _tasks(drv: AsyncDriver, q: Any, data: list[Any], case: Case) -> float:
    """``producers`` tasks put the items between them, ``consumers`` tasks take them all (wall time)."""
    deadline = time.monotonic() + DEADLINE

    async def produce(part: Sequence[Any]) -> None:
        for x in part:
            await drv.put(q, x)

    async def consume(quota: int) -> None:
        got = 0
        while got < quota:
            if await drv.try_get(q):
                got += 1
            elif time.monotonic() > deadline:
                raise TimeoutError(f"consumer got {got} of {quota}")

    t0 = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for part in chunks(data, case.producers):
            tg.start_soon(produce, part)
        for quota in quotas(len(data), case.consumers) if case.consumers else []:
            tg.start_soon(consume, quota)
    return time.perf_counter() - t0


ASYNC_PHASES: dict[str, Callable[[AsyncDriver, Any, list[Any], Case], Awaitable[float]]] = {
    "put": _aput,
    "get": _aget,
    "interleaved": _ainterleaved,
    "put_many": _aput_many,
    "get_many": _aget_many,
    "parallel": _tasks,
}

Run = Callable[[Path, int], tuple[float, int]]  # (seconds of the timed phase, items moved in it)


def build_run(case: Case) -> Run:
    """How ``case`` is timed: the one place that turns a record of the table into a measurement."""
    if case.lib == RAW:
        assert case.spec.durability is not None
        return raw_sqlite(case.spec.durability, case.op, case.spec.face == "handoff")
    if case.op == "backlog":
        return BacklogGet(case)
    if case.spec.face == "sync":
        drv = SyncDriver(case.spec)
        phase = SYNC_PHASES[case.op]

        def run(d: Path, n: int) -> tuple[float, int]:
            data = make_items(n)
            q = drv.open(d)
            try:
                if case.op in FILLED:
                    drv.fill(q, data)
                return phase(drv, q, data, case), n
            finally:
                drv.close(q)

        return run
    adrv = AsyncDriver(case.spec)
    aphase = ASYNC_PHASES[case.op]

    def arun(d: Path, n: int) -> tuple[float, int]:
        data = make_items(n)

        async def main() -> float:
            async with adrv.open(d) as q:
                if case.op in FILLED:
                    await adrv.fill(q, data)
                return await aphase(adrv, q, data, case)

        return anyio.run(main, backend=case.spec.face), n

    return arun


# --------------------------------------------------------------------------- the hand-off floor
# DESIGN §4 counts overhead in hand-offs: what shipping one storage operation to an asyncio loop on
# another thread and back (call_soon_threadsafe; the loop runs the op and releases a lock the caller
# waits on) adds to running the same op inline. The op is persistq's own storage work done directly with
# stdlib sqlite3: the same transaction (BEGIN IMMEDIATE … COMMIT), statements, pragmas and pickling. The
# unit is the hand-off of the durable (full) op, measured next to every row that reports an overhead.

_RAW_SYNC = {"full": "FULL", "normal": "NORMAL", "off": "OFF"}


def _raw_conn(d: Path, dur: str) -> sqlite3.Connection:
    c = sqlite3.connect(str(d / "raw.db"), isolation_level=None, check_same_thread=False)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute(f"PRAGMA synchronous={_RAW_SYNC[dur]}")
    c.execute("CREATE TABLE q (_id INTEGER PRIMARY KEY AUTOINCREMENT, data BLOB, timestamp FLOAT)")
    return c


def _raw_put(c: sqlite3.Connection, x: Any) -> None:
    c.execute("BEGIN IMMEDIATE")
    c.execute("INSERT INTO q (data, timestamp) VALUES (?, ?)", (pq_pickle_dumps(x), time.time()))
    c.execute("COMMIT")


def _raw_get(c: sqlite3.Connection, _x: Any = None) -> Any:
    c.execute("BEGIN IMMEDIATE")
    rows = c.execute(
        "DELETE FROM q WHERE _id = (SELECT _id FROM q ORDER BY _id ASC LIMIT 1) "
        "RETURNING _id, data, timestamp"
    ).fetchall()
    c.execute("COMMIT")
    return pickle_loads(rows[0][1])


def _raw_interleaved(c: sqlite3.Connection, x: Any) -> Any:
    _raw_put(c, x)
    return _raw_get(c)


_RAW_OPS: dict[str, Callable[[sqlite3.Connection, Any], Any]] = {
    "put": _raw_put,
    "get": _raw_get,
    "interleaved": _raw_interleaved,
}


def raw_sqlite(dur: str, op: str, hop: bool) -> Run:
    """``op`` with stdlib sqlite3 on the calling thread, or (``hop``) shipped to a loop thread and back."""

    def run(d: Path, n: int) -> tuple[float, int]:
        data = make_items(n)
        c = _raw_conn(d, dur)
        loop: Any = None
        thread: threading.Thread | None = None
        try:
            if op == "get":
                c.execute("BEGIN")
                c.executemany(
                    "INSERT INTO q (data, timestamp) VALUES (?, ?)",
                    [(pq_pickle_dumps(x), time.time()) for x in data],
                )
                c.execute("COMMIT")
            fn = _RAW_OPS[op]
            if hop:
                import asyncio

                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, daemon=True)
                thread.start()

                def call(x: Any) -> None:
                    lock = threading.Lock()
                    lock.acquire()

                    def on_loop() -> None:
                        fn(c, x)
                        lock.release()

                    loop.call_soon_threadsafe(on_loop)
                    lock.acquire()

                t0 = time.perf_counter()
                for x in data:
                    call(x)
            else:
                t0 = time.perf_counter()
                for x in data:
                    fn(c, x)
            return time.perf_counter() - t0, n
        finally:
            if loop is not None and thread is not None:
                loop.call_soon_threadsafe(loop.stop)
                thread.join()
                loop.close()
            c.close()

    return run


def floor_cases(sid: str, dur: str, op: str) -> list[Case]:
    """The floor measured beside scenario ``sid``: ``op`` at ``dur`` with sqlite3, inline and via a hop."""
    return [
        Case(QueueSpec(RAW, "sqlite3", face, dur), op, f"sqlite3 {op} {dur}, {how}", beside=sid)
        for face, how in (("sync", "inline"), ("handoff", "via a loop thread"))
    ]


def overhead(s: Scenario, res: dict[Case, Measurement]) -> tuple[float, float] | None:
    """``(overhead in hand-offs, the hand-off in µs)`` of scenario ``s``, if it has a floor."""
    if not s.floors:
        return None
    raw_m, hop_m = res.get(s.floors[0]), res.get(s.floors[1])
    ours_us, raw, hop = res[s.ours].us, raw_m.us if raw_m else None, hop_m.us if hop_m else None
    if ours_us is None or raw is None or hop is None or hop <= raw:
        return None
    handoff = hop - raw
    return (ours_us - raw) / handoff, handoff


# --------------------------------------------------------------------------- gets with a long backlog


def rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class BacklogGet:
    """Gets from a queue that holds ``case.waiting`` items: filled once (untimed), topped up before each run.

    Also records the resident-memory growth of opening the filled queue and getting from it (``memory``).
    """

    def __init__(self, case: Case) -> None:
        self.spec, self.waiting, self.max_gets = case.spec, case.waiting, case.max_gets
        self.q: Any = None
        self.dir: Path | None = None
        self.next_id = 0
        self.memory: int | None = None

    def _open(self) -> Any:
        assert self.dir is not None
        return self.spec.construct(self.dir)[0]

    def _put_batch(self, q: Any, count: int) -> None:
        data = make_items(count, self.next_id)
        self.next_id += count
        priority = self.spec.cls == "PriorityQueue"
        if self.spec.lib == PERSISTQ:
            for i in range(0, len(data), 10_000):
                part = data[i : i + 10_000]
                if priority:
                    q.put_many(part, priority=0)
                else:
                    q.put_many(part)
        elif priority:
            for x in data:
                q.put(x, priority=0)
        else:
            for x in data:
                q.put(x)

    def _bulk_fill_peer(self) -> None:
        # persist-queue has no bulk insert: write rows in its own format into the table it created.
        assert self.dir is not None
        priority = self.spec.cls == "PriorityQueue"
        table = "priority_queue_default" if priority else "queue_default"
        conn = sqlite3.connect(str(self.dir / "q" / "data.db"))
        try:
            now = time.time()
            with conn:
                conn.execute("PRAGMA synchronous=OFF")
                for start in range(0, self.waiting, 10_000):
                    rows = [
                        (pq_pickle.dumps(payload(i)), now + i * 1e-6, 0)
                        for i in range(start, min(self.waiting, start + 10_000))
                    ]
                    if priority:
                        conn.executemany(
                            f"INSERT INTO {table} (data, timestamp, priority) VALUES (?,?,?)", rows
                        )
                    else:
                        conn.executemany(
                            f"INSERT INTO {table} (data, timestamp) VALUES (?,?)", [r[:2] for r in rows]
                        )
            self.next_id = self.waiting
        finally:
            conn.close()

    def setup(self, root: Path) -> None:
        self.dir = Path(tempfile.mkdtemp(dir=root))
        q = self._open()
        if self.spec.lib == PERSISTQ:
            self._put_batch(q, self.waiting)
            q.close()
        else:
            q.close()
            self._bulk_fill_peer()
        # Memory: open the filled queue and get from it, relative to before the open.
        before = rss_bytes()
        self.q = self._open()
        self.q.get()
        self.memory = rss_bytes() - before
        self._put_batch(self.q, 1)

    def __call__(self, root: Path, n: int) -> tuple[float, int]:
        if self.q is None:
            self.setup(root)
        q = self.q
        k = n if self.max_gets is None else min(n, self.max_gets)
        self._put_batch(q, k)
        t0 = time.perf_counter()
        for _ in range(k):
            q.get()
        return time.perf_counter() - t0, k

    def close(self) -> None:
        if self.q is not None:
            with contextlib.suppress(Exception):
                self.q.close()
            self.q = None
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)


# --------------------------------------------------------------------------- running


class Runner:
    """Times every case of the scenarios it is given: warm-up, repeats interleaved, median, retries."""

    def __init__(self, root: Path, n: int, repeats: int) -> None:
        self.root, self.n, self.repeats = root, n, repeats
        self.results: dict[Case, Measurement] = {}
        self.failures: list[str] = []  # every failed run, retried up to ATTEMPTS times
        self.memory: dict[Case, int] = {}  # backlog cases: RSS growth of opening the filled queue

    def _once(self, run: Run, n: int) -> tuple[float, int]:
        d = Path(tempfile.mkdtemp(dir=self.root))
        try:
            return run(d, n)
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def scenario(self, idx: int, total: int, group: list[Scenario]) -> None:
        """Measure the cases of ``group`` (usually one scenario), their repeats interleaved."""
        cases: list[tuple[Scenario, Case]] = []
        for s in group:
            for c in [s.ours, *s.peers, *s.floors]:
                if c not in self.results and all(c != k for _, k in cases):
                    cases.append((s, c))
        runs = {c: build_run(c) for _, c in cases}
        samples: dict[Case, list[float]] = {c: [] for _, c in cases}
        items: dict[Case, int] = {}
        errors: dict[Case, str] = {}
        try:
            for rep in range(-1, self.repeats):
                for s, c in cases:
                    if c in errors:
                        continue
                    what = "warm-up" if rep < 0 else f"repeat {rep + 1}/{self.repeats}"
                    n = max(1, round(self.n * c.scale * s.scale))
                    for attempt in range(1, ATTEMPTS + 1):
                        progress(f"[{idx}/{total}] {s.title} | {c.label} | {what}")
                        try:
                            dt, k = self._once(runs[c], max(10, n // 10) if rep < 0 else n)
                            break
                        except Exception as exc:  # noqa: BLE001  (reported; the run goes on)
                            msg = f"{type(exc).__name__}: {exc}"
                            self.failures.append(f"{c.label} ({s.title}), {what}, attempt {attempt}: {msg}")
                            traceback.print_exc(file=sys.stderr)
                    else:
                        errors[c] = msg
                        continue
                    if rep >= 0:
                        samples[c].append(dt / k * 1e6)
                        items[c] = k
        finally:
            for c, run in runs.items():
                if isinstance(run, BacklogGet):
                    if run.memory is not None:
                        self.memory[c] = run.memory
                    run.close()
        for _, c in cases:
            if c in errors:
                self.results[c] = Measurement(None, samples[c], items.get(c, 0), errors[c])
            else:
                self.results[c] = Measurement(statistics.median(samples[c]), samples[c], items[c])


_tty = sys.stderr.isatty()


def progress(msg: str) -> None:
    if _tty:
        sys.stderr.write("\r\x1b[K" + msg[:160])
    else:
        sys.stderr.write(msg + "\n")
    sys.stderr.flush()


# --------------------------------------------------------------------------- reporting


def fmt_us(m: Measurement | None) -> str:
    if m is None:
        return "—"
    if m.us is None:
        return "error"
    return f"{m.us:,.1f}" if m.us < 100 else f"{m.us:,.0f}"


def speedup(ours: Measurement, other: Measurement | None) -> float | None:
    if other is None or ours.us is None or other.us is None or ours.us == 0:
        return None
    return other.us / ours.us


def table_rows(scenarios: list[Scenario], res: dict[Case, Measurement]) -> list[list[str]]:
    rows = []
    for s in scenarios:
        ours = res[s.ours]
        ov = overhead(s, res)
        first = True
        for p in s.peers or [None]:
            pm = res.get(p) if p else None
            r = speedup(ours, pm)
            rows.append(
                [
                    s.title if first else "",
                    fmt_us(ours) if first else "",
                    (f"{ov[0]:.2f} ({ov[1]:.0f} µs)" if ov else "—") if first else "",
                    p.label if p else "—",
                    fmt_us(pm) if p else "—",
                    f"{r:.2f}x" if r is not None else "—",
                ]
            )
            first = False
    return rows


HEADER = [
    "scenario",
    "persistq µs/item",
    "overhead, hand-offs (hand-off)",
    "peer",
    "peer µs/item",
    "speedup (peer/persistq)",
]


def floor_rows(scenarios: list[Scenario], res: dict[Case, Measurement]) -> list[str]:
    """One line per floor measured: sqlite3 inline and via a loop thread, and the hand-off between."""
    lines = []
    for s in scenarios:
        ov = overhead(s, res)
        if ov is None or s.floor is None:
            continue
        parts = [f"{c.label}: {fmt_us(res.get(c))} µs" for c in s.floors]
        lines.append(f"- {s.title}: " + "; ".join(parts) + f" → hand-off {ov[1]:.0f} µs")
    return lines


def render_console(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [HEADER, *rows]) for i in range(len(HEADER))]
    right = {1, 2, 4, 5}

    def line(r: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )

    return "\n".join([line(HEADER), "  ".join("-" * w for w in widths), *(line(r) for r in rows)])


def render_rst(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [HEADER, *rows]) for i in range(len(HEADER))]
    sep = " ".join("=" * w for w in widths)

    def line(r: list[str]) -> str:
        return " ".join(
            (c or "..").ljust(w) if i == 0 else c.ljust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )

    return "\n".join([sep, line(HEADER), sep, *(line(r) for r in rows), sep])


def render_md(rows: list[list[str]]) -> str:
    return md_table(HEADER, rows, right=(1, 2, 4, 5))


def evaluate_targets(
    scenarios: list[Scenario],
    res: dict[Case, Measurement],
    args: argparse.Namespace,
    memory: dict[Case, int],
) -> list[dict[str, Any]]:
    """DESIGN §4 targets, each as measured ratio against its threshold (``memory``: backlog RSS growth)."""
    by_sid = {s.sid: s for s in scenarios}
    out: list[dict[str, Any]] = []

    def us(case: Case | None) -> float | None:
        m = res.get(case) if case is not None else None
        return m.us if m else None

    def ours_us(sid: str) -> float | None:
        s = by_sid.get(sid)
        return us(s.ours) if s is not None else None

    def add(target: str, measured: str, value: float | None, ok: bool | None, how: str) -> None:
        out.append({"target": target, "measured": measured, "value": value, "met": ok, "verdict": how})

    def at_least(target: str, measured: str, value: float, r: float, bound: float) -> None:
        add(target, measured, value, r >= bound, "met" if r >= bound else f"not met: {bound / r:.2f}x short")

    def versus(sid: str, peer_idx: int = 0) -> tuple[float | None, float | None]:
        s = by_sid.get(sid)
        if s is None or len(s.peers) <= peer_idx:
            return None, None
        return us(s.ours), us(s.peers[peer_idx])

    # 1. sync sequential within 1.3x of persist-queue SQLiteQueue (time ratio persistq / persist-queue <= 1.3)
    for sid, what in (
        ("sync-sqlite-full-put N", "put"),
        ("sync-sqlite-full-get N (+task_done)", "get + task_done"),
        ("sync-sqlite-full-get-only", "get (no task_done)"),
    ):
        o, p = versus(sid)
        if o and p:
            r = o / p
            add(
                "sync sequential durable within 1.3x of persist-queue SQLiteQueue",
                f"{what}: persistq takes {r:.2f}x persist-queue's time",
                r,
                r <= 1.3,
                "met" if r <= 1.3 else f"not met: {r / 1.3:.2f}x over the 1.3x bound",
            )
    # 2. async sequential >= 3x AsyncSQLiteQueue / AsyncQueue
    for backend in ("asyncio", "trio"):
        for sid, what in (
            (f"async-{backend}-sqlite-put", "SQLiteQueue put vs AsyncSQLiteQueue"),
            (f"async-{backend}-sqlite-get", "SQLiteQueue get+task_done vs AsyncSQLiteQueue"),
            (f"async-{backend}-file-off-put", "file Queue off put vs AsyncQueue"),
            (f"async-{backend}-file-off-get", "file Queue off get+task_done vs AsyncQueue"),
            (f"async-{backend}-file-full-put", "file Queue full put vs AsyncQueue (stricter durability)"),
            (
                f"async-{backend}-file-full-get",
                "file Queue full get+task_done vs AsyncQueue (stricter durability)",
            ),
        ):
            o, p = versus(sid)
            if o and p:
                r = p / o
                at_least(
                    "async sequential >= 3x persist-queue Async*", f"{backend}: {what}: {r:.2f}x", r, r, 3
                )
    # 3. 8 threads or 100 tasks putting durably >= 10x persist-queue SQLiteQueue with 8 threads
    pq8 = versus("threads-full-8-0")[1]
    if pq8:
        for sid, what in (
            ("threads-full-8-0", "8 threads (sync)"),
            ("tasks-asyncio-sqlite-100-0", "100 tasks (asyncio)"),
            ("tasks-trio-sqlite-100-0", "100 tasks (trio)"),
        ):
            o = ours_us(sid)
            if o:
                r = pq8 / o
                target = "8 threads / 100 tasks putting durably >= 10x persist-queue 8 threads"
                at_least(target, f"{what}: {r:.2f}x", r, r, 10)
    # 4. put_many / get_many >= 100,000 items/s durable
    for sid, what in (
        ("sync-SQLiteQueue-put_many", "sync SQLiteQueue put_many"),
        ("sync-SQLiteQueue-get_many", "sync SQLiteQueue get_many"),
        ("async-asyncio-put_many", "asyncio SQLiteQueue put_many"),
        ("async-asyncio-get_many", "asyncio SQLiteQueue get_many"),
        ("async-trio-put_many", "trio SQLiteQueue put_many"),
        ("async-trio-get_many", "trio SQLiteQueue get_many"),
        ("sync-Queue-put_many", "sync file Queue put_many"),
        ("sync-Queue-get_many", "sync file Queue get_many"),
    ):
        o = ours_us(sid)
        if o:
            rate = 1e6 / o
            target = "put_many / get_many >= 100,000 items/s durable"
            at_least(target, f"{what}: {rate:,.0f} items/s", rate / 100_000, rate, 100_000)
    # 4b. overhead in hand-offs (DESIGN §4): sync <= 1.25; async full <= 1.25, normal/off <= 0.35
    for sc_ in scenarios:
        ov = overhead(sc_, res)
        if ov is None or sc_.floor is None:
            continue
        dur, op = sc_.floor
        if op == "interleaved":
            continue  # two operations per item: shown in the table, not a target of its own
        bound = 0.35 if sc_.sid.startswith("async-") and dur != "full" else 1.25
        add(
            f"overhead <= {bound} hand-offs ({'async' if sc_.sid.startswith('async-') else 'sync'}, {dur})",
            f"{sc_.title}: {ov[0]:.2f} hand-offs of {ov[1]:.0f} µs",
            ov[0],
            ov[0] <= bound,
            "met" if ov[0] <= bound else f"not met: {ov[0] - bound:.2f} hand-offs over",
        )
    # 4c. 8 threads sharing one sync queue, durable puts: >= 4x persist-queue with 8 threads
    # 5. normal, 8 threads putting >= 2x diskcache Deque with 8 threads
    for sid, target, bound in (
        ("threads-full-8-0", "8 threads putting durably >= 4x persist-queue SQLiteQueue with 8 threads", 4),
        ("threads-normal-8-0", "durability=normal, 8 threads putting >= 2x diskcache Deque", 2),
    ):
        o, p = versus(sid)
        if o and p:
            at_least(target, f"{p / o:.2f}x", p / o, p / o, bound)
    # 6. get cost flat in queue length (1M vs 1k waiting); "flat" taken as <= 1.25x (noise)
    for cls_name in ("SQLiteQueue", "PriorityQueue"):
        small, large = ours_us(f"backlog-{cls_name}-1000"), ours_us(f"backlog-{cls_name}-{args.big}")
        if small and large:
            r = large / small
            add(
                "get cost flat in queue length",
                f"{cls_name}: get with {args.big:,} waiting costs {r:.2f}x the get with 1,000 waiting",
                r,
                r <= 1.25,
                "met" if r <= 1.25 else f"not met: {r:.2f}x",
            )
    # 7. memory flat in queue length
    for cls_name in ("SQLiteQueue", "PriorityQueue"):
        small_s, large_s = (
            by_sid.get(f"backlog-{cls_name}-1000"),
            by_sid.get(f"backlog-{cls_name}-{args.big}"),
        )
        small = memory.get(small_s.ours) if small_s else None
        large = memory.get(large_s.ours) if large_s else None
        if small is not None and large is not None:
            diff = (large - small) / 2**20
            add(
                "memory flat in queue length",
                f"{cls_name}: RSS growth opening + first get: {small / 2**20:.1f} MiB (1,000 waiting) vs "
                f"{large / 2**20:.1f} MiB ({args.big:,} waiting)",
                diff,
                diff <= 16,
                "met" if diff <= 16 else f"not met: +{diff:.0f} MiB",
            )
    return out


def render_targets(targets: list[dict[str, Any]]) -> str:
    lines = []
    for t in targets:
        mark = "MET" if t["met"] else "NOT MET"
        lines.append(f"- [{mark}] {t['target']} — {t['measured']} ({t['verdict']})")
    return (
        "\n".join(lines)
        if lines
        else "- (no target could be evaluated: peers missing or scenarios filtered out)"
    )


_COUNT_RESOURCES = """
import os, sys, threading, persistq.sync
def counts():
    return threading.active_count(), len(os.listdir("/proc/self/fd")) - 1
kind = sys.argv[1]
if kind == "dirs":
    qs = [persistq.sync.SQLiteQueue(f"q{i}") for i in range(1000)]
else:
    qs = [persistq.sync.SQLiteQueue("q", name=f"n{i}") for i in range(200)]
for i, q in enumerate(qs):
    q.put(i)
print(*counts(), flush=True)
os._exit(0)  # counts taken; how the program exits is measured elsewhere (tests/test_exit.py)
"""


def measure_resources() -> dict[str, Any]:
    """OS threads and open descriptors of a fresh process holding many open queues (DESIGN §4)."""
    out: dict[str, Any] = {}
    if not Path("/proc/self/fd").exists():
        return out
    for kind, what in (("dirs", "1,000 queues in 1,000 directories"), ("names", "200 names in one file")):
        with tempfile.TemporaryDirectory() as d:
            try:
                proc = subprocess.run(
                    [sys.executable, "-c", _COUNT_RESOURCES, kind],
                    cwd=d,
                    capture_output=True,
                    text=True,
                    timeout=600,
                )
            except subprocess.TimeoutExpired:
                out[what] = {"error": "timed out"}
                continue
        if proc.returncode == 0:
            threads, fds = map(int, proc.stdout.split())
            out[what] = {"threads": threads, "descriptors": fds}
        else:
            out[what] = {"error": proc.stderr.strip().splitlines()[-1:]}
    return out


def render_resources(resources: dict[str, Any]) -> str:
    """The resources section: threads and descriptors per case."""
    if not resources:
        return "Threads and descriptors: not measured (filtered run, or no /proc)."
    lines = ["Threads and descriptors of a fresh process with open sync queues, each used once:"]
    for what, r in resources.items():
        if "error" in r:
            lines.append(f"- {what}: failed ({r['error']})")
        else:
            lines.append(f"- {what}: {r['threads']} OS threads, {r['descriptors']} open descriptors")
    return "\n".join(lines)


def sh(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def machine_info() -> dict[str, Any]:
    cpu = "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    dists = ("persistq", "persist-queue", "diskcache", "anyio", "trio", "aiosqlite", "aiofiles", "PyMySQL")
    versions = {dist: package_version(dist) for dist in (*dists, "DBUtils", "matplotlib")}
    return {
        "nproc": sh(["nproc"]) or str(os.cpu_count()),
        "cpu": cpu,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "os": platform.platform(),
        "sqlite": sqlite3.sqlite_version,
        "packages": versions,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "tmpdir": tempfile.gettempdir(),
        "filesystem": sh(["df", "-T", tempfile.gettempdir()]).splitlines()[-1:],
    }


def write_chart(path: Path, scenarios: list[Scenario], res: dict[Case, Measurement]) -> None:
    """Items/s per scenario, one row each: persistq's bar above its peers' bars; log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {PERSISTQ: "#1f77b4", PQ: "#ff7f0e", DC: "#2ca02c"}
    fig, ax = plt.subplots(figsize=(13, max(6.0, 0.3 * len(scenarios) + 1.5)))
    ticks, labels = [], []
    for y, s in enumerate(scenarios):
        group = [s.ours, *s.peers]
        height = 0.8 / len(group)
        ours = res.get(s.ours)
        for i, c in enumerate(group):
            m = res.get(c)
            yy = y - 0.4 + height * (i + 0.5)
            if m is None or not m.us:
                ax.text(
                    0.005,
                    yy,
                    f"{c.lib}: failed",
                    va="center",
                    fontsize=6,
                    color="red",
                    transform=ax.get_yaxis_transform(),
                )
                continue
            rate = 1e6 / m.us
            ax.barh(yy, rate, height=height * 0.95, color=colors.get(c.lib, "grey"))
            text = f"{rate:,.0f}"
            r = speedup(ours, m) if ours is not None and i else None
            if r is not None:
                text += f"  ({r:.2f}x)"
            ax.text(rate * 1.04, yy, text, va="center", fontsize=6)
        ticks.append(y)
        peer = f"  vs {s.peers[0].label}" if s.peers else ""
        labels.append(s.title + peer)
    ax.set_yticks(ticks)
    ax.set_yticklabels(labels, fontsize=6.5)
    ax.set_ylim(len(scenarios) - 0.5, -0.5)
    ax.set_xscale("log")
    ax.set_xlabel("items per second, log scale (longer is faster); (Nx) = speedup of persistq over that peer")
    ax.set_title("persistq vs persist-queue 1.1.0 and diskcache: median of repeats, equal durability")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors[k]) for k in (PERSISTQ, PQ, DC)]
    ax.legend(handles, ["persistq", "persist-queue 1.1.0", "diskcache"], loc="lower right", fontsize=8)
    ax.grid(axis="x", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_results_md(
    path: Path,
    command: str,
    machine: dict[str, Any],
    load: tuple[str, str],
    elapsed: float,
    rows: list[list[str]],
    targets: list[dict[str, Any]],
    scenarios: list[Scenario],
    args: argparse.Namespace,
    failures: list[str],
    res: dict[Case, Measurement],
    resources: dict[str, Any],
) -> None:
    pk = ", ".join(f"{k} {v}" for k, v in machine["packages"].items())
    notes = [f"- {s.title}: {s.note}" for s in scenarios if s.note]
    servers = "\n".join(
        f"- {e.title}: " + ("configured" if e.config() else "not configured (rows skipped)")
        for e in SERVER_ENGINES.values()
    )
    text = f"""# persistq benchmark results

Generated by `benchmarks/run_benchmark.py`; see its docstring for how to read the numbers.

- Command: `{command}`
- N = {args.n} items per scenario, {args.repeats} repeats after a warm-up, median shown;
  backlog rows: {args.big:,} waiting (persist-queue `PriorityQueue`: {args.peer_big:,} waiting,
  {PEER_BIG_GETS} gets per run — it scans the table per get); persist-queue's async classes run with
  N * {SLOW_PEER} items (they take 2-20 ms per item)
- Machine: {machine["nproc"]} CPUs, {machine["cpu"]}; {machine["os"]}
- Python {machine["python"]} ({machine["implementation"]}), SQLite {machine["sqlite"]}
- Packages: {pk}
- Temp dir: `{machine["tmpdir"]}` {" ".join(machine["filesystem"])}
{servers}
- Date: {machine["date"]}; run took {elapsed:.0f} s
- Load (`uptime`) before: `{load[0]}`
- Load (`uptime`) after: `{load[1]}`
  (other jobs share this machine: absolute times are noisy, ratios less so)

speedup = peer µs / persistq µs: above 1 persistq is faster, below 1 slower.
overhead = (persistq µs - the same storage work done inline with stdlib sqlite3, µs) / hand-off µs, where
the hand-off is what shipping that same operation to an asyncio loop on another thread and back adds to
running it inline (DESIGN §4), measured beside each row.

{render_md(rows)}

The floor, per row (µs per item):

{chr(10).join(floor_rows(scenarios, res)) or "- (no floor measured)"}

{render_resources(resources)}

Notes:
{chr(10).join(notes) if notes else "- none"}

Failed runs (each retried up to {ATTEMPTS} times; a case shown as "error" failed every attempt):
{chr(10).join("- " + f for f in failures) if failures else "- none"}

## DESIGN §4 targets

{render_targets(targets)}

![items per second](results.png)
"""
    path.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("n", nargs="?", type=int, default=1000, help="items per scenario (default 1000)")
    ap.add_argument("format", nargs="?", default="console", choices=("console", "rst", "json"))
    ap.add_argument("--repeats", type=int, default=3, help="measured repeats per case (median reported)")
    ap.add_argument("--only", default="", help="regex: run only the scenarios whose id or title matches")
    ap.add_argument("--big", type=int, default=1_000_000, help="items waiting in the long-backlog rows")
    ap.add_argument(
        "--peer-big", type=int, default=100_000, help="items waiting for persist-queue PriorityQueue"
    )
    ap.add_argument("--out-dir", type=Path, default=HERE, help="where RESULTS.md and results.png go")
    args = ap.parse_args(argv)
    if args.n < 1 or args.repeats < 1:
        ap.error("N and --repeats must be >= 1")

    command = " ".join([Path(sys.executable).name, *sys.argv]) if argv is None else " ".join(argv)
    load_before = sh(["uptime"])
    t_start = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="persistq-bench-"))
    scenarios = build_scenarios(args)
    runner = Runner(root, args.n, args.repeats)
    try:
        groups: list[list[Scenario]] = []
        for s in scenarios:
            if groups and s.group and groups[-1][0].group == s.group:
                groups[-1].append(s)
            else:
                groups.append([s])
        done = 0
        for g in groups:
            done += len(g)
            runner.scenario(done, len(scenarios), g)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if _tty:
        sys.stderr.write("\r\x1b[K")
    elapsed = time.monotonic() - t_start
    load_after = sh(["uptime"])
    res = runner.results
    rows = table_rows(scenarios, res)
    targets = evaluate_targets(scenarios, res, args, runner.memory)
    resources = {} if args.only else measure_resources()
    machine = machine_info()

    if args.format == "json":
        doc = {
            "command": command,
            "n": args.n,
            "repeats": args.repeats,
            "machine": machine,
            "load": {"before": load_before, "after": load_after},
            "elapsed_s": elapsed,
            "scenarios": [
                {
                    "id": s.sid,
                    "title": s.title,
                    "note": s.note,
                    "persistq": _mjson(s.ours, res),
                    "peers": [_mjson(p, res) for p in s.peers],
                }
                for s in scenarios
            ],
            "targets": targets,
            "resources": resources,
            "failed_runs": runner.failures,
        }
        print(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        print(render_console(rows) if args.format == "console" else render_rst(rows))
        print("\nspeedup = peer µs / persistq µs (> 1: persistq faster)")
        print("overhead = (persistq µs - sqlite3 µs, same work inline) / hand-off µs; the floor:")
        print("\n".join(floor_rows(scenarios, res)) or "- (no floor measured)")
        print(render_resources(resources))
        print("\nDESIGN §4 targets:")
        print(render_targets(targets))
        if runner.failures:
            print("\nFailed runs (retried):\n" + "\n".join("- " + f for f in runner.failures))

    args.out_dir.mkdir(parents=True, exist_ok=True)
    write_results_md(
        args.out_dir / "RESULTS.md",
        command,
        machine,
        (load_before, load_after),
        elapsed,
        rows,
        targets,
        scenarios,
        args,
        runner.failures,
        res,
        resources,
    )
    try:
        write_chart(args.out_dir / "results.png", scenarios, res)
    except ImportError:
        print("matplotlib is not installed: no chart written", file=sys.stderr)
    failed = [k for k, m in res.items() if m.error]
    if failed:
        print(f"{len(failed)} case(s) failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def _mjson(c: Case, res: dict[Case, Measurement]) -> dict[str, Any]:
    m = res.get(c)
    return {
        "library": c.lib,
        "label": c.label,
        "us_per_item": m.us if m else None,
        "items_per_s": (1e6 / m.us) if m and m.us else None,
        "samples_us": m.samples if m else [],
        "items": m.items if m else 0,
        "error": m.error if m else "not run",
    }


if __name__ == "__main__":
    sys.exit(main())
