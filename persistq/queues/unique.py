"""``UniqueQ``: a FIFO queue that does not add an item equal to one still waiting."""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any, ClassVar

from ..errors import SerializationError
from ..serializers import serializer_name
from ..serializers._canonical import canonical
from .fifo import SQLiteQueue

__all__ = ("UniqueQ", "encode_canonical")


def _takes_sort_keys(serializer: Any) -> bool:
    try:
        return "sort_keys" in inspect.signature(serializer.dumps).parameters
    except (TypeError, ValueError):
        return False


def encode_canonical(serializer: Any, item: Any) -> bytes:
    """Encode a canonical form of ``item``, so equal values always give equal bytes."""
    try:
        if _takes_sort_keys(serializer):
            data = serializer.dumps(item, sort_keys=True)
        else:
            data = serializer.dumps(canonical(item))
    except Exception as exc:
        raise SerializationError(
            f"cannot serialize {type(item).__name__} with {serializer_name(serializer)}: {exc}"
        ) from exc
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise SerializationError(
            f"serializer {serializer_name(serializer)} returned {type(data).__name__}, not bytes"
        )
    return bytes(data)


class UniqueQ(SQLiteQueue):
    """A persistent FIFO queue that ignores an item equal to one still waiting.

    Equality is by value at every depth: dicts that differ only in key order,
    at any nesting level, are the same item, with every serializer (items are
    stored in a canonical form with sorted keys). An item that was already got
    can be put again. Table ``unique_queue_{name}`` (persist-queue's).

    ``put`` returns the new item's id, or ``None`` when an equal item is
    waiting (nothing is stored then). Everything else is :class:`SQLiteQueue`.
    """

    _TABLE_PREFIX: ClassVar[str] = "unique_queue"
    _UNIQUE: ClassVar[bool] = True

    def _encode(self, item: Any) -> bytes:
        return encode_canonical(self.serializer, item)

    async def put(self, item: Any, block: bool = True, timeout: float | None = None) -> int | None:  # type: ignore[override]
        """Put ``item`` unless an equal item is waiting; return its id or ``None``.

        Durable on return with ``durability="full"``.
        """
        return (await self._put_data([self._encode(item)], block, timeout))[0]

    async def put_nowait(self, item: Any) -> int | None:  # type: ignore[override]
        """``put(item, block=False)``."""
        return await self.put(item, block=False)

    async def put_many(  # type: ignore[override]
        self, items: Iterable[Any], block: bool = True, timeout: float | None = None
    ) -> list[int | None]:
        """Put several items in one transaction; ``None`` for each duplicate."""
        return await self._put_many(items, block, timeout, None)
