"""MySQL queue throughput with 1 and 4 processes: persistq vs persist-queue 1.1.0.

What is measured, on one MySQL / MariaDB server, in one run:

1. ``put``, one producer process: N sequential ``put`` calls, one item each
   (the string ``f"item-{i}"``), with

   - ``persistq.sync.MySQLQueue`` (default driver),
   - ``persistq.MySQLQueue`` on asyncio (default driver: aiomysql), sequential awaits,
   - ``persistq.MySQLQueue`` on trio (PyMySQL on worker threads),
   - ``persistqueue.MySQLQueue`` (persist-queue 1.1.0).

   The producer times its own loop (the queue is opened before the clock
   starts). Afterwards the parent reads the table back and counts items
   missing or present more than once.

2. ``get`` + ``ack`` / ``task_done``, 1 and 4 consumer processes draining a
   table pre-filled with N items (the pre-fill is not timed):

   - ``persistq.sync.MySQLAckQueue``: ``item = q.get(block=False); q.ack(item)``,
   - ``persistq.sync.MySQLQueue(auto_commit=True)``: ``q.get(block=False); q.task_done()``,
   - ``persistq.MySQLAckQueue`` on asyncio: ``await q.get(block=False); await q.ack(item)``,
   - ``persistqueue.MySQLQueue``: ``q.get(block=False); q.task_done()``
     (persist-queue has no MySQL ack queue; its ``get`` removes the item).

   Consumers are ``spawn``-ed processes. Each opens its queue, waits on a
   barrier, then gets until ``Empty`` once the parent has said that all items
   are put (they are, before the barrier). The time is from the barrier's
   release until the last consumer saw the queue empty (``time.monotonic``,
   system-wide on Linux); opening and closing the queues are not timed. Every
   consumer writes what it got to a result file; the parent counts **lost**
   items (put, never delivered) and **duplicated** ones (delivered more than
   once), and counts the rows still waiting in the table. A consumer that
   raises records its traceback; the run goes on. items/s is distinct items
   delivered divided by seconds.

Each scenario uses its own table (a unique name), dropped afterwards.

Run (the server comes from the ``PERSISTQ_MYSQL_*`` environment variables;
``scripts/mariadb.sh start DIR`` starts a throwaway MariaDB and writes them to
``DIR/env``)::

    scripts/mariadb.sh start /tmp/pqbench
    set -a; . /tmp/pqbench/env; set +a
    .venv/bin/python benchmarks/mysql_processes.py --repeat 3 --out benchmarks/MYSQL_RESULTS.md
    scripts/mariadb.sh stop /tmp/pqbench

``--items N`` (default 3000) sets the items per scenario; ``--repeat R``
reports the median seconds and items/s of R runs, and the worst lost and
duplicated counts; ``--only REGEX`` runs the scenarios whose id
(``get-mysql-persistq-sync-MySQLAckQueue-4``) or label matches.

The rows are one table (:func:`scenarios`): an operation, a ``QueueSpec``
(library, class, face, engine; see ``_scenarios.py``) and a process count,
for every server engine configured — MySQL today; another engine of
``_scenarios.SERVER_ENGINES`` adds the same rows for its own classes.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as _dt
import hashlib
import json
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from _scenarios import (
    PERSISTQ,
    PQ,
    SERVER_ENGINES,
    AsyncDriver,
    QueueSpec,
    ServerEngine,
    SyncDriver,
    configured_engines,
    md_table,
    package_version,
    select,
)

DEFAULT_ITEMS = 3000
"""Items per scenario; 3,000 keeps ``--repeat 3`` under ~5 minutes on 2 CPUs."""
CONSUMER_COUNTS = (1, 4)
BARRIER_TIMEOUT = 120.0
"""Seconds a process waits at the start barrier (the others open their queues meanwhile)."""
DELIVERY_CAP = 10
"""A consumer stops after ``DELIVERY_CAP * N`` deliveries (a runaway duplicate loop)."""


# ----------------------------------------------------------------------------- configuration


def servers() -> list[tuple[ServerEngine, dict[str, Any]]]:
    """The configured server engines; exit with a message when there is none."""
    found = configured_engines()
    if not found:
        sys.exit(
            "mysql_processes.py: no server configured; set "
            + " or ".join(e.env_help for e in SERVER_ENGINES.values())
            + ".\nStart a server and load its environment, e.g.:\n"
            "  scripts/mariadb.sh start /tmp/pqbench\n"
            "  set -a; . /tmp/pqbench/env; set +a"
        )
    return found


def item(i: int) -> str:
    """The payload of item ``i``."""
    return f"item-{i}"


def item_index(value: Any) -> int | None:
    """The ``i`` of a payload ``f"item-{i}"``; ``None`` for anything else."""
    if isinstance(value, str) and value.startswith("item-"):
        with contextlib.suppress(ValueError):
            return int(value[5:])
    return None


# ----------------------------------------------------------------------------- CPU accounting


@dataclass(frozen=True)
class CpuSample:
    """CPU-seconds used so far: by the whole machine, and by this benchmark (with its server)."""

    wall: float
    machine: float
    ours: float


def cpu_sample(server_pids: Sequence[int] = ()) -> CpuSample:
    """Machine-wide busy CPU time (``/proc/stat``) and ours: this process, its finished children, the server.

    The difference between two samples, minus ours, is what *other* processes
    on the machine used meanwhile: load that competes with the benchmark for
    the CPUs. Zeros where ``/proc`` is unavailable.
    """
    tick = os.sysconf("SC_CLK_TCK")
    machine = 0.0
    with contextlib.suppress(OSError, ValueError, IndexError):
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        # user nice system idle iowait irq softirq steal ...: everything but idle and iowait
        machine = (sum(fields[:8]) - fields[3] - fields[4]) / tick
    t = os.times()
    ours = t.user + t.system + t.children_user + t.children_system
    for pid in server_pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ours += (int(stat[11]) + int(stat[12])) / tick
    return CpuSample(time.monotonic(), machine, ours)


def other_cpus(before: CpuSample, after: CpuSample) -> float:
    """CPUs (on average) that other processes used between two samples."""
    wall = after.wall - before.wall
    if wall <= 0 or not after.machine:
        return 0.0
    return max(0.0, (after.machine - before.machine) - (after.ours - before.ours)) / wall


# ----------------------------------------------------------------------------- producers


def _produce(spec: QueueSpec, name: str, n: int) -> tuple[float, str]:
    """Put ``n`` items one at a time into table ``name``; (seconds of the loop, driver used)."""
    engine = spec.server()[0]
    if spec.face == "sync":
        drv = SyncDriver(spec)
        q = drv.open(name)
        try:
            put = drv.put
            t0 = time.perf_counter()
            for i in range(n):
                put(q, item(i))
            return time.perf_counter() - t0, engine.driver_name(spec, q)
        finally:
            drv.close(q)

    adrv = AsyncDriver(spec)

    async def body() -> tuple[float, str]:
        async with adrv.open(name) as q:
            t0 = time.perf_counter()
            for i in range(n):
                await adrv.put(q, item(i))
            return time.perf_counter() - t0, engine.driver_name(spec, q)

    return anyio.run(body, backend=spec.face)


def producer_main(spec: QueueSpec, name: str, n: int, result_path: str) -> None:
    """Producer process: put ``n`` items one at a time; write seconds (or the traceback) as JSON."""
    out: dict[str, Any] = {"seconds": None, "driver": "?", "error": None}
    try:
        out["seconds"], out["driver"] = _produce(spec, name, n)
    except BaseException:  # noqa: BLE001 - reported by the parent, never swallowed
        out["error"] = traceback.format_exc()
    Path(result_path).write_text(json.dumps(out))


# ----------------------------------------------------------------------------- consumers


@dataclass
class ConsumerLog:
    """What one consumer process did; written to its result file as JSON."""

    got: list[int] = field(default_factory=list)
    bad: list[str] = field(default_factory=list)
    t_start: float | None = None
    t_end: float | None = None
    driver: str = "?"
    capped: bool = False
    error: str | None = None

    def record(self, value: Any) -> None:
        """Record one delivered item."""
        idx = item_index(value)
        if idx is None:
            self.bad.append(repr(value)[:80])
        else:
            self.got.append(idx)

    def at_cap(self, cap: int) -> bool:
        """Whether this consumer has had ``cap`` deliveries (and stops, flagged ``capped``)."""
        self.capped = len(self.got) + len(self.bad) >= cap
        return self.capped


def _consume(spec: QueueSpec, name: str, ctl: ConsumerControl, log: ConsumerLog) -> None:
    """Get with ``block=False`` until ``Empty`` after all items are put; consume each item.

    persist-queue's ``qsize()`` is a per-object counter (``COUNT(*)`` at open, minus this object's gets),
    not the table's, so every consumer asks ``get`` itself, which reads the table.
    """
    engine = spec.server()[0]
    if spec.face == "sync":
        drv = SyncDriver(spec)
        q = drv.open(name)
        try:
            log.driver = engine.driver_name(spec, q)
            ctl.start(log)
            while True:
                try:
                    value = drv.get_nowait(q)
                except drv.empty:
                    if ctl.all_put.is_set():
                        break
                    time.sleep(0.001)
                    continue
                log.record(value)
                drv.finish(q, value)
                if log.at_cap(ctl.cap):
                    break
            log.t_end = time.monotonic()
        finally:
            drv.close(q)
        return

    adrv = AsyncDriver(spec)

    async def body() -> None:
        async with adrv.open(name) as q:
            log.driver = engine.driver_name(spec, q)
            # The barrier blocks; waiting in a thread keeps the loop (and aiomysql) alive.
            await anyio.to_thread.run_sync(ctl.start, log)
            while True:
                try:
                    value = await adrv.get_nowait(q)
                except adrv.empty:
                    if ctl.all_put.is_set():
                        break
                    await anyio.sleep(0.001)
                    continue
                log.record(value)
                await adrv.finish(q, value)
                if log.at_cap(ctl.cap):
                    break
            log.t_end = time.monotonic()

    anyio.run(body, backend=spec.face)


@dataclass
class ConsumerControl:
    """The shared start barrier, the "all put" event and the delivery cap, as one consumer sees them."""

    barrier: Any
    all_put: Any
    cap: int

    def start(self, log: ConsumerLog) -> None:
        """Wait at the barrier; stamp the release time."""
        self.barrier.wait(BARRIER_TIMEOUT)
        log.t_start = time.monotonic()


def consumer_main(spec: QueueSpec, name: str, barrier: Any, all_put: Any, cap: int, result_path: str) -> None:
    """Consumer process: drain the queue; write what it got (and any traceback) as JSON."""
    log = ConsumerLog()
    ctl = ConsumerControl(barrier, all_put, cap)
    try:
        _consume(spec, name, ctl, log)
    except BaseException:  # noqa: BLE001 - reported by the parent, never swallowed
        log.error = traceback.format_exc()
        if log.t_start is None:
            with contextlib.suppress(Exception):
                barrier.abort()  # do not leave the others waiting for us
    Path(result_path).write_text(json.dumps(log.__dict__))


def prefill(spec: QueueSpec, name: str, n: int) -> None:
    """Create the table and put ``n`` items (not timed)."""
    items = [item(i) for i in range(n)]
    if spec.lib != PERSISTQ:
        engine, cfg = spec.server()
        engine.peer_prefill(cfg, name, items)
        return
    drv = SyncDriver(dataclasses.replace(spec, face="sync"))
    q = drv.open(name)
    try:
        drv.fill(q, items, chunk=1000)
        if q.qsize() != n:
            raise RuntimeError(f"pre-fill: qsize() is {q.qsize()}, expected {n}")
    finally:
        drv.close(q)


# ----------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Scenario:
    """One row of the table: ``processes`` processes doing ``op`` on a queue of ``spec``."""

    op: str  # "put" or "get"
    spec: QueueSpec
    processes: int
    note: str = ""

    @property
    def label(self) -> str:
        """``persistq `sync.MySQLAckQueue` get+ack``, ``persistq `MySQLQueue.put` (trio)``, …"""
        s = self.spec
        api = ("sync." if s.lib == PERSISTQ and s.face == "sync" else "") + s.cls
        text = f"{s.lib} `{api}.put`" if self.op == "put" else f"{s.lib} `{api}` get+{s.finish}"
        return text + (f" ({s.face})" if s.face != "sync" else "")

    @property
    def sid(self) -> str:
        """The id ``--only`` matches: ``put-mysql-persistq-asyncio-MySQLQueue-1``."""
        s = self.spec
        return f"{self.op}-{s.engine}-{s.lib}-{s.face}-{s.cls}-{self.processes}"


@dataclass
class RunResult:
    """One run of a scenario."""

    seconds: float | None
    distinct: int
    lost: int
    duplicated: int
    deliveries: int
    left: int
    driver: str
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    other_cpus: float = 0.0

    @property
    def rate(self) -> float | None:
        """Distinct items per second."""
        if not self.seconds:
            return None
        return self.distinct / self.seconds


def scenarios(engines: Sequence[ServerEngine]) -> list[Scenario]:
    """All scenarios, in the order they run: per engine, the puts, then the gets by 1 and 4 processes."""
    out: list[Scenario] = []
    for engine in engines:
        e, fifo, ack = engine.name, engine.fifo_class, engine.ack_class
        peer = QueueSpec(PQ, engine.peer_class, engine=e) if engine.peer_class else None
        note = f"persist-queue has no {engine.title} ack queue; its get() removes the item"
        out += [
            Scenario("put", QueueSpec(PERSISTQ, fifo, face, engine=e), 1)
            for face in ("sync", "asyncio", "trio")
        ]
        out += [Scenario("put", peer, 1)] if peer else []
        for p in CONSUMER_COUNTS:
            out += [
                Scenario("get", QueueSpec(PERSISTQ, ack, engine=e), p),
                Scenario("get", QueueSpec(PERSISTQ, fifo, kw=(("auto_commit", True),), engine=e), p),
                Scenario("get", QueueSpec(PERSISTQ, ack, "asyncio", engine=e), p),
            ]
            out += [Scenario("get", peer, p, note)] if peer else []
    return out


def count_deliveries(indices: Sequence[int], n: int) -> tuple[int, int, int]:
    """(distinct expected items seen, lost, duplicated) for deliveries ``indices`` of items ``0..n-1``."""
    counts = Counter(i for i in indices if 0 <= i < n)
    distinct = len(counts)
    duplicated = sum(c - 1 for c in counts.values())
    return distinct, n - distinct, duplicated


def _join_all(procs: Sequence[Any], deadline: float) -> list[str]:
    """Join ``procs`` by ``deadline``; terminate stragglers. Returns notes on abnormal exits."""
    notes: list[str] = []
    for k, p in enumerate(procs):
        p.join(max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            p.terminate()
            p.join(5)
            notes.append(f"process {k} still running at the deadline: terminated")
        elif p.exitcode != 0:
            notes.append(f"process {k} exit code {p.exitcode}")
    return notes


def table_name(sc: Scenario) -> str:
    """A fresh table name for one run of ``sc`` (``bench_`` keeps a shared server tidy)."""
    return f"bench_{sc.op}_{sc.processes}_{uuid.uuid4().hex[:10]}"


def run_put(sc: Scenario, n: int, tmp: Path, timeout: float) -> RunResult:
    """One producer process puts ``n`` items; the parent checks the table's content."""
    ctx = multiprocessing.get_context("spawn")
    engine, cfg = sc.spec.server()
    name = table_name(sc)
    path = tmp / f"{name}.json"
    try:
        proc = ctx.Process(target=producer_main, args=(sc.spec, name, n, str(path)))
        proc.start()
        notes = _join_all([proc], time.monotonic() + timeout)
        data = json.loads(path.read_text()) if path.exists() else {"error": None, "seconds": None}
        errors = [data["error"]] if data.get("error") else []
        if not path.exists():
            errors.append("the producer wrote no result file")
        try:
            stored = engine.stored_items(cfg, name)
        except engine.db_error() as exc:
            stored = []
            errors.append(f"parent: reading table {name} back failed: {exc!r}")
        indices = [i for i in (item_index(v) for v in stored) if i is not None]
        bad = len(stored) - len(indices)
        if bad:
            notes.append(f"{bad} rows not decodable as an item")
        distinct, lost, dup = count_deliveries(indices, n)
        return RunResult(
            seconds=data.get("seconds"),
            distinct=distinct,
            lost=lost,
            duplicated=dup,
            deliveries=len(stored),
            left=0,
            driver=str(data.get("driver", "?")),
            notes=notes,
            errors=errors,
        )
    finally:
        engine.drop(cfg, name)


