"""Child processes of ``test_green.py``: persistq.sync under gevent or eventlet.

Run as ``python _green_children.py LIBRARY SCENARIO KIND DIRECTORY``. The first
thing the child does is monkey-patch the whole process with LIBRARY
(``gevent`` or ``eventlet``); only then does it import persistq. KIND picks the
queue: ``sqlite`` (``persistq.sync.SQLiteQueue``), ``file``
(``persistq.sync.Queue``) or ``ack`` (``persistq.sync.SQLiteAckQueue``). The
child prints ``OK <scenario>`` and exits 0 when every check passed; a failed
check raises (exit code 1, traceback on stderr).
"""

from __future__ import annotations

import sys

LIBRARY, SCENARIO, KIND, DIRECTORY = sys.argv[1:5]

if LIBRARY == "gevent":
    from gevent import monkey

    monkey.patch_all()
elif LIBRARY == "eventlet":
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # eventlet announces its own deprecation
        import eventlet

    eventlet.monkey_patch()
else:
    raise SystemExit(f"unknown library {LIBRARY!r}")

import contextlib  # noqa: E402
import os  # noqa: E402
import threading  # noqa: E402  (patched: its threads are greenlets here)
import time  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from typing import Any  # noqa: E402

import persistq.sync  # noqa: E402
from persistq import _runtime as _threads  # noqa: E402
from persistq.sync import _portal  # noqa: E402

WAIT = 30.0
"""Seconds any single wait may take before the child fails."""


class Green:
    """The few green-thread operations the scenarios need, for either library."""

    def __init__(self, library: str) -> None:
        if library == "gevent":
            import gevent
            import gevent.event

            self.spawn: Callable[..., Any] = gevent.spawn
            self.sleep: Callable[[float], None] = gevent.sleep
            self._join = lambda g: g.get(timeout=WAIT)
            self.Event: Callable[[], Any] = gevent.event.Event
        else:
            import eventlet
            import eventlet.event

            self.spawn = eventlet.spawn
            self.sleep = eventlet.sleep
            self._join = lambda g: eventlet.with_timeout(WAIT, g.wait)
            self.Event = eventlet.event.Event

    def join(self, greenlet: Any) -> Any:
        """The greenlet's result (its error re-raised), within WAIT seconds."""
        return self._join(greenlet)

    def ticker(self) -> tuple[list[int], Any]:
        """A greenlet that counts every 10 ms: proof that the hub keeps running."""
        ticks = [0]

        def tick() -> None:
            while True:
                ticks[0] += 1
                self.sleep(0.01)

        return ticks, self.spawn(tick)


G = Green(LIBRARY)


def open_queue(name: str = "q", **kwargs: Any) -> Any:
    path = os.path.join(DIRECTORY, f"{KIND}-{name}")
    if KIND == "sqlite":
        return persistq.sync.SQLiteQueue(path, **kwargs)
    if KIND == "file":
        return persistq.sync.Queue(path, **kwargs)
    if KIND == "ack":
        return persistq.sync.SQLiteAckQueue(path, **kwargs)
    raise SystemExit(f"unknown kind {KIND!r}")


def check_real_threads() -> None:
    """The portal and the storage threads are real OS threads."""
    assert _threads.GREEN == LIBRARY, _threads.GREEN
    portal = _portal._portal
    assert portal is not None
    assert isinstance(portal, _portal._GreenPortal)
    frames = sys._current_frames()  # real OS threads only, never greenlets
    assert portal._thread.ident in frames, "the portal is not a real OS thread"
    stacks = []
    for frame in frames.values():
        stack: list[str] = []
        f: Any = frame
        while f is not None:
            stack.append(f"{os.path.basename(f.f_code.co_filename)}:{f.f_code.co_name}")
            f = f.f_back
        stacks.append(stack)
    assert any("_worker.py:_run" in stack for stack in stacks), f"no storage OS thread: {stacks}"
    assert type(portal.loop._ssock).__module__ == "_socket", type(portal.loop._ssock)


@contextlib.contextmanager
def pytest_raises_empty() -> Iterator[None]:
    """Like ``pytest.raises(persistq.sync.Empty)`` (the child does not import pytest)."""
    try:
        yield
    except persistq.sync.Empty:
        return
    raise AssertionError("Empty was not raised")


def scenario_basic() -> None:
    """put / get / task_done / join round trip; real threads underneath."""
    q = open_queue()
    try:
        check_real_threads()
        for i in range(20):
            q.put({"n": i})
        assert q.qsize() == 20
        got = []
        for _ in range(20):
            got.append(q.get()["n"])
            q.task_done()
        assert got == list(range(20)), got
        q.join()
        assert q.empty()
    finally:
        q.close()
    # Re-opened: nothing left, the storage survived a close.
    q = open_queue()
    try:
        assert q.qsize() == 0
        q.put("again")
        assert q.get() == "again"
        q.task_done()
    finally:
        q.close()


