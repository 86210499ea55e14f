"""The blocking twin of :class:`persistq.PDict`: a real ``MutableMapping``.

Like the queue twins it holds no storage logic: every method forwards to the
async :class:`persistq.PDict` on the process's portal loop, one hand-off per
call (iteration: one per page of entries).
"""

from __future__ import annotations

import os
from collections.abc import ItemsView, Iterable, Iterator, KeysView, Mapping, MutableMapping, ValuesView
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, overload

from .. import serializers as _serializers
from ..pdict import MISSING, pairs_of
from ..pdict import PDict as _AsyncPDict
from ..queues._base import Durability
from ..queues.fifo import Location
from .queues import _SyncTwin

if TYPE_CHECKING:
    from _typeshed import SupportsKeysAndGetItem

__all__ = ("PDict",)


_V = TypeVar("_V")
_D = TypeVar("_D")


class _ItemsView(ItemsView[str, _V]):
    """``d.items()``: iterates pairs a page at a time (not one call per key)."""

    _mapping: PDict[_V]

    def __iter__(self) -> Iterator[tuple[str, _V]]:
        return self._mapping._pages("items")


class _ValuesView(ValuesView[_V]):
    """``d.values()``: iterates values a page at a time (not one call per key)."""

    _mapping: PDict[_V]

    def __iter__(self) -> Iterator[_V]:
        for _, value in self._mapping._pages("items"):
            yield value


class PDict(_SyncTwin, MutableMapping[str, _V]):
    """Blocking, thread-safe twin of :class:`persistq.PDict`: a persistent ``MutableMapping``.

    A drop-in for persist-queue's ``PDict`` (same constructor, plus
    ``serializer=``, ``db_file_name=``, ``durability=``, ``timeout=``), and a
    complete mapping: iteration, ``keys``/``values``/``items``, ``pop``,
    ``popitem``, ``setdefault``, ``update``, ``clear`` and ``==`` with any
    mapping all work on the stored data (persist-queue's raised
    ``NotImplementedError`` or silently acted on an empty in-memory dict).
    The constructor opens the database, so a bad path fails here.

    Keys are ``str`` (others raise ``TypeError``); entries keep insertion
    order, as a ``dict``; ``del d[missing]`` raises ``KeyError``. Iterating
    reads :data:`persistq.pdict.PAGE_SIZE` entries per call and is not a
    snapshot (no ``RuntimeError`` if the mapping changes meanwhile). See the
    async class for atomicity, durability and every parameter.

    Example::

        with persistq.sync.PDict("/var/lib/app", "settings") as d:
            d["color"] = "blue"
            assert d == {"color": "blue"}
    """

    _async_cls: ClassVar[type[Any]] = _AsyncPDict
    __hash__ = None  # type: ignore[assignment]

    def __init__(
        self,
        path: str | os.PathLike[str] | Location,
        name: str,
        multithreading: bool = False,
        *,
        serializer: Any = _serializers.pickle,
        db_file_name: str | None = None,
        durability: Durability = "full",
        timeout: float = 10.0,
    ) -> None:
        self._open_twin(
            path,
            name,
            multithreading,
            serializer=serializer,
            db_file_name=db_file_name,
            durability=durability,
            timeout=timeout,
        )
        d = self._q
        self.path: str = d.path
        self.name: str = d.name
        self.multithreading: bool = multithreading
        self.serializer: Any = d.serializer
        self.durability: str = d.durability
        self.timeout: float = d.timeout

    def open(self) -> None:
        """Open the storage (the constructor already did; idempotent)."""
        self._call("open")

    def __enter__(self) -> PDict[_V]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def _serializer(self) -> Any:
        """persist-queue's name for ``serializer`` (code written for it reads ``q._serializer``)."""
        return self._q.serializer

    def _pages(self, kind: str) -> Iterator[Any]:
        cursor: int | None = None
        while True:
            page, cursor = self._call("_page", kind, cursor)
            yield from page
            if cursor is None:
                return

    # --------------------------------------------------- the mapping protocol

    def __getitem__(self, key: str) -> _V:
        return self._call("_getitem", key)  # type: ignore[no-any-return]

    def __setitem__(self, key: str, value: _V) -> None:
        self._call("set", key, value)

    def __delitem__(self, key: str) -> None:
        self._call("delete", key)

    def __iter__(self) -> Iterator[str]:
        return self._pages("keys")

    def __len__(self) -> int:
        return self._call("len")  # type: ignore[no-any-return]

    def __contains__(self, key: object) -> bool:
        return self._call("contains", key)  # type: ignore[no-any-return]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mapping):
            return NotImplemented
        return self.to_dict() == dict(other.items())

    # ----------------------------------------------------- the named methods

    @overload
    def get(self, key: str) -> _V | None: ...
    @overload
    def get(self, key: str, default: _D) -> _V | _D: ...
    def get(self, key: str, default: Any = None) -> Any:
        """Return the value of ``key``, or ``default`` if it is not stored."""
        return self._call("get", key, default)

    def set(self, key: str, value: _V) -> None:
        """Store ``value`` under ``key`` (``d[key] = value``); durable on return."""
        self._call("set", key, value)

    def delete(self, key: str) -> None:
        """Delete ``key`` (``del d[key]``); raises ``KeyError`` if it is not stored."""
        self._call("delete", key)

    def contains(self, key: str) -> bool:
        """Whether ``key`` is stored (``key in d``)."""
        return self._call("contains", key)  # type: ignore[no-any-return]

    def len(self) -> int:
        """Number of entries (``len(d)``)."""
        return self._call("len")  # type: ignore[no-any-return]

    def keys(self) -> KeysView[str]:
        """A live view of the keys, in insertion order."""
        return KeysView(self)

    def values(self) -> ValuesView[_V]:
        """A live view of the values, in insertion order."""
        return _ValuesView(self)

    def items(self) -> ItemsView[str, _V]:
        """A live view of the ``(key, value)`` pairs, in insertion order."""
        return _ItemsView(self)

    def to_dict(self) -> dict[str, _V]:
        """A plain :class:`dict` copy of the contents (one consistent snapshot)."""
        return self._call("to_dict")  # type: ignore[no-any-return]

    @overload
    def pop(self, key: str) -> _V: ...
    @overload
    def pop(self, key: str, default: _D) -> _V | _D: ...
    def pop(self, key: str, default: Any = MISSING) -> Any:
        """Delete ``key`` and return its value, atomically (``KeyError`` without ``default``)."""
        return self._call("pop", key, default)

    def popitem(self) -> tuple[str, _V]:
        """Delete and return the last inserted ``(key, value)`` pair, atomically."""
        return self._call("popitem")  # type: ignore[no-any-return]

    def setdefault(self, key: str, default: _V | None = None) -> _V | None:  # type: ignore[override]
        """Return the value of ``key``, storing ``default`` first if it is missing (atomic)."""
        return self._call("setdefault", key, default)  # type: ignore[no-any-return]

    def update(
        self, other: SupportsKeysAndGetItem[str, _V] | Iterable[tuple[str, _V]] = (), /, **kwargs: _V
    ) -> None:
        """Store many entries in one transaction (all or none), as :meth:`dict.update`."""
        # Read ``other`` here: it may itself be a sync PDict, which cannot be
        # read from the portal thread.
        self._call("_update", pairs_of(other), kwargs)

    def clear(self) -> None:
        """Delete every entry, in one transaction; durable on return."""
        self._call("clear")