def run_get(sc: Scenario, n: int, tmp: Path, timeout: float) -> RunResult:
    """``sc.processes`` consumers drain a pre-filled table; the parent counts lost and duplicated items."""
    ctx = multiprocessing.get_context("spawn")
    engine, cfg = sc.spec.server()
    name = table_name(sc)
    try:
        prefill(sc.spec, name, n)
        barrier = ctx.Barrier(sc.processes + 1)
        all_put = ctx.Event()
        all_put.set()  # the pre-fill above put every item
        cap = DELIVERY_CAP * n
        paths = [tmp / f"{name}.{k}.json" for k in range(sc.processes)]
        procs = [
            ctx.Process(
                target=consumer_main,
                args=(sc.spec, name, barrier, all_put, cap, str(paths[k])),
            )
            for k in range(sc.processes)
        ]
        for p in procs:
            p.start()
        errors: list[str] = []
        notes: list[str] = []
        t0: float | None = None
        try:
            barrier.wait(BARRIER_TIMEOUT)
            t0 = time.monotonic()
        except threading.BrokenBarrierError:
            notes.append("start barrier broken (a consumer failed before it)")
        notes += _join_all(procs, time.monotonic() + timeout)
        logs: list[dict[str, Any]] = []
        for k, path in enumerate(paths):
            if not path.exists():
                errors.append(f"consumer {k}: wrote no result file")
                continue
            log = json.loads(path.read_text())
            logs.append(log)
            if log["error"]:
                errors.append(f"consumer {k}:\n{log['error']}")
            if log["capped"]:
                notes.append(f"consumer {k} stopped at the cap of {cap} deliveries")
            if log["bad"]:
                notes.append(f"consumer {k}: {len(log['bad'])} unexpected values, e.g. {log['bad'][0]}")
        indices = [i for log in logs for i in log["got"]]
        distinct, lost, dup = count_deliveries(indices, n)
        ends = [log["t_end"] for log in logs if log["t_end"] is not None]
        seconds = max(ends) - t0 if t0 is not None and ends and len(ends) == sc.processes else None
        if sc.processes > 1:
            notes.append("per consumer: " + "/".join(str(len(log["got"])) for log in logs))
        drivers = sorted({str(log["driver"]) for log in logs})
        return RunResult(
            seconds=seconds,
            distinct=distinct,
            lost=lost,
            duplicated=dup,
            deliveries=len(indices),
            left=engine.waiting_rows(cfg, name),
            driver=",".join(drivers) or "?",
            notes=notes,
            errors=errors,
        )
    finally:
        engine.drop(cfg, name)


