"""The file queue under SIGKILL: nothing acknowledged comes back, nothing returned is lost."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from persistq.errors import Empty
from persistq.sync.file import Queue as SyncQueue

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")

# The child reports each call only after it returned, with one unbuffered write,
# so the log never claims more than happened.
CHILD = textwrap.dedent(
    """
    import os, random, sys
    import anyio
    from persistq.queues.file import Queue

    path, log, start, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    rng = random.Random(seed)

    def report(line):
        os.write(fd, (line + "\\n").encode())

    async def main():
        async with Queue(path, chunksize=3) as q:
            report("R")
            n = start
            while True:
                if rng.random() < 0.55 or await q.empty():
                    await q.put(n)
                    report(f"P {n}")
                    n += 1
                else:
                    item = await q.get()
                    report(f"G {item}")
                    await q.task_done()
                    report(f"D {item}")

    anyio.run(main)
    """
)


def test_sigkill_loses_nothing_and_duplicates_nothing(tmp_path: Path) -> None:
    """After each of ~30 SIGKILLs, reopening returns every put item not done, in order, none twice."""
    qdir = str(tmp_path / "q")
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    rng = random.Random(1234)
    put_ok: set[int] = set()
    done_ok: set[int] = set()
    next_value = 0
    budget = time.monotonic() + 35
    runs = 0
    while runs < 30 and time.monotonic() < budget:
        runs += 1
        log = tmp_path / f"log{runs}"
        child = subprocess.Popen(
            [sys.executable, str(script), qdir, str(log), str(next_value), str(runs)],
            stdout=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 15
            while not (log.exists() and log.read_bytes().startswith(b"R\n")):
                assert child.poll() is None, "the child died before opening the queue"
                assert time.monotonic() < deadline, "the child did not start"
                time.sleep(0.005)
            time.sleep(rng.uniform(0.0, 0.25))
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
        got_not_done: set[int] = set()
        last_put = next_value - 1
        for line in log.read_text().splitlines()[1:]:
            if " " not in line:
                continue
            op, value = line.split()
            v = int(value)
            if op == "P":
                put_ok.add(v)
                last_put = v
            elif op == "G":
                got_not_done.add(v)
            elif op == "D":
                done_ok.add(v)
                got_not_done.discard(v)
        in_flight_put = last_put + 1

        with SyncQueue(qdir) as q:
            recovered = []
            while True:
                try:
                    recovered.append(q.get_nowait())
                except Empty:
                    break
            # Not marked done: they stay for the next run.
        assert recovered == sorted(set(recovered)), "order broken or an item twice"
        assert not set(recovered) & done_ok, "an item whose task_done returned came back"
        missing = (put_ok - done_ok) - set(recovered)
        # Only an item whose task_done was running at the kill may be gone.
        assert missing <= got_not_done, f"lost {missing}"
        assert len(missing) <= 1, f"lost {missing}"
        assert set(recovered) <= put_ok | {in_flight_put}, "an item nobody put"
        done_ok |= missing
        if in_flight_put in recovered:
            put_ok.add(in_flight_put)
        next_value = max(in_flight_put, *recovered, next_value) + 1
    assert runs >= 10
    assert put_ok
    assert done_ok


HOLD_AND_ACK_CHILD = textwrap.dedent(
    """
    import sys, threading
    import persistq.sync

    path, durability = sys.argv[1], sys.argv[2]
    q = persistq.sync.Queue(path, durability=durability)
    q.put_many(["a", "b", "c"])
    holding = threading.Event()

    def thread_1():
        assert q.get() == "a"
        holding.set()
        threading.Event().wait()            # works on "a" forever: never done

    def thread_2():
        holding.wait()
        assert q.get() == "b"
        q.task_done()                       # done behind the older "a"
        print("acked", flush=True)

    threading.Thread(target=thread_1, daemon=True).start()
    threading.Thread(target=thread_2, daemon=True).start()
    threading.Event().wait()
    """
)


@pytest.mark.parametrize("durability", ["full", "normal"])
def test_sigkill_after_an_ack_behind_a_held_item(tmp_path: Path, durability: str) -> None:
    """Thread 1 holds a, thread 2 gets b and task_done's it, SIGKILL: the reopened queue gives a, c."""
    script = tmp_path / "child.py"
    script.write_text(HOLD_AND_ACK_CHILD)
    qdir = str(tmp_path / "q")
    child = subprocess.Popen(
        [sys.executable, str(script), qdir, durability], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == b"acked\n"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        _, err = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL, err.decode()[-2000:]
    with SyncQueue(qdir) as q:
        assert q.get_many(10, block=False) == ["a", "c"]
        q.task_done()
    with SyncQueue(qdir) as q:
        assert q.get_many(10, block=False) == ["c"]
