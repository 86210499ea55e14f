"""The persistent mapping: :class:`PDict`, a ``str``-keyed dict on SQLite or a database server.

The async class lives here; :class:`persistq.sync.PDict` is its blocking twin
and a real :class:`collections.abc.MutableMapping`. Storage is a
:class:`~persistq.engines.base.DictStore` chosen by the location (bytes in,
bytes out); this module validates keys and turns values into bytes and back.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

import anyio
import anyio.lowlevel

from . import serializers as _serializers
from .engines.base import DictStore, Durability, Entry, PageKind, validate_durability, validate_name
from .engines.locations import Location, dict_store, parse_location
from .errors import QueueClosed, SerializationError

if TYPE_CHECKING:
    from _typeshed import SupportsKeysAndGetItem

__all__ = ("PDict",)

PAGE_SIZE = 500
"""Entries fetched per storage call while iterating."""


class _Missing:
    """The type of :data:`MISSING`."""

    def __repr__(self) -> str:
        return "<MISSING>"


MISSING: Any = _Missing()
"""Default of ``pop``'s ``default``: "raise ``KeyError`` if the key is missing"."""


def check_key(key: object) -> str:
    """Return ``key`` if it can be a PDict key, else raise ``TypeError`` / ``ValueError``."""
    if not isinstance(key, str):
        raise TypeError(
            f"PDict keys are str, not {type(key).__name__} ({key!r}); "
            "convert the key yourself (persist-queue stored str(key) silently)"
        )
    try:
        key.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"PDict key {key!r} cannot be stored as UTF-8 text: {exc}") from exc
    return key


def pairs_of(other: SupportsKeysAndGetItem[str, Any] | Iterable[tuple[str, Any]]) -> list[tuple[Any, Any]]:
    """The ``(key, value)`` pairs of ``dict.update``'s positional argument, read now."""
    if isinstance(other, Mapping):
        return list(other.items())
    if hasattr(other, "keys"):
        keyed: Any = other
        return [(k, keyed[k]) for k in keyed.keys()]  # noqa: SIM118 - dict.update reads keys()
    pairs = []
    for pair in other:
        key, value = pair
        pairs.append((key, value))
    return pairs


def missing_key(key: str) -> KeyError:
    """The ``KeyError`` of a missing key, with persist-queue's message."""
    return KeyError(f"Key: {key} not exists.")


_V = TypeVar("_V")
_D = TypeVar("_D")


