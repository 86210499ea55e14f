"""Inspect and maintain queues in storage: counts, peeks, checks, purges, requeues, compaction.

What ``persistq info``, ``peek``, ``verify``, ``purge``, ``requeue``,
``vacuum`` and ``migrate`` show and do, as async functions (asyncio and
trio); :mod:`persistq.sync.admin` has blocking twins. A *target* is what the
command line takes: an SQLite queue directory (``data.db`` inside, or pick a
file with ``db_file``) or database file, a file-queue directory, or a server
URL (``mysql://user:password@host:port/database?table=name``, also
``mariadb://``).

::

    info = await persistq.admin.inspect("jobs")
    for q in info.queues:
        print(q.table, q.kind, q.counts, q.oldest_age_seconds)
    ref, records = await persistq.admin.peek("jobs", table="work", n=5, status="failed")
    await persistq.admin.requeue("jobs", table="work", failed=True)

Reading (:func:`inspect`, :func:`list_queues`, :func:`peek`, :func:`verify`,
:func:`segments`) opens SQLite read-only, reads file queues without their lock
and MySQL on an autocommit connection: it never changes a queue and works
while producers and consumers run. Records are returned as stored bytes
(:class:`RawRecord`): nothing here decodes an item, so no stored pickle runs.

Changes go through the engines: :func:`purge` deletes in one transaction
(file queue: drains it), :func:`vacuum` runs ``VACUUM`` / ``OPTIMIZE TABLE``
(file queue: opens and closes it, which deletes consumed segments), and
:func:`requeue` opens the ack queue with its own class, so leases, attempts and
dead letters follow the queue's rules. A file queue must not be open elsewhere
for those (:class:`~persistq.errors.QueueLocked`).

Errors: :class:`InspectionError` (a :class:`~persistq.errors.StorageError`;
:class:`CorruptQueueError` for damaged storage) with a one-line message naming
the place, :class:`LocationError` (a ``ValueError``) for a target naming no
storage persistq knows, and the queue errors of the queue classes.

Storage facts live in the engines (``persistq.engines.sqlite_admin``,
``mysql_admin``, ``file_admin``); this module picks one by the target's engine
(:data:`_ENGINES`) and knows the queue kinds: which table prefix is which
kind, read from the kind classes.
"""

from __future__ import annotations

import abc
import functools
import importlib
import os
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit, urlunsplit

import anyio

from . import serializers as _serializers
from .engines import file as _file
from .engines import file_admin as _file_admin
from .engines import sqlite_admin as _sqlite_admin
from .engines.file import SegmentReport
from .engines.inspection import (
    PEEK_STATUSES,
    CorruptQueueError,
    InspectionError,
    KindSpec,
    LocationError,
    QueueInfo,
    QueueRef,
    RawRecord,
    StoreInfo,
    Target,
    VacuumResult,
    VerifyReport,
)

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

_DICT_PREFIX = "dict_"
"""``PDict``'s table prefix (``SQLiteDictStore`` names its table ``dict_{name}``)."""


@dataclass(frozen=True)
class RequeueResult:
    """What :func:`requeue` made ready again.

    Attributes:
        table: the ack queue's table.
        failed_requeued: dead letters made ready (with fresh attempts).
        in_flight_returned: in-flight items given back.
    """

    table: str
    failed_requeued: int
    in_flight_returned: int


@dataclass(frozen=True)
class MigrateResult:
    """What :func:`migrate` did.

    Attributes:
        kind: ``"file"`` (a persist-queue file queue converted) or
            ``"sqlite"`` (a database copied).
        source: the directory or database file read.
        destination: the new queue directory, or the database file written.
        items: items copied (``"file"``).
        tables: queue tables in the copy (``"sqlite"``).
    """

    kind: str
    source: str
    destination: str
    items: int | None = None
    tables: list[str] = field(default_factory=list)


# ------------------------------------------------------------------ the kinds


