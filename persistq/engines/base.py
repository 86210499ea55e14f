"""The engine interface: what every storage engine offers the queue kinds.

A queue kind (FIFO, FILO, unique, priority, the four ack kinds, ``PDict``)
is written once against the three protocols here and knows no SQL dialect.
Each SQL engine (SQLite, MySQL/MariaDB, PostgreSQL) implements them in its own
modules and owns all of its SQL; :mod:`persistq.engines.locations` picks the
engine from the location a user gives (a directory or a server URL).

Engines move **bytes**: kinds encode items with their serializer before a put
and decode after a claim. Every operation is one transaction: it commits
entirely or leaves nothing behind, and once it returns it is as durable as the
engine's durability makes commits. ``put`` and ``claim`` are cancel-atomic: a
cancelled caller's rows are removed again / get their previous state back.

Rows are plain tuples (cheap to build on storage threads):

* :data:`Row` ``(_id, data, timestamp, priority)`` — a stored item;
* :data:`NewRow` ``(data, timestamp, priority)`` — an item to store;
* :data:`AckRow` ``(_id, data, timestamp, priority, status, attempts)``;
* :data:`Entry` ``(seq, key, data)`` — a ``PDict`` entry.

``priority`` is ``None`` except on priority tables. Statuses of ack rows are
persist-queue's (:data:`INITED`, :data:`READY`, :data:`UNACK`, :data:`ACKED`,
:data:`ACK_FAILED`) plus :data:`DELAYED` (nacked with a delay).

To add an engine: write its module(s) implementing these protocols, then add
its URL scheme to :mod:`persistq.engines.locations`; no kind changes.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from ..errors import InvalidName

__all__ = (
    "ACKED",
    "ACK_FAILED",
    "DELAYED",
    "INITED",
    "NAME_PATTERN",
    "ORDER_BY",
    "READY",
    "UNACK",
    "AckBefore",
    "AckClaim",
    "AckRow",
    "AckStore",
    "AckTableSpec",
    "DictStore",
    "Durability",
    "Entry",
    "NewRow",
    "Order",
    "PageKind",
    "PendingRow",
    "QueueStore",
    "Row",
    "Store",
    "TableSpec",
    "Watchable",
    "now",
    "validate_durability",
    "validate_name",
)

Durability = Literal["full", "normal", "off"]
"""``"full"``: fsync'd on return; ``"normal"``: survives a process crash; ``"off"``."""
Order = Literal["fifo", "filo", "priority"]
"""Which waiting item a claim takes first."""

Row = tuple[int, bytes, float, "int | None"]
"""A stored item: ``(_id, data, timestamp, priority)`` (priority ``None`` unless a priority queue)."""
NewRow = tuple[bytes, float, "int | None"]
"""An item to store: ``(data, timestamp, priority)``."""
PendingRow = tuple[int, bytes, float, str, "int | None"]
"""An item got and not yet done: ``(_id, data, timestamp, owner, priority)``."""
AckRow = tuple[int, bytes, float, "int | None", int, int]
"""A delivered ack row: ``(_id, data, timestamp, priority, status, attempts)``."""
AckBefore = tuple[int, int, int, "float | None", "str | None", "float | None"]
"""What a claim changed, to undo it: ``(_id, status, attempts, lease, owner, ready_at)``."""
Entry = tuple[int, str, bytes]
"""A stored ``PDict`` entry: ``(seq, key, data)``; ``seq`` orders entries by insertion."""
PageKind = Literal["keys", "items"]

INITED, READY, UNACK, DELAYED, ACKED, ACK_FAILED = 0, 1, 2, 3, 5, 9

ORDER_BY: dict[str, str] = {"fifo": "_id ASC", "filo": "_id DESC", "priority": "priority ASC, _id ASC"}
"""The ``ORDER BY`` of each :data:`Order` over a queue table's ``_id`` and ``priority`` columns."""

NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
"""What a valid queue or table name matches (whole)."""
_DURABILITIES = ("full", "normal", "off")


def validate_name(name: object) -> str:
    """Return ``name`` if it is a valid queue or table name, else raise :class:`InvalidName`.

    Names are 1-64 ASCII letters, digits, ``_`` or ``-``: safe to quote in any
    SQL dialect and as a file name.
    """
    if not isinstance(name, str):
        raise InvalidName(name, "a name must be a str")
    if not NAME_PATTERN.fullmatch(name):
        raise InvalidName(name)
    return name


def validate_durability(durability: object) -> Durability:
    """Return ``durability`` if it is ``"full"``, ``"normal"`` or ``"off"``, else raise ``ValueError``."""
    if durability not in _DURABILITIES:
        raise ValueError(f"durability must be 'full', 'normal' or 'off', not {durability!r}")
    return durability  # type: ignore[return-value]


def now() -> float:
    """The timestamp stored with each item (seconds since the epoch)."""
    return time.time()


