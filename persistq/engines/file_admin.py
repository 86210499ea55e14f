"""Inspection and maintenance of file-queue directories, for :mod:`persistq.admin`.

Built on the file engine's own readers (:func:`~.file.read_state`,
:func:`~.file.scan_segments`, :func:`~.file.is_locked`): inspection reads a
directory without taking its lock and without changing it, so it works while
the queue is open in another process. :func:`purge` and :func:`compact` open
the queue with :class:`~.file.FileEngine` itself (bytes only: no serializer
ever decodes an item), so they need the directory not to be open elsewhere.
"""

from __future__ import annotations

import os

import anyio

from ..errors import CorruptionError
from .file import (
    MIGRATE_HINT,
    Durability,
    FileEngine,
    QueueState,
    is_locked,
    is_segment_file,
    read_state,
    scan_segments,
)
from .inspection import (
    CorruptQueueError,
    QueueInfo,
    QueueRef,
    RawRecord,
    StoreInfo,
    VacuumResult,
    VerifyReport,
    disk_bytes,
)

__all__ = ("compact", "inspect", "inspect_legacy", "peek", "purge", "verify")

_BATCH = 1000


def _all_files(path: str) -> list[str]:
    return [os.path.join(path, n) for n in os.listdir(path)]


def _state(path: str) -> QueueState:
    try:
        return read_state(path)
    except CorruptionError as exc:
        raise CorruptQueueError(f"corrupt queue: {exc}") from exc


def _name(path: str) -> str:
    return os.path.basename(os.path.abspath(path))


def inspect(path: str, kind: str) -> StoreInfo:
    """Counts, segments, lock state and problems of the file queue in ``path``.

    The queue's counts are ``ready`` (intact records still to be delivered)
    and ``corrupt`` (damaged ones); its ``bytes`` are the segment files'.

    Args:
        kind: the class name to report for the queue.

    Raises:
        CorruptQueueError: the metadata or the position is damaged.
        StorageError: ``path`` is not a persistq file queue.
    """
    state = _state(path)
    segments, problems = scan_segments(path, state)
    files = _all_files(path)
    ready = sum(len(s.records) for s in segments)
    corrupt = sum(len(s.corrupt) for s in segments)
    queue = QueueInfo(
        table=None,
        name=_name(path),
        kind=kind,
        ack=False,
        order="fifo",
        serializer=state.serializer,
        engine="file",
        durability=None,
        counts={"ready": ready, "corrupt": corrupt},
        oldest_age_seconds=None,
        bytes=disk_bytes(f for f in files if is_segment_file(os.path.basename(f))),
        chunksize=state.chunksize,
        segments=len(segments),
        locked=is_locked(path),
        problems=tuple(problems),
    )
    return StoreInfo(
        target=path, engine="file", durability=None, bytes_on_disk=disk_bytes(files), queues=[queue]
    )


def inspect_legacy(path: str) -> StoreInfo:
    """A persist-queue 1.x file queue: no queue persistq opens, and a hint naming the migrate command."""
    return StoreInfo(
        target=path,
        engine="persist-queue-file",
        durability=None,
        bytes_on_disk=disk_bytes(_all_files(path)),
        queues=[],
        hint=f"a persist-queue 1.x file queue; convert it once with: {MIGRATE_HINT}",
    )


def peek(path: str, n: int, kind: str) -> tuple[QueueRef, list[RawRecord]]:
    """The next ``n`` intact records of the file queue in ``path``, in get order, not taken.

    Each record names its segment file and offset; damaged records are left
    out (:func:`verify` reports them).
    """
    state = _state(path)
    segments, _ = scan_segments(path, state)
    records: list[RawRecord] = []
    for s in segments:
        for off, payload in s.records:
            records.append(RawRecord(payload, segment=os.path.basename(s.path), offset=off))
    ref = QueueRef(None, _name(path), kind, False, "fifo", state.serializer)
    return ref, records[:n]


def verify(path: str) -> VerifyReport:
    """Check the metadata, every segment header and every record checksum from the read position on.

    Each damaged record is a problem naming its file and offset; an
    unfinished append at the end (a put that never returned, which the next
    open truncates) is a warning.
    """
    segments, problems = scan_segments(path, _state(path))
    report = VerifyReport([], list(problems), [])
    for s in segments:
        report.checked.append(os.path.basename(s.path))
        report.problems.extend(
            f"{s.path} offset {off}: corrupt record ({size} bytes; checksum or length does not match)"
            for off, size in s.corrupt
        )
        if s.torn is not None:
            report.warnings.append(
                f"{s.path} offset {s.torn}: an unfinished append at the end (a put that never "
                "returned, or one in progress); the next open truncates it"
            )
    return report


async def _open(path: str, durability: Durability) -> FileEngine:
    state = _state(path)
    engine = FileEngine(path, state.chunksize, state.serializer, durability)
    try:
        await engine.open()
    except BaseException:
        await _close(engine)
        raise
    return engine


async def _close(engine: FileEngine) -> None:
    with anyio.CancelScope(shield=True):
        await engine.close()


async def purge(path: str) -> int:
    """Delete every record of the file queue in ``path``; return how many.

    Drains the queue; consumed segments are deleted as the position passes
    them, and damaged records are skipped into quarantine files (as
    :meth:`~.file.FileEngine.skip_corrupt` does) and counted.

    Raises:
        QueueLocked: the queue is open in this or another process.
    """
    engine = await _open(path, "normal")
    n = 0
    try:
        while True:
            try:
                records = await engine.read(_BATCH, commit=True)
            except CorruptionError:
                if await engine.skip_corrupt() is None:
                    raise
                n += 1
                continue
            if not records:
                return n
            n += len(records)
    finally:
        await _close(engine)


async def compact(path: str) -> VacuumResult:
    """Open and close the file queue in ``path``, with its bytes on disk before and after.

    Opening deletes consumed segments, stale temporary files and an
    unfinished append at the end.

    Raises:
        QueueLocked: the queue is open in this or another process.
    """
    before = disk_bytes(_all_files(path))
    await _close(await _open(path, "full"))
    return VacuumResult(before, disk_bytes(_all_files(path)))
