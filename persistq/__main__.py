"""``python -m persistq``: the command line of :mod:`persistq.cli`."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main(prog_name="python -m persistq"))