# ----------------------------------------------------------------------------- report


@dataclass
class Row:
    """A scenario's results over all repeats."""

    sc: Scenario
    runs: list[RunResult]

    def cells(self, n: int) -> list[str]:
        """The Markdown cells: scenario, library/API, processes, items, s, items/s, lost, dup, note."""
        secs = [r.seconds for r in self.runs if r.seconds is not None]
        rates = [r.rate for r in self.runs if r.rate is not None]
        ok = len(secs) == len(self.runs)
        sec_cell = f"{statistics.median(secs):.2f}" if secs else "—"
        rate_cell = f"{statistics.median(rates):,.0f}" if rates else "—"
        if not ok and secs:
            sec_cell += f" ({len(secs)}/{len(self.runs)} runs)"
        lost = max(r.lost for r in self.runs)
        dup = max(r.duplicated for r in self.runs)
        notes: list[str] = []
        if self.sc.note:
            notes.append(self.sc.note)
        drivers = sorted({r.driver for r in self.runs})
        notes.append("driver: " + ", ".join(drivers))
        if len(self.runs) > 1 and len({(r.lost, r.duplicated) for r in self.runs}) > 1:
            notes.append("lost/dup per run: " + ", ".join(f"{r.lost}/{r.duplicated}" for r in self.runs))
        deliveries = [r.deliveries for r in self.runs]
        if self.sc.op == "get" and any(d != n for d in deliveries):
            notes.append("deliveries: " + ", ".join(f"{d:,}" for d in deliveries))
        if self.sc.op == "put" and any(d != n for d in deliveries):
            notes.append("rows in table: " + ", ".join(f"{d:,}" for d in deliveries))
        left = [r.left for r in self.runs]
        if any(left):
            notes.append("left in table: " + ", ".join(str(x) for x in left))
        busy = [r.other_cpus for r in self.runs]
        if max(busy) >= 0.25:
            notes.append("*other load*: " + ", ".join(f"{b:.2f}" for b in busy) + " CPU")
        errs = sum(len(r.errors) for r in self.runs)
        if errs:
            notes.append(f"**{errs} error(s), see below**")
        for r in self.runs:
            for note in r.notes:
                if note.startswith("per consumer") and len(self.runs) > 1 and r is not self.runs[0]:
                    continue
                notes.append(note)
        op = "put, 1 producer" if self.sc.op == "put" else "get + ack/task_done"
        return [
            op,
            self.sc.label,
            str(self.sc.processes),
            f"{n:,}",
            sec_cell,
            rate_cell,
            str(lost),
            str(dup),
            "; ".join(notes),
        ]


