"""The command line: ``python -m persistq migrate SRC DST [--serializer NAME]``.

Exit codes: 0 success, 1 the operation failed (message on stderr), 2 bad usage.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import serializers as _serializers
from .errors import PersistQError

_SERIALIZERS = {
    "pickle": _serializers.pickle,
    "json": _serializers.json,
    "msgpack": _serializers.msgpack,
    "cbor2": _serializers.cbor2,
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m persistq", description="persistq command line tools")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    migrate = commands.add_parser(
        "migrate",
        help="copy a persist-queue 1.x file queue into a new persistq file queue",
        description="Copy the waiting items of a persist-queue 1.x file-queue directory SRC, in order "
        "and durably, into a new persistq file queue DST. SRC is left unchanged.",
    )
    migrate.add_argument("src", metavar="SRC", help="the persist-queue directory (with 'info', 'q00000'…)")
    migrate.add_argument("dst", metavar="DST", help="the new persistq queue directory (absent or empty)")
    migrate.add_argument(
        "--serializer",
        choices=sorted(_SERIALIZERS),
        default="pickle",
        help="the serializer SRC was written with (default: pickle)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = _parser().parse_args(argv)
    from .migrate import migrate_file_queue

    try:
        moved = migrate_file_queue(args.src, args.dst, _SERIALIZERS[args.serializer])
    except (PersistQError, OSError) as exc:
        print(f"persistq migrate: error: {exc}", file=sys.stderr)
        return 1
    print(f"migrated {moved} item{'s' if moved != 1 else ''} from {args.src} to {args.dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
