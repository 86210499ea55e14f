"""The operations every ``PDict`` store offers, written once over the engines' ``_run`` and ``_sql_*`` jobs.

Each dict store (SQLite, MySQL, PostgreSQL) defines its SQL as ``_sql_get``,
``_sql_set``, ``_sql_undo_set``, ``_sql_restore``, ``_sql_pop``,
``_sql_popitem``, ``_sql_setdefault``, ``_sql_undo_setdefault``,
``_sql_contains``, ``_sql_len``, ``_sql_page``, ``_sql_clear`` and
``_sql_update`` jobs and runs them with its database's ``_run``; this mixin
holds the async methods (and their cancel-undo rules) around them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ._worker import Job
from .base import Entry, PageKind

__all__ = ("DictOperations",)

_R = TypeVar("_R")


class DictOperations:
    """The async methods of a dict store (see :class:`~persistq.engines.base.DictStore`).

    Put it first in the bases, before the engine's database class.
    """

    if TYPE_CHECKING:

        async def _run(
            self,
            fn: Callable[..., _R],
            *args: Any,
            kind: str = "write",
            undo: Callable[[_R], Job[Any]] | None = None,
        ) -> _R: ...

        _sql_get: Callable[..., bytes | None]
        _sql_set: Callable[..., Entry | None]
        _sql_undo_set: Callable[..., None]
        _sql_restore: Callable[..., None]
        _sql_pop: Callable[..., Entry | None]
        _sql_popitem: Callable[..., Entry | None]
        _sql_setdefault: Callable[..., bytes | None]
        _sql_undo_setdefault: Callable[..., None]
        _sql_contains: Callable[..., bool]
        _sql_len: Callable[..., int]
        _sql_page: Callable[..., list[Entry]]
        _sql_clear: Callable[..., int]
        _sql_update: Callable[..., None]

    def _stored_key(self, key: str) -> Any:
        """The form ``key`` is stored in (a store that limits keys raises here)."""
        return key

    async def get(self, key: str) -> bytes | None:
        """Return the data stored under ``key``, or ``None``."""
        return await self._run(self._sql_get, key, kind="read")

    async def set(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` (an upsert; an existing key keeps its place).

        Durable on return (per the durability mode). Cancel-atomic: a
        cancelled caller's change is undone.
        """

        self._stored_key(key)

        def undo(old: Entry | None) -> Job[None]:
            return Job(self._sql_undo_set, key, old)

        await self._run(self._sql_set, key, data, undo=undo)

    async def pop(self, key: str) -> bytes | None:
        """Delete ``key`` and return its data, or ``None`` if it was not stored.

        Atomic (one ``DELETE … RETURNING``) and cancel-atomic: a cancelled
        caller's entry goes back in its old place.
        """

        def undo(entry: Entry | None) -> Job[None]:
            return Job(self._sql_restore, [] if entry is None else [entry])

        entry = await self._run(self._sql_pop, key, undo=undo)
        return None if entry is None else entry[2]

    async def delete(self, key: str) -> bool:
        """Delete ``key``; return whether it was stored (cancel-atomic, as :meth:`pop`)."""
        return await self.pop(key) is not None

    async def popitem(self) -> tuple[str, bytes] | None:
        """Delete and return the most recently inserted entry, or ``None`` if empty.

        Atomic across processes and cancel-atomic.
        """

        def undo(entry: Entry | None) -> Job[None]:
            return Job(self._sql_restore, [] if entry is None else [entry])

        entry = await self._run(self._sql_popitem, undo=undo)
        return None if entry is None else (entry[1], entry[2])

    async def setdefault(self, key: str, data: bytes) -> bytes | None:
        """Store ``data`` under ``key`` unless the key exists (atomic).

        Returns:
            ``None`` if ``data`` was stored, else the data already stored.
        """

        self._stored_key(key)

        def undo(existing: bytes | None) -> Job[None]:
            return Job(self._sql_undo_setdefault, key, existing)

        return await self._run(self._sql_setdefault, key, data, undo=undo)

    async def contains(self, key: str) -> bool:
        """Whether ``key`` is stored."""
        return await self._run(self._sql_contains, key, kind="read")

    async def count(self) -> int:
        """Number of entries."""
        return await self._run(self._sql_len, kind="read")

    async def page(self, kind: PageKind, after: int | None, limit: int | None) -> list[Entry]:
        """Entries in insertion order, after ``seq`` ``after``, at most ``limit``.

        With ``kind="keys"`` the data of each entry is ``b""`` (not read).
        ``after=None`` starts at the first entry; ``limit=None`` reads to the
        end in one consistent snapshot.
        """
        return await self._run(self._sql_page, kind, after, limit, kind="read")

    async def clear(self) -> int:
        """Delete every entry; return how many there were.

        Runs to completion once it reached the storage thread, even if the
        caller is cancelled.
        """
        return await self._run(self._sql_clear)

    async def update(self, pairs: Sequence[tuple[str, bytes]]) -> None:
        """Store many entries in one transaction (all or none).

        Runs to completion once it reached the storage thread, even if the
        caller is cancelled.
        """
        await self._run(self._sql_update, [(self._stored_key(k), v) for k, v in pairs])
