"""Cancellation never loses or duplicates an item, on asyncio and trio."""

from __future__ import annotations

import asyncio
import contextlib
import random

import anyio
import pytest

import persistq

pytestmark = pytest.mark.anyio


async def test_get_cancelled_while_waiting_leaves_nothing_claimed(qpath: str) -> None:
    """A get cancelled while it waits for an item takes nothing."""
    async with persistq.SQLiteQueue(qpath) as q:
        with anyio.move_on_after(0.05):
            await q.get()
        await q.put("x")
        assert await q.get_nowait() == "x"


async def test_cancelled_scope_before_call_does_nothing(qpath: str) -> None:
    """A get or put in an already cancelled scope raises without touching the queue."""
    async with persistq.SQLiteQueue(qpath) as q:
        await q.put("keep")
        with anyio.CancelScope() as scope:
            scope.cancel()
            await q.get()
        with anyio.CancelScope() as scope:
            scope.cancel()
            await q.put("never")
        assert await q.queue() == [{"id": 1, "data": "keep", "timestamp": (await q.queue())[0]["timestamp"]}]


@pytest.mark.parametrize("kind", [persistq.SQLiteQueue, persistq.FILOSQLiteQueue])
@pytest.mark.parametrize("auto_commit", [True, False])
async def test_random_cancellation_of_gets_and_puts_loses_and_duplicates_nothing(
    qpath: str, kind: type[persistq.SQLiteQueue], auto_commit: bool
) -> None:
    """Gets and puts cancelled at random points: each item put is got exactly once."""
    rng = random.Random(1234)
    put_ok: list[int] = []
    got: list[int] = []
    async with kind(qpath, auto_commit=auto_commit) as q:
        for n in range(150):
            with anyio.move_on_after(rng.uniform(0, 0.002)):
                await q.put(n)
                put_ok.append(n)
        for _ in range(400):
            # On a loaded machine the get's own timeout may pass before the
            # scope cancels it: Empty is then the right answer.
            with anyio.move_on_after(rng.uniform(0, 0.002)), contextlib.suppress(persistq.Empty):
                got.append(await q.get(timeout=0.01))
            # task_done may be cancelled too; it then changed nothing and is retried.
            while q.statistics().unfinished_tasks:
                with anyio.move_on_after(rng.uniform(0, 0.002)):
                    await q.task_done()
        # A put whose call was cancelled may or may not have landed (it is
        # undone unless its row was already taken); whatever is left is drained.
        while True:
            try:
                got.append(await q.get_nowait())
                await q.task_done()
            except persistq.Empty:
                break
    assert len(got) == len(set(got)), "an item was delivered twice"
    assert set(put_ok) <= set(got), "an item whose put returned was lost"
    async with kind(qpath) as q:
        assert await q.qsize() == 0


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_asyncio_wait_for_timeout_on_get_keeps_the_item(qpath: str) -> None:
    """asyncio.wait_for cancelling a get mid-flight never loses the item."""
    async with persistq.SQLiteQueue(qpath) as q:
        await q.put_many(range(200))
        got: list[int] = []
        rng = random.Random(7)
        for _ in range(600):
            with contextlib.suppress(asyncio.TimeoutError, persistq.Empty):
                got.append(await asyncio.wait_for(q.get(), rng.uniform(0, 0.002)))
            if len(got) == 200:
                break
        while len(got) < 200:
            got.append(await q.get_nowait())
        assert sorted(got) == list(range(200))
