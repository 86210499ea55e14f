"""A user's script that never calls close(), run as its own process by tests/test_exit.py.

    python _exit_children.py KIND ENDING DIR [DSN]

It opens one queue of KIND the way persist-queue's README does (no ``close()``,
no ``with``), puts ``a``, ``b``, ``c``, gets one item (and neither acks nor
``task_done``s it), prints ``READY`` and ends as ENDING says:

- ``normal``: falls off the end of the script;
- ``exit``: ``sys.exit(3)``;
- ``exception``: an uncaught ``RuntimeError("boom")``;
- ``sigint``: blocks in ``get()`` on an empty queue of the same kind until
  the parent sends SIGINT (Ctrl-C);
- ``daemons``: two daemon threads block in ``get()`` on an empty queue of the
  same kind when the main thread ends (after they handled two items).

PDict has no blocking call: for ``sigint`` it sleeps, for ``daemons`` the
threads write entries in a loop.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

import persistq.sync as persistqueue

KIND, ENDING, DIR = sys.argv[1], sys.argv[2], sys.argv[3]
DSN = sys.argv[4] if len(sys.argv) > 4 else ""


def open_queue(name: str) -> Any:
    """A queue of KIND named ``name`` (a directory for the SQLite and file kinds)."""
    if KIND == "MySQLQueue":
        return persistqueue.MySQLQueue(f"{DSN}_{name}")
    if KIND == "MySQLAckQueue":
        return persistqueue.MySQLAckQueue(f"{DSN}_{name}")
    if KIND == "PDict":
        return persistqueue.PDict(f"{DIR}/pdict", name)
    if KIND == "Queue":
        return persistqueue.Queue(f"{DIR}/{name}")
    return getattr(persistqueue, KIND)(f"{DIR}/{name}", auto_commit=True)


def put(q: Any, item: str, priority: int) -> None:
    """Put as the kind's README example does."""
    if KIND in ("PriorityQueue", "PriorityAckQueue"):
        q.put(item, priority=priority)
    else:
        q.put(item)


def consumer(q: Any, handled: threading.Semaphore) -> None:
    """A worker thread as in persist-queue's README: get, work, mark done, forever."""
    while True:
        item = q.get()
        if hasattr(q, "ack"):
            q.ack(item)
        else:
            q.task_done()
        handled.release()


main = open_queue("main")
if KIND == "PDict":
    main["a"] = 1
    main["b"] = 2
    main["c"] = 3
    print("got", main["a"], flush=True)
else:
    for i, item in enumerate("abc"):
        put(main, item, priority=i)
    print("got", main.get(), flush=True)

if ENDING == "daemons":
    idle = open_queue("idle")
    handled = threading.Semaphore(0)
    targets: list[tuple[Any, tuple[Any, ...]]]
    if KIND == "PDict":

        def writer(n: int) -> None:
            i = 0
            while True:
                idle[f"w{n}"] = i
                i += 1
                if i == 1:
                    handled.release()

        targets = [(writer, (0,)), (writer, (1,))]
    else:
        put(idle, "x", 0)
        put(idle, "y", 0)
        targets = [(consumer, (idle, handled)), (consumer, (idle, handled))]
    for fn, args in targets:
        threading.Thread(target=fn, args=args, daemon=True).start()
    handled.acquire()
    handled.acquire()
    # Let both threads block in get() (or keep writing) when the main thread ends.
    time.sleep(0.2)

print("READY", flush=True)
if ENDING == "exit":
    sys.exit(3)
elif ENDING == "exception":
    raise RuntimeError("boom")
elif ENDING == "sigint":
    if KIND == "PDict":
        time.sleep(60)
    else:
        open_queue("empty").get()
