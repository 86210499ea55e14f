"""A pool of worker threads on one ``persistq.sync.SQLiteAckQueue``: retries and dead letters.

Every job is acked when it succeeds and nacked when it raises; the queue
counts deliveries, and a job delivered ``max_attempts`` times without an ack
goes to the dead letters (``AckStatus.ack_failed``) instead of looping. A
"flaky" job fails twice and then succeeds; a "poison" job always fails and
ends in the dead letters, where ``failed()`` lists it (and
``persistq requeue DIR`` could make it ready again).

Run: ``python examples/worker_pool.py [DIR]``.
"""

from __future__ import annotations

import sys
import tempfile
import threading
from collections import Counter
from typing import Any

import persistq.sync

WORKERS = 4
MAX_ATTEMPTS = 3


def handle(job: dict[str, Any], attempts: Counter[str], lock: threading.Lock) -> None:
    """Do one job; raise to make it fail this time."""
    with lock:
        attempts[job["name"]] += 1
        tries = attempts[job["name"]]
    if job["name"] == "poison":
        raise ValueError("this job can never succeed")
    if job["name"] == "flaky" and tries < 3:
        raise ConnectionError(f"flaky failure #{tries}")


def worker(q: persistq.sync.SQLiteAckQueue, attempts: Counter[str], lock: threading.Lock) -> None:
    """Take jobs until none is left to take (ready, or coming back after a nack)."""
    me = threading.current_thread().name
    while True:
        try:
            job = q.get(timeout=0.5)
        except persistq.sync.Empty:
            return
        try:
            handle(job, attempts, lock)
        except Exception as exc:  # noqa: BLE001 - any failure of a job means: try again later
            print(f"{me}: {job['name']} failed ({exc}); nack", flush=True)
            q.nack(job)  # ready again; after MAX_ATTEMPTS deliveries it goes to ack_failed
        else:
            print(f"{me}: {job['name']} done", flush=True)
            q.ack(job)


def main() -> None:
    """Run the pool over ten good jobs, a flaky one and a poison one; show the outcome."""
    path = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="persistq-workers-")
    print(f"queue directory: {path}")
    attempts: Counter[str] = Counter()
    lock = threading.Lock()
    with persistq.sync.SQLiteAckQueue(
        path, name="jobs", serializer=persistq.sync.serializers.json, max_attempts=MAX_ATTEMPTS
    ) as q:
        q.put_many([{"name": f"job-{i}"} for i in range(10)] + [{"name": "flaky"}, {"name": "poison"}])
        threads = [
            threading.Thread(target=worker, args=(q, attempts, lock), name=f"worker-{i}")
            for i in range(WORKERS)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        counts = q.counts()
        dead = q.failed()
    print(f"attempts: flaky={attempts['flaky']}, poison={attempts['poison']}")
    print(f"acked={counts[persistq.sync.AckStatus.acked]}, dead letters={[d['data']['name'] for d in dead]}")
    if counts[persistq.sync.AckStatus.acked] != 11 or [d["data"]["name"] for d in dead] != ["poison"]:
        sys.exit("unexpected outcome")


if __name__ == "__main__":
    main()