class PDict(Generic[_V]):
    """A persistent mapping from ``str`` keys to values, on SQLite (async; asyncio and trio).

    Python's mapping protocol is synchronous, so this async class spells it
    with coroutine methods (:class:`persistq.sync.PDict` is the blocking twin,
    a real :class:`~collections.abc.MutableMapping`)::

        async with persistq.PDict("/var/lib/app", "settings") as d:
            await d.set("color", "blue")          # d["color"] = "blue"
            color = await d.get("color")           # d.get("color")
            n = await d.len()                      # len(d)
            async for key in d:                    # for key in d
                ...
            await d.delete("color")                # del d["color"]

    Semantics:

    * **Keys are** ``str`` (other types raise ``TypeError``); values are
      anything the serializer encodes. A value that cannot be encoded raises
      :class:`~persistq.errors.SerializationError` and nothing is written.
    * **Order** is insertion order, as a :class:`dict`: replacing a value
      keeps the key's place; a deleted key that comes back goes to the end;
      :meth:`popitem` takes the last one.
    * **Durability**: every write is committed (and with
      ``durability="full"`` fsync'd) when it returns.
    * **Atomicity**: each method is one transaction, so :meth:`pop`,
      :meth:`popitem`, :meth:`setdefault` and :meth:`update` are atomic
      across tasks, threads and processes sharing the database. ``set``,
      ``delete``, ``pop``, ``popitem`` and ``setdefault`` are cancel-atomic:
      either the call returns, or it raises the cancellation and nothing
      changed. ``update`` and ``clear`` complete once they have reached the
      storage thread.
    * **Iteration** (``async for``) reads the entries in pages of
      :data:`PAGE_SIZE`, so a huge mapping is never loaded at once. It is not
      a snapshot: entries added or removed meanwhile may or may not be seen
      (no error is raised, unlike a ``dict``). :meth:`keys`, :meth:`values`,
      :meth:`items` and :meth:`to_dict` read one consistent snapshot.

    The table is persist-queue's ``dict_{name} (key TEXT PRIMARY KEY, data
    BLOB)``: a database written by persist-queue's ``PDict`` opens in place,
    and stays readable by it.

    Args:
        path: an existing SQLite database file, else the directory of the
            database (created owner-only if missing), or ``":memory:"``, or a
            server URL (``mysql://…``, ``postgresql://…``); as
            :class:`~persistq.FIFOQueue`'s ``path``.
        name: the mapping's name; the table is ``dict_{name}``. 1-64 ASCII
            letters, digits, ``_`` or ``-``.
        multithreading: accepted for compatibility; every PDict is
            thread-safe.
        serializer: ``persistq.serializers.pickle`` (default, as
            persist-queue), ``json``, ``msgpack``, ``cbor2``, or any object
            with ``dumps``/``loads`` or ``dump``/``load``.
        db_file_name: the database file in the directory ``path`` (default
            ``data.db``).
        durability: ``"full"`` (default; fsync'd when a write returns),
            ``"normal"`` (survives a process crash) or ``"off"``.
        timeout: seconds to wait for another connection's write lock before
            an operation fails with :class:`~persistq.errors.StorageError`.

    Raises:
        InvalidName: ``name`` is not allowed.
        TypeError: the serializer has neither ``dumps``/``loads`` nor
            ``dump``/``load`` (or only asynchronous ones).
        ValueError: a bad ``durability`` or ``timeout``.
    """

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
        validate_name(name)
        self._codec = _serializers.Codec(serializer)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0:
            raise ValueError(f"'timeout' must be a non-negative number of seconds, not {timeout!r}")
        location = parse_location(path)
        self.path = location.display
        """Where the mapping is stored: the path, or the server URL without its password."""
        self.name = name
        self.multithreading = multithreading
        self.serializer = serializer
        self.durability = validate_durability(durability)
        self.timeout = float(timeout)
        self._store: DictStore = dict_store(
            location,
            name,
            _serializers.serializer_name(serializer),
            db_file_name=db_file_name,
            durability=self.durability,
            timeout=self.timeout,
        )
        self._state = "new"
        self._open_lock: anyio.Lock | None = None

    # ----------------------------------------------------------- life cycle

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._state == "closed"

    async def open(self) -> None:
        """Open the storage now (otherwise the first operation does).

        Raises:
            StorageError: the path or database cannot be used.
            SerializerMismatch: the table was written with another serializer.
        """
        await self._ensure_open()

    async def _ensure_open(self) -> None:
        await anyio.lowlevel.checkpoint_if_cancelled()
        if self._state == "open":
            return
        if self._state == "closed":
            raise QueueClosed("the PDict is closed")
        if self._open_lock is None:
            self._open_lock = anyio.Lock()
        async with self._open_lock:
            if self._state == "closed":
                raise QueueClosed("the PDict is closed")
            if self._state == "new":
                await self._store.open()
                self._state = "open"

    async def close(self) -> None:
        """Release the storage (idempotent); every write already returned is stored."""
        if self._state == "closed":
            return
        self._state = "closed"
        with anyio.CancelScope(shield=True):
            await self._store.close()

    async def aclose(self) -> None:
        """Same as :meth:`close`."""
        await self.close()

    async def __aenter__(self) -> PDict[_V]:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __del__(self) -> None:
        if getattr(self, "_state", "closed") == "open" and self._store.is_open:
            # Clean up before warning: a warnings filter may turn the warning into an error.
            self._state = "closed"
            self._store.close_nowait()
            warnings.warn(
                f"persistq PDict {self.path!r} ({self.name!r}) was not closed",
                ResourceWarning,
                stacklevel=2,
            )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} path={self.path!r} name={self.name!r} {self._state}>"

    # -------------------------------------------------------------- helpers

    def _encode(self, value: Any) -> bytes:
        return self._codec.encode(value)

    def _decode(self, key: str, data: bytes) -> Any:
        try:
            return self._codec.decode(data)
        except Exception as exc:
            raise SerializationError(
                f"the value of key {key!r} in {self._store.db_path} cannot be decoded with "
                f"{self._codec.name}: {exc}"
            ) from exc

    async def _page(self, kind: PageKind, after: int | None) -> tuple[list[Any], int | None]:
        """One page of keys (``kind="keys"``) or ``(key, value)`` pairs, in order.

        Returns:
            The page and the cursor of the next one (``None`` after the last).
        """
        await self._ensure_open()
        entries = await self._store.page(kind, after, PAGE_SIZE)
        cursor = entries[-1][0] if len(entries) == PAGE_SIZE else None
        if kind == "keys":
            return [e[1] for e in entries], cursor
        return [(e[1], self._decode(e[1], e[2])) for e in entries], cursor

    async def _snapshot(self, kind: PageKind) -> list[Entry]:
        await self._ensure_open()
        return await self._store.page(kind, None, None)

    # ----------------------------------------------------------- reading

    @overload
    async def get(self, key: str) -> _V | None: ...
    @overload
    async def get(self, key: str, default: _D) -> _V | _D: ...
    async def get(self, key: str, default: Any = None) -> Any:
        """Return the value of ``key``, or ``default`` if it is not stored.

        Raises:
            TypeError: ``key`` is not a ``str``.
            SerializationError: the stored value cannot be decoded.
        """
        check_key(key)
        await self._ensure_open()
        data = await self._store.get(key)
        return default if data is None else self._decode(key, data)

    async def _getitem(self, key: str) -> _V:
        """Return the value of ``key`` (``d[key]``; the sync twin's ``__getitem__``).

        Raises:
            KeyError: ``key`` is not stored (message ``'Key: {key} not exists.'``,
                as persist-queue).
            TypeError: ``key`` is not a ``str``.
        """
        check_key(key)
        await self._ensure_open()
        data = await self._store.get(key)
        if data is None:
            raise missing_key(key)
        return self._decode(key, data)  # type: ignore[no-any-return]

    async def contains(self, key: str) -> bool:
        """Whether ``key`` is stored (``key in d``).

        Raises:
            TypeError: ``key`` is not a ``str``.
        """
        check_key(key)
        await self._ensure_open()
        return await self._store.contains(key)

    async def len(self) -> int:
        """Number of entries (``len(d)``), counted by the database."""
        await self._ensure_open()
        return await self._store.count()

    async def keys(self) -> list[str]:
        """Every key, in insertion order (one consistent snapshot)."""
        return [e[1] for e in await self._snapshot("keys")]

    async def values(self) -> list[_V]:
        """Every value, in insertion order (one consistent snapshot)."""
        return [self._decode(e[1], e[2]) for e in await self._snapshot("items")]

    async def items(self) -> list[tuple[str, _V]]:
        """Every ``(key, value)`` pair, in insertion order (one consistent snapshot)."""
        return [(e[1], self._decode(e[1], e[2])) for e in await self._snapshot("items")]

    async def to_dict(self) -> dict[str, _V]:
        """A plain :class:`dict` copy of the contents (one consistent snapshot)."""
        return dict(await self.items())

    async def __aiter__(self) -> AsyncIterator[str]:
        """Yield the keys in insertion order, :data:`PAGE_SIZE` per storage call."""
        cursor: int | None = None
        while True:
            keys, cursor = await self._page("keys", cursor)
            for key in keys:
                yield key
            if cursor is None:
                return

    # ----------------------------------------------------------- writing

    async def set(self, key: str, value: _V) -> None:
        """Store ``value`` under ``key`` (``d[key] = value``); durable on return.

        Replacing a value keeps the key's place in the order. Cancel-atomic.

        Raises:
            TypeError: ``key`` is not a ``str``.
            SerializationError: ``value`` cannot be encoded; nothing was written.
        """
        check_key(key)
        data = self._encode(value)
        await self._ensure_open()
        await self._store.set(key, data)

    async def delete(self, key: str) -> None:
        """Delete ``key`` (``del d[key]``); durable on return. Cancel-atomic.

        Raises:
            KeyError: ``key`` is not stored (persist-queue ignored this).
            TypeError: ``key`` is not a ``str``.
        """
        check_key(key)
        await self._ensure_open()
        if not await self._store.delete(key):
            raise missing_key(key)

    @overload
    async def pop(self, key: str) -> _V: ...
    @overload
    async def pop(self, key: str, default: _D) -> _V | _D: ...
    async def pop(self, key: str, default: Any = MISSING) -> Any:
        """Delete ``key`` and return its value, atomically; cancel-atomic.

        Args:
            key: the key.
            default: returned if ``key`` is not stored; without it a missing
                key raises ``KeyError``.

        Raises:
            KeyError: ``key`` is not stored and no ``default`` was given.
            TypeError: ``key`` is not a ``str``.
            SerializationError: the stored value cannot be decoded (the entry
                is deleted all the same).
        """
        check_key(key)
        await self._ensure_open()
        data = await self._store.pop(key)
        if data is None:
            if default is MISSING:
                raise missing_key(key)
            return default
        return self._decode(key, data)

    async def popitem(self) -> tuple[str, _V]:
        """Delete and return the last inserted ``(key, value)`` pair, as :meth:`dict.popitem`.

        Atomic across processes (no two callers get the same entry) and
        cancel-atomic.

        Raises:
            KeyError: the mapping is empty.
        """
        await self._ensure_open()
        entry = await self._store.popitem()
        if entry is None:
            raise KeyError("popitem(): PDict is empty")
        return entry[0], self._decode(entry[0], entry[1])

    async def setdefault(self, key: str, default: _V | None = None) -> _V | None:
        """Return the value of ``key``, storing ``default`` first if it is missing.

        Atomic: of several concurrent callers (in any process), exactly one
        stores its default and all return the same value. Cancel-atomic.

        Raises:
            TypeError: ``key`` is not a ``str``.
            SerializationError: ``default`` cannot be encoded; nothing was
                written (it is encoded even when the key exists).
        """
        check_key(key)
        data = self._encode(default)
        await self._ensure_open()
        existing = await self._store.setdefault(key, data)
        return default if existing is None else self._decode(key, existing)

    async def update(
        self, other: SupportsKeysAndGetItem[str, Any] | Iterable[tuple[str, Any]] = (), /, **kwargs: Any
    ) -> None:
        """Store many entries in one transaction (all or none), as :meth:`dict.update`.

        Args:
            other: a mapping, or an iterable of ``(key, value)`` pairs.
            **kwargs: more entries.

        Raises:
            TypeError: a key is not a ``str``; nothing was written.
            SerializationError: a value cannot be encoded; nothing was written.
        """
        await self._update(pairs_of(other), kwargs)

    async def _update(self, pairs: Iterable[tuple[Any, Any]], kwargs: Mapping[str, Any]) -> None:
        encoded = [(check_key(k), self._encode(v)) for k, v in pairs]
        encoded += [(check_key(k), self._encode(v)) for k, v in kwargs.items()]
        await self._ensure_open()
        if not encoded:
            await anyio.lowlevel.checkpoint()
            return
        await self._store.update(encoded)

    async def clear(self) -> None:
        """Delete every entry, in one transaction; durable on return."""
        await self._ensure_open()
        await self._store.clear()
