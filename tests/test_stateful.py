"""Hypothesis stateful tests: each queue kind against a plain model, with reopens."""

from __future__ import annotations

import heapq
import os
import pickle
import shutil
import tempfile
import zlib
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import hypothesis.strategies as st
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import persistq
import persistq.sync
from persistq.engines.file import scan_segments

SETTINGS = settings(max_examples=15, stateful_step_count=25, deadline=None)
values = st.integers(min_value=0, max_value=50)


class _QueueMachine(RuleBasedStateMachine):
    """Shared plumbing: a fresh directory per run, reopened on demand."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="pq-stateful-")
        self.q: Any = self.open()

    def open(self) -> Any:
        raise NotImplementedError

    @rule()
    def reopen(self) -> None:
        """Closing and reopening keeps the queue's contents and order."""
        self.q.close()
        self.q = self.open()

    def teardown(self) -> None:
        self.q.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class FifoMachine(_QueueMachine):
    """SQLiteQueue (auto_commit=True) behaves like collections.deque."""

    filo = False

    def __init__(self) -> None:
        super().__init__()
        self.model: deque[int] = deque()

    def open(self) -> Any:
        cls = persistq.sync.FILOSQLiteQueue if self.filo else persistq.sync.SQLiteQueue
        return cls(self.dir)

    @rule(v=values)
    def put(self, v: int) -> None:
        self.q.put(v)
        self.model.append(v)

    @rule(vs=st.lists(values, max_size=5))
    def put_many(self, vs: list[int]) -> None:
        self.q.put_many(vs)
        self.model.extend(vs)

    def _take(self) -> int:
        return self.model.pop() if self.filo else self.model.popleft()

    @rule()
    def get(self) -> None:
        if not self.model:
            try:
                self.q.get_nowait()
            except persistq.Empty:
                return
            raise AssertionError("get_nowait returned an item from an empty queue")
        assert self.q.get_nowait() == self._take()

    @precondition(lambda self: bool(self.model))
    @rule(n=st.integers(min_value=1, max_value=4))
    def get_many(self, n: int) -> None:
        expected = [self._take() for _ in range(min(n, len(self.model)))]
        assert self.q.get_many(n) == expected

    @invariant()
    def sizes_agree(self) -> None:
        assert self.q.qsize() == len(self.model)


class FiloMachine(FifoMachine):
    """FILOSQLiteQueue behaves like a stack."""

    filo = True


class PriorityMachine(_QueueMachine):
    """PriorityQueue behaves like a heap of (priority, insertion order)."""

    def __init__(self) -> None:
        super().__init__()
        self.heap: list[tuple[int, int, int]] = []
        self.counter = 0

    def open(self) -> Any:
        return persistq.sync.PriorityQueue(self.dir)

    @rule(v=values, p=st.integers(min_value=-3, max_value=3))
    def put(self, v: int, p: int) -> None:
        self.q.put(v, priority=p)
        heapq.heappush(self.heap, (p, self.counter, v))
        self.counter += 1

    @precondition(lambda self: bool(self.heap))
    @rule()
    def get(self) -> None:
        assert self.q.get_nowait() == heapq.heappop(self.heap)[2]

    @invariant()
    def sizes_agree(self) -> None:
        assert self.q.qsize() == len(self.heap)


class UniqueMachine(FifoMachine):
    """UniqueQ behaves like a deque that skips values already waiting."""

    def open(self) -> Any:
        return persistq.sync.UniqueQ(self.dir)

    @rule(v=values)
    def put(self, v: int) -> None:
        result = self.q.put({"v": v, "nested": {"b": v, "a": 1}})
        if {"v": v, "nested": {"a": 1, "b": v}} in self.model:  # type: ignore[comparison-overlap]
            assert result is None
        else:
            assert result is not None
            self.model.append({"v": v, "nested": {"a": 1, "b": v}})  # type: ignore[arg-type]

    @rule(vs=st.lists(values, max_size=5))
    def put_many(self, vs: list[int]) -> None:
        for v in vs:
            self.put(v)


class AckMachine(_QueueMachine):
    """SQLiteAckQueue: ready items in id order, in-flight items settled by ack/nack."""

    def __init__(self) -> None:
        super().__init__()
        self.ready: dict[int, int] = {}  # pqid -> value
        self.inflight: dict[int, int] = {}
        self.acked = 0

    def open(self) -> Any:
        return persistq.sync.SQLiteAckQueue(self.dir, max_acked_length=10**6)

    @rule()
    def reopen(self) -> None:
        """Reopening gives the items in flight back to ready, in their places."""
        self.q.close()
        self.ready.update(self.inflight)
        self.inflight.clear()
        self.q = self.open()

    @rule(v=values)
    def put(self, v: int) -> None:
        self.ready[self.q.put(v)] = v

    @precondition(lambda self: bool(self.ready))
    @rule()
    def get(self) -> None:
        raw = self.q.get_nowait(raw=True)
        first = min(self.ready)
        assert (raw["pqid"], raw["data"]) == (first, self.ready[first])
        self.inflight[first] = self.ready.pop(first)

    @precondition(lambda self: bool(self.inflight))
    @rule(data=st.data())
    def ack(self, data: st.DataObject) -> None:
        pqid = data.draw(st.sampled_from(sorted(self.inflight)))
        self.q.ack(id=pqid)
        del self.inflight[pqid]
        self.acked += 1

    @precondition(lambda self: bool(self.inflight))
    @rule(data=st.data())
    def nack(self, data: st.DataObject) -> None:
        pqid = data.draw(st.sampled_from(sorted(self.inflight)))
        self.q.nack(id=pqid)
        self.ready[pqid] = self.inflight.pop(pqid)

    @invariant()
    def counts_agree(self) -> None:
        assert self.q.qsize() == len(self.ready)
        assert self.q.unack_count() == len(self.inflight)
        assert self.q.acked_count() == self.acked