def _spec(cls: Any, legacy: bool | None = None) -> KindSpec:
    from .queues.ack import SQLiteAckQueue

    return KindSpec(
        f"{cls._TABLE_PREFIX}_",
        getattr(cls, "KIND_NAME", cls.__name__),
        issubclass(cls, SQLiteAckQueue),
        cls._ORDER,
        cls._ASYNC_LEGACY_TABLE if legacy is None else legacy,
    )


def _kind_classes() -> list[Any]:
    from .queues import ack, fifo, priority, unique

    return [
        ack.SQLiteAckQueue,
        ack.FILOSQLiteAckQueue,
        ack.UniqueAckQ,
        ack.PriorityAckQueue,
        fifo.SQLiteQueue,
        fifo.FILOSQLiteQueue,
        unique.UniqueQ,
        priority.PriorityQueue,
    ]


def _mysql_classes() -> list[Any]:
    from .queues.mysql import MySQLQueue
    from .queues.mysql_ack import MySQLAckQueue

    return [MySQLQueue, MySQLAckQueue]


@functools.cache
def _sqlite_kinds() -> tuple[KindSpec, ...]:
    specs = [_spec(c) for c in _kind_classes()]
    return (*specs, KindSpec(_DICT_PREFIX, "PDict", False, "key"))


def _server_kinds(own_classes: Sequence[Any]) -> tuple[KindSpec, ...]:
    """The kinds on a server engine: every kind, named by the engine's own classes where they share
    a prefix (MySQL's ``queue_`` tables are ``MySQLQueue``'s); persist-queue had no async class on a
    server, so no bare legacy table exists there."""
    own = {c._TABLE_PREFIX: c for c in own_classes}
    classes = [own.pop(c._TABLE_PREFIX, c) for c in _kind_classes()] + list(own.values())
    return (*(_spec(c, legacy=False) for c in classes), KindSpec(_DICT_PREFIX, "PDict", False, "key"))


@functools.cache
def _mysql_kinds() -> tuple[KindSpec, ...]:
    return _server_kinds(_mysql_classes())


def _class_of(kind: str, candidates: Sequence[Any]) -> Any:
    for cls in candidates:
        if getattr(cls, "KIND_NAME", cls.__name__) == kind:
            return cls
    raise InspectionError(f"no queue class {kind!r}")


class _Opaque:
    """A serializer passing bytes through under the name a queue recorded.

    Lets a queue class open a queue (its open checks the serializer's name)
    without decoding anything, so no stored pickle is ever run.
    """

    def __init__(self, name: str) -> None:
        self.NAME = name

    def dumps(self, value: Any, sort_keys: bool = False) -> bytes:
        """Bytes stay bytes."""
        return bytes(value)

    def loads(self, data: bytes) -> bytes:
        """Bytes stay bytes."""
        return bytes(data)


# ------------------------------------------------------------------ the engines


async def _thread(fn: Callable[..., T], *args: Any) -> T:
    return await anyio.to_thread.run_sync(functools.partial(fn, *args))


class _Admin(Protocol):
    """The admin operations every engine offers (an entry of :data:`_ENGINES`)."""

    async def list_queues(self, t: Target, table: str | None) -> list[QueueRef]:
        """The queues ``table`` names (all for ``None``)."""

    async def inspect(self, t: Target, table: str | None) -> StoreInfo:
        """Counts, ages and sizes."""

    async def peek(
        self, t: Target, table: str | None, n: int, status: str
    ) -> tuple[QueueRef, list[RawRecord]]:
        """The next records of one queue."""

    async def verify(self, t: Target, table: str | None) -> VerifyReport:
        """A check of the storage."""

    async def purge(self, t: Target, table: str | None, in_flight: bool) -> dict[str, int]:
        """Delete items."""

    async def vacuum(self, t: Target, table: str | None) -> VacuumResult:
        """Give free space back."""


