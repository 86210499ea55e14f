"""Cross-process wake-up latency of a blocked ``get`` on the server engines (MySQL/MariaDB and PostgreSQL).

A consumer **process** blocks in ``persistq.sync.FIFOQueue(url).get()`` on an
idle queue; the parent puts one item through its own queue object (another
connection), notes the time ``put`` returned (the commit), and the consumer
notes when ``get`` returned. Latency is the difference (``time.time``, one
machine). Between puts the parent sleeps 50-150 ms (random), so the consumer is
idle and waiting each time, as a consumer elsewhere would be.

MySQL/MariaDB wakes by polling (25 ms right after a change, backing off to
``max_poll_interval`` 0.2 s while idle); PostgreSQL by ``LISTEN``/``NOTIFY``
(the put's transaction notifies; one listening connection per process).

Run (servers from ``PERSISTQ_MYSQL_*`` / ``PERSISTQ_PG_DSN``, as ``make bench`` sets)::

    python benchmarks/wakeup_latency.py [--samples 200] [--out benchmarks/WAKEUP_RESULTS.md]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from _scenarios import SERVER_ENGINES, ServerEngine, fresh_name  # noqa: E402

import persistq.sync  # noqa: E402

CONSUMER = """
import sys, time, persistq.sync
from _scenarios import SERVER_ENGINES
engine = SERVER_ENGINES[sys.argv[1]]
args, kwargs = engine.persistq_args(engine.config(), sys.argv[2])
q = getattr(persistq.sync, engine.fifo_class)(*args, **kwargs)
print("ready", flush=True)
while True:
    item = q.get()
    now = time.time()
    if item is None:
        break
    print(item, now, flush=True)
q.close()
"""


def measure(engine: ServerEngine, cfg: dict[str, Any], samples: int) -> list[float]:
    """Latencies in seconds, from put's return to get's return in another process."""
    name = fresh_name()
    args, kwargs = engine.persistq_args(cfg, name)
    producer = getattr(persistq.sync, engine.fifo_class)(*args, **kwargs)
    child = subprocess.Popen(
        [sys.executable, "-c", CONSUMER, engine.name, name],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join((str(REPO), str(HERE)))},
    )
    assert child.stdout is not None
    try:
        assert child.stdout.readline().strip() == "ready"
        latencies = []
        for i in range(samples + 5):
            time.sleep(random.uniform(0.05, 0.15))
            producer.put(i)
            returned = time.time()
            got, at = child.stdout.readline().split()
            assert int(got) == i
            if i >= 5:  # the first few warm connections and caches up
                latencies.append(float(at) - returned)
        producer.put(None)
        child.wait(timeout=30)
        return latencies
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
        producer.close()
        engine.drop(cfg, name)


def main() -> None:
    """Measure each configured engine and print (and optionally write) a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    how = {"mysql": "polling", "postgresql": "LISTEN/NOTIFY"}
    lines = [
        f"Cross-process wake-up of a blocked `get`, {args.samples} puts 50-150 ms apart "
        "(ms from put's return)",
        "",
        "| engine | p50 | p90 | max |",
        "|---|---:|---:|---:|",
    ]
    for engine in SERVER_ENGINES.values():
        label = f"{engine.title} ({how.get(engine.name, '?')})"
        cfg = engine.config()
        if cfg is None:
            lines.append(f"| {label} | not configured ({engine.env_help}) | | |")
            continue
        lat = sorted(x * 1000 for x in measure(engine, cfg, args.samples))
        p50 = statistics.median(lat)
        p90 = lat[int(len(lat) * 0.9) - 1]
        lines.append(f"| {label} | {p50:.1f} | {p90:.1f} | {lat[-1]:.1f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text("# Wake-up latency across processes\n\n" + text)


if __name__ == "__main__":
    main()
