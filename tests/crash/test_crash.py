"""Crash harness: SIGKILL a process mid-operation, reopen, check nothing was lost.

A child process (``child.py``) runs puts, gets and acks in a tight loop and
reports each call that *returned*. The parent kills it with SIGKILL at a random
moment, reopens the queue and checks, for every queue kind:

* every item whose ``put`` returned is still stored or was consumed — exactly
  once (at most one item may be unaccounted for: the one taken by the call
  that was in flight when the kill came, whose return was never reported;
  with ``file_threads``, one per consumer thread, each of which may have had
  its ``task_done`` in flight — and only such an item);
* a consumed item (``task_done`` or ack returned) never comes back, also when
  it was done behind an older item another thread still held;
* order is kept where the kind promises it;
* the queue opens and works after every kill.

``make test`` runs ``PERSISTQ_CRASH_ROUNDS`` (default 24) kills per
configuration; ``make stress`` runs many more.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import persistq
import persistq.sync

CHILD = Path(__file__).with_name("child.py")
ROUNDS = int(os.environ.get("PERSISTQ_CRASH_ROUNDS", "24"))

CONFIGS = [
    ("fifo", "full", "sync"),
    ("fifo", "normal", "sync"),
    ("fifo", "full", "asyncio"),
    ("fifo", "normal", "trio"),
    ("fifo_nocommit", "full", "sync"),
    ("fifo_nocommit", "normal", "sync"),
    ("filo", "full", "sync"),
    ("unique", "normal", "sync"),
    ("priority", "full", "sync"),
    ("ack", "full", "sync"),
    ("ack", "normal", "trio"),
    ("file", "full", "sync"),
    ("file", "normal", "sync"),
    ("file_threads", "full", "sync"),
    ("file_threads", "normal", "sync"),
]
if os.environ.get("PERSISTQ_MYSQL_HOST"):
    # The MySQL kinds run against the throwaway MariaDB that `make test` starts.
    # asyncio runs aiomysql; sync and trio run PyMySQL threads.
    CONFIGS += [
        ("mysql", "full", "sync"),
        ("mysql", "full", "asyncio"),
        ("mysql_ack", "full", "sync"),
        ("mysql_ack", "full", "asyncio"),
    ]
elif os.environ.get("CI"):
    raise RuntimeError("CI must run the MySQL crash cases: run the tests through `make test`")


def _run_and_kill(kind: str, path: str, durability: str, api: str, seed: int) -> list[tuple[str, int]]:
    rng = random.Random(seed)
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), kind, path, durability, str(seed), api],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        # Unbuffered: readline() must not swallow the lines after READY, which
        # communicate() would then never see.
        bufsize=0,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    if first != b"READY\n":
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"child did not start: {first!r} {err.decode()[-2000:]}")
    time.sleep(rng.uniform(0.01, 0.25))
    proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, err.decode()[-2000:]
    events = []
    for line in out.decode().splitlines():
        op, _, n = line.partition(" ")
        events.append((op, int(n)))
    return events


def _open(kind: str, path: str, durability: str) -> Any:
    d: Any = durability
    if kind in ("fifo", "filo", "unique", "priority"):
        cls = {
            "fifo": persistq.sync.SQLiteQueue,
            "filo": persistq.sync.FILOSQLiteQueue,
            "unique": persistq.sync.UniqueQ,
            "priority": persistq.sync.PriorityQueue,
        }[kind]
        return cls(path, durability=d)
    if kind == "fifo_nocommit":
        return persistq.sync.SQLiteQueue(path, auto_commit=False, durability=d)
    if kind == "ack":
        return persistq.sync.SQLiteAckQueue(path, durability=d, max_acked_length=10**9)
    if kind in ("mysql", "mysql_ack"):
        sys.path.insert(0, str(CHILD.parent))
        from child import open_mysql

        return open_mysql(kind, path)
    return persistq.sync.Queue(path, durability="off" if d == "normal" else d)  # file, file_threads


def _order_ok(kind: str, items: list[int]) -> bool:
    if kind == "filo":
        return items == sorted(items, reverse=True)
    if kind == "priority":
        return items == sorted(items, key=lambda n: (n % 3, n))
    return items == sorted(items)


def _check(kind: str, path: str, durability: str, events: list[tuple[str, int]]) -> None:
    puts = [n for op, n in events if op == "P"]
    gets = [n for op, n in events if op == "G"]
    done = {n for op, n in events if op in ("D", "A")}
    maybe_put = len(puts)  # the put in flight at the kill may or may not have landed
    assert puts == list(range(len(puts))), "puts are reported in order"
    assert len(gets) == len(set(gets)), f"an item was delivered twice: {gets}"
    q = _open(kind, path, durability)
    try:
        if kind in ("ack", "mysql_ack"):
            rows = q.queue()
            stored = [r["data"] for r in rows]
            status = {r["data"]: r["status"] for r in rows}
            assert len(stored) == len(set(stored)), "a row was duplicated"
            assert set(puts) <= set(stored), f"lost: {sorted(set(puts) - set(stored))}"
            assert set(stored) <= set(puts) | {maybe_put}
            acked = {n for n, s in status.items() if s == persistq.AckStatus.acked}
            assert done <= acked, "an ack that returned was lost"
            assert len(acked - done) <= 1, "acked without a returned ack (beyond the one in flight)"
            # The child reports a get before it acks, so an acked item was reported got.
            assert acked <= set(gets), "acked but never delivered"
            in_flight = persistq.AckStatus.unack
            assert in_flight not in status.values(), "the dead consumer's items were not resumed"
            waiting = [n for n in stored if status[n] in (0, 1)]
            assert _order_ok(kind, waiting)
        else:
            if kind in ("file", "file_threads"):
                waiting = []
                while True:
                    try:
                        waiting.append(q.get_nowait())
                    except persistq.Empty:
                        break
                    q.task_done()
            else:
                waiting = [r["data"] for r in q.queue()]
            consumed = done if kind in ("fifo_nocommit", "file", "file_threads") else set(gets)
            assert len(waiting) == len(set(waiting)), "an item is stored twice"
            assert not set(waiting) & consumed, "a consumed item came back"
            assert set(waiting) <= set(puts) | {maybe_put}, "an item that was never put"
            missing = set(puts) - set(waiting) - consumed
            if kind == "file_threads":
                sys.path.insert(0, str(CHILD.parent))
                from child import FILE_CONSUMERS

                # Only items whose task_done was running at the kill may be gone.
                assert missing <= set(gets) - done, f"lost items: {sorted(missing - set(gets))}"
                assert len(missing) <= FILE_CONSUMERS, f"lost items: {sorted(missing)}"
            else:
                assert len(missing) <= 1, f"lost items: {sorted(missing)}"
            assert _order_ok(kind, waiting), f"order broken: {waiting[:20]}"
            if kind in ("fifo", "mysql"):
                assert gets == sorted(gets), "FIFO gets came out of order"
        # The queue still works after the kill.
        if kind == "priority":
            q.put(-1, priority=-1)
        else:
            q.put(-1)
        if kind in ("ack", "mysql_ack"):
            got = q.get(timeout=5)
            while got != -1:
                got = q.get(timeout=5)
        elif kind not in ("file", "file_threads"):
            assert -1 in [r["data"] for r in q.queue()]
    finally:
        q.close()


@pytest.mark.parametrize(("kind", "durability", "api"), CONFIGS, ids=["-".join(c) for c in CONFIGS])
def test_sigkill_loses_nothing(kind: str, durability: str, api: str, tmp_path: Path) -> None:
    """After SIGKILL at random moments, every returned put is stored or consumed exactly once."""
    for r in range(ROUNDS):
        path = str(tmp_path / f"round{r}")
        events = _run_and_kill(kind, path, durability, api, seed=hash((kind, durability, api, r)) & 0xFFFF)
        _check(kind, path, durability, events)
