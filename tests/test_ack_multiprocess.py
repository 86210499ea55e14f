"""Ack queues shared by several real processes (DESIGN §3, "Ack queues" and "Multi-process").

Children are started with the ``spawn`` method and run code from
``tests/_ack_children.py``; they report through JSON result files. Crashes are
real: a consumer is ended with SIGKILL while it holds items.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import signal
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import persistq
import persistq.sync
from persistq import AckStatus

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
if TESTS_DIR not in sys.path:  # spawn children get the parent's sys.path
    sys.path.insert(0, TESTS_DIR)

import _ack_children  # noqa: E402

CTX = multiprocessing.get_context("spawn")
JOIN_TIMEOUT = 60.0

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")


@contextlib.contextmanager
def _queue(path: str, **kwargs: Any) -> Iterator[persistq.sync.SQLiteAckQueue]:
    """A sync ack queue, closed on the way out (typed as the ack queue for mypy)."""
    q = persistq.sync.SQLiteAckQueue(path, **kwargs)
    try:
        yield q
    finally:
        q.close()


def _start(target: Any, *args: Any) -> Any:
    p = CTX.Process(target=target, args=args, daemon=True)
    p.start()
    return p


def _join_all(procs: list[Any], timeout: float = JOIN_TIMEOUT) -> None:
    """Join every process; kill the stragglers and fail if one hangs or fails."""
    deadline = time.monotonic() + timeout
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
    hung = [p for p in procs if p.is_alive()]
    for p in hung:
        p.kill()
        p.join()
    assert not hung, f"child processes hung: {hung}"
    codes = [p.exitcode for p in procs]
    assert codes == [0] * len(procs), f"child exit codes: {codes}"


def _kill(p: Any) -> None:
    """SIGKILL a child and reap it."""
    os.kill(p.pid, signal.SIGKILL)
    p.join(JOIN_TIMEOUT)
    assert p.exitcode == -signal.SIGKILL


def _reap(procs: list[Any]) -> None:
    """Cleanup: kill and join whatever still runs (after a failure)."""
    for p in procs:
        if p.is_alive():
            p.kill()
        p.join(JOIN_TIMEOUT)


def _read(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _statuses(q: Any) -> dict[int, int]:
    return {row["id"]: row["status"] for row in q.queue()}


def _get_all_nowait(q: Any, **kwargs: Any) -> list[dict[str, Any]]:
    got = []
    while True:
        try:
            got.append(q.get(block=False, raw=True, **kwargs))
        except persistq.Empty:
            return got


# ------------------------------------------------------- 1. a killed consumer


@pytest.mark.parametrize(("holder", "racer"), [("sync", "trio"), ("asyncio", "sync")])
def test_items_of_a_killed_consumer_come_back_once_when_the_lease_expires(
    holder: str, racer: str, qpath: str, tmp_path: Path
) -> None:
    """Items held by a SIGKILLed consumer stay invisible while leased, then go to exactly one consumer."""
    lease = 1.0
    items = [f"item:{i}" for i in range(10)]
    held_file, race_file = tmp_path / "held.json", tmp_path / "race.json"
    holder_ready, opened, go = CTX.Event(), CTX.Event(), CTX.Event()
    until = CTX.Value("d", 0.0)
    with _queue(qpath, visibility_timeout=lease) as q:
        ids = q.put_many(items)
        # The second consumer process opens the queue first (auto_resume runs at
        # open: nothing is in flight yet), then waits for the go.
        racer_p = _start(_ack_children.race, qpath, racer, lease, opened, go, until, str(race_file))
        holder_p = None
        try:
            assert opened.wait(JOIN_TIMEOUT), "the second consumer did not open the queue"
            holder_p = _start(_ack_children.hold, qpath, holder, 3, lease, holder_ready, str(held_file))
            assert holder_ready.wait(JOIN_TIMEOUT), "the holder did not get its items"
            report = _read(held_file)
            _kill(holder_p)
            t_claim_before, t_claim_after = report["claim"]
            held = {pqid: data for pqid, data in report["held"]}
            assert list(held) == ids[:3]
            assert list(held.values()) == items[:3]

            # The lease is live: this consumer gets the 7 others, never the held 3.
            # (Its own deliveries take no lease: they cannot come back meanwhile.)
            got = _get_all_nowait(q, visibility_timeout=None)
            t_drained = time.time()
            assert t_drained < t_claim_before + lease, (
                f"too slow to check the live lease: {t_drained - t_claim_before:.3f} s after the claim"
            )
            assert [g["pqid"] for g in got] == ids[3:]
            assert [g["data"] for g in got] == items[3:]
            q.ack_many(got)
            assert q.unack_count() == 3
            assert q.acked_count() == 7
            statuses = _statuses(q)
            assert [statuses[i] for i in ids[:3]] == [AckStatus.unack] * 3

            # Two consumers (this process and the racer) now wait; the expired
            # leases give each held item to exactly one of them.
            until.value = t_claim_after + lease + 1.5
            go.set()
            mine: list[list[Any]] = []
            while True:
                try:
                    item = q.get(timeout=max(0.0, until.value - time.time()), raw=True)
                except persistq.Empty:
                    break
                mine.append([item["pqid"], item["data"], time.time()])
                q.ack(item)
            _join_all([racer_p])
        finally:
            _reap([racer_p] + ([holder_p] if holder_p is not None else []))
        theirs = _read(race_file)
        redelivered = mine + theirs
        print(f"redelivered: {len(mine)} to the parent, {len(theirs)} to the {racer} process")
        assert Counter(r[0] for r in redelivered) == Counter(ids[:3])  # each exactly once
        assert {r[0]: r[1] for r in redelivered} == held
        # Not before the lease ended (it started after t_claim_before).
        assert min(r[2] for r in redelivered) >= t_claim_before + lease
        assert q.acked_count() == 10
        assert q.active_size() == 0
        assert q.unack_count() == 0
        attempts = {row["id"]: row["attempts"] for row in q.queue()}
        assert [attempts[i] for i in ids] == [2] * 3 + [1] * 7


@pytest.mark.parametrize(("dead", "alive"), [("sync", "trio"), ("trio", "asyncio")])
def test_reopen_resumes_items_of_a_dead_process_but_not_of_a_live_one(
    dead: str, alive: str, qpath: str, tmp_path: Path
) -> None:
    """No lease: a reopen with auto_resume gives back a SIGKILLed consumer's items, not a live consumer's."""
    items = [f"item:{i}" for i in range(10)]
    dead_file, alive_file = tmp_path / "dead.json", tmp_path / "alive.json"
    dead_ready, alive_ready, release = CTX.Event(), CTX.Event(), CTX.Event()
    with _queue(qpath) as q:
        ids = q.put_many(items)
    dead_p = _start(_ack_children.hold, qpath, dead, 3, None, dead_ready, str(dead_file))
    alive_p = _start(_ack_children.hold, qpath, alive, 3, None, alive_ready, str(alive_file), release)
    try:
        assert dead_ready.wait(JOIN_TIMEOUT), "the first holder did not get its items"
        assert alive_ready.wait(JOIN_TIMEOUT), "the second holder did not get its items"
        dead_held = [pqid for pqid, _ in _read(dead_file)["held"]]
        alive_held = [pqid for pqid, _ in _read(alive_file)["held"]]
        assert sorted(dead_held + alive_held) == ids[:6]
        _kill(dead_p)

        with _queue(qpath, auto_resume=False) as q:
            # Without a lease and without a resume, nothing comes back by itself.
            got = _get_all_nowait(q)
            assert [g["pqid"] for g in got] == ids[6:]
            q.ack_many(got)
            assert q.unack_count() == 6

        with _queue(qpath, auto_resume=True) as q:
            # The dead process's items are ready again; the live one's stay in flight
            # (persist-queue's auto_resume made every unack row ready: it stole them).
            statuses = _statuses(q)
            assert [statuses[i] for i in dead_held] == [AckStatus.ready] * 3
            assert [statuses[i] for i in alive_held] == [AckStatus.unack] * 3
            assert q.ready_count() == 3
            assert q.unack_count() == 3
            got = _get_all_nowait(q)
            assert [g["pqid"] for g in got] == dead_held  # in queue order
            assert [g["data"] for g in got] == [items[ids.index(i)] for i in dead_held]
            q.ack_many(got)
            assert q.unack_count() == 3

        # The live consumer still holds its items and can ack them.
        release.set()
        _join_all([alive_p])
        assert sorted(_read(alive_file)["acked"]) == sorted(alive_held)
    finally:
        release.set()
        _reap([dead_p, alive_p])
    with _queue(qpath) as q:
        assert q.acked_count() == 10
        assert q.active_size() == 0


def _wait_zombie(pid: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            if f.read().rpartition(")")[2].split()[0] == "Z":
                return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} did not become a zombie")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the process state in /proc")
def test_reopen_resumes_items_of_a_killed_consumer_not_yet_reaped(qpath: str, tmp_path: Path) -> None:
    """A SIGKILLed consumer not yet reaped by its parent (a zombie) is gone: auto_resume resumes its items."""
    ready = CTX.Event()
    result = tmp_path / "held.json"
    with _queue(qpath) as q:
        ids = q.put_many(["a", "b", "c", "d"])
    p = _start(_ack_children.hold, qpath, "sync", 3, None, ready, str(result))
    try:
        assert ready.wait(JOIN_TIMEOUT), "the holder did not get its items"
        assert [pqid for pqid, _ in _read(result)["held"]] == ids[:3]
        os.kill(p.pid, signal.SIGKILL)
        _wait_zombie(p.pid)  # dead, but its pid stays taken until join() reaps it
        with _queue(qpath, auto_resume=True) as q:
            assert q.unack_count() == 0, "the items of a dead (unreaped) process were not resumed"
            assert [g["pqid"] for g in _get_all_nowait(q)] == ids
    finally:
        _reap([p])


# -------------------------------------------------- 2. four processes drain


def test_four_processes_drain_20000_items_each_acked_exactly_once(qpath: str, tmp_path: Path) -> None:
    """Four consumer processes (sync/asyncio/trio, get/get_many) ack each of 20,000 items exactly once."""
    n = 20_000
    consumers = [("sync", 50), ("asyncio", 1), ("trio", 50), ("sync", 1)]
    results = [tmp_path / f"drain{i}.json" for i in range(len(consumers))]
    barrier = CTX.Barrier(len(consumers))
    with _queue(qpath, max_acked_length=1_000_000) as q:
        ids = q.put_many(range(n))
    assert len(set(ids)) == n
    t0 = time.monotonic()
    procs = [
        _start(_ack_children.drain, qpath, kind, batch, barrier, str(result))
        for (kind, batch), result in zip(consumers, results, strict=True)
    ]
    try:
        _join_all(procs)
    finally:
        _reap(procs)
    elapsed = time.monotonic() - t0
    got = [_read(r) for r in results]
    print(
        f"drained {n} items in {elapsed:.1f} s (incl. start-up): "
        + ", ".join(f"{kind}/{batch}: {len(g)}" for (kind, batch), g in zip(consumers, got, strict=True))
    )
    everything = [row for g in got for row in g]
    by_id = Counter(pqid for pqid, _ in everything)
    assert [pqid for pqid, k in by_id.items() if k > 1] == []  # none delivered twice
    assert sorted(by_id) == sorted(ids)  # none lost
    assert dict(everything) == dict(zip(ids, range(n), strict=True))  # each id with its own item
    assert all(g for g in got), "each consumer should have received items"
    for g in got:  # each consumer's claims go forward in queue order
        assert [pqid for pqid, _ in g] == sorted(pqid for pqid, _ in g)
    with _queue(qpath, max_acked_length=1_000_000) as q:
        assert q.acked_count() == n
        assert q.active_size() == 0
        assert q.qsize() == 0
        counts = q.counts()
        assert counts[AckStatus.acked] == n
        assert sum(counts.values()) == n
        assert {row["attempts"] for row in q.queue()} == {1}  # each delivered once


# ------------------------------------------------ 3. max_attempts, two processes


def test_item_nacked_by_two_processes_ends_in_ack_failed_and_can_be_requeued(
    qpath: str, tmp_path: Path
) -> None:
    """With max_attempts=2, nacks in two processes fail the item; requeue_failed() makes it ready again."""
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    with _queue(qpath, max_attempts=2) as q:
        (pqid,) = q.put_many(["poison"])
        _join_all([_start(_ack_children.get_and_nack, qpath, "sync", 2, False, str(first))])
        assert _read(first) == {"pqid": pqid, "data": "poison", "after_nack": None}
        (row,) = q.queue()
        assert (row["status"], row["attempts"]) == (AckStatus.ready, 1)
        assert q.ack_failed_count() == 0

        _join_all([_start(_ack_children.get_and_nack, qpath, "trio", 2, True, str(second))])
        # The second nack used up the attempts: the item is failed, not delivered again.
        assert _read(second) == {"pqid": pqid, "data": "poison", "after_nack": "empty"}
        assert q.ack_failed_count() == 1
        assert q.active_size() == 0
        (dead,) = q.failed()
        assert (dead["pqid"], dead["data"], dead["attempts"]) == (pqid, "poison", 2)
        with pytest.raises(persistq.Empty):
            q.get_nowait()

        assert q.requeue_failed() == 1
        assert q.ack_failed_count() == 0
        assert q.failed() == []
        assert q.ready_count() == 1
        item = q.get(timeout=5, raw=True)
        assert (item["pqid"], item["data"]) == (pqid, "poison")
        (row,) = q.queue()
        assert (row["status"], row["attempts"]) == (AckStatus.unack, 1)  # fresh attempts
        q.ack(item)
        assert q.acked_count() == 1
        assert q.active_size() == 0


# ---------------------------------------------------- 4. cross-process wake-up


@pytest.mark.parametrize("kind", ["sync", "asyncio", "trio"])
def test_blocked_ack_get_is_woken_by_a_put_from_another_process(
    kind: str, qpath: str, tmp_path: Path
) -> None:
    """An ack-queue get blocked in another process returns well under 1 s after a put."""
    rounds = 3
    ready = CTX.Event()
    result = tmp_path / "wake.json"
    with _queue(qpath) as q:
        p = _start(_ack_children.wait_and_get, qpath, kind, rounds, ready, str(result))
        try:
            assert ready.wait(JOIN_TIMEOUT), "the consumer process did not start"
            put_done: list[float] = []
            for i in range(rounds):
                time.sleep(0.4)  # the consumer is now blocked in get()
                q.put(i)
                put_done.append(time.time())
            _join_all([p])
        finally:
            _reap([p])
        got = _read(result)
        assert [item for item, _ in got] == list(range(rounds))
        latencies = [t_get - t_put for (_, t_get), t_put in zip(got, put_done, strict=True)]
        print(
            f"cross-process ack-queue wake-up latency ({kind}): "
            + ", ".join(f"{lat * 1000:.1f} ms" for lat in latencies)
            + f"; median {statistics.median(latencies) * 1000:.1f} ms"
        )
        assert max(latencies) < 1.0, latencies
        assert q.acked_count() == rounds
        assert q.active_size() == 0