class _SQLEngine(abc.ABC):
    """The admin operations of an SQL engine: its admin module's blocking functions, on a thread.

    Args:
        module_name: the engine's admin module, imported on first use (a
            server engine's driver may not be installed).
        kinds: the queue kinds whose tables it recognises.
    """

    def __init__(self, module_name: str, kinds: Callable[[], tuple[KindSpec, ...]]) -> None:
        self._module_name = module_name
        self._module: Any = None
        self.kinds = kinds

    @property
    def module(self) -> Any:
        """The admin module."""
        if self._module is None:
            self._module = importlib.import_module(self._module_name)
        return self._module

    async def list_queues(self, t: Target, table: str | None) -> list[QueueRef]:
        """See :func:`persistq.admin.list_queues`."""
        return await _thread(self.module.list_queues, t.path, self.kinds(), table)

    async def inspect(self, t: Target, table: str | None) -> StoreInfo:
        """See :func:`persistq.admin.inspect`."""
        return await _thread(self.module.inspect, t.path, self.kinds(), table)

    async def peek(
        self, t: Target, table: str | None, n: int, status: str
    ) -> tuple[QueueRef, list[RawRecord]]:
        """See :func:`persistq.admin.peek`."""
        return await _thread(self.module.peek, t.path, self.kinds(), table, n, status)

    async def verify(self, t: Target, table: str | None) -> VerifyReport:
        """See :func:`persistq.admin.verify`."""
        return await _thread(self.module.verify, t.path, self.kinds(), table)

    async def purge(self, t: Target, table: str | None, in_flight: bool) -> dict[str, int]:
        """See :func:`persistq.admin.purge`."""
        return await _thread(self.module.purge, t.path, self.kinds(), table, in_flight)

    @abc.abstractmethod
    async def vacuum(self, t: Target, table: str | None) -> VacuumResult:
        """See :func:`persistq.admin.vacuum`."""

    @abc.abstractmethod
    def open_ack(self, t: Target, ref: QueueRef, auto_resume: bool) -> Any:
        """The async ack queue ``ref`` on ``t``, opened with its own class (not decoding items)."""


class _SQLite(_SQLEngine):
    """SQLite databases: a directory or a database file."""

    def __init__(self) -> None:
        super().__init__("persistq.engines.sqlite_admin", _sqlite_kinds)

    async def vacuum(self, t: Target, table: str | None) -> VacuumResult:
        """``VACUUM`` the whole database (``table`` does not narrow it)."""
        return await _thread(self.module.vacuum, t.path)

    def open_ack(self, t: Target, ref: QueueRef, auto_resume: bool) -> Any:
        """The ack queue's class on the database's directory and file name."""
        directory, db_file = os.path.split(os.path.abspath(t.path))
        cls = _class_of(ref.kind, _kind_classes())
        serializer = _Opaque(ref.serializer or "pickle")
        return cls(
            directory, name=ref.name, serializer=serializer, db_file_name=db_file, auto_resume=auto_resume
        )


class _Server(_SQLEngine):
    """An SQL engine on a server, reached by URL; its admin module defines ``SCHEMES``.

    Args:
        own_classes: the kind classes written for this engine alone (MySQL's
            persist-queue classes), opened with keywords; other kinds are
            opened with the URL.
    """

    def __init__(
        self,
        module_name: str,
        kinds: Callable[[], tuple[KindSpec, ...]],
        own_classes: Callable[[], list[Any]] = list,
    ) -> None:
        super().__init__(module_name, kinds)
        self.own_classes = own_classes

    @property
    def schemes(self) -> tuple[str, ...]:
        """The URL schemes it serves."""
        return tuple(self.module.SCHEMES)

    def shown(self, url: str) -> str:
        """The URL without its password."""
        return str(self.module.safe_location(url))

    async def vacuum(self, t: Target, table: str | None) -> VacuumResult:
        """``OPTIMIZE TABLE`` (or the engine's like) the queue tables chosen."""
        return await _thread(self.module.optimize, t.path, self.kinds(), table)

    def open_ack(self, t: Target, ref: QueueRef, auto_resume: bool) -> Any:
        """The ack queue's class on the server (the table from ``name=``, not the URL)."""
        own = self.own_classes()
        cls = _class_of(ref.kind, [*own, *_kind_classes()])
        serializer = _Opaque(ref.serializer or "pickle")
        if cls in own:
            keywords = self.module.server_keywords(t.path)
            return cls(**keywords, name=ref.name, serializer=serializer, auto_resume=auto_resume)
        url = urlunsplit(urlsplit(t.path)._replace(query="", fragment=""))
        return cls(url, name=ref.name, serializer=serializer, auto_resume=auto_resume)


