"""Programs written for persist-queue, run as their own processes by tests/test_real_programs.py.

    python _real_program_children.py LIB PROGRAM ARGS...

LIB is ``persistq`` (``import persistq.sync as persistqueue``, as a user's
program switches) or ``persistqueue`` (persist-queue 1.1.0 itself), so one
script measures both libraries. Each program prints progress lines, then one
JSON line (its last) with what it saw. None calls ``close()``: such programs
end by falling off their end or by being killed.

Programs (ARGS after PROGRAM):

- ``heartbeat QPATH PORT FIRST COUNT``: a thread puts the heartbeats
  ``hb-FIRST`` … into ``FIFOSQLiteQueue(multithreading=True, auto_commit=False)``
  while the sender drains the buffer to the server at 127.0.0.1:PORT with
  ``get(block=False)``, a line out, an ``OK`` line back, ``task_done()``. When
  the server refuses connections the sender keeps the item it got and retries
  until the heartbeat thread is done, then the program ends (a restart).
- ``plugin QPATH ACTION``: one short-lived plugin process on a shared
  ``SQLiteAckQueue(auto_commit=True, multithreading=True, auto_resume=False)``;
  ACTION is ``produce``, ``crash`` (gets a job, prints ``HOLDING``, waits to
  be killed), ``work``, ``repair-batch`` (raw SQL on ``data.db`` first, then a
  batch of acks, nacks and ack_faileds) or ``drain``.
- ``walker ROOT QPATH LOG [HOLD [MAX_ACKED]]``: a resumable file walker; puts
  every file under ROOT into a ``UniqueAckQ`` (duplicates are refused), three
  threads get, "process" (append the path to LOG, fsync) and ack. With HOLD,
  once HOLD paths are processed each thread holds its next item and the
  program prints ``HELD`` (the parent then kills it). MAX_ACKED (persistq
  only) is its ``max_acked_length``.
- ``rmtree-reopen KIND QPATH``: open, write, keep a bound method of the queue,
  ``del q; shutil.rmtree(QPATH)``, reopen QPATH, report what the new object
  sees, write through it, then call the kept method.
- ``contents KIND QPATH``: what a fresh process finds there.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import socket
import sqlite3
import sys
import threading
from typing import Any

LIB, PROGRAM, ARGS = sys.argv[1], sys.argv[2], sys.argv[3:]
if LIB == "persistqueue":
    import persistqueue
elif LIB == "persistq":
    import persistq.sync as persistqueue
else:
    raise SystemExit(f"unknown library {LIB!r}")

Empty = persistqueue.Empty


def report(value: Any) -> None:
    """The program's result: one JSON line, its last."""
    print(json.dumps(value), flush=True)


def error_of(exc: BaseException) -> dict[str, Any]:
    """An exception as the parent checks it: its classes (full names) and message."""
    return {"mro": [f"{c.__module__}.{c.__qualname__}" for c in type(exc).__mro__], "message": str(exc)}


# ---------------------------------------------------------------- heartbeat


def heartbeat(qpath: str, port: int, first: int, count: int) -> None:
    """A monitoring agent's buffer: heartbeats queue up while the server is down."""
    q = persistqueue.FIFOSQLiteQueue(qpath, multithreading=True, auto_commit=False)

    def beat() -> None:
        for i in range(first, first + count):
            q.put(f"hb-{i:04d}")

    beater = threading.Thread(target=beat)
    beater.start()
    sent: list[str] = []
    refused = 0
    held: str | None = None  # got from the buffer, not yet delivered
    conn: socket.socket | None = None
    reader: Any = None
    while True:
        if held is None:
            try:
                held = q.get(block=False)
            except Empty:
                if not beater.is_alive():
                    break
                beater.join(0.01)
                continue
        try:
            if conn is None:
                conn = socket.create_connection(("127.0.0.1", port), timeout=30)
                reader = conn.makefile("r", encoding="ascii")
            conn.sendall(f"{held}\n".encode("ascii"))
            if reader.readline() != "OK\n":
                raise ConnectionError("the server did not confirm")
        except OSError:
            refused += 1
            conn = None
            if not beater.is_alive():
                break  # the agent is restarted; the held item stays in the buffer
            beater.join(0.01)
            continue
        sent.append(held)
        held = None
        q.task_done()
    beater.join()
    report({"sent": sent, "held": held, "refused": refused})


