"""``PriorityQueue``: the lowest priority number first, FIFO among equals."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar, Literal, TypeVar

from ._base import NOT_NOW
from .fifo import FIFOQueue

__all__ = ("PriorityQueue",)


def _check_priority(priority: object) -> int:
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise TypeError(f"'priority' must be an int, not {type(priority).__name__}")
    if not -(2**63) <= priority < 2**63:
        raise ValueError("'priority' must fit in a signed 64-bit integer")
    return priority


_T = TypeVar("_T")


class PriorityQueue(FIFOQueue[_T]):
    """A persistent priority queue: the lowest ``priority`` number comes out first.

    Among equal priorities, items come out in the order they were put (by
    insertion order, not by a float timestamp). The next item is found through
    an index on ``(priority, _id)``, so a get costs the same with a million
    items waiting as with a thousand. Table ``priority_queue_{name}``
    (persist-queue's; the index is added to existing tables).

    Everything else is :class:`FIFOQueue`.
    """

    KIND_NAME: ClassVar[str] = "PriorityQueue"
    _TABLE_PREFIX: ClassVar[str] = "priority_queue"
    _ORDER: ClassVar[Literal["fifo", "filo", "priority"]] = "priority"
    _ASYNC_LEGACY_TABLE: ClassVar[bool] = False

    async def put(  # type: ignore[override]
        self, item: _T, priority: int = 0, block: bool = True, timeout: float | None = None
    ) -> int:
        """Put ``item`` with ``priority`` (any int; lower comes out first); return its id.

        Durable on return with ``durability="full"``.

        Raises:
            TypeError: ``priority`` is not an int.
        """
        p = _check_priority(priority)
        ids = await self._put_data([self._encode(item)], block, timeout, p)
        return ids[0]  # type: ignore[return-value]

    def _put_now(  # type: ignore[override]
        self, item: _T, priority: int = 0, block: bool = True, timeout: float | None = None
    ) -> Any:
        """:meth:`put` without waiting, or ``NOT_NOW`` (for persistq.sync)."""
        p = _check_priority(priority)
        ids = self._put_data_now([self._encode(item)], timeout, p)
        return ids if ids is NOT_NOW else ids[0]

    async def put_nowait(self, item: _T, priority: int = 0) -> int:
        """``put(item, priority, block=False)``."""
        return await self.put(item, priority, block=False)

    async def put_many(  # type: ignore[override]
        self, items: Iterable[_T], priority: int = 0, block: bool = True, timeout: float | None = None
    ) -> list[int]:
        """Put several items with one priority in one transaction; return their ids."""
        p = _check_priority(priority)
        return await self._put_many(items, block, timeout, p)  # type: ignore[return-value]