class _File:
    """The admin operations of the file engine (one queue per directory)."""

    kind = "Queue"

    async def list_queues(self, t: Target, table: str | None) -> list[QueueRef]:
        _no_table(table)
        return [(await self.peek(t, None, 0, "ready"))[0]]

    async def inspect(self, t: Target, table: str | None) -> StoreInfo:
        _no_table(table)
        return await _thread(_file_admin.inspect, t.path, self.kind)

    async def peek(
        self, t: Target, table: str | None, n: int, status: str
    ) -> tuple[QueueRef, list[RawRecord]]:
        _no_table(table)
        ref, records = await _thread(_file_admin.peek, t.path, n, self.kind)
        return ref, records if status in ("ready", "all") else []

    async def verify(self, t: Target, table: str | None) -> VerifyReport:
        _no_table(table)
        return await _thread(_file_admin.verify, t.path)

    async def purge(self, t: Target, table: str | None, in_flight: bool) -> dict[str, int]:
        _no_table(table)
        return {os.path.basename(t.path): await _file_admin.purge(t.path)}

    async def vacuum(self, t: Target, table: str | None) -> VacuumResult:
        _no_table(table)
        return await _file_admin.compact(t.path)


def _no_table(table: str | None) -> None:
    if table is not None:
        raise ValueError("a file queue directory holds one queue: 'table' does not apply")


_ENGINES: dict[str, _Admin] = {
    "sqlite": _SQLite(),
    "file": _File(),
    "mysql": _Server("persistq.engines.mysql_admin", _mysql_kinds, _mysql_classes),
    "postgresql": _Server("persistq.engines.postgres_admin", functools.cache(lambda: _server_kinds(()))),
}
"""The admin operations per engine. A new engine is an admin module and one entry here: a server
engine is a ``_Server`` naming its module, which defines ``SCHEMES``, ``safe_location``,
``server_keywords`` and the functions of ``engines/mysql_admin.py``."""


# ------------------------------------------------------------------ targets


def _locate(target: str, db_file: str | None) -> Target:
    if "://" in target:
        scheme = target.split("://", 1)[0]
        servers = {name: e for name, e in _ENGINES.items() if isinstance(e, _Server)}
        for name, engine in servers.items():
            if scheme.lower() in engine.schemes:
                return Target(name, target, engine.shown(target))
        known = [f"{e.schemes[0]}://" for e in servers.values()]
        verb = "is" if len(known) == 1 else "are"
        raise LocationError(f"{scheme}:// is not supported ({', '.join(known)} {verb})", scheme=scheme)
    if not os.path.exists(target):
        raise InspectionError(f"{target}: no such file or directory")
    if not os.path.isdir(target):
        _sqlite_admin.check_file(target)
        return Target("sqlite", target, target)
    names = os.listdir(target)
    if db_file is not None:
        path = os.path.join(target, db_file)
        if not os.path.isfile(path):
            raise InspectionError(f"{path}: no such file")
        return Target("sqlite", path, path)
    kind = _file.directory_kind(names)
    if kind is not None:
        return Target(kind, target, target)
    dbs = _sqlite_admin.databases(target, names)
    if len(dbs) == 1:
        return Target("sqlite", dbs[0], dbs[0])
    hint = ""
    if dbs:
        hint = f" (several databases: {', '.join(os.path.basename(d) for d in dbs)}; pick one with --db-file)"
    raise InspectionError(
        f"{target}: not a persistq queue directory "
        f"(no {_sqlite_admin.DEFAULT_DB_FILE}, {_file.META_FILE} or segment files){hint}"
    )


