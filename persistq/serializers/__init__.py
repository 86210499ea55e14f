"""Serializers: turn items into bytes and back.

A serializer is any object (usually a module) with either pair of functions,
or both:

* ``dumps(value) -> bytes`` and ``loads(data: bytes) -> value`` (what
  persist-queue's SQL queues, ``PDict`` and ``MySQLQueue`` call);
* ``dump(value, fp)`` and ``load(fp)``, which write and read one record on a
  binary stream (what persist-queue's file ``Queue`` calls).

Every queue kind, file or SQL, accepts either shape: :class:`Codec` turns a
serializer into the two bytes functions persistq calls. With both pairs,
``dumps``/``loads`` are used. A serializer of the stream shape gets each
record in a buffer of its own, so ``load`` may read to the end of the buffer
(it must read exactly what ``dump`` wrote). Serializers are called
synchronously: an ``async def`` ``dump``/``load`` (accepted by persist-queue's
``AsyncQueue``) is refused with ``TypeError``.

``dumps`` and ``dump`` may also accept ``sort_keys=True`` (all four built-in
serializers do), which makes equal values produce equal bytes whatever the key
order of their dicts, at every depth.

The built-ins are importable without any extra import:
``persistq.serializers.pickle`` (the default), ``json``, ``msgpack`` and
``cbor2``. The last two need the ``msgpack`` / ``cbor2`` extras; without them
their functions raise :class:`~persistq.errors.MissingDependencyError`.

Security: ``pickle`` runs code stored in the queue's files when it loads
them. A queue that someone untrusted can write to must use ``json``,
``msgpack`` or ``cbor2``; none of those ever falls back to pickle.
"""

from __future__ import annotations

import inspect
import io
from collections.abc import Callable
from typing import Any, BinaryIO, Protocol, runtime_checkable

from ..errors import SerializationError as _SerializationError
from . import cbor2, json, msgpack, pickle
from ._canonical import canonical as _canonical

__all__ = (
    "Codec",
    "Serializer",
    "StreamSerializer",
    "cbor2",
    "encode",
    "json",
    "msgpack",
    "pickle",
    "serializer_name",
    "stream_loader",
)


@runtime_checkable
class Serializer(Protocol):
    """A serializer of the bytes shape (persist-queue's SQL queues)."""

    def dumps(self, value: Any) -> bytes:
        """Encode one value to bytes."""

    def loads(self, data: bytes) -> Any:
        """Decode bytes produced by :meth:`dumps`."""


@runtime_checkable
class StreamSerializer(Protocol):
    """A serializer of the stream shape (persist-queue's file ``Queue``)."""

    def dump(self, value: Any, fp: BinaryIO) -> None:
        """Write one record for ``value`` to ``fp``."""

    def load(self, fp: BinaryIO) -> Any:
        """Read one record written by :meth:`dump` from ``fp``."""


def serializer_name(serializer: object) -> str:
    """Return the name under which a queue records its serializer.

    The built-ins record ``pickle``, ``json``, ``msgpack`` or ``cbor2``; a custom
    serializer records its ``NAME`` attribute if it has one, else its module or
    class name.
    """
    if isinstance(serializer, Codec):
        return serializer.name
    name = getattr(serializer, "NAME", None)
    if isinstance(name, str) and name:
        return name
    module_name = getattr(serializer, "__name__", None)
    if isinstance(module_name, str):
        return module_name
    return type(serializer).__qualname__


def _takes_sort_keys(fn: Callable[..., Any]) -> bool:
    try:
        return "sort_keys" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _is_async(fn: Callable[..., Any]) -> bool:
    # An object whose __call__ is ``async def`` is a coroutine function in all but name.
    call = None if inspect.isroutine(fn) else type(fn).__call__
    return inspect.iscoroutinefunction(fn) or (call is not None and inspect.iscoroutinefunction(call))


