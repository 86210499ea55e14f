"""Length-prefixed stream records, shared by the msgpack and cbor2 serializers."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, BinaryIO

_LENGTH = struct.Struct("<L")


def dump(payload: bytes, fp: BinaryIO) -> None:
    """Write a 4-byte little-endian length and the payload (persist-queue's framing)."""
    fp.write(_LENGTH.pack(len(payload)))
    fp.write(payload)


def load(fp: BinaryIO, decode: Callable[[bytes], Any]) -> Any:
    """Read one length-prefixed payload and decode it."""
    header = fp.read(_LENGTH.size)
    if len(header) != _LENGTH.size:
        raise EOFError("no record left in the stream")
    (length,) = _LENGTH.unpack(header)
    payload = fp.read(length)
    if len(payload) != length:
        raise EOFError(f"record truncated: {len(payload)} of {length} bytes")
    return decode(payload)
