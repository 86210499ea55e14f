"""Serializers: turn items into bytes and back.

A serializer is any object (usually a module) with four functions:

* ``dumps(value) -> bytes`` and ``loads(data: bytes) -> value``, used by the
  SQL queues and ``PDict``;
* ``dump(value, fp)`` and ``load(fp)``, which write and read one record on a
  binary stream, used to migrate persist-queue file queues.

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
from typing import Any, Protocol, runtime_checkable

from ..errors import SerializationError as _SerializationError
from . import cbor2, json, msgpack, pickle
from ._canonical import canonical as _canonical

__all__ = ("Serializer", "cbor2", "encode", "json", "msgpack", "pickle", "serializer_name")


@runtime_checkable
class Serializer(Protocol):
    """What persistq needs of a serializer (a module or any object)."""

    def dumps(self, value: Any) -> bytes:
        """Encode one value to bytes."""

    def loads(self, data: bytes) -> Any:
        """Decode bytes produced by :meth:`dumps`."""


def serializer_name(serializer: object) -> str:
    """Return the name under which a queue records its serializer.

    The built-ins record ``pickle``, ``json``, ``msgpack`` or ``cbor2``; a custom
    serializer records its ``NAME`` attribute if it has one, else its module or
    class name.
    """
    name = getattr(serializer, "NAME", None)
    if isinstance(name, str) and name:
        return name
    module_name = getattr(serializer, "__name__", None)
    if isinstance(module_name, str):
        return module_name
    return type(serializer).__qualname__


def encode(serializer: Any, value: Any, sort_keys: bool = False) -> bytes:
    """Encode ``value`` with ``serializer``; any failure is a ``SerializationError``.

    With ``sort_keys``, dict keys are sorted at every depth: through the
    serializer's own ``sort_keys`` argument when it has one, else by encoding
    a canonical copy. Raised before anything is written, so a failed put
    leaves the queue unchanged.
    """
    try:
        if not sort_keys:
            data = serializer.dumps(value)
        elif _takes_sort_keys(serializer):
            data = serializer.dumps(value, sort_keys=True)
        else:
            data = serializer.dumps(_canonical(value))
    except Exception as exc:
        raise _SerializationError(
            f"cannot serialize {type(value).__name__} with {serializer_name(serializer)}: {exc}"
        ) from exc
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise _SerializationError(
            f"serializer {serializer_name(serializer)} returned {type(data).__name__}, not bytes"
        )
    return bytes(data)


def _takes_sort_keys(serializer: Any) -> bool:
    try:
        return "sort_keys" in inspect.signature(serializer.dumps).parameters
    except (TypeError, ValueError):
        return False


def _check(serializer: object, *, stream: bool = False) -> None:
    """Raise ``TypeError`` unless ``serializer`` has the functions persistq uses."""
    needed = ("dump", "load") if stream else ("dumps", "loads")
    missing = [n for n in needed if not callable(getattr(serializer, n, None))]
    if missing:
        raise TypeError(
            f"serializer {serializer!r} lacks {', '.join(missing)}(); "
            "pass persistq.serializers.pickle, json, msgpack, cbor2, or an object "
            "with dumps()/loads() and dump()/load()"
        )
