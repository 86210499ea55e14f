"""Convert a persist-queue 1.x file-queue directory into a persistq file queue.

persist-queue's file format has no framing or checksums and its metadata file
(``info``) is written with the user's serializer, so persistq does not open it
in place; this module copies its waiting items once, in order, durably.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from . import serializers as _serializers
from .engines.file import META_FILE
from .errors import StorageError
from .sync.file import Queue

__all__ = ("migrate_file_queue",)

_BATCH = 1000


def _info(src: str, serializer: Any) -> dict[str, Any]:
    path = os.path.join(src, "info")
    if not os.path.isfile(path):
        raise StorageError(f"{src!r} is not a persist-queue file queue (no 'info' file)")
    try:
        with open(path, "rb") as f:
            info = serializer.load(f)
        chunksize = int(info["chunksize"])
        head = [int(v) for v in info["head"]]
        tail = [int(v) for v in info["tail"]]
        size = int(info["size"])
    except Exception as exc:
        raise StorageError(
            f"cannot read {path!r} with serializer {_serializers.serializer_name(serializer)!r} "
            f"({type(exc).__name__}: {exc}); pass the serializer the queue was written with"
        ) from exc
    return {"chunksize": chunksize, "head": head, "tail": tail, "size": size}


def _items(src: str, info: dict[str, Any], serializer: Any) -> Iterator[Any]:
    head_chunk, head_count, head_off = info["head"]
    chunk, count, offset = info["tail"]
    chunksize = info["chunksize"]
    while (chunk, count) < (head_chunk, head_count):
        path = os.path.join(src, f"q{chunk:05d}")
        with open(path, "rb") as f:
            f.seek(offset)
            stop = head_count if chunk == head_chunk else chunksize
            while count < stop:
                if chunk == head_chunk and f.tell() >= head_off:
                    return
                try:
                    yield serializer.load(f)
                except Exception as exc:
                    raise StorageError(
                        f"cannot read the record at offset {f.tell()} of {path!r}: "
                        f"{type(exc).__name__}: {exc}"
                    ) from exc
                count += 1
        chunk, count, offset = chunk + 1, 0, 0


def migrate_file_queue(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    serializer: Any = _serializers.pickle,
    *,
    chunksize: int | None = None,
) -> int:
    """Copy the waiting items of a persist-queue 1.x file queue into a new persistq ``Queue``.

    Items are read from the source's consumer position (items got there but
    never acknowledged are included) to its producer position, and put in the
    same order into ``dst`` with ``durability="full"`` (one fsync per batch of
    1000). The source is not modified. ``dst`` is created with the same
    serializer (and, unless given, the same ``chunksize``).

    Args:
        src: the persist-queue directory (with ``info`` and ``q00000``…).
        dst: the persistq queue directory; must not exist or be empty.
        serializer: the serializer the source was written with; it needs
            ``load(fp)``, because persist-queue's records are not framed and
            only ``load`` knows where one ends. The destination uses it as
            any persistq queue does (``dumps``/``loads`` if it has them,
            else ``dump``/``load``).

    Returns:
        The number of items copied.

    Raises:
        TypeError: the serializer has no synchronous ``load(fp)``.
        StorageError: ``src`` is not a readable persist-queue queue, or
            ``dst`` already holds a queue with items.
    """
    src, dst = os.fspath(src), os.fspath(dst)
    _serializers.Codec(serializer)  # the destination's check: TypeError now, not mid-copy
    _serializers.stream_loader(serializer)
    if os.path.realpath(src) == os.path.realpath(dst):
        raise StorageError("SRC and DST must be different directories")
    if os.path.isfile(os.path.join(src, META_FILE)):
        raise StorageError(f"{src!r} is already a persistq file queue")
    info = _info(src, serializer)
    if os.path.isdir(dst) and os.listdir(dst) and not os.path.isfile(os.path.join(dst, META_FILE)):
        raise StorageError(f"destination {dst!r} exists and is not an empty directory")
    moved = 0
    with Queue[Any](dst, chunksize=chunksize or info["chunksize"], serializer=serializer) as q:
        if q.qsize():
            raise StorageError(f"destination queue {dst!r} already holds items; use an empty one")
        batch: list[Any] = []
        for item in _items(src, info, serializer):
            batch.append(item)
            if len(batch) >= _BATCH:
                q.put_many(batch)
                moved += len(batch)
                batch = []
        if batch:
            q.put_many(batch)
            moved += len(batch)
    return moved
