"""What type checkers see of persistq's generic queues (mypy --strict and basedpyright run it in `make lint`).

Never run: the calls would need a server. Each ``assert_type`` fails the check when a type drifts.
"""

from __future__ import annotations

from dataclasses import dataclass

from typing_extensions import assert_type

import persistq
import persistq.sync
from persistq import AckRecord, FailedItem, QueueRecord, RawItem


@dataclass
class Job:
    """An item type of the user's."""

    url: str
    tries: int = 0


async def async_faces() -> None:
    """The async kinds carry their item type through put and get."""
    q: persistq.SQLiteQueue[Job] = persistq.SQLiteQueue("jobs")
    await q.put(Job("a"))
    assert_type(await q.get(), Job)
    assert_type(await q.get(timeout=1.0), Job)
    assert_type(await q.get(raw=True), RawItem[Job])
    assert_type((await q.get(raw=True))["data"], Job)
    assert_type(await q.get_nowait(), Job)
    assert_type(await q.get_many(10), list[Job])
    assert_type(await q.queue(), list[QueueRecord[Job]])

    u = persistq.UniqueQ[str]("mysql://u:p@db/app", name="frontier")
    assert_type(await u.put("https://example.org"), int | None)
    assert_type(await u.get(), str)

    p = persistq.PriorityQueue[Job]("jobs")
    assert_type(await p.put(Job("b"), priority=1), int)

    a = persistq.PriorityAckQueue[Job]("postgresql://u:p@db/app", name="work")
    job = await a.get(visibility_timeout=30)
    assert_type(job, Job)
    await a.ack(job)
    assert_type(await a.queue(), list[AckRecord[Job]])
    assert_type(await a.failed(), list[FailedItem[Job]])

    d = persistq.PDict[dict[str, int]]("settings", "app")
    assert_type(await d.get("x"), dict[str, int] | None)
    assert_type(await d.get("x", {}), dict[str, int])
    assert_type(await d.pop("x"), dict[str, int])
    assert_type(await d.items(), list[tuple[str, dict[str, int]]])

    f = persistq.Queue[bytes]("spool")
    assert_type(await f.get(), bytes)


def sync_faces() -> None:
    """The blocking twins carry it the same way."""
    q = persistq.sync.SQLiteQueue[Job]("jobs")
    q.put(Job("a"))
    assert_type(q.get(), Job)
    assert_type(q.get(raw=True), RawItem[Job])
    assert_type(q.get_many(5), list[Job])

    u = persistq.sync.UniqueQ[str]("frontier")
    assert_type(u.put("x"), int | None)
    assert_type(u.get(block=False), str)

    a = persistq.sync.AckQueue[Job]("work")
    assert_type(a.get(timeout=2), Job)
    assert_type(a.queue(), list[AckRecord[Job]])

    m = persistq.sync.MySQLQueue[Job]("mysql://u:p@db/app")
    assert_type(m.get(), Job)

    d = persistq.sync.PDict[int]("settings", "counts")
    d["a"] = 1
    assert_type(d["a"], int)
    assert_type(d.get("a"), int | None)
    assert_type(list(d.values()), list[int])
