"""The msgpack serializer (extra ``msgpack``).

Lists come back as lists (persist-queue returned tuples). Stream records carry
a 4-byte little-endian length prefix, as persist-queue's.
"""

from __future__ import annotations

from typing import Any, BinaryIO

from ..errors import MissingDependencyError
from . import _framed
from ._canonical import canonical

NAME = "msgpack"


def _import() -> Any:
    try:
        import msgpack
    except ImportError:  # pragma: no cover - exercised only without the extra
        return None
    return msgpack


_msgpack: Any = _import()


def _lib() -> Any:
    if _msgpack is None:  # pragma: no cover - exercised only without the extra
        raise MissingDependencyError("msgpack", "msgpack")
    return _msgpack


def dumps(value: Any, sort_keys: bool = False) -> bytes:
    """Encode ``value``; with ``sort_keys`` dict keys are sorted at every depth."""
    if sort_keys:
        value = canonical(value)
    data: bytes = _lib().packb(value, use_bin_type=True)
    return data


def loads(data: bytes) -> Any:
    """Decode one msgpack value."""
    return _lib().unpackb(data, raw=False, strict_map_key=False)


def dump(value: Any, fp: BinaryIO, sort_keys: bool = False) -> None:
    """Write one length-prefixed record to ``fp``."""
    _framed.dump(dumps(value, sort_keys=sort_keys), fp)


def load(fp: BinaryIO) -> Any:
    """Read one length-prefixed record from ``fp``."""
    return _framed.load(fp, loads)