def _slot_seq(slot: bytes) -> int | None:
    """A position slot's sequence number, or None if its CRC fails (torn)."""
    length = int.from_bytes(slot[8:12], "little")
    body = slot[16 : 16 + length]
    if len(body) < 28 or zlib.crc32(body, zlib.crc32(slot[:12])) != int.from_bytes(slot[12:16], "little"):
        return None
    return int.from_bytes(body[:8], "little")


def _spare_slot(*slots: bytes) -> int:
    """The slot the next position write goes into: not the newest valid one."""
    seqs = [_slot_seq(s) for s in slots]
    newest = max(range(2), key=lambda i: seqs[i] if seqs[i] is not None else -1)
    return 1 - newest


class FileQueueMachine(_QueueMachine):
    """The file Queue: FIFO; consumer threads finish items out of order; exactly the items not done come back.

    Each consumer is a thread of its own (task_done finishes that thread's oldest
    item); the test's thread holds none, so its task_done finishes the oldest
    item handed out.
    """

    consumers = 3

    def __init__(self) -> None:
        self.pools = [ThreadPoolExecutor(max_workers=1) for _ in range(self.consumers)]
        super().__init__()
        self.count = 0
        self.ready: deque[tuple[int, int]] = deque()  # (put order, value)
        self.held: list[deque[tuple[int, int]]] = [deque() for _ in range(self.consumers)]

    def open(self) -> Any:
        return persistq.sync.Queue(self.dir + "/fq", chunksize=3)

    def _back(self) -> None:
        self.ready = deque(sorted(item for held in self.held for item in held)) + self.ready
        for held in self.held:
            held.clear()

    @rule(how=st.sampled_from(["close", "crash", "crash-torn"]))
    def reopen(self, how: str) -> None:
        """Reopening gives back the items got and not done, first, in order; no item done comes back.

        ``crash``: the queue is reopened from a copy of its files taken while it
        was open (what a SIGKILL leaves); ``crash-torn``: also with the spare
        position slot torn, as by a kill in the middle of the next position write.
        """
        path = self.dir + "/fq"
        if how != "close":
            shutil.copytree(path, self.dir + "/crashed")
        self.q.close()
        if how != "close":
            shutil.rmtree(path)
            os.rename(self.dir + "/crashed", path)
        if how == "crash-torn":
            with open(path + "/persistq.pos", "r+b") as f:
                data = f.read()
                size = len(data) // 2
                f.seek(_spare_slot(data[:size], data[size:]) * size)
                f.write(os.urandom(40))
        self._back()
        self.q = self.open()

    @rule(v=values)
    def put(self, v: int) -> None:
        self.q.put(v)
        self.ready.append((self.count, v))
        self.count += 1

    @precondition(lambda self: bool(self.ready))
    @rule(c=st.integers(min_value=0, max_value=consumers - 1))
    def get(self, c: int) -> None:
        item = self.pools[c].submit(self.q.get_nowait).result()
        expected = self.ready.popleft()
        assert item == expected[1]
        self.held[c].append(expected)

    @precondition(lambda self: any(self.held))
    @rule(data=st.data())
    def task_done(self, data: st.DataObject) -> None:
        """A consumer finishes its own oldest item, even while older ones of others are held."""
        c = data.draw(st.sampled_from([i for i, held in enumerate(self.held) if held]))
        self.pools[c].submit(self.q.task_done).result()
        self.held[c].popleft()

    @precondition(lambda self: any(self.held))
    @rule()
    def task_done_elsewhere(self) -> None:
        """A thread holding nothing finishes the oldest item handed out."""
        self.q.task_done()
        oldest = min((held for held in self.held if held), key=lambda held: held[0])
        oldest.popleft()

    @invariant()
    def sizes_agree(self) -> None:
        assert self.q.qsize() == len(self.ready)

    @invariant()
    def a_crash_now_brings_back_exactly_the_items_not_done(self) -> None:
        """The files on disk (read without the lock) hold every item not done, in order, and no other."""
        segments, problems = scan_segments(self.dir + "/fq")
        assert problems == []
        on_disk = [pickle.loads(data) for s in segments for _, data in s.records]
        assert on_disk == [v for _, v in sorted([*(i for held in self.held for i in held), *self.ready])]

    def teardown(self) -> None:
        super().teardown()
        for pool in self.pools:
            pool.shutdown()


TestFifo = FifoMachine.TestCase
TestFifo.settings = SETTINGS
TestFilo = FiloMachine.TestCase
TestFilo.settings = SETTINGS
TestPriority = PriorityMachine.TestCase
TestPriority.settings = SETTINGS
TestUnique = UniqueMachine.TestCase
TestUnique.settings = SETTINGS
TestAck = AckMachine.TestCase
TestAck.settings = SETTINGS
TestFileQueue = FileQueueMachine.TestCase
TestFileQueue.settings = settings(max_examples=40, stateful_step_count=50, deadline=None)
