"""The default serializer: :mod:`pickle`, protocol 4 (as persist-queue).

Records are raw pickles, so files and databases written by persist-queue with
its pickle serializer read back unchanged. Loading a pickle runs code chosen by
whoever wrote it: use ``json``, ``msgpack`` or ``cbor2`` for queues that an
untrusted party can write.
"""

from __future__ import annotations

import io
import pickle as _pickle
from typing import Any, BinaryIO

from ._canonical import canonical

NAME = "pickle"
protocol = 4


def dumps(value: Any, sort_keys: bool = False) -> bytes:
    """Encode ``value``; with ``sort_keys`` dict keys are sorted at every depth."""
    if sort_keys:
        # Fast mode skips the memo, so equal values give equal bytes whether or
        # not they share sub-objects (a shared str is otherwise written once
        # and referenced).
        buf = io.BytesIO()
        pickler = _pickle.Pickler(buf, protocol=protocol)
        pickler.fast = True
        pickler.dump(canonical(value))
        return buf.getvalue()
    return _pickle.dumps(value, protocol=protocol)


def loads(data: bytes) -> Any:
    """Decode one pickle."""
    return _pickle.loads(data)


def dump(value: Any, fp: BinaryIO, sort_keys: bool = False) -> None:
    """Write one record (a self-delimiting pickle) to ``fp``."""
    fp.write(dumps(value, sort_keys=sort_keys))


def load(fp: BinaryIO) -> Any:
    """Read one record from ``fp``, leaving it positioned after the record."""
    return _pickle.load(fp)
