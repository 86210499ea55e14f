"""The file queue: API, persistence across reopen, recovery, locking, task_done per item."""

from __future__ import annotations

import gc
import inspect
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import anyio
import pytest
from conftest import drain, take_in_own_tasks

from persistq import serializers
from persistq.engines.file import HEADER_SIZE
from persistq.errors import (
    CorruptionError,
    Empty,
    Full,
    QueueClosed,
    QueueLocked,
    SerializationError,
    SerializerMismatch,
)
from persistq.queues._base import QueueStatistics
from persistq.queues.file import AsyncQueue, Queue
from persistq.sync.file import Queue as SyncQueue

pytestmark = pytest.mark.anyio

SERIALIZERS = [
    pytest.param(serializers.pickle, id="pickle"),
    pytest.param(serializers.json, id="json"),
    pytest.param(serializers.msgpack, id="msgpack"),
    pytest.param(serializers.cbor2, id="cbor2"),
]


def segments(path: str) -> list[str]:
    return sorted(n for n in os.listdir(path) if n.endswith(".seg"))


# ------------------------------------------------------------------- basic API


async def test_put_get_fifo(qpath: str) -> None:
    """Items come out in the order they were put; qsize/empty/full follow."""
    async with Queue(qpath) as q:
        assert await q.empty()
        assert not await q.full()
        for i in range(5):
            await q.put(i)
        assert await q.qsize() == 5
        assert [await q.get() for _ in range(5)] == list(range(5))
        assert await q.empty()
        assert isinstance(q.statistics(), QueueStatistics)
    assert AsyncQueue is Queue


async def test_nonblocking_and_timeouts(qpath: str) -> None:
    """block=False raises Empty/Full at once; a negative timeout is a ValueError; timeouts expire."""
    async with Queue(qpath, maxsize=1) as q:
        with pytest.raises(Empty):
            await q.get(block=False)
        with pytest.raises(Empty):
            await q.get_nowait()
        with pytest.raises(ValueError):
            await q.get(timeout=-1)
        with pytest.raises(Empty):
            await q.get(timeout=0.05)
        await q.put_nowait("a")
        assert await q.full()
        with pytest.raises(Full):
            await q.put("b", block=False)
        with pytest.raises(Full):
            await q.put_nowait("b")
        with pytest.raises(Full):
            await q.put("b", timeout=0.05)
        with pytest.raises(ValueError):
            await q.put("b", timeout=-1)
        assert await q.get() == "a"


async def test_blocking_get_is_woken_by_put(qpath: str) -> None:
    """A waiting get returns as soon as another task puts an item."""
    async with Queue(qpath) as q:
        got: list[Any] = []

        async def getter() -> None:
            got.append(await q.get(timeout=5))

        async with anyio.create_task_group() as tg:
            tg.start_soon(getter)
            await anyio.sleep(0.05)
            assert q.statistics().tasks_waiting_get == 1
            await q.put("x")
        assert got == ["x"]


async def test_blocking_put_waits_for_room(qpath: str) -> None:
    """With maxsize, a put waits until a get makes room."""
    async with Queue(qpath, maxsize=2) as q:
        await q.put_many([1, 2])
        async with anyio.create_task_group() as tg:
            tg.start_soon(q.put, 3)
            await anyio.sleep(0.05)
            assert q.statistics().tasks_waiting_put == 1
            assert await q.get() == 1
        assert await drain(q) == [2, 3]


async def test_put_many_get_many(qpath: str) -> None:
    """put_many stores all items in order; get_many returns up to max_items."""
    async with Queue(qpath, chunksize=3) as q:
        await q.put_many(range(10))
        await q.put_many([])
        assert await q.get_many(4) == [0, 1, 2, 3]
        assert await q.get_many(100) == [4, 5, 6, 7, 8, 9]
        with pytest.raises(Empty):
            await q.get_many(3, block=False)
        with pytest.raises(ValueError):
            await q.get_many(0)
    async with Queue(qpath, maxsize=2) as q:
        with pytest.raises(ValueError):
            await q.put_many([1, 2, 3])


