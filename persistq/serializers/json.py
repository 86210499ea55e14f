"""The JSON serializer: UTF-8 JSON; stream records end with ``\\n``.

Only JSON types round-trip (tuples come back as lists). The record format is
persist-queue's, so its json queues read back unchanged.
"""

from __future__ import annotations

import json as _json
from typing import Any, BinaryIO

NAME = "json"


def dumps(value: Any, sort_keys: bool = False) -> bytes:
    """Encode ``value``; with ``sort_keys`` dict keys are sorted at every depth."""
    return _json.dumps(value, sort_keys=sort_keys).encode("utf-8")


def loads(data: bytes) -> Any:
    """Decode one JSON document."""
    return _json.loads(data)


def dump(value: Any, fp: BinaryIO, sort_keys: bool = False) -> None:
    """Write one record (a JSON document and a newline) to ``fp``."""
    fp.write(dumps(value, sort_keys=sort_keys) + b"\n")


def load(fp: BinaryIO) -> Any:
    """Read one record (one line) from ``fp``."""
    line = fp.readline()
    if not line:
        raise EOFError("no JSON record left in the stream")
    return _json.loads(line)