def scenario_blocked() -> None:
    """get on empty, put on full and join wait cooperatively and are woken."""
    q = open_queue(maxsize=1)
    try:
        ticks, ticker = G.ticker()
        # 1. get() on an empty queue.
        getter = G.spawn(q.get)
        G.sleep(0.3)
        assert not getter.dead, "get() returned from an empty queue"
        assert ticks[0] >= 10, f"the hub was blocked while get() waited ({ticks[0]} ticks)"
        producer = G.spawn(q.put, "wake up")
        G.join(producer)
        assert G.join(getter) == "wake up"
        # 2. join() while a task is not done.
        q.task_done()
        q.put("task")
        assert q.get() == "task"
        joiner = G.spawn(q.join)
        before = ticks[0]
        G.sleep(0.3)
        assert not joiner.dead, "join() returned with a task not done"
        assert ticks[0] - before >= 10, "the hub was blocked while join() waited"
        q.task_done()
        G.join(joiner)
        # 3. put() on a full queue (maxsize=1).
        q.put("first")
        putter = G.spawn(q.put, "second")
        before = ticks[0]
        G.sleep(0.3)
        assert not putter.dead, "put() returned on a full queue"
        assert ticks[0] - before >= 10, "the hub was blocked while put() waited"
        assert q.get() == "first"
        G.join(putter)
        assert q.get() == "second"
        q.task_done()
        q.task_done()
        ticker.kill()
    finally:
        q.close()


def scenario_many() -> None:
    """50 producer and 50 consumer greenlets move 5,000 items, each exactly once."""
    producers, consumers, per_producer = 50, 50, 100
    q = open_queue(durability="normal")
    received: list[int] = []
    try:

        def produce(p: int) -> None:
            for i in range(per_producer):
                q.put(p * per_producer + i)

        def consume() -> None:
            while True:
                item = q.get(timeout=WAIT)
                q.task_done()
                if item is None:
                    return
                received.append(item)

        workers = [G.spawn(consume) for _ in range(consumers)]
        feeders = [G.spawn(produce, p) for p in range(producers)]
        for g in feeders:
            G.join(g)
        for _ in range(consumers):
            q.put(None)
        for g in workers:
            G.join(g)
        q.join()
        total = producers * per_producer
        assert len(received) == total, len(received)
        assert sorted(received) == list(range(total)), "an item was lost or delivered twice"
        assert q.qsize() == 0
    finally:
        q.close()


def scenario_timeout() -> None:
    """get(timeout=1) on an empty queue raises Empty after ~1 s, hub running."""
    q = open_queue()
    try:
        ticks, ticker = G.ticker()
        start = time.monotonic()
        try:
            q.get(timeout=1.0)
        except persistq.sync.Empty:
            elapsed = time.monotonic() - start
        else:
            raise AssertionError("get(timeout=1.0) returned an item from an empty queue")
        assert 0.5 <= elapsed <= 1.5, f"timed out after {elapsed:.2f} s"
        assert ticks[0] >= 30, f"the hub was blocked while get(timeout) waited ({ticks[0]} ticks)"
        # Non-blocking forms stay immediate.
        start = time.monotonic()
        with pytest_raises_empty():
            q.get(block=False)
        assert time.monotonic() - start < 0.5
        ticker.kill()
    finally:
        q.close()


def scenario_ack() -> None:
    """SQLiteAckQueue: put, get (cooperative while waiting), ack and nack."""
    q = open_queue()
    try:
        check_real_threads()
        ticks, ticker = G.ticker()
        getter = G.spawn(q.get)
        G.sleep(0.3)
        assert not getter.dead
        assert ticks[0] >= 10, "the hub was blocked while the ack queue's get() waited"
        q.put("a")
        q.put("b")
        first = G.join(getter)
        assert first == "a"
        q.ack(first)
        second = q.get()
        assert second == "b"
        q.nack(second)
        assert q.get() == "b"
        q.ack("b")
        assert q.acked_count() == 2, q.acked_count()
        assert q.unack_count() == 0
        assert q.ready_count() == 0
        ticker.kill()
    finally:
        q.close()


def scenario_unclosed() -> None:
    """A script that never closes its queue: greenlets blocked in get() when it ends."""
    q = open_queue()
    q.put("kept")
    q.put("taken")
    assert q.get() == "kept"
    idle = open_queue("idle")
    for _ in range(2):
        G.spawn(idle.get)
    thread = threading.Thread(target=idle.get, daemon=True)
    thread.start()
    G.sleep(0.2)
    # No close(): the exit hook closes both queues; the blocked getters stay quiet.


SCENARIOS: dict[str, Callable[[], None]] = {
    "basic": scenario_basic,
    "blocked": scenario_blocked,
    "many": scenario_many,
    "timeout": scenario_timeout,
    "ack": scenario_ack,
    "unclosed": scenario_unclosed,
}

if __name__ == "__main__":
    SCENARIOS[SCENARIO]()
    assert SCENARIO == "unclosed" or _portal._leases == 0, "a queue was left open"
    print(f"OK {SCENARIO}", flush=True)
