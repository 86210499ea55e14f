"""Blocking twins of :mod:`persistq.admin`: inspect and maintain queues from threads and scripts.

Each function runs its async twin on the process's private event-loop thread
(the portal, as the blocking queues do) and returns its result; arguments,
results and errors are the async functions' (see :mod:`persistq.admin`)::

    import persistq.sync.admin as admin

    for q in admin.inspect("jobs").queues:
        print(q.table, q.counts)

Safe from any thread except persistq's own loop thread
(:class:`~persistq.errors.PortalError`).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

from .. import admin as _admin
from ..admin import (
    PEEK_STATUSES,
    CorruptQueueError,
    InspectionError,
    LocationError,
    MigrateResult,
    Progress,
    QueueInfo,
    QueueRef,
    RawRecord,
    RequeueResult,
    SegmentReport,
    StoreInfo,
    Target,
    VacuumResult,
    VerifyReport,
)
from . import _portal

__all__ = (
    "PEEK_STATUSES",
    "CorruptQueueError",
    "InspectionError",
    "LocationError",
    "MigrateResult",
    "Progress",
    "QueueInfo",
    "QueueRef",
    "RawRecord",
    "RequeueResult",
    "SegmentReport",
    "StoreInfo",
    "Target",
    "VacuumResult",
    "VerifyReport",
    "ack_queue",
    "inspect",
    "list_queues",
    "locate",
    "migrate",
    "peek",
    "purge",
    "requeue",
    "segments",
    "vacuum",
    "verify",
)

T = TypeVar("T")


def _call(fn: Callable[..., Coroutine[Any, Any, T]], *args: Any, **kwargs: Any) -> T:
    # A lease for the call only: the portal thread stops again when nothing else holds one.
    portal = _portal.acquire()
    try:
        return portal.call(functools.partial(fn, *args, **kwargs))
    finally:
        _portal.release(portal)


def locate(target: str | os.PathLike[str] | Target, db_file: str | None = None) -> Target:
    """Blocking :func:`persistq.admin.locate`."""
    return _call(_admin.locate, target, db_file)


def inspect(
    target: str | os.PathLike[str] | Target, *, db_file: str | None = None, table: str | None = None
) -> StoreInfo:
    """Blocking :func:`persistq.admin.inspect`."""
    return _call(_admin.inspect, target, db_file=db_file, table=table)


def list_queues(
    target: str | os.PathLike[str] | Target, *, db_file: str | None = None, table: str | None = None
) -> list[QueueRef]:
    """Blocking :func:`persistq.admin.list_queues`."""
    return _call(_admin.list_queues, target, db_file=db_file, table=table)


def peek(
    target: str | os.PathLike[str] | Target,
    *,
    db_file: str | None = None,
    table: str | None = None,
    n: int = 10,
    status: str = "ready",
) -> tuple[QueueRef, list[RawRecord]]:
    """Blocking :func:`persistq.admin.peek`."""
    return _call(_admin.peek, target, db_file=db_file, table=table, n=n, status=status)


def verify(
    target: str | os.PathLike[str] | Target, *, db_file: str | None = None, table: str | None = None
) -> VerifyReport:
    """Blocking :func:`persistq.admin.verify`."""
    return _call(_admin.verify, target, db_file=db_file, table=table)


def segments(target: str | os.PathLike[str] | Target) -> tuple[list[SegmentReport], list[str]]:
    """Blocking :func:`persistq.admin.segments`."""
    return _call(_admin.segments, target)


def purge(
    target: str | os.PathLike[str] | Target,
    *,
    db_file: str | None = None,
    table: str | None = None,
    in_flight: bool = False,
) -> dict[str, int]:
    """Blocking :func:`persistq.admin.purge`."""
    return _call(_admin.purge, target, db_file=db_file, table=table, in_flight=in_flight)


def vacuum(
    target: str | os.PathLike[str] | Target, *, db_file: str | None = None, table: str | None = None
) -> VacuumResult:
    """Blocking :func:`persistq.admin.vacuum`."""
    return _call(_admin.vacuum, target, db_file=db_file, table=table)


def ack_queue(
    target: str | os.PathLike[str] | Target, *, db_file: str | None = None, table: str | None = None
) -> QueueRef:
    """Blocking :func:`persistq.admin.ack_queue`."""
    return _call(_admin.ack_queue, target, db_file=db_file, table=table)


def requeue(
    target: str | os.PathLike[str] | Target,
    *,
    db_file: str | None = None,
    table: str | None = None,
    failed: bool = True,
    expired: bool = True,
    all_in_flight: bool = False,
    ids: Sequence[int] | None = None,
) -> RequeueResult:
    """Blocking :func:`persistq.admin.requeue`."""
    return _call(
        _admin.requeue,
        target,
        db_file=db_file,
        table=table,
        failed=failed,
        expired=expired,
        all_in_flight=all_in_flight,
        ids=ids,
    )


def migrate(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    serializer: Any = "pickle",
    progress: Progress | None = None,
) -> MigrateResult:
    """Blocking :func:`persistq.admin.migrate` (``progress`` is called from a worker thread)."""
    return _call(_admin.migrate, src, dst, serializer=serializer, progress=progress)