async def locate(target: str | os.PathLike[str] | Target, db_file: str | None = None) -> Target:
    """Which engine holds ``target``'s queues, and where.

    Args:
        target: a directory, a database file or a server URL (a
            :class:`Target` is returned as it is).
        db_file: the database file inside an SQLite queue directory (default:
            ``data.db``, or the directory's only ``*.db`` file).

    Raises:
        LocationError: a URL whose scheme no engine serves.
        InspectionError: the path does not exist or holds no queue.
        CorruptQueueError: a file that is not an SQLite database.
    """
    if isinstance(target, Target):
        return target
    return await _thread(_locate, os.fspath(target), db_file)


def _legacy_message(t: Target) -> str:
    return f"{t.path} is a persist-queue 1.x file queue; convert it once with: {_file.MIGRATE_HINT}"


async def _engine(target: str | os.PathLike[str] | Target, db_file: str | None) -> tuple[Target, _Admin]:
    t = await locate(target, db_file)
    if t.engine not in _ENGINES:
        raise InspectionError(_legacy_message(t))
    return t, _ENGINES[t.engine]


# ------------------------------------------------------------------ reading


async def inspect(
    target: str | os.PathLike[str] | Target, *, db_file: str | None = None, table: str | None = None
) -> StoreInfo:
    """Each queue's kind, serializer, counts per status, oldest item age and size.

    Args:
        target: see :func:`locate`.
        db_file: see :func:`locate`.
        table: only this queue: a table name (``queue_jobs``) or a queue name
            (``jobs``). Not for a file queue (one queue per directory). On a
            URL its ``?table=`` chooses when ``table`` is not given.

    A persist-queue 1.x file queue gives a :class:`StoreInfo` with no queues
    and a :attr:`~StoreInfo.hint` naming the migrate command.

    Raises:
        InspectionError: ``table`` names no queue, or several; the storage
            cannot be read.
    """
    t = await locate(target, db_file)
    if t.engine == "persist-queue-file":
        return await _thread(_file_admin.inspect_legacy, t.path)
    _, engine = await _engine(t, db_file)
    return await engine.inspect(t, table)


async def list_queues(
    target: str | os.PathLike[str] | Target, *, db_file: str | None = None, table: str | None = None
) -> list[QueueRef]:
    """The queues in ``target`` (those ``table`` names), without counting anything."""
    t, engine = await _engine(target, db_file)
    return await engine.list_queues(t, table)


async def peek(
    target: str | os.PathLike[str] | Target,
    *,
    db_file: str | None = None,
    table: str | None = None,
    n: int = 10,
    status: str = "ready",
) -> tuple[QueueRef, list[RawRecord]]:
    """The next ``n`` records of one queue in get order, as stored bytes, without taking them.

    Args:
        table: the queue (needed when ``target`` holds several).
        n: how many records at most.
        status: which records of an ack queue: ``"ready"``, ``"in_flight"``,
            ``"delayed"``, ``"failed"``, ``"acked"`` or ``"all"``. Other
            queues hold only ready records.

    Returns:
        The queue peeked at, and its records (decode them with the
        serializer its :attr:`~QueueRef.serializer` names, if you trust it).
    """
    if status not in PEEK_STATUSES:
        raise ValueError(f"status must be one of {', '.join(PEEK_STATUSES)}, not {status!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, not {n!r}")
    t, engine = await _engine(target, db_file)
    return await engine.peek(t, table, n, status)


async def verify(
    target: str | os.PathLike[str] | Target, *, db_file: str | None = None, table: str | None = None
) -> VerifyReport:
    """Check the storage: SQLite ``PRAGMA integrity_check`` (the whole database), MySQL
    ``CHECK TABLE`` (each queue table), file queue: metadata, segment headers and every
    record's checksum from the read position on (each damaged record with file and offset).

    Returns:
        What was checked and the problems found (:attr:`VerifyReport.ok`).
    """
    t, engine = await _engine(target, db_file)
    return await engine.verify(t, table)