# ------------------------------------------------------------------- plugin

STATUS = {"inited": 0, "ready": 1, "unack": 2, "acked": 5, "ack_failed": 9}
"""persist-queue's status codes, as plugins hard-code them in their SQL."""


def plugin(qpath: str, action: str) -> None:
    """One plugin process of a tool whose plugins share one ack queue."""

    def open_queue() -> Any:
        return persistqueue.SQLiteAckQueue(qpath, auto_commit=True, multithreading=True, auto_resume=False)

    if action == "produce":
        q = open_queue()
        for i in range(10):
            q.put({"job": f"job-{i}", "args": [i, i * i]})
        report({"put": 10})
    elif action == "crash":
        q = open_queue()
        job = q.get(block=False)
        print("HOLDING", job["job"], flush=True)
        threading.Event().wait(60)  # "working" until the parent kills it
        raise SystemExit("not killed")
    elif action == "work":
        q = open_queue()
        job = q.get(block=False)
        q.ack(job)
        report({"acked": job["job"]})
    elif action == "repair-batch":
        # What such a plugin does on start: find jobs a crashed plugin held
        # (status unack) by reading the table itself, and make them ready again.
        db = sqlite3.connect(os.path.join(qpath, "data.db"))
        before = dict(db.execute("SELECT status, COUNT(*) FROM ack_queue_default GROUP BY status").fetchall())
        stuck = db.execute(
            "SELECT _id, data FROM ack_queue_default WHERE status=? ORDER BY _id", (STATUS["unack"],)
        ).fetchall()
        for row_id, _ in stuck:
            db.execute("UPDATE ack_queue_default SET status=? WHERE _id=?", (STATUS["ready"], row_id))
        db.commit()
        db.close()
        q = open_queue()
        batch = [q.get(block=False) for _ in range(6)]
        for job in batch[:3]:
            q.ack(job)
        q.nack(batch[3])
        for job in batch[4:]:
            q.ack_failed(job)
        report(
            {
                "before": {str(k): v for k, v in sorted(before.items())},
                "repaired": [pickle.loads(data)["job"] for _, data in stuck],
                "batch": [job["job"] for job in batch],
                "counts": counts(q),
            }
        )
    elif action == "drain":
        q = open_queue()
        got = []
        while True:
            try:
                job = q.get(block=False)
            except Empty:
                break
            got.append(job["job"])
            q.ack(job)
        report({"got": got, "counts": counts(q)})
    else:
        raise SystemExit(f"unknown action {action!r}")


def counts(q: Any) -> dict[str, int]:
    """The numbers a plugin's status page shows."""
    return {
        "ready_count": q.ready_count(),
        "unack_count": q.unack_count(),
        "acked_count": q.acked_count(),
        "ack_failed_count": q.ack_failed_count(),
        "qsize": q.qsize(),
    }


# ------------------------------------------------------------------- walker


def walker(root: str, qpath: str, log: str, hold: int, max_acked: int) -> None:
    """A resumable file walker: re-puts every path on each start; the queue refuses finished ones."""
    kwargs: dict[str, Any] = {"multithreading": True}
    if max_acked:
        kwargs["max_acked_length"] = max_acked
    q = persistqueue.UniqueAckQ(qpath, **kwargs)
    accepted = 0
    for directory, _, files in sorted(os.walk(root)):
        for name in sorted(files):
            if q.put(os.path.join(directory, name)) is not None:
                accepted += 1
    print("QUEUED", accepted, flush=True)
    lock = threading.Lock()
    started = 0
    holding = 0
    out = open(log, "a", encoding="utf-8")  # noqa: SIM115 - shared by the threads for the program's life

    def work() -> None:
        nonlocal started, holding
        while True:
            try:
                path = q.get(block=False)
            except Empty:
                return
            with lock:
                if hold and started >= hold:
                    holding += 1
                    if holding == 3:
                        print("HELD", flush=True)
                    wait = True
                else:
                    started += 1
                    wait = False
            if wait:
                threading.Event().wait(60)  # until the parent kills the program
                return
            with lock:
                out.write(path + "\n")
                out.flush()
                os.fsync(out.fileno())
            q.ack(path)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report(
        {
            "accepted": accepted,
            "qsize": q.qsize(),
            "ready_count": q.ready_count(),
            "unack_count": q.unack_count(),
            "acked_count": q.acked_count(),
            "ack_failed_count": q.ack_failed_count(),
        }
    )


