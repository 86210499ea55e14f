"""What every engine's inspection and maintenance functions hand back.

The engines' admin modules (:mod:`.sqlite_admin`, :mod:`.mysql_admin`, the
inspection section of :mod:`.file`) read and repair storage; the types here
are the shape of their answers, shared so that :mod:`persistq.admin` (and the
command line on top of it) never sees a table, a column or a file format.
They also hold the few rules every SQL engine applies alike: how a table name
maps to a queue kind, how ``--table`` picks a queue, what the status codes of
an ack table mean, and how rows become counts and records.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import CorruptionError, InvalidName, PersistQError, StorageError
from .sqlite import validate_name
from .sqlite_ack import ACK_FAILED, ACKED, DELAYED, INITED, READY, UNACK

__all__ = (
    "PEEK_STATUSES",
    "CorruptQueueError",
    "InspectionError",
    "KindSpec",
    "Target",
    "LocationError",
    "Order",
    "QueueInfo",
    "QueueRef",
    "RawRecord",
    "StoreInfo",
    "VacuumResult",
    "VerifyReport",
    "ack_record",
    "classify",
    "disk_bytes",
    "empty_counts",
    "is_queue_name",
    "oldest_of",
    "one",
    "pick",
    "plain_record",
    "queue_info",
    "status_counts",
)

Order = Literal["fifo", "filo", "priority", "key"]
"""The order a kind delivers in; ``"key"`` is a :class:`~persistq.PDict`'s insertion order."""

STATUS_NAMES: dict[int, str] = {
    INITED: "ready",
    READY: "ready",
    UNACK: "in_flight",
    DELAYED: "delayed",
    ACKED: "acked",
    ACK_FAILED: "failed",
}
"""What each status code of an ack table is called in counts and records."""

PEEK_STATUSES: dict[str, tuple[int, ...]] = {
    "ready": (INITED, READY),
    "in_flight": (UNACK,),
    "delayed": (DELAYED,),
    "failed": (ACK_FAILED,),
    "acked": (ACKED,),
    "all": (INITED, READY, UNACK, DELAYED, ACKED, ACK_FAILED),
}
"""The ``status`` values :func:`persistq.admin.peek` takes, and the status codes each selects."""

# Statuses whose items are still to be processed: the oldest of them is the
# queue's oldest item (acked and failed ones are finished).
_LIVE = ("ready", "in_flight", "delayed")


class InspectionError(StorageError):
    """An inspection or maintenance call could not be done; the message says why and where."""


class CorruptQueueError(InspectionError, CorruptionError):
    """The storage inspected is damaged (not a database, a bad header, unreadable metadata)."""


class LocationError(PersistQError, ValueError):
    """A target that names no storage persistq knows (an unknown URL scheme, a malformed DSN).

    Attributes:
        scheme: the URL scheme when it is the scheme that is not supported;
            ``None`` when the target itself is malformed.
    """

    def __init__(self, message: str, scheme: str | None = None) -> None:
        super().__init__(message)
        self.scheme = scheme


@dataclass(frozen=True)
class Target:
    """A resolved target: which engine holds the queues, and where.

    Attributes:
        engine: ``"sqlite"``, ``"file"``, ``"mysql"`` or ``"persist-queue-file"``
            (a persist-queue 1.x file queue, which only ``migrate`` reads).
        path: the SQLite database file, the queue directory, or the DSN.
        shown: ``path`` for messages (a DSN without its password).
    """

    engine: str
    path: str
    shown: str

    def __str__(self) -> str:
        return self.shown


@dataclass(frozen=True)
class KindSpec:
    """How the tables of one queue kind are named, from the kind's class.

    Attributes:
        prefix: the table name's prefix, with its ``_`` (``"queue_"``).
        kind: the public class name shown for such a table.
        ack: whether its rows carry an ack status.
        order: the order it delivers in.
        legacy: persist-queue's async class of the kind used the bare prefix
            (``queue``) as its table, which persistq opens as the queue named
            ``"default"``.
    """

    prefix: str
    kind: str
    ack: bool
    order: Order
    legacy: bool = False


@dataclass(frozen=True)
class QueueRef:
    """One queue (or ``PDict``) found in a storage location.

    Attributes:
        table: its table (``None`` for a file queue: one queue per directory).
        name: the queue's name, as its class takes it.
        kind: the public class name (``"SQLiteQueue"``, ``"PDict"``, ``"Queue"`` …).
        ack: whether it is an ack queue (statuses, leases, dead letters).
        order: the order it delivers in.
        serializer: the serializer name it recorded (``None``: a table written
            by persist-queue, which records none).
    """

    table: str | None
    name: str
    kind: str
    ack: bool
    order: Order
    serializer: str | None


