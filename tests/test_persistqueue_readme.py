"""Every Python example of persist-queue 1.1.0's README runs on persistq with only its import changed.

The README is copied in ``tests/data/persist-queue-README.rst``. Each
``.. code-block:: python`` is ported the way a user would port it, and nothing
else is touched:

* ``import persistqueue`` becomes ``import persistq.sync as persistqueue``;
  ``from persistqueue import …`` takes the ``Async*`` names from ``persistq``
  and the others from ``persistq.sync``;
* ``"/path/to/…"`` becomes the relative ``"path/to/…"``;
* a MySQL example's ``host``/``port``/``user``/``password``/``database`` become
  the throwaway MariaDB's (a database of the example's own).

Each example then runs in its own process in a fresh directory, with a hard
timeout, through ``_readme_runner.py`` (which defines the placeholders
``num_worker_threads``, ``source()`` and ``do_work()``). A script must exit 0,
print nothing on stderr and print on stdout exactly what the README's comments
say (``print(item)  # "item1"``); a ``>>>`` example must display what the
README shows where it shows something. An example that cannot work as
written is listed in :data:`EXPECTED_FAILURES` with the error (or hang) it
must end in, the README line where it happens, and why.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from _mysql_support import scratch_database, server_env

TESTS = Path(__file__).resolve().parent
README = TESTS / "data" / "persist-queue-README.rst"
RUNNER = TESTS / "_readme_runner.py"
TIMEOUT = 60
"""Seconds one example's process may take, exit included."""
HANG_AFTER = 30.0
"""Seconds after which the runner reports where a still-running example is stuck."""


