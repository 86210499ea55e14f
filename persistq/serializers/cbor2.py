"""The CBOR serializer (extra ``cbor2``).

Stream records carry a 4-byte little-endian length prefix, as persist-queue's.
"""

from __future__ import annotations

import io
from typing import Any, BinaryIO

from ..errors import MissingDependencyError
from . import _framed
from ._canonical import canonical

NAME = "cbor2"


def _import() -> Any:
    try:
        import cbor2
    except ImportError:  # pragma: no cover - exercised only without the extra
        return None
    return cbor2


_cbor2: Any = _import()


def _lib() -> Any:
    if _cbor2 is None:  # pragma: no cover - exercised only without the extra
        raise MissingDependencyError("cbor2", "cbor2")
    return _cbor2


def dumps(value: Any, sort_keys: bool = False) -> bytes:
    """Encode ``value``; with ``sort_keys`` dict keys are sorted at every depth."""
    if sort_keys:
        value = canonical(value)
    data: bytes = _lib().dumps(value)
    return data


def loads(data: bytes) -> Any:
    """Decode one CBOR value; bytes left over mean the data is not ours (ValueError)."""
    fp = io.BytesIO(data)
    value = _lib().CBORDecoder(fp).decode()
    if fp.tell() != len(data):
        # cbor2.loads ignores trailing bytes: a pickle, for one, starts with
        # 0x80, an empty CBOR array, and would come back as [].
        raise ValueError(f"not a CBOR record: {len(data) - fp.tell()} bytes left after the value")
    return value


def dump(value: Any, fp: BinaryIO, sort_keys: bool = False) -> None:
    """Write one length-prefixed record to ``fp``."""
    _framed.dump(dumps(value, sort_keys=sort_keys), fp)


def load(fp: BinaryIO) -> Any:
    """Read one length-prefixed record from ``fp``."""
    return _framed.load(fp, loads)