async def segments(target: str | os.PathLike[str] | Target) -> tuple[list[SegmentReport], list[str]]:
    """A file queue's segment files from the read position on: intact records, damaged
    regions and an unfinished append per segment, and the directory's structural problems.

    Read-only and without the queue's lock (see :func:`persistq.engines.file.scan_segments`).
    """
    t = await locate(target)
    if t.engine != "file":
        raise InspectionError(f"{t.shown} is not a file queue: it has no segments")
    return await _thread(_file.scan_segments, t.path)


# ------------------------------------------------------------------ changing


async def purge(
    target: str | os.PathLike[str] | Target,
    *,
    db_file: str | None = None,
    table: str | None = None,
    in_flight: bool = False,
) -> dict[str, int]:
    """Delete every item of the queues ``table`` names (all queues in ``target`` for ``None``).

    SQLite and MySQL: one transaction deletes waiting, delayed, failed and
    acked items, and with ``in_flight`` also items consumers hold (got, not
    acked or done). A file queue is opened and drained (it must not be open
    elsewhere). Items are never decoded.

    Returns:
        Items deleted, per table (file queue: per directory name).
    """
    t, engine = await _engine(target, db_file)
    return await engine.purge(t, table, in_flight)


async def vacuum(
    target: str | os.PathLike[str] | Target, *, db_file: str | None = None, table: str | None = None
) -> VacuumResult:
    """Return free space to the file system.

    SQLite: ``VACUUM`` and a WAL checkpoint (the whole database; waits up to
    10 s for other writers). File queue: opens and closes it, which deletes
    consumed segments, stale temporary files and an unfinished append (it must
    not be open elsewhere). MySQL: ``OPTIMIZE TABLE`` (sizes are reported as 0).
    """
    t, engine = await _engine(target, db_file)
    return await engine.vacuum(t, table)


async def ack_queue(
    target: str | os.PathLike[str] | Target, *, db_file: str | None = None, table: str | None = None
) -> QueueRef:
    """The one ack queue ``table`` names (or the only ack queue in ``target``).

    Raises:
        InspectionError: ``target`` holds no ack queue, or several and
            ``table`` did not choose, or ``table`` names a queue of another kind.
    """
    t, engine = await _engine(target, db_file)
    if not isinstance(engine, _SQLEngine):
        raise InspectionError(
            f"{t.shown}: only SQLite and MySQL ack queues have failed or in-flight items to requeue"
        )
    from .engines.inspection import one

    queues = await engine.list_queues(t, None)
    if table is None:
        queues = [q for q in queues if q.ack]
    ref = one(queues, table, t.shown)
    if not ref.ack:
        raise InspectionError(
            f"{ref.table} is a {ref.kind}, not an ack queue: it has no failed items or leases"
        )
    return ref


async def _in_flight(engine: _Admin, t: Target, ref: QueueRef) -> int:
    info = await engine.inspect(t, ref.table)
    return info.queues[0].counts["in_flight"]


@asynccontextmanager
async def _opened(queue: Any) -> AsyncIterator[Any]:
    async with queue:
        yield queue


async def requeue(
    target: str | os.PathLike[str] | Target,
    *,
    db_file: str | None = None,
    table: str | None = None,
    failed: bool = True,
    expired: bool = True,
    all_in_flight: bool = False,
    ids: Sequence[int] | None = None,
) -> RequeueResult:
    """Make dead letters and stranded in-flight items of an ack queue ready again.

    Args:
        table: the ack queue (see :func:`ack_queue`).
        failed: make failed items (dead letters) ready, with fresh attempts.
        expired: give back in-flight items whose lease expired or whose
            consumer process is gone (never those of a live consumer).
        all_in_flight: give back every in-flight item, even a live
            consumer's (it may then be processed twice).
        ids: with ``failed``: only these failed items.

    The queue is opened with its own class, so its rules for leases and
    attempts apply.
    """
    if ids and not failed:
        raise ValueError("ids select failed items; they need failed=True")
    t, engine = await _engine(target, db_file)
    ref = await ack_queue(t, table=table)
    assert isinstance(engine, _SQLEngine)  # ack_queue refused the others
    before = await _in_flight(engine, t, ref)
    requeued = 0
    # auto_resume at open gives back items whose lease expired or whose
    # consumer process is gone; a live consumer's items are left alone.
    async with _opened(engine.open_ack(t, ref, expired)) as queue:
        if failed:
            requeued = await queue.requeue_failed(list(ids) if ids else None)
        if all_in_flight:
            await queue.resume_unack_tasks()
        if expired:
            await queue.counts()  # settles expired leases, as a get would
    after = await _in_flight(engine, t, ref)
    return RequeueResult(str(ref.table), requeued, max(0, before - after))