@dataclass(frozen=True)
class Example:
    """One ``.. code-block:: python`` of the README."""

    id: str
    first_line: int
    code: str

    @property
    def doctest(self) -> bool:
        """Whether the block is written as an interactive session (``>>>``)."""
        return any(line.lstrip().startswith(">>>") for line in self.code.splitlines())

    @property
    def mysql(self) -> bool:
        """Whether the block talks to a MySQL server."""
        return "MySQLQueue" in self.code

    def line_of(self, text: str) -> int:
        """The README line number of the one line of this block that contains ``text``."""
        hits = [i for i, line in enumerate(self.code.splitlines()) if text in line]
        assert len(hits) == 1, (self.id, text, hits)
        return self.first_line + hits[0]


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def examples(path: Path = README) -> list[Example]:
    """The README's Python code blocks, named by their section and subsection."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Example] = []
    section = subsection = ""
    i = 0
    while i < len(lines):
        line = lines[i]
        under = lines[i + 1] if i + 1 < len(lines) else ""
        if line.strip() and re.fullmatch(r"-{3,}", under):
            section, subsection = line.strip(), ""
        elif line.strip() and re.fullmatch(r"\^{3,}", under):
            subsection = line.strip().strip("*")
        elif line.strip() == ".. code-block:: python":
            i += 1
            while i < len(lines) and not lines[i].strip():
                i += 1
            start = i
            while i < len(lines) and (not lines[i].strip() or lines[i].startswith("    ")):
                i += 1
            block = [text[4:] for text in lines[start:i]]
            while block and not block[-1].strip():
                block.pop()
            name = _slug(section) + (f"/{_slug(subsection)}" if subsection else "")
            found.append(Example(name, start + 1, "\n".join(block) + "\n"))
            continue
        i += 1
    return found


EXAMPLES = examples()


# ------------------------------------------------------------------ porting


def _import_line(match: re.Match[str]) -> str:
    prefix, names = match.group(1), [n.strip() for n in match.group(2).split(",")]
    ported = []
    for module, chosen in (
        ("persistq", [n for n in names if n.startswith("Async")]),
        ("persistq.sync", [n for n in names if not n.startswith("Async")]),
    ):
        if chosen:
            ported.append(f"{prefix}from {module} import {', '.join(chosen)}")
    return "\n".join(ported)


def port(code: str, mysql: dict[str, str] | None = None) -> str:
    """Change what a user changes to run a persist-queue example on persistq, and nothing else."""
    code = re.sub(
        r"^((?:>>> )?\s*)import persistqueue$", r"\1import persistq.sync as persistqueue", code, flags=re.M
    )
    code = re.sub(r"^((?:>>> )?\s*)from persistqueue import (.+)$", _import_line, code, flags=re.M)
    code = re.sub(r"""(["'])/path/to/""", r"\1path/to/", code)
    if mysql is not None:
        settings = {
            "host": repr(mysql["host"]),
            "port": mysql["port"],
            "user": repr(mysql["user"]),
            "password": repr(mysql["password"]),
            "database": repr(mysql["database"]),
        }
        for key, value in settings.items():
            code, n = re.subn(rf"\b{key}=('[^']*'|\d+)", f"{key}={value}", code)
            assert n == 1, (key, code)
    assert "persistqueue import" not in code.replace("as persistqueue", "")
    return code


def printed(code: str) -> str:
    """What a script's ``print(…)  # "value"`` comments say it prints."""
    shown = re.findall(r"""^\s*print\(.*\)\s*#\s*(.+?)\s*$""", code, flags=re.M)
    return "".join(re.sub(r"""^(["'])(.*)\1$""", r"\2", s) + "\n" for s in shown)


def doctest_examples(example: Example, code: str) -> list[dict[str, object]]:
    """The ``>>>`` examples of a block, each with its README line."""
    import doctest

    parsed = doctest.DocTestParser().get_examples(code)
    return [{"line": example.first_line + e.lineno, "source": e.source, "want": e.want} for e in parsed]


# ------------------------------------------------------------------ expectations


@dataclass(frozen=True)
class Failure:
    """How an example that cannot work as written must end, and why."""

    status: str
    """``error`` or ``hang``."""
    at: str
    """Text of the README line where it happens."""
    reason: str
    error: str | None = None
    """The exception's class name, for ``error``."""


EXPECTED_FAILURES: dict[str, Failure] = {
    "examples/acknowledgment-queue": Failure(
        "error",
        "ackq.nack(item)  # Mark for retry",
        "nacks an item it already acked (the comment says 'or'); persistq raises ItemNotFound for an "
        "item that is not in flight (persist-queue changed the acked row back to ready)",
        "ItemNotFound",
    ),
    "examples/async-queue-v1-1-0": Failure(
        "error",
        "await queue.update(",
        "updates an item it already got; persistq raises ItemNotFound for an id that is not stored "
        "(persist-queue's update silently changed nothing)",
        "ItemNotFound",
    ),
    "multi-threading-usage/sqlite3-based-queue": Failure(
        "hang",
        "q.join()",
        "the workers never call task_done(), so join() waits for ever (persist-queue's SQLiteQueue "
        "has no join(): AttributeError)",
    ),
    "multi-threading-usage/file-based-queue": Failure(
        "error",
        "q = Queue()",
        "Queue() without a path: the path is required (by persist-queue too)",
        "TypeError",
    ),
    "serialization-options": Failure(
        "error",
        "q = Queue('mypath', serializer=serializers.msgpack)",
        "opens a second Queue on 'mypath' while the first is open; persistq locks the directory "
        "(persist-queue let two objects share it)",
        "QueueLocked",
    ),
}


# ------------------------------------------------------------------ running


def run_example(
    example: Example, workdir: Path, mysql: dict[str, str] | None
) -> tuple[dict[str, object], str]:
    """Run one ported example in its own process in ``workdir``; return its outcome and the ported code."""
    code = port(example.code, mysql)
    expected = EXPECTED_FAILURES.get(example.id)
    result = workdir / "result.json"
    spec: dict[str, object] = {
        "file": str(README),
        "result": str(result),
        # An example expected to hang is stopped sooner.
        "hang_after": 5.0 if expected is not None and expected.status == "hang" else HANG_AFTER,
    }
    if example.doctest:
        spec.update(mode="doctest", examples=doctest_examples(example, code))
    else:
        spec.update(mode="script", code=code, first_line=example.first_line)
    (workdir / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
    run = workdir / "run"
    run.mkdir()
    proc = subprocess.run(
        [sys.executable, str(RUNNER), str(workdir / "spec.json")],
        cwd=run,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    outcome: dict[str, object] = json.loads(result.read_text(encoding="utf-8")) if result.exists() else {}
    outcome.update(returncode=proc.returncode, stdout=proc.stdout, stderr=proc.stderr)
    return outcome, code


def _settings(example: Example) -> contextlib.AbstractContextManager[dict[str, str] | None]:
    """For a MySQL example, a database of its own on the throwaway MariaDB; else nothing."""
    if not example.mysql:
        return contextlib.nullcontext()
    return scratch_database(server_env(), f"persistq_pqreadme_{os.getpid()}_{EXAMPLES.index(example)}")


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.id for e in EXAMPLES])
def test_readme_example(example: Example, tmp_path: Path) -> None:
    """The example runs with only its import changed, or ends in its listed error, at its line."""
    with _settings(example) as mysql:
        outcome, code = run_example(example, tmp_path, mysql)
    expected = EXPECTED_FAILURES.get(example.id)
    if expected is None:
        assert outcome.get("status") == "ok", outcome
        assert outcome["returncode"] == 0, outcome
        assert outcome["stderr"] == ""
        assert outcome["stdout"] == ("" if example.doctest else printed(code))
        return
    assert outcome.get("status") == expected.status, outcome
    assert outcome.get("line") == example.line_of(expected.at), outcome
    if expected.error is not None:
        assert outcome["type"] == expected.error, outcome


def test_readme_examples_found() -> None:
    """Every Python block of the README is found, with distinct names."""
    text = README.read_text(encoding="utf-8")
    assert len(EXAMPLES) == text.count(".. code-block:: python")
    assert len({e.id for e in EXAMPLES}) == len(EXAMPLES)


def test_expected_failures_name_examples() -> None:
    """Each expected failure names an example of the README and a line that example has."""
    by_id = {e.id: e for e in EXAMPLES}
    for name, failure in EXPECTED_FAILURES.items():
        assert name in by_id, name
        assert by_id[name].line_of(failure.at)


def test_porting_changes_only_imports_paths_and_server() -> None:
    """The port rewrites imports, absolute example paths and MySQL settings; the rest stays."""
    code = (
        "import persistqueue\nfrom persistqueue import AsyncQueue, Queue\nq = Queue('/path/to/q')\nq.put(1)\n"
    )
    assert port(code) == (
        "import persistq.sync as persistqueue\nfrom persistq import AsyncQueue\n"
        "from persistq.sync import Queue\nq = Queue('path/to/q')\nq.put(1)\n"
    )
    assert port(">>> import persistqueue\n") == ">>> import persistq.sync as persistqueue\n"
    assert printed('x = 1\nprint(item)  # "item1"\n') == "item1\n"