@dataclass(frozen=True)
class QueueInfo:
    """Counts, age and size of one queue, as :func:`persistq.admin.inspect` reports them.

    Attributes:
        table, name, kind, ack, order, serializer: as :class:`QueueRef`.
        engine: ``"sqlite"``, ``"file"`` or ``"mysql"``.
        durability: what a commit promises, where the storage says so
            (MySQL); ``None`` where each opener chooses.
        counts: items per status. Plain queues: ``ready``, ``in_flight``
            (got with ``auto_commit=False`` and not done). Ack queues also
            ``expired`` (in flight, lease over; part of ``in_flight``),
            ``delayed``, ``failed``, ``acked``. ``PDict``: ``entries``. File
            queue: ``ready``, ``corrupt``.
        oldest_age_seconds: age of the oldest item not finished, ``None`` if
            there is none or the storage keeps no timestamps (file queue).
        bytes: the queue's size on disk, ``None`` where it cannot be told.
        chunksize, segments, locked, problems: file queue only: records per
            segment, segment files to read, whether a queue object holds the
            directory (``None``: cannot be told), structural problems found.
    """

    table: str | None
    name: str
    kind: str
    ack: bool
    order: Order
    serializer: str | None
    engine: str
    durability: str | None
    counts: dict[str, int]
    oldest_age_seconds: float | None
    bytes: int | None
    chunksize: int | None = None
    segments: int | None = None
    locked: bool | None = None
    problems: tuple[str, ...] = ()

    @property
    def total(self) -> int:
        """Every item stored (``expired`` ones are counted once, as in flight)."""
        return sum(v for k, v in self.counts.items() if k != "expired")


@dataclass(frozen=True)
class StoreInfo:
    """A storage location and the queues in it.

    Attributes:
        target: the location, for messages (a DSN without its password).
        engine: as :attr:`Target.engine`.
        durability: as :attr:`QueueInfo.durability`, for the whole location.
        bytes_on_disk: every file of the location (SQLite: the database, its
            WAL and shared-memory files), or the tables' size on a server.
        queues: the queues found (those ``table`` selected).
        database: the absolute path of an SQLite database.
        journal_mode: an SQLite database's journal mode.
        hint: what to do with a location persistq does not open (a
            persist-queue file queue: the migrate command).
    """

    target: str
    engine: str
    durability: str | None
    bytes_on_disk: int
    queues: list[QueueInfo]
    database: str | None = None
    journal_mode: str | None = None
    hint: str | None = None


@dataclass(frozen=True)
class RawRecord:
    """One stored item, as :func:`persistq.admin.peek` found it (not decoded, not taken).

    Which attributes are set depends on the queue: ``id`` and ``timestamp``
    on SQL queues, plus ``status`` and ``attempts`` on ack queues (``attempts``
    ``None`` in a table persist-queue wrote) and ``priority`` on priority
    queues; ``key`` on a ``PDict``; ``segment`` and ``offset`` on a file queue.
    """

    data: bytes
    id: int | None = None
    key: str | None = None
    timestamp: float | None = None
    status: str | None = None
    attempts: int | None = None
    priority: int | None = None
    segment: str | None = None
    offset: int | None = None