# ------------------------------------------------------------------ migrating


class _Counting:
    """Forwards to a serializer and reports each record read from a queue file (not its metadata)."""

    def __init__(self, inner: Any, tick: Callable[[], None]) -> None:
        self.NAME = _serializers.serializer_name(inner)
        self._inner = inner
        self._tick = tick

    def dumps(self, value: Any, **kwargs: Any) -> bytes:
        """As the wrapped serializer."""
        data: bytes = self._inner.dumps(value, **kwargs)
        return data

    def loads(self, data: bytes) -> Any:
        """As the wrapped serializer."""
        return self._inner.loads(data)

    def dump(self, value: Any, fp: Any, **kwargs: Any) -> None:
        """As the wrapped serializer."""
        self._inner.dump(value, fp, **kwargs)

    def load(self, fp: Any) -> Any:
        """As the wrapped serializer; counts records of the queue's data files."""
        value = self._inner.load(fp)
        if os.path.basename(str(getattr(fp, "name", ""))) != _file.LEGACY_INFO_FILE:
            self._tick()
        return value


def _is_database(src: str) -> bool:
    if os.path.isfile(src):
        return True
    if not os.path.isdir(src):
        return False
    names = os.listdir(src)
    return any(n.endswith(".db") for n in names) and _file.LEGACY_INFO_FILE not in names


Progress = Callable[[int, int, str], None]
"""``progress(done, total, unit)``: how far :func:`migrate` got, in ``"items"`` or ``"pages"``."""


def _migrate_file(src: str, dst: str, serializer: Any, progress: Progress | None) -> int:
    from .migrate import migrate_file_queue

    total = _file.legacy_queue_size(src, serializer)
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total, "items")

    if progress is not None:
        progress(0, total, "items")
    return migrate_file_queue(src, dst, _Counting(serializer, tick))


def _pages(progress: Progress, done: int, total: int) -> None:
    progress(done, total, "pages")


async def migrate(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    serializer: Any = "pickle",
    progress: Progress | None = None,
) -> MigrateResult:
    """Copy a persist-queue 1.x queue ``src`` into a new persistq queue ``dst``; ``src`` is left unchanged.

    A file-queue directory (``info``, ``q00000`` …) is converted: its waiting
    items are copied in order, durably, into a persistq file queue ``dst``
    (absent or empty), decoded and encoded again with ``serializer``. An
    SQLite database (a directory with ``*.db``, or the file) needs no
    conversion — persistq opens it in place — so it is copied consistently
    (safe while in use) into the new directory ``dst`` and checked.

    Args:
        serializer: the serializer a file queue was written with (a built-in
            name or an object with ``load``); ``"pickle"`` runs stored code.
        progress: called as ``progress(done, total, unit)`` while copying,
            ``unit`` ``"items"`` (a file queue) or ``"pages"`` (a database),
            from a worker thread.
    """
    src, dst = os.fspath(src), os.fspath(dst)
    if not await _thread(_is_database, src):
        codec = getattr(_serializers, serializer) if isinstance(serializer, str) else serializer
        moved = await _thread(_migrate_file, src, dst, codec, progress)
        return MigrateResult("file", src, dst, items=moved)
    t = await locate(src)
    if t.engine != "sqlite":
        raise InspectionError(f"{src}: not an SQLite database")
    pages = None if progress is None else functools.partial(_pages, progress)
    out, tables = await _thread(_sqlite_admin.copy_database, t.path, dst, _sqlite_kinds(), pages)
    return MigrateResult("sqlite", t.path, out, tables=tables)