def markdown_table(rows: Sequence[Row], n: int) -> str:
    """The results as a Markdown table."""
    head = [
        "scenario",
        "library / API",
        "processes",
        "items",
        "seconds",
        "items/s",
        "lost",
        "duplicated",
        "note",
    ]
    return md_table(head, (row.cells(n) for row in rows))


def errors_section(rows: Sequence[Row]) -> str:
    """Every traceback recorded, by scenario and run."""
    parts: list[str] = []
    for row in rows:
        for k, r in enumerate(row.runs):
            for err in r.errors:
                parts.append(
                    f"### {row.sc.label}, {row.sc.processes} process(es), run {k + 1}\n\n```text\n{err}\n```"
                )
    return "\n\n".join(parts)


def persistq_source() -> str:
    """The git commit of persistq's checkout, and a fingerprint of the ``persistq`` sources in use.

    Every scenario starts fresh processes that import ``persistq`` anew, so
    the fingerprint is taken before and after the run: if the sources
    changed meanwhile, the rows do not all measure the same code.
    """
    import persistq

    pkg = Path(persistq.__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(pkg.rglob("*.py")):
        digest.update(str(path.relative_to(pkg)).encode() + b"\0" + path.read_bytes())
    commit = "?"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        git = ["git", "-C", str(pkg.parent)]
        commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--", "persistq"], capture_output=True, text=True
        ).stdout
        commit = commit.strip() + (" with uncommitted changes in persistq/" if dirty.strip() else "")
    return f"git {commit or '?'}, sources sha256 {digest.hexdigest()[:12]}"


