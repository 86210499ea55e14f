"""Child processes of tests/test_server_kinds_processes.py: real consumers of a kind on a server location.

python _kind_children.py consume KIND URL NAME OUT   # print ready, wait for a line, then get (and ack)
                                                      # until 2 s pass with nothing; items to OUT
python _kind_children.py hold KIND URL NAME          # get one item, print it, then sleep until killed
"""

from __future__ import annotations

import json
import sys
import time

import persistq.sync
from persistq.errors import Empty


def main() -> None:
    """Run the mode the arguments name."""
    mode, kind, url, name = sys.argv[1:5]
    cls = getattr(persistq.sync, kind)
    q = cls(url, name=name, poll_interval=0.01)
    ack = hasattr(q, "ack")
    if mode == "hold":
        item = q.get(timeout=30)
        print(json.dumps(item), flush=True)
        time.sleep(600)
        return
    # Start together: every consumer has opened its queue before any takes an item.
    print("ready", flush=True)
    sys.stdin.readline()
    got = []
    while True:
        try:
            item = q.get(timeout=2)
        except Empty:
            break
        if ack:
            q.ack(item)
        else:
            q.task_done()
        got.append(item)
    q.close()
    with open(sys.argv[5], "w") as f:
        json.dump(got, f)


if __name__ == "__main__":
    main()
