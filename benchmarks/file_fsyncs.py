"""fsync-family calls per operation of the file queue at ``durability="full"``, counted by strace.

Usage::

    python benchmarks/file_fsyncs.py [--n 400] [--threads 4] [--repeats 5] [--no-timing]

DESIGN §4 asks for at most 1.2 fsyncs per ``put`` and per ``get`` + ``task_done`` on the file queue at
``"full"`` (concurrent calls share them). Each scenario runs in a child process under
``strace -f -c -e trace=fsync,fdatasync,msync,sync_file_range``, once with ``N`` operations and once with
none; the difference divided by ``N`` is the figure printed, so opening and closing the queue do not count.
Scenarios: ``N`` puts, then ``N`` get + ``task_done``, by one thread and spread over ``--threads``
threads (the blocking API, ``persistq.sync.Queue``). The "get" children start from a queue filled beforehand
without fsyncs.

Then, unless ``--no-timing``, a plain timing loop (no strace): µs per sequential ``put`` and per
``get`` + ``task_done`` at ``"full"``, the median of ``--repeats`` runs. The machine is shared and noisy:
compare medians from one run of this script, not single figures.

This is a measurement, not a test: it prints and never fails on a figure (it exits 2 when strace is
missing).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

FSYNC_CALLS = ("fsync", "fdatasync", "msync", "sync_file_range")
SCENARIOS = ("put", "get_done", "put_threads", "get_done_threads")


def _child(scenario: str, path: str, n: int, threads: int) -> None:
    """Run ``n`` operations of ``scenario`` on the queue at ``path``; print the elapsed seconds."""
    import persistq.sync

    with persistq.sync.Queue(path, durability="full") as q:
        workers = threads if scenario.endswith("_threads") else 1
        shares = [n // workers + (1 if i < n % workers else 0) for i in range(workers)]

        def work(count: int) -> None:
            for i in range(count):
                if scenario.startswith("put"):
                    q.put(i)
                else:
                    q.get()
                    q.task_done()

        start = time.perf_counter()
        if workers == 1:
            work(shares[0])
        else:
            pool = [threading.Thread(target=work, args=(c,)) for c in shares]
            for t in pool:
                t.start()
            for t in pool:
                t.join()
        elapsed = time.perf_counter() - start
    print(json.dumps({"seconds": elapsed}))


def _prepare(root: str, scenario: str, n: int) -> str:
    """A fresh queue directory; for the get scenarios, holding ``n`` items put without fsync."""
    import persistq.sync

    path = tempfile.mkdtemp(dir=root)
    qdir = os.path.join(path, "q")
    with persistq.sync.Queue(qdir, durability="off") as q:
        if scenario.startswith("get") and n:
            q.put_many(range(n))
    return qdir


def _strace_calls(out: str) -> int:
    """Sum the ``calls`` column of the fsync-family rows of an ``strace -c`` summary."""
    total = 0
    with open(out) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 5 and parts[-1] in FSYNC_CALLS and parts[3].isdigit():
                total += int(parts[3])
    return total


def _run_child(scenario: str, qdir: str, n: int, threads: int, strace_out: str | None) -> float:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", scenario, qdir, str(n), str(threads)]
    if strace_out is not None:
        cmd = ["strace", "-f", "-c", "-e", "trace=" + ",".join(FSYNC_CALLS), "-o", strace_out, *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return float(json.loads(proc.stdout.strip().splitlines()[-1])["seconds"])


def fsyncs_per_op(root: str, scenario: str, n: int, threads: int) -> float:
    """fsync-family calls per operation of ``scenario`` (``n`` operations minus none)."""
    counts = []
    for ops in (n, 0):
        qdir = _prepare(root, scenario, n)
        out = os.path.join(root, f"strace-{scenario}-{ops}.txt")
        _run_child(scenario, qdir, ops, threads, out)
        counts.append(_strace_calls(out))
        shutil.rmtree(os.path.dirname(qdir))
    return (counts[0] - counts[1]) / n


def micros_per_op(root: str, scenario: str, n: int, repeats: int) -> float:
    """Median over ``repeats`` runs of the µs per operation of a sequential ``scenario``."""
    runs = []
    for _ in range(repeats):
        qdir = _prepare(root, scenario, n)
        runs.append(_run_child(scenario, qdir, n, 1, None) / n * 1e6)
        shutil.rmtree(os.path.dirname(qdir))
    return statistics.median(runs)


def main() -> int:
    """Print fsyncs per operation for each scenario, then the timings."""
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400, help="operations per scenario")
    parser.add_argument("--threads", type=int, default=4, help="threads in the *_threads scenarios")
    parser.add_argument("--repeats", type=int, default=5, help="timing runs (the median is shown)")
    parser.add_argument("--no-timing", action="store_true", help="only count fsyncs")
    args = parser.parse_args()
    if shutil.which("strace") is None:
        print("strace is not installed: cannot count fsyncs (apt-get install strace)", file=sys.stderr)
        return 2
    root = tempfile.mkdtemp(prefix="pq-fsyncs-")
    try:
        print(f"file Queue, durability='full', N={args.n}, {args.threads} threads in *_threads")
        print(f"{'scenario':<20} {'fsyncs/op':>10}")
        for scenario in SCENARIOS:
            per_op = fsyncs_per_op(root, scenario, args.n, args.threads)
            print(f"{scenario:<20} {per_op:>10.3f}", flush=True)
        if not args.no_timing:
            print(f"\nsequential, median of {args.repeats} runs (noisy machine: compare within one run)")
            print(f"{'scenario':<20} {'µs/op':>10}")
            for scenario in ("put", "get_done"):
                print(
                    f"{scenario:<20} {micros_per_op(root, scenario, args.n, args.repeats):>10.0f}", flush=True
                )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