class Codec:
    """A serializer of either shape, seen as the two bytes functions persistq calls.

    Built once per queue object from the user's serializer, which stays
    untouched (``Codec.serializer``). ``dumps``/``loads`` are used when the
    serializer has both; otherwise ``dump``/``load`` through an in-memory
    buffer, one record per buffer.

    Args:
        serializer: a module or object with ``dumps``/``loads`` and/or
            ``dump``/``load`` (or a ``Codec``, taken as is).

    Raises:
        TypeError: the serializer has neither pair, or only asynchronous ones.
    """

    __slots__ = ("_decode", "_dumps", "_sort", "name", "serializer", "stream")

    def __init__(self, serializer: Any) -> None:
        if isinstance(serializer, Codec):
            serializer = serializer.serializer
        self.serializer: Any = serializer
        """The user's serializer, unchanged."""
        self.name = serializer_name(serializer)
        pair = _pick_pair(serializer)
        self.stream = pair == ("dump", "load")
        """Whether the serializer is used through ``dump``/``load``."""
        encode_fn: Callable[..., Any] = getattr(serializer, pair[0])
        decode_fn: Callable[[Any], Any] = getattr(serializer, pair[1])
        self._sort = _takes_sort_keys(encode_fn)
        self._dumps = encode_fn
        self._decode = _stream_decoder(decode_fn) if self.stream else decode_fn

    def __repr__(self) -> str:
        return f"<Codec {self.name!r} via {'dump/load' if self.stream else 'dumps/loads'}>"

    def encode(self, value: Any, sort_keys: bool = False) -> bytes:
        """Encode ``value``; any failure is a :class:`~persistq.errors.SerializationError`.

        With ``sort_keys``, dict keys are sorted at every depth: through the
        serializer's own ``sort_keys`` argument when it has one, else by
        encoding a canonical copy. Raised before anything is written, so a
        failed put leaves the queue unchanged.
        """
        try:
            if not sort_keys and not self.stream:  # the common case, kept short
                data: Any = self._dumps(value)
            else:
                kwargs = {"sort_keys": True} if sort_keys and self._sort else {}
                obj = _canonical(value) if sort_keys and not self._sort else value
                if self.stream:
                    buf = io.BytesIO()
                    returned = self._dumps(obj, buf, **kwargs)
                    data = returned if inspect.isawaitable(returned) else buf.getvalue()
                else:
                    data = self._dumps(obj, **kwargs)
        except Exception as exc:
            raise _SerializationError(
                f"cannot serialize {type(value).__name__} with {self.name}: {exc}"
            ) from exc
        if type(data) is bytes:
            return data
        return self._not_bytes(data)

    def _not_bytes(self, data: Any) -> bytes:
        if isinstance(data, (bytearray, memoryview)):
            return bytes(data)
        if inspect.isawaitable(data):
            _discard(data)
            raise _SerializationError(
                f"serializer {self.name} returned an awaitable: persistq calls serializers synchronously"
            )
        raise _SerializationError(f"serializer {self.name} returned {type(data).__name__}, not bytes")

    def decode(self, data: bytes) -> Any:
        """Decode one stored record; errors propagate (the caller names the item).

        Raises:
            ValueError: a stream ``load`` read fewer bytes than the record holds.
            TypeError: ``loads``/``load`` returned an awaitable.
        """
        value = self._decode(data)
        if inspect.isawaitable(value):
            _discard(value)
            raise TypeError(f"serializer {self.name} returned an awaitable: persistq calls it synchronously")
        return value


def _stream_decoder(load: Callable[[Any], Any]) -> Callable[[bytes], Any]:
    def decode(data: bytes) -> Any:
        buf = io.BytesIO(data)
        value = load(buf)
        # Records are framed by the queue, so a load that stops early did not
        # read what dump wrote: the value may be wrong.
        if buf.tell() != len(data):
            raise ValueError(f"load() read {buf.tell()} of the record's {len(data)} bytes")
        return value

    return decode


def _discard(awaitable: Any) -> None:
    close = getattr(awaitable, "close", None)
    if callable(close):
        close()


def _pick_pair(serializer: object) -> tuple[str, str]:
    asynchronous: list[str] = []
    for pair in (("dumps", "loads"), ("dump", "load")):
        fns = [getattr(serializer, n, None) for n in pair]
        if not all(callable(f) for f in fns):
            continue
        slow = [n for n, f in zip(pair, fns, strict=True) if _is_async(f)]  # type: ignore[arg-type]
        if not slow:
            return pair
        asynchronous += slow
    if asynchronous:
        raise TypeError(
            f"serializer {serializer!r} has asynchronous {'(), '.join(asynchronous)}(): persistq calls "
            "serializers synchronously (encoding is CPU work, not I/O); give it synchronous "
            "dumps()/loads() or dump()/load()"
        )
    have = [n for n in ("dumps", "loads", "dump", "load") if callable(getattr(serializer, n, None))]
    raise TypeError(
        f"serializer {serializer!r} has neither dumps()/loads() nor dump()/load()"
        f"{' (only ' + '(), '.join(have) + '())' if have else ''}; pass persistq.serializers.pickle, "
        "json, msgpack, cbor2, or an object with one of those pairs"
    )


def stream_loader(serializer: Any) -> Callable[[BinaryIO], Any]:
    """Return the serializer's synchronous ``load(fp)``, to read unframed records from a stream.

    Raises:
        TypeError: it has none, or an asynchronous one.
    """
    load = getattr(serializer, "load", None)
    if not callable(load) or _is_async(load):
        raise TypeError(
            f"serializer {serializer_name(serializer)!r} has no synchronous load(fp): persist-queue's "
            "file queue stores records back to back without framing, and only load() knows where one ends"
        )
    return load  # type: ignore[no-any-return]


def encode(serializer: Any, value: Any, sort_keys: bool = False) -> bytes:
    """Encode ``value`` with ``serializer`` (either shape, or a :class:`Codec`).

    See :meth:`Codec.encode`; a queue keeps its ``Codec`` instead of calling this.
    """
    codec = serializer if isinstance(serializer, Codec) else Codec(serializer)
    return codec.encode(value, sort_keys)