@dataclass(frozen=True)
class VerifyReport:
    """What :func:`persistq.admin.verify` checked and found.

    Attributes:
        checked: the tables or segment files checked.
        problems: damage found, one sentence each naming the file or table.
        warnings: things that are not damage (an unfinished append at the end
            of a file queue, which its next open truncates).
    """

    checked: list[str]
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether no problem was found."""
        return not self.problems


@dataclass(frozen=True)
class VacuumResult:
    """Bytes on disk before and after :func:`persistq.admin.vacuum` (``0``, ``0`` on a server)."""

    bytes_before: int
    bytes_after: int


# ------------------------------------------------------------------ tables


def is_queue_name(name: str) -> bool:
    """Whether ``name`` is a name the queue kinds accept (so a table named after it may be theirs)."""
    try:
        validate_name(name)
    except InvalidName:
        return False
    return True


def classify(
    table: str,
    kinds: Sequence[KindSpec],
    serializers: dict[str, str],
    valid_name: Callable[[str], bool] = is_queue_name,
) -> QueueRef | None:
    """The queue a table holds, or ``None`` if no kind creates such a table.

    Args:
        table: the table's name.
        kinds: the kinds to recognise; a longer prefix is tried first.
        serializers: the serializer recorded per table.
        valid_name: whether a queue name is one a kind accepts.
    """
    for spec in sorted(kinds, key=lambda k: -len(k.prefix)):
        name = table[len(spec.prefix) :]
        if table.startswith(spec.prefix) and valid_name(name):
            return QueueRef(table, name, spec.kind, spec.ack, spec.order, serializers.get(table))
        if spec.legacy and table == spec.prefix[:-1]:
            # persistq opens it as the queue named "default" (when the prefixed table is absent).
            return QueueRef(table, "default", spec.kind, spec.ack, spec.order, serializers.get(table))
    return None


def pick(queues: list[QueueRef], table: str | None, where: str) -> list[QueueRef]:
    """The queues ``table`` names (a table name, else a queue name); all of them for ``None``.

    Raises:
        InspectionError: no queue, or several queues of that name.
    """
    if table is None:
        return queues
    chosen = [q for q in queues if q.table == table] or [q for q in queues if q.name == table]
    if not chosen:
        have = ", ".join(str(q.table) for q in queues) or "none"
        raise InspectionError(f"{where}: no queue table {table!r} (tables: {have})")
    if len(chosen) > 1:
        raise InspectionError(
            f"{where}: {table!r} names several tables ({', '.join(str(q.table) for q in chosen)}); "
            "pass the table name"
        )
    return chosen


def one(queues: list[QueueRef], table: str | None, where: str) -> QueueRef:
    """The one queue ``table`` names, or the only queue there is.

    Raises:
        InspectionError: none, or several and ``table`` did not choose.
    """
    chosen = pick(queues, table, where)
    if not chosen:
        raise InspectionError(f"{where}: holds no queue")
    if len(chosen) > 1:
        raise InspectionError(
            f"{where} holds several queues ({', '.join(str(q.table) for q in chosen)}); pick one with --table"
        )
    return chosen[0]


def disk_bytes(paths: Iterable[str]) -> int:
    """The sizes of the files that exist among ``paths``, added up."""
    total = 0
    for p in paths:
        with contextlib.suppress(OSError):
            total += os.path.getsize(p)
    return total


# ------------------------------------------------------------------ rows


def empty_counts(ref: QueueRef) -> dict[str, int]:
    """The counts a queue of this kind reports, all zero."""
    if ref.order == "key":
        return {"entries": 0}
    if ref.ack:
        return {"ready": 0, "in_flight": 0, "expired": 0, "delayed": 0, "failed": 0, "acked": 0}
    return {"ready": 0, "in_flight": 0}


def status_counts(counts: dict[str, int], rows: Iterable[tuple[Any, Any, Any]]) -> float | None:
    """Add ``(status, count, oldest timestamp)`` rows of an ack table to ``counts``.

    Returns:
        The oldest timestamp among items not finished (``None`` if none).
    """
    oldest: float | None = None
    for status, n, ts in rows:
        key = STATUS_NAMES.get(status, "ready")
        counts[key] += int(n)
        if key in _LIVE and ts is not None:
            oldest = float(ts) if oldest is None else min(oldest, float(ts))
    return oldest


def oldest_of(*timestamps: Any) -> float | None:
    """The smallest of the timestamps given that are not ``None``."""
    found = [float(t) for t in timestamps if t is not None]
    return min(found) if found else None


def queue_info(
    ref: QueueRef,
    engine: str,
    counts: dict[str, int],
    oldest: float | None,
    size: int | None,
    durability: str | None = None,
) -> QueueInfo:
    """A :class:`QueueInfo` of an SQL queue, its age measured now."""
    age = None if oldest is None else round(max(0.0, time.time() - oldest), 3)
    return QueueInfo(
        ref.table,
        ref.name,
        ref.kind,
        ref.ack,
        ref.order,
        ref.serializer,
        engine,
        durability,
        counts,
        age,
        size,
    )


def ack_record(row: Sequence[Any], priority: bool) -> RawRecord:
    """A record from an ack-table row ``(_id, data, timestamp, status, attempts[, priority])``."""
    return RawRecord(
        bytes(row[1]),
        id=int(row[0]),
        timestamp=None if row[2] is None else float(row[2]),
        status=STATUS_NAMES.get(row[3], str(row[3])),
        attempts=None if row[4] is None else int(row[4]),
        priority=int(row[5]) if priority else None,
    )


def plain_record(row: Sequence[Any], priority: bool) -> RawRecord:
    """A record from a queue-table row ``(_id, data, timestamp[, priority])``."""
    return RawRecord(
        bytes(row[1]),
        id=int(row[0]),
        timestamp=None if row[2] is None else float(row[2]),
        priority=int(row[3]) if priority else None,
    )