@dataclass(frozen=True)
class TableSpec:
    """What a queue kind needs from its table.

    Attributes:
        table: the table name, e.g. ``queue_default`` (validated).
        order: ``"fifo"`` (lowest ``_id`` first), ``"filo"`` (highest first) or
            ``"priority"`` (lowest ``priority`` first, then lowest ``_id``).
        unique: the table refuses a second copy of stored bytes: a put of a
            duplicate stores nothing and its id is ``None``.
        legacy: persist-queue's async table for this kind (``queue``,
            ``filo_queue``, ``unique_queue``: no name suffix), used instead of
            ``table`` when the database holds it and not ``table`` (SQLite only).
    """

    table: str
    order: Order = "fifo"
    unique: bool = False
    legacy: str | None = None


@dataclass(frozen=True)
class AckTableSpec:
    """What an ack queue kind needs from its table (see :class:`TableSpec`)."""

    table: str
    order: Order = "fifo"
    unique: bool = False


@dataclass(frozen=True)
class AckClaim:
    """The result of an ack claim: the rows got, how to undo it, and when a row may next become due."""

    rows: list[AckRow]
    before: list[AckBefore]
    next_due: float | None


@runtime_checkable
class Store(Protocol):
    """What every store has: its life cycle and change detection.

    ``db_path`` names the storage in messages (a file path, or a URL without
    its password). ``data_version()`` changes whenever another connection
    committed a change (kinds poll it while they wait). An engine whose server
    can push changes sets ``notifies = True`` and implements ``watch``.
    """

    db_path: str
    serializer_name: str
    notifies: bool

    @property
    def is_open(self) -> bool:
        """Whether :meth:`open` succeeded and :meth:`close` was not called."""
        ...

    async def open(self) -> None:
        """Connect and create the tables if missing (idempotent)."""
        ...

    async def close(self) -> None:
        """Release connections and threads (idempotent)."""
        ...

    def close_nowait(self) -> None:
        """Release what can be released without waiting (from ``__del__``)."""
        ...

    async def data_version(self) -> int:
        """A number that changes when another connection commits a change to this store."""
        ...

    async def vacuum(self) -> None:
        """Give free space back (SQLite ``VACUUM``, MySQL ``OPTIMIZE TABLE``, PostgreSQL ``VACUUM``)."""
        ...


