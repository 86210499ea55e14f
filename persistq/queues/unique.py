"""``UniqueQ``: a FIFO queue that does not add an item equal to one still waiting."""

from __future__ import annotations

import pickle
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar, TypeVar

from ..serializers import Codec
from .fifo import FIFOQueue

__all__ = ("UniqueQ", "encode_canonical", "legacy_encoding", "unique_storage_forms")


def encode_canonical(codec: Codec, item: Any) -> bytes:
    """Encode a canonical form of ``item``, so equal values always give equal bytes."""
    return codec.encode(item, sort_keys=True)


def legacy_encoding(codec: Codec, item: Any) -> bytes | None:
    """persist-queue's encoding of a unique item, where it differs from ours.

    persist-queue sorted only the top-level keys and pickled with the memo, so
    a table it wrote holds other bytes for an equal item; ``None`` where the
    encodings agree (json) or the serializer is not a built-in.
    """
    name = codec.name
    if name not in ("pickle", "msgpack", "cbor2"):
        return None
    value = item
    if isinstance(item, dict):
        try:
            value = {k: item[k] for k in sorted(item)}
        except TypeError:
            return None
    try:
        data: bytes = pickle.dumps(value, protocol=4) if name == "pickle" else codec.encode(value)
    except Exception:  # noqa: BLE001 - the canonical encoding already succeeded; nothing to match
        return None
    return data


def unique_storage_forms(
    legacy_table: bool, codec: Codec, datas: Sequence[bytes], items: Sequence[Any] | None
) -> tuple[Sequence[bytes], list[bytes | None] | None]:
    """Choose what a unique queue stores, and which other encoding it probes for.

    In a table persist-queue created, items are stored in persist-queue's
    encoding (so both libraries recognise each other's duplicates) and our
    canonical encoding is probed too; elsewhere only the canonical one is used.
    """
    if not legacy_table or items is None:
        return datas, None
    stored: list[bytes] = []
    alts: list[bytes | None] = []
    for data, item in zip(datas, items, strict=True):
        legacy = legacy_encoding(codec, item)
        if legacy is None or legacy == data:
            stored.append(data)
            alts.append(None)
        else:
            stored.append(legacy)
            alts.append(data)
    return stored, alts


_T = TypeVar("_T")


class UniqueQ(FIFOQueue[_T]):
    """A persistent FIFO queue that ignores an item equal to one still waiting.

    Equality is by value at every depth: dicts that differ only in key order,
    at any nesting level, are the same item, with every serializer (items are
    stored in a canonical form with sorted keys). An item that was already got
    can be put again. Table ``unique_queue_{name}`` (persist-queue's).

    ``put`` returns the new item's id, or ``None`` when an equal item is
    waiting (nothing is stored then). Everything else is :class:`FIFOQueue`.
    """

    KIND_NAME: ClassVar[str] = "UniqueQ"
    _TABLE_PREFIX: ClassVar[str] = "unique_queue"
    _UNIQUE: ClassVar[bool] = True

    def _encode(self, item: Any) -> bytes:
        return encode_canonical(self._codec, item)

    async def put(self, item: _T, block: bool = True, timeout: float | None = None) -> int | None:  # type: ignore[override]
        """Put ``item`` unless an equal item is waiting; return its id or ``None``.

        Durable on return with ``durability="full"``.
        """
        return (await self._put_data([self._encode(item)], block, timeout, None, [item]))[0]

    def _storage_forms(
        self, datas: Sequence[bytes], items: Sequence[Any] | None
    ) -> tuple[Sequence[bytes], list[bytes | None] | None]:
        return unique_storage_forms(self._engine.legacy_rows_possible, self._codec, datas, items)

    async def put_nowait(self, item: _T) -> int | None:  # type: ignore[override]
        """``put(item, block=False)``."""
        return await self.put(item, block=False)

    async def put_many(  # type: ignore[override]
        self, items: Iterable[_T], block: bool = True, timeout: float | None = None
    ) -> list[int | None]:
        """Put several items in one transaction; ``None`` for each duplicate."""
        return await self._put_many(items, block, timeout, None)