def header(
    engines: Sequence[tuple[ServerEngine, dict[str, Any]]],
    n: int,
    repeat: int,
    load: Sequence[float],
    source: str,
) -> str:
    """The report's header: date, machine, server, package versions, method."""
    server_lines = [e.server_line(cfg) for e, cfg in engines]
    titles = " and ".join(e.title for e, _ in engines)
    pkgs = ", ".join(
        f"{d} {package_version(d)}" for d in ("persistq", "persist-queue", "PyMySQL", "aiomysql", "trio")
    )
    when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join(
        [
            f"# {titles} queues with 1 and 4 processes: persistq vs persist-queue",
            "",
            f"- Date: {when}; command: `{' '.join(['python', *sys.argv])}`",
            f"- Machine: {os.cpu_count()} CPUs, {platform.platform()}, Python {platform.python_version()}; "
            f"load average (1 min) before the run {load[0]:.2f}",
            *(f"- Server: {line}" for line in server_lines),
            f"- Packages: {pkgs}; persistq at {source}",
            f'- {n:,} items per scenario (`f"item-{{i}}"`, pickled), '
            + (f"median of {repeat} runs" if repeat > 1 else "one run")
            + "; lost and duplicated are the worst run's.",
            "- put: one process, sequential single-item puts, timed by the producer around its loop.",
            "- get: a pre-filled table (not timed) drained by `spawn`-ed consumer processes with "
            "`get(block=False)` until `Empty`; time from the start barrier's release until the last "
            "consumer saw the queue empty (opening and closing the queues not timed). "
            "items/s = distinct items delivered / seconds. lost = put but never delivered, "
            "duplicated = deliveries beyond the first, counted from every consumer's record.",
        ]
    )


