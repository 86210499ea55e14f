"""Hypothesis stateful tests: each queue kind against a plain model, with reopens."""

from __future__ import annotations

import heapq
import shutil
import tempfile
from collections import deque
from typing import Any

import hypothesis.strategies as st
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import persistq
import persistq.sync

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


class FileQueueMachine(_QueueMachine):
    """The file Queue: FIFO, and items got but not task_done come back on reopen."""

    def __init__(self) -> None:
        super().__init__()
        self.ready: deque[int] = deque()
        self.got: deque[int] = deque()

    def open(self) -> Any:
        return persistq.sync.Queue(self.dir + "/fq", chunksize=3)

    @rule()
    def reopen(self) -> None:
        """Reopening gives back the items got but not marked done, first, in order."""
        self.q.close()
        self.ready = self.got + self.ready
        self.got = deque()
        self.q = self.open()

    @rule(v=values)
    def put(self, v: int) -> None:
        self.q.put(v)
        self.ready.append(v)

    @precondition(lambda self: bool(self.ready))
    @rule()
    def get(self) -> None:
        item = self.q.get_nowait()
        assert item == self.ready.popleft()
        self.got.append(item)

    @precondition(lambda self: bool(self.got))
    @rule()
    def task_done(self) -> None:
        self.q.task_done()
        self.got.popleft()

    @invariant()
    def sizes_agree(self) -> None:
        assert self.q.qsize() == len(self.ready)


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
TestFileQueue.settings = SETTINGS