async def test_concurrent_puts_group_commit(qpath: str) -> None:
    """Many tasks putting at once all succeed and every item is stored once."""
    async with Queue(qpath, chunksize=7) as q:
        async with anyio.create_task_group() as tg:
            for i in range(60):
                tg.start_soon(q.put, i)
        assert sorted(await drain(q)) == list(range(60))


async def test_task_done_and_join(qpath: str) -> None:
    """join waits for task_done of every item; one task_done too many is a ValueError."""
    async with Queue(qpath) as q:
        await q.put_many(["a", "b"])
        assert q.unfinished_tasks == 2
        done = anyio.Event()

        async def joiner() -> None:
            await q.join()
            done.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(joiner)
            for _ in range(2):
                await q.get()
                await anyio.sleep(0.01)
                assert not done.is_set()
                await q.task_done()
        assert done.is_set()
        with pytest.raises(ValueError):
            await q.task_done()


async def test_unfinished_starts_at_size_on_reopen(qpath: str) -> None:
    """After a reopen, unfinished_tasks is the number of items in the queue."""
    async with Queue(qpath) as q:
        await q.put_many([1, 2, 3])
    async with Queue(qpath) as q:
        assert q.unfinished_tasks == 3
        for _ in range(3):
            await q.task_done()
        await q.join()


async def test_closed_queue_raises(qpath: str) -> None:
    """Operations on a closed queue raise QueueClosed; close is idempotent."""
    q = Queue(qpath)
    await q.put(1)
    await q.close()
    await q.aclose()
    assert q.closed
    with pytest.raises(QueueClosed):
        await q.put(2)
    with pytest.raises(QueueClosed):
        await q.get()


async def test_serialization_error_writes_nothing(qpath: str) -> None:
    """An item the serializer cannot encode raises SerializationError and is not stored."""
    async with Queue(qpath, serializer=serializers.json) as q:
        with pytest.raises(SerializationError):
            await q.put(object())
        assert await q.qsize() == 0


async def test_resource_warning_when_not_closed(qpath: str) -> None:
    """A queue collected while open warns with ResourceWarning (and releases the lock)."""
    q = Queue(qpath)
    await q.open()
    with pytest.warns(ResourceWarning):  # noqa: PT031 - del and collect together
        del q
        gc.collect()
    await anyio.sleep(0.1)
    async with Queue(qpath, lock_timeout=5) as q2:
        assert await q2.qsize() == 0


# ----------------------------------------------------------------- persistence