# ----------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--items", type=int, default=DEFAULT_ITEMS, help=f"items per scenario ({DEFAULT_ITEMS})")
    ap.add_argument("--repeat", type=int, default=1, help="runs per scenario; the median is reported (1)")
    ap.add_argument("--out", type=Path, help="also write the report (Markdown) to this file")
    ap.add_argument("--only", default="", help="regex: run only the scenarios whose id or label matches")
    ap.add_argument(
        "--timeout", type=float, default=300.0, help="seconds a scenario's processes may run (300)"
    )
    args = ap.parse_args(argv)
    if args.items < 1 or args.repeat < 1:
        ap.error("--items and --repeat must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run every scenario ``--repeat`` times, print the table, write ``--out``."""
    args = parse_args(argv)
    engines = servers()
    pids = [pid for e, _ in engines if (pid := e.server_pid()) is not None]
    n: int = args.items
    source = persistq_source()
    load = os.getloadavg()
    first = cpu_sample(pids)
    started = time.monotonic()
    selected = select(scenarios([e for e, _ in engines]), args.only, lambda s: s.sid, lambda s: s.label)
    runs: dict[Scenario, list[RunResult]] = {s: [] for s in selected}
    with tempfile.TemporaryDirectory(prefix="pq-mysql-bench-") as tmp:
        for rep in range(args.repeat):
            for sc in selected:
                run = run_put if sc.op == "put" else run_get
                before = cpu_sample(pids)
                result = run(sc, n, Path(tmp), args.timeout)
                result.other_cpus = other_cpus(before, cpu_sample(pids))
                runs[sc].append(result)
                rate = f"{result.rate:,.0f}/s" if result.rate is not None else "no rate"
                print(
                    f"[{rep + 1}/{args.repeat}] {sc.label} x{sc.processes}: {rate}, lost {result.lost}, "
                    f"dup {result.duplicated}"
                    + (f", {len(result.errors)} error(s)" if result.errors else ""),
                    file=sys.stderr,
                    flush=True,
                )
    elapsed = time.monotonic() - started
    rows = [Row(s, runs[s]) for s in selected]
    report = header(engines, n, args.repeat, load, source) + "\n\n" + markdown_table(rows, n)
    source_after = persistq_source()
    if source_after != source:
        warning = (
            f"**Warning: persistq's sources changed during the run** ({source} before, {source_after} "
            "after): the rows may not all measure the same code. Run again."
        )
        print(warning, file=sys.stderr)
        report += "\n\n" + warning
    others = other_cpus(first, cpu_sample(pids))
    report += (
        f"\n\nWhole run: {elapsed:.0f} s. Other processes on the machine used {others:.2f} of its "
        f"{os.cpu_count()} CPUs on average meanwhile (`/proc/stat` minus this benchmark and its "
        "server); rows marked *other load* ran while they used 0.25 CPU or more.\n"
    )
    errs = errors_section(rows)
    if errs:
        report += "\n## Errors\n\n" + errs + "\n"
    print(report)
    if args.out is not None:
        args.out.write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