# ------------------------------------------------------------ rmtree-reopen


def open_kind(kind: str, qpath: str) -> Any:
    """A queue (or PDict) of ``kind`` at ``qpath``, opened as persist-queue's README does."""
    if kind == "PDict":
        return persistqueue.PDict(qpath, "default")
    if kind == "Queue":
        return persistqueue.Queue(qpath)
    if kind in ("SQLiteAckQueue", "FILOSQLiteAckQueue", "UniqueAckQ"):
        return getattr(persistqueue, kind)(qpath, multithreading=True)
    return getattr(persistqueue, kind)(qpath, auto_commit=True, multithreading=True)


def write(kind: str, q: Any) -> Any:
    """The method a program keeps bound (a write), for ``kind``."""
    return q.__setitem__ if kind == "PDict" else q.put


def rmtree_reopen(kind: str, qpath: str) -> None:
    """Start over: delete the queue directory while the old object lives on, open a new one there."""
    q = open_kind(kind, qpath)
    keep = write(kind, q)
    if kind == "PDict":
        for key in "abc":
            q[key] = key.upper()
    else:
        for item in "abc":
            q.put(item)
    del q
    shutil.rmtree(qpath)
    q = open_kind(kind, qpath)
    seen: dict[str, Any] = {
        "size": len(q) if kind == "PDict" else q.qsize(),
        "dir": os.path.isdir(qpath),
        "db": os.path.isfile(os.path.join(qpath, "data.db")),
    }
    if kind == "PDict":
        q["new"] = "NEW"
    else:
        q.put("new")
    try:
        late = keep("late", "LATE") if kind == "PDict" else keep("late")
    except Exception as exc:  # noqa: BLE001 - the parent checks which
        seen["late"] = {"error": error_of(exc)}
    else:
        seen["late"] = {"returned": repr(late)}
    report(seen)


def contents(kind: str, qpath: str) -> None:
    """What a fresh process finds at ``qpath``: every item in order (or the PDict's keys)."""
    q = open_kind(kind, qpath)
    if kind == "PDict":
        report({"size": len(q), "keys": [k for k in ("a", "b", "c", "new", "late") if k in q]})
        return
    items: list[Any] = []
    seen: dict[str, Any] = {"items": items}
    while True:
        try:
            items.append(q.get(block=False))
        except Empty:
            break
        except Exception as exc:  # noqa: BLE001 - the parent checks which
            seen["error"] = error_of(exc)
            break
    report(seen)


def walker_restart_fresh(qpath: str) -> None:
    """The walker's "start over": keep ``q.ack``, delete the queue directory, reopen the path."""
    q = persistqueue.UniqueAckQ(qpath, multithreading=True)
    q.put("/probe")
    item = q.get(block=False)
    keep = q.ack
    del q
    shutil.rmtree(qpath)
    q = persistqueue.UniqueAckQ(qpath, multithreading=True)
    seen: dict[str, Any] = {
        "qsize": q.qsize(),
        "acked_count": q.acked_count(),
        "dir": os.path.isdir(qpath),
        "db": os.path.isfile(os.path.join(qpath, "data.db")),
        "put": q.put("/new-root") is not None,
    }
    try:
        late = keep(item)
    except Exception as exc:  # noqa: BLE001 - the parent checks which
        seen["late"] = {"error": error_of(exc)}
    else:
        seen["late"] = {"returned": repr(late)}
    report(seen)


if PROGRAM == "heartbeat":
    heartbeat(ARGS[0], int(ARGS[1]), int(ARGS[2]), int(ARGS[3]))
elif PROGRAM == "plugin":
    plugin(ARGS[0], ARGS[1])
elif PROGRAM == "walker":
    walker(
        ARGS[0], ARGS[1], ARGS[2], int(ARGS[3]) if len(ARGS) > 3 else 0, int(ARGS[4]) if len(ARGS) > 4 else 0
    )
elif PROGRAM == "walker-restart-fresh":
    walker_restart_fresh(ARGS[0])
elif PROGRAM == "rmtree-reopen":
    rmtree_reopen(ARGS[0], ARGS[1])
elif PROGRAM == "contents":
    contents(ARGS[0], ARGS[1])
else:
    raise SystemExit(f"unknown program {PROGRAM!r}")