@pytest.mark.parametrize("chunksize", [1, 2, 3, 4])
async def test_reopen_keeps_order_across_rollovers(qpath: str, chunksize: int) -> None:
    """Close and reopen keeps order at every chunk size; consumed segments are deleted."""
    async with Queue(qpath, chunksize=chunksize) as q:
        for i in range(11):
            await q.put(i)
        for expected in range(5):
            assert await q.get() == expected
            await q.task_done()
    assert len(segments(qpath)) == -(-11 // chunksize) - 5 // chunksize
    async with Queue(qpath, chunksize=99) as q:
        assert q.chunksize == chunksize
        assert await q.qsize() == 6
        await q.put(11)
        assert await q.get() == 5
        await q.task_done()
    async with Queue(qpath, chunksize=chunksize) as q:
        assert await drain(q) == list(range(6, 12))
        for _ in range(6):
            await q.task_done()
    async with Queue(qpath) as q:
        assert await q.empty()
    assert len(segments(qpath)) <= 1


@pytest.mark.parametrize("serializer", SERIALIZERS)
async def test_every_serializer_round_trips(qpath: str, serializer: Any) -> None:
    """Every serializer stores and returns items, also after a reopen."""
    items: list[Any] = ["line\r\nbreak", "\r\n", "", 0, -1.5, {"k": [1, 2]}, None, "é\x00"]
    if serializer is not serializers.json:
        items += [b"\r\n\x00\xff binary", bytes(range(256))]
    async with Queue(qpath, serializer=serializer, chunksize=3) as q:
        await q.put_many(items[:4])
        for item in items[4:]:
            await q.put(item)
        assert await q.get() == items[0]
        await q.task_done()
    async with Queue(qpath, serializer=serializer) as q:
        assert await drain(q) == items[1:]


async def test_serializer_mismatch(qpath: str) -> None:
    """Reopening with another serializer raises SerializerMismatch."""
    async with Queue(qpath) as q:
        await q.put(1)
    with pytest.raises(SerializerMismatch):
        async with Queue(qpath, serializer=serializers.json):
            pass


async def test_put_never_acknowledges_pending_get(qpath: str) -> None:
    """A put after a get does not make that get permanent: without task_done it comes back."""
    async with Queue(qpath) as q:
        await q.put_many(["a", "b"])
        assert await q.get() == "a"
        await q.put("c")
    async with Queue(qpath) as q:
        assert await drain(q) == ["a", "b", "c"]


async def test_autosave_get_is_final(qpath: str) -> None:
    """With autosave=True a get is acknowledged at once and does not come back."""
    async with Queue(qpath, autosave=True) as q:
        await q.put_many(["a", "b"])
        assert await q.get() == "a"
    async with Queue(qpath, autosave=True) as q:
        assert await drain(q) == ["b"]


@pytest.mark.parametrize(("chunksize", "segments_left"), [(1, 4), (2, 4), (100, 1)])
async def test_items_done_out_of_order_never_come_back(
    qpath: str, chunksize: int, segments_left: int
) -> None:
    """Items done behind older items still held stay done after reopen; exactly the others come back."""
    done = {1, 3, 4, 6, 7, 8}
    async with Queue(qpath, chunksize=chunksize) as q:
        await q.put_many(range(10))
        assert await take_in_own_tasks(q, 10, done) == list(range(10))
        assert q.statistics().pending == 4
    # Segments holding only done items are gone, though older items are still not done.
    assert len(segments(qpath)) == segments_left
    async with Queue(qpath) as q:
        assert await q.qsize() == 4
        assert await drain(q) == [0, 2, 5, 9]
        await q.task_done()  # 0: the position moves over the done ranges after it
    async with Queue(qpath) as q:
        assert await drain(q) == [2, 5, 9]


def test_task_done_per_thread(qpath: str) -> None:
    """One thread's task_done acknowledges its own item, never another thread's."""
    with SyncQueue(qpath) as q:
        q.put_many(["a", "b", "c"])
        got: dict[str, Any] = {}
        a_has_item = threading.Event()
        b_done = threading.Event()

        def thread_a() -> None:
            got["a"] = q.get()
            a_has_item.set()
            b_done.wait(5)  # A never marks its item done

        def thread_b() -> None:
            a_has_item.wait(5)
            got["b"] = q.get()
            q.task_done()
            b_done.set()

        threads = [threading.Thread(target=thread_a), threading.Thread(target=thread_b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert got == {"a": "a", "b": "b"}
        assert q.statistics().pending == 1
    # A's item was not done: it comes back; B's, done behind it, does not.
    with SyncQueue(qpath) as q:
        got.clear()

        def worker(name: str, done: bool) -> None:
            got[name] = q.get()
            if done:
                q.task_done()

        for name, done in (("first", True), ("second", False)):
            t = threading.Thread(target=worker, args=(name, done))
            t.start()
            t.join()
        assert got == {"first": "a", "second": "c"}
    # The first thread's task_done acknowledged "a", not the second's "c".
    with SyncQueue(qpath) as q:
        assert q.get_many(5) == ["c"]


def test_sync_twin_api(qpath: str) -> None:
    """The sync twin offers every public method of the async queue and works blocking."""
    public = {n for n, _ in inspect.getmembers(Queue) if not n.startswith("_")}
    missing = {n for n in public if not hasattr(SyncQueue, n)} - {"aclose"}
    assert not missing
    with SyncQueue(qpath, chunksize=2) as q:
        q.put(1)
        q.put_nowait(2)
        q.put_many([3, 4])
        assert q.qsize() == 4
        assert not q.empty()
        assert not q.full()
        assert q.get() == 1
        assert q.get_nowait() == 2
        assert q.get_many(5) == [3, 4]
        for _ in range(4):
            q.task_done()
        q.join()
        with pytest.raises(Empty):
            q.get(timeout=0.01)
        assert q.skip_corrupt() is None
        assert q.unfinished_tasks == 0


# -------------------------------------------------------------------- recovery


async def test_torn_tail_at_every_offset(tmp_path: Path) -> None:
    """A last record cut at any byte is truncated on open; earlier items and new puts survive."""
    base = tmp_path / "base"
    async with Queue(str(base), chunksize=10) as q:
        await q.put_many(["first", "second", "last record payload"])
    seg = base / segments(str(base))[0]
    data = seg.read_bytes()
    last_len = len(serializers.pickle.dumps("last record payload")) + 8
    start = len(data) - last_len
    for cut in range(start, len(data)):
        qdir = tmp_path / f"cut{cut}"
        qdir.mkdir()
        for name in ("persistq.meta", "persistq.pos"):
            (qdir / name).write_bytes((base / name).read_bytes())
        (qdir / seg.name).write_bytes(data[:cut])
        async with Queue(str(qdir)) as q:
            assert await q.qsize() == 2
            await q.put("new")
        assert (qdir / seg.name).stat().st_size == start + len(serializers.pickle.dumps("new")) + 8
        async with Queue(str(qdir)) as q:
            assert await drain(q) == ["first", "second", "new"]


async def test_zero_filled_tail_is_truncated(qpath: str) -> None:
    """Zeros after the last record (blocks allocated, never written) are dropped on open."""
    async with Queue(qpath) as q:
        await q.put("a")
    seg = os.path.join(qpath, segments(qpath)[0])
    with open(seg, "ab") as f:
        f.write(b"\0" * 100)
    async with Queue(qpath) as q:
        assert await drain(q) == ["a"]


def flip_bit_in_record(qpath: str, index: int) -> tuple[str, int]:
    """Flip a payload bit of the index-th record of the first segment; return file and offset."""
    seg = os.path.join(qpath, segments(qpath)[0])
    data = bytearray(Path(seg).read_bytes())
    off = HEADER_SIZE
    for _ in range(index):
        off += 8 + int.from_bytes(data[off : off + 4], "little")
    data[off + 10] ^= 0x10
    Path(seg).write_bytes(bytes(data))
    return seg, off


async def test_bit_flip_raises_then_skip(qpath: str) -> None:
    """A damaged record raises CorruptionError naming file and offset; skip_corrupt quarantines it."""
    async with Queue(qpath, chunksize=10) as q:
        await q.put_many([f"item-{i}" for i in range(6)])
    seg, off = flip_bit_in_record(qpath, 3)
    async with Queue(qpath) as q:
        assert await q.qsize() == 6
        assert await q.get_many(10) == ["item-0", "item-1", "item-2"]
        for _ in range(3):
            await q.task_done()
        for _ in range(2):  # it stays reported, never wrong data
            with pytest.raises(CorruptionError) as info:
                await q.get()
            assert seg in str(info.value)
            assert f"offset {off}" in str(info.value)
        skipped = await q.skip_corrupt()
        assert skipped is not None
        assert skipped.offset == off
        assert skipped.segment == seg
        assert os.path.getsize(skipped.quarantine) == skipped.size > 0
        assert await q.skip_corrupt() is None
        assert await q.get() == "item-4"
        await q.task_done()
        await q.put("after")
    async with Queue(qpath) as q:
        assert await drain(q) == ["item-5", "after"]


async def test_quarantine_mode_skips_by_itself(qpath: str) -> None:
    """With on_corruption='quarantine' damaged records are moved aside and the queue goes on."""
    async with Queue(qpath, chunksize=10) as q:
        await q.put_many(list(range(5)))
    flip_bit_in_record(qpath, 1)
    flip_bit_in_record(qpath, 4)  # the last record of the last segment
    async with Queue(qpath, on_corruption="quarantine") as q:
        assert await drain(q) == [0, 2, 3]
    assert len([n for n in os.listdir(qpath) if n.startswith("quarantine-")]) == 2


async def test_decode_error_keeps_item(qpath: str) -> None:
    """A record the serializer cannot decode raises SerializationError and stays in the queue."""

    class Flaky:
        NAME = "flaky"
        fail = False

        def dumps(self, value: Any) -> bytes:
            return serializers.pickle.dumps(value)

        def loads(self, data: bytes) -> Any:
            if self.fail:
                raise RuntimeError("boom")
            return serializers.pickle.loads(data)

    ser = Flaky()
    async with Queue(qpath, serializer=ser) as q:
        await q.put("x")
        ser.fail = True
        with pytest.raises(SerializationError):
            await q.get()
        ser.fail = False
        assert await q.get() == "x"


# --------------------------------------------------------------- cancellation


async def test_cancelled_get_leaves_item(qpath: str) -> None:
    """A get cancelled while waiting or while its read runs either returns the item or leaves it."""
    async with Queue(qpath) as q:
        with anyio.move_on_after(0.05):
            await q.get()
        for i in range(30):
            await q.put(i)
            result: list[Any] = []

            async def getter() -> None:
                result.append(await q.get())  # noqa: B023 - each iteration awaits its own getter

            async with anyio.create_task_group() as tg:
                tg.start_soon(getter)
                for _ in range(i % 4):
                    await anyio.lowlevel.checkpoint()
                tg.cancel_scope.cancel()
            if result:
                assert result == [i]
                await q.task_done()
            else:
                assert await q.get() == i
                await q.task_done()
            assert await q.empty()
        assert q.statistics().pending == 0


# --------------------------------------------------------------------- locking


async def test_lock_within_process(qpath: str) -> None:
    """A second queue object on the same directory gets QueueLocked, or waits with lock_timeout."""
    async with Queue(qpath) as q:
        with pytest.raises(QueueLocked):
            await Queue(qpath).open()
        with pytest.raises(QueueLocked):
            await Queue(qpath, lock_timeout=0.1).open()
        await q.put("a")
        other = Queue(qpath, lock_timeout=5)
        async with anyio.create_task_group() as tg:
            tg.start_soon(other.open)
            await anyio.sleep(0.1)
            await q.close()
    async with other:
        assert await other.get() == "a"


def test_lock_across_processes(qpath: str) -> None:
    """Another process holding the directory makes open fail with QueueLocked until it exits."""
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys
                from persistq.sync.file import Queue
                q = Queue({qpath!r})
                print("locked", flush=True)
                sys.stdin.read()
                q.close()
                """
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "locked"
        with pytest.raises(QueueLocked, match="another process"):
            SyncQueue(qpath)
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(10)
        assert child.stdout is not None
        child.stdout.close()
    with SyncQueue(qpath, lock_timeout=5) as q:
        assert q.qsize() == 0


@pytest.mark.anyio
async def test_task_done_right_after_a_concurrent_put_is_counted(tmp_path: Path) -> None:
    """A consumer may take and finish an item before its producer resumes: never 'too many times'."""
    for round_ in range(3):
        async with Queue(str(tmp_path / f"q{round_}"), durability="off") as q:

            async def produce(i: int, q: Queue = q) -> None:
                for j in range(20):
                    await q.put((i, j))

            async def consume(q: Queue = q) -> None:
                for _ in range(20):
                    await q.get()
                    await q.task_done()

            async with anyio.create_task_group() as tg:
                for i in range(100):
                    tg.start_soon(produce, i)
                    tg.start_soon(consume)
            assert q.unfinished_tasks == 0