@runtime_checkable
class Watchable(Protocol):
    """A store whose server pushes changes (``notifies = True``): kinds wake on them instead of polling."""

    def watch(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` (from any thread) whenever the store changes elsewhere; return an unsubscribe.

        Also called once after a lost connection to the server came back
        (changes may have been missed). ``callback`` must be cheap and not raise.
        """
        ...


@runtime_checkable
class QueueStore(Store, Protocol):
    """Storage of the plain queue kinds (FIFO, FILO, unique, priority).

    Waiting items are claimed in the order of :attr:`TableSpec.order`. With an
    ``owner`` a claimed item moves to a pending area until :meth:`finish`
    (``auto_commit=False``); :meth:`release` and :meth:`recover` put pending
    items back under their old ids, so they regain their old places.
    """

    spec: TableSpec
    legacy_rows_possible: bool

    async def put(
        self, items: Sequence[NewRow], maxsize: int = 0, alts: Sequence[bytes | None] | None = None
    ) -> list[int | None] | None:
        """Store ``items`` in one transaction; their ids (``None`` for a unique duplicate).

        ``None`` instead of a list when ``maxsize > 0`` would be passed
        (nothing stored). ``alts``: per item, an older encoding an equal
        stored item may have (unique SQLite tables written by persist-queue).
        """
        ...

    def put_now(
        self, items: Sequence[NewRow], maxsize: int = 0, alts: Sequence[bytes | None] | None = None
    ) -> Any:
        """:meth:`put` done synchronously on the calling loop thread, or ``NOT_NOW``."""
        ...

    async def claim(self, n: int = 1, item_id: int | None = None, owner: str | None = None) -> list[Row]:
        """Take up to ``n`` items (or the item ``item_id``) in queue order; pending under ``owner``."""
        ...

    def claim_now(self, n: int = 1, item_id: int | None = None, owner: str | None = None) -> Any:
        """:meth:`claim` done synchronously on the calling loop thread, or ``NOT_NOW``."""
        ...

    async def restore(self, rows: Sequence[Row], from_pending: bool = False) -> None:
        """Put claimed ``rows`` back under their ids (a delivery that failed)."""
        ...

    async def finish(self, ids: Sequence[int]) -> None:
        """Delete pending items for good (``task_done``)."""
        ...

    async def release(self, owner: str) -> int:
        """Put every pending item of ``owner`` back; how many."""
        ...

    async def recover(self, alive: Callable[[str], bool]) -> int:
        """Put back pending items of owners ``alive`` says are dead; how many."""
        ...

    async def count(self) -> int:
        """Items waiting."""
        ...

    def count_blocking(self) -> int:
        """:meth:`count` from any thread, blocking."""
        ...

    async def rows(self) -> list[Row]:
        """Every waiting item, in queue order."""
        ...

    async def update(self, item_id: int, data: bytes) -> None:
        """Replace the data of item ``item_id`` (waiting or pending); ``ItemNotFound`` if neither."""
        ...


@runtime_checkable
class AckStore(Store, Protocol):
    """Storage of the ack queue kinds: rows with a status, leases, attempts and dead letters.

    Expired leases and due delays are swept by the claims themselves (on the
    engine's clock: the server's for server engines), so every process sees
    the same state without a background thread.
    """

    spec: AckTableSpec
    max_attempts: int
    legacy_rows_possible: bool

    async def put(
        self,
        items: Sequence[NewRow],
        maxsize: int = 0,
        alts: Sequence[bytes | None] | None = None,
    ) -> list[int | None] | None:
        """Store ready rows; as :meth:`QueueStore.put`."""
        ...

    def put_now(
        self, items: Sequence[NewRow], maxsize: int = 0, alts: Sequence[bytes | None] | None = None
    ) -> Any:
        """:meth:`put` done synchronously on the calling loop thread, or ``NOT_NOW``."""
        ...

    async def claim(
        self,
        n: int,
        item_id: int | None,
        after_id: int | None,
        owner: str,
        lease: float | None,
        max_attempts: int,
    ) -> AckClaim:
        """Deliver up to ``n`` ready rows (status ``UNACK``, lease ``lease`` seconds, attempts + 1).

        ``item_id``: that row only; ``after_id``: rows after it in queue order.
        """
        ...

    async def set_final(self, ids: Sequence[int], status: int, keep_acked: int | None) -> None:
        """Mark delivered rows ``ACKED`` or ``ACK_FAILED``; trim acked rows beyond ``keep_acked``."""
        ...

    async def nack(self, ids: Sequence[int], delay: float, max_attempts: int) -> None:
        """Make delivered rows ready again (after ``delay`` seconds), or failed past ``max_attempts``."""
        ...

    async def extend(self, item_id: int, seconds: float) -> float:
        """Extend a delivered row's lease; the new lease end (local clock)."""
        ...

    async def resume(self, alive: Callable[[str], bool] | None, max_attempts: int) -> int:
        """Make rows delivered to dead owners (or every owner, ``alive=None``) ready; how many."""
        ...

    async def release(self, owner: str, max_attempts: int) -> int:
        """Make rows delivered to ``owner`` ready again; how many."""
        ...

    async def requeue_failed(self, ids: Sequence[int] | None) -> int:
        """Make dead letters (``ACK_FAILED``) ready again (all, or ``ids``); how many."""
        ...

    async def clear_acked(self, max_delete: int | None, keep_latest: int, clear_failed: bool) -> int:
        """Delete acked (and, with ``clear_failed``, failed) rows, and a unique table's
        fingerprints of trimmed acked rows; how many."""
        ...

    async def forget_acked(self, older_than: float) -> int:
        """Delete acked rows and fingerprints of items put more than ``older_than`` seconds ago; how many."""
        ...

    async def count(self) -> int:
        """Rows ready to deliver."""
        ...

    def count_blocking(self) -> int:
        """:meth:`count` from any thread, blocking."""
        ...

    async def counts(self, max_attempts: int = 0) -> dict[int, int]:
        """Rows per status."""
        ...

    async def rows(self, status: int | None = None) -> list[tuple[Any, ...]]:
        """Every row (or those with ``status``), in queue order."""
        ...

    async def update(self, item_id: int, data: bytes) -> None:
        """Replace the data of row ``item_id``; ``ItemNotFound`` if absent."""
        ...


@runtime_checkable
class DictStore(Store, Protocol):
    """Storage of :class:`persistq.PDict`: ``str`` keys, ``bytes`` values, in insertion order.

    Compound operations (``pop``, ``popitem``, ``setdefault``, ``update``) are
    one transaction each, atomic across threads and processes.
    """

    async def get(self, key: str) -> bytes | None:
        """The value of ``key``, or ``None``."""
        ...

    async def set(self, key: str, data: bytes) -> None:
        """Set ``key``; an existing key keeps its place."""
        ...

    async def pop(self, key: str) -> bytes | None:
        """Remove ``key``; its value, or ``None``."""
        ...

    async def delete(self, key: str) -> bool:
        """Remove ``key``; whether it existed."""
        ...

    async def popitem(self) -> tuple[str, bytes] | None:
        """Remove the last-inserted entry; it, or ``None`` when empty."""
        ...

    async def setdefault(self, key: str, data: bytes) -> bytes | None:
        """Set ``key`` if missing; the existing value, or ``None`` if it was set."""
        ...

    async def contains(self, key: str) -> bool:
        """Whether ``key`` is stored."""
        ...

    async def count(self) -> int:
        """Entries stored."""
        ...

    async def page(self, kind: PageKind, after: int | None, limit: int | None) -> list[Entry]:
        """Entries after ``seq`` ``after`` (from the start with ``None``), at most ``limit``."""
        ...

    async def clear(self) -> int:
        """Delete every entry; how many."""
        ...

    async def update(self, pairs: Sequence[tuple[str, bytes]]) -> None:
        """Set every pair in one transaction."""
        ...
