"""persist-queue 1.1.0's own test suite, run against persistq through a ``persistqueue`` shim.

persist-queue ships its tests inside its wheel (``persistqueue/tests``, installed
by the ``test`` dependency group). They are copied into a temporary directory
beside a small ``persistqueue`` package whose modules re-export persistq's
classes (``persistq.sync`` for the blocking ones, ``persistq`` for the
``Async*`` ones), and run there by a separate pytest process (pytest-asyncio in
strict mode, a hard timeout, ``-p no:cacheprovider``). A small plugin records
every test's outcome as JSON lines; the tests below compare them, test id by
test id, with the expected deviations in ``persistqueue_suite_deviations.py``.

The copied ``test_mysqlqueue.py`` is patched to reach the throwaway MariaDB that
``make test`` starts, in a database of its own (see :data:`MYSQL_PATCHES`).

Run ``python tests/test_persistqueue_suite.py`` to print every outcome.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from _mysql_support import scratch_database
from conftest import mysql_env
from persistqueue_suite_deviations import DEVIATIONS

# The whole copied suite runs inside this module's first test (a module fixture).
pytestmark = pytest.mark.timeout(900)

SUITE_TIMEOUT = 600
"""Seconds the copied suite may take in all (it takes about a minute)."""
PER_TEST_TIMEOUT = 60
"""Seconds one copied test may take before pytest-timeout fails it."""

MIGRATION_GUIDE = Path(__file__).resolve().parent.parent / "docs" / "guides" / "migrating.md"
STRAY_PATHS = (Path("/invalid"),)
"""Absolute paths the suite may create (test_database_connection_error, when run as root); removed after."""
MYSQL_FILE = "test_mysqlqueue.py"


def suite_source() -> Path:
    """The directory of persist-queue's installed tests (without importing persist-queue)."""
    spec = importlib.util.find_spec("persistqueue")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("persist-queue 1.1.0 is not installed: `make install` installs the test group")
    return Path(next(iter(spec.submodule_search_locations))) / "tests"


# ------------------------------------------------------------------ the shim

_SYNC = "persistq.sync"
SHIM: dict[str, str] = {
    "persistqueue/__init__.py": f"""
from persistq import AsyncFIFOSQLiteQueue, AsyncFILOSQLiteQueue, AsyncQueue, AsyncSQLiteQueue, AsyncUniqueQ
from {_SYNC} import (
    AckStatus, Empty, FIFOSQLiteAckQueue, FIFOSQLiteQueue, FILOSQLiteAckQueue, FILOSQLiteQueue, Full,
    MySQLQueue, PDict, PriorityQueue, Queue, SQLiteAckQueue, SQLiteQueue, UniqueAckQ, UniqueQ,
)
""",
    "persistqueue/exceptions.py": "from persistq.errors import Empty, Full\n",
    "persistqueue/sqlackqueue.py": f"""
from {_SYNC} import AckStatus, FIFOSQLiteAckQueue, FILOSQLiteAckQueue, SQLiteAckQueue, UniqueAckQ
""",
    "persistqueue/sqlqueue.py": (
        f"from {_SYNC} import FIFOSQLiteQueue, FILOSQLiteQueue, SQLiteQueue, UniqueQ\n"
    ),
    "persistqueue/priorityqueue.py": f"from {_SYNC} import PriorityQueue\n",
    "persistqueue/queue.py": f"from {_SYNC} import Queue\n",
    "persistqueue/mysqlqueue.py": f"from {_SYNC} import MySQLQueue\n",
    "persistqueue/pdict.py": f"from {_SYNC} import PDict\n",
    # Only the public names: the suite also mock.patches persist-queue's private
    # use of aiofiles here, which persistq does not have.
    "persistqueue/async_queue.py": "from persistq import AsyncQueue\n",
    "persistqueue/async_sqlqueue.py": (
        "from persistq import AsyncFIFOSQLiteQueue, AsyncFILOSQLiteQueue, AsyncSQLiteQueue, AsyncUniqueQ\n"
    ),
    "persistqueue/serializers/__init__.py": "",
    # Each serializer module *is* persistq's, so the queues recognise it.
    **{
        f"persistqueue/serializers/{name}.py": (
            f"import sys\nimport persistq.serializers.{name}\n"
            f"sys.modules[__name__] = persistq.serializers.{name}\n"
        )
        for name in ("pickle", "json", "msgpack", "cbor2")
    },
}

# Records each test's outcome; parsed by this module, never scraped from text.
REPORT_PLUGIN = """
import json
import os

_OUT = open(os.environ["PQSUITE_REPORT"], "a", encoding="utf-8")


def _emit(**record):
    _OUT.write(json.dumps(record) + "\\n")
    _OUT.flush()


def pytest_collectreport(report):
    if report.failed:
        _emit(nodeid=report.nodeid, when="collect", outcome="failed", message=str(report.longrepr)[-2000:])


def pytest_runtest_logstart(nodeid, location):
    _emit(nodeid=nodeid, when="start", outcome="", message="")


def pytest_runtest_logreport(report):
    message = ""
    if report.skipped and isinstance(report.longrepr, tuple):
        message = str(report.longrepr[2])
    elif report.failed:
        crash = getattr(report.longrepr, "reprcrash", None)
        message = crash.message if crash is not None else str(report.longrepr)[-2000:]
    _emit(nodeid=report.nodeid, when=report.when, outcome=report.outcome, message=message[:2000])


def pytest_sessionfinish(session, exitstatus):
    _emit(nodeid="", when="sessionfinish", outcome=str(int(exitstatus)), message="")
"""

PYTEST_INI = f"""[pytest]
asyncio_mode = strict
asyncio_default_fixture_loop_scope = function
timeout = {PER_TEST_TIMEOUT}
timeout_method = signal
"""


# ------------------------------------------------------------------ MySQL

_DB_CONF = """db_conf = {
    "host": "127.0.0.1",
    "user": "user",
    "passwd": "passw0rd",
    "db_name": "testqueue",
    # "name": "",
    "port": 3306
}
"""

MYSQL_PATCHES: list[tuple[str, str, str]] = [
    # (why, persist-queue's text, replacement; {..} fields are filled in)
    (
        "reach the throwaway MariaDB, in a database of this run's own",
        _DB_CONF,
        'db_conf = {{"host": {host!r}, "user": {user!r}, "passwd": {password!r}, '
        '"db_name": {database!r}, "port": {port}}}\n',
    ),
    (
        "persistq limits names to letters, digits, '_' and '-' (a deliberate deviation); the "
        "suite's names are '<test>.<time.time()>'",
        'self._table_name = ".".join(_name)',
        'self._table_name = ".".join(_name).replace(".", "_")',
    ),
    (
        "the tear-down drops the table through persist-queue's DBUtils pool (get_pooled_conn, "
        "_table_name); drop it with PyMySQL instead",
        """        tmp_conn = self.mysql_queue.get_pooled_conn()
        tmp_conn.cursor().execute(
            "drop table if exists %s" % self.mysql_queue._table_name)
        tmp_conn.commit()
""",
        """        import pymysql
        tmp_conn = pymysql.connect(host=db_conf["host"], port=db_conf["port"], user=db_conf["user"],
                                   password=db_conf["passwd"], database=db_conf["db_name"])
        tmp_conn.cursor().execute("drop table if exists `queue_%s`" % self._table_name)
        tmp_conn.commit()
        tmp_conn.close()
""",
    ),
]


def patch_mysql_tests(source: str, server: dict[str, str]) -> str:
    """Apply :data:`MYSQL_PATCHES` to ``test_mysqlqueue.py``; fail if one no longer applies."""
    fields = {**server, "port": int(server["port"])}
    for why, old, new in MYSQL_PATCHES:
        if source.count(old) != 1:
            pytest.fail(f"test_mysqlqueue.py changed: cannot {why}")
        source = source.replace(old, new.format(**fields))
    return source


# ------------------------------------------------------------------ running


@dataclass(frozen=True)
class Outcome:
    """One copied test's result: ``passed``, ``failed`` or ``skipped``, and why."""

    outcome: str
    message: str = ""


@dataclass(frozen=True)
class SuiteRun:
    """What the copied suite's process did."""

    returncode: int
    outcomes: dict[str, Outcome]
    collect_errors: dict[str, str]
    finished: bool
    output: str
    files: tuple[str, ...]
    mysql: bool


def _combine(records: list[dict[str, str]]) -> tuple[dict[str, Outcome], dict[str, str], bool]:
    outcomes: dict[str, Outcome] = {}
    collect_errors: dict[str, str] = {}
    finished = False
    for r in records:
        nodeid, when, outcome = r["nodeid"], r["when"], r["outcome"]
        seen = outcomes.get(nodeid)
        if when == "sessionfinish":
            finished = True
        elif when == "collect":
            collect_errors[nodeid] = r["message"]
        elif when == "start":
            # Replaced by the test's reports; left only by a test the hard timeout cut short.
            outcomes[nodeid] = Outcome("running")
        elif seen is None or seen.outcome in ("running", "passed"):
            # A failure in any phase makes the test failed; a skip in set-up, skipped.
            if outcome == "failed":
                outcomes[nodeid] = Outcome("failed", f"{when}: {r['message']}")
            elif outcome == "skipped":
                outcomes[nodeid] = Outcome("skipped", r["message"])
            elif when == "call":
                outcomes[nodeid] = Outcome("passed")
    cut_short = Outcome("failed", "never finished (the suite's hard timeout)")
    outcomes = {k: cut_short if o.outcome == "running" else o for k, o in outcomes.items()}
    return outcomes, collect_errors, finished


def write_suite(workdir: Path, server: dict[str, str] | None) -> tuple[str, ...]:
    """Copy the suite and the shim into ``workdir`` (MySQL tests patched, or left out without a server)."""
    suite_dir = workdir / "suite"
    shim_dir = workdir / "shim"
    suite_dir.mkdir(parents=True)
    for rel, text in SHIM.items():
        target = shim_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text.lstrip(), encoding="utf-8")
    (shim_dir / "pqsuite_report.py").write_text(REPORT_PLUGIN, encoding="utf-8")
    (workdir / "pytest.ini").write_text(PYTEST_INI, encoding="utf-8")
    files = []
    for src in sorted(suite_source().glob("test_*.py")):
        if src.name == MYSQL_FILE:
            if server is None:
                continue
            text = patch_mysql_tests(src.read_text(encoding="utf-8"), server)
            (suite_dir / src.name).write_text(text, encoding="utf-8")
        else:
            shutil.copy(src, suite_dir / src.name)
        files.append(src.name)
    return tuple(files)


def run_suite(workdir: Path, server: dict[str, str] | None) -> SuiteRun:
    """Copy the suite and the shim into ``workdir`` and run it in its own pytest process."""
    report = workdir / "report.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTHONPATH"] = str(workdir / "shim")
    env["PQSUITE_REPORT"] = str(report)
    with contextlib.ExitStack() as stack:
        if server is not None:
            server = stack.enter_context(scratch_database(server, f"persistq_pqsuite_{os.getpid()}"))
        files = write_suite(workdir, server)
        strays = [p for p in STRAY_PATHS if not p.exists()]
        stack.callback(lambda: [shutil.rmtree(p, ignore_errors=True) for p in strays])
        suite_dir = workdir / "suite"
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pytest",
                "-c",
                str(workdir / "pytest.ini"),
                "--rootdir",
                str(suite_dir),
                "-p",
                "no:cacheprovider",
                "-p",
                "pqsuite_report",
                "-q",
                "-rN",
                str(suite_dir),
            ],
            cwd=suite_dir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            output, _ = proc.communicate(timeout=SUITE_TIMEOUT)
        except subprocess.TimeoutExpired:
            # Its own session: the kill also ends any child process it started.
            os.killpg(proc.pid, signal.SIGKILL)
            output, _ = proc.communicate()
    lines = report.read_text(encoding="utf-8").splitlines() if report.exists() else []
    records = [json.loads(line) for line in lines]
    outcomes, collect_errors, finished = _combine(records)
    return SuiteRun(
        proc.returncode,
        outcomes,
        collect_errors,
        finished,
        output[-5000:],
        files,
        server is not None,
    )


def own_skip_reasons(source: Path) -> set[str]:
    """The reasons persist-queue's own tests give when they skip themselves."""
    reasons = set()
    for path in source.glob("test_*.py"):
        text = path.read_text(encoding="utf-8")
        reasons.update(re.findall(r"skipTest\(\s*'([^']+)'\s*\)", text))
        reasons.update(re.findall(r"skipstr = '([^']+)'", text))
    return reasons


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> SuiteRun:
    """persist-queue's suite, run once against persistq for this module's tests."""
    server = mysql_env()
    if server is None and os.environ.get("CI"):
        pytest.fail("CI must run persist-queue's MySQL tests: start them through `make test`")
    return run_suite(tmp_path_factory.mktemp("pqsuite"), server)


def expected_deviations(run: SuiteRun) -> dict[str, str]:
    """The deviations that apply to this run (the MySQL ones only when the server is there)."""
    return {k: v for k, v in DEVIATIONS.items() if run.mysql or not k.startswith(MYSQL_FILE)}


# ------------------------------------------------------------------ the checks


def test_suite_ran_to_the_end(suite: SuiteRun) -> None:
    """The copied suite's process collected every file and finished with a verdict."""
    assert suite.finished, f"the copied suite did not finish:\n{suite.output}"
    assert suite.returncode in (0, 1), suite.output
    assert not suite.collect_errors
    ran = {nodeid.split("::")[0] for nodeid in suite.outcomes}
    assert ran == set(suite.files)


def test_no_unexpected_failure(suite: SuiteRun) -> None:
    """Every copied test passes, except the listed deviations."""
    deviations = expected_deviations(suite)
    unexpected = {
        nodeid: o.message
        for nodeid, o in sorted(suite.outcomes.items())
        if o.outcome == "failed" and nodeid not in deviations
    }
    assert not unexpected, "\n".join(f"{k}: {v}" for k, v in unexpected.items())


def test_every_deviation_still_deviates(suite: SuiteRun) -> None:
    """Each listed deviation still fails, so the list cannot hide a fixed behaviour."""
    stale = {
        nodeid: suite.outcomes[nodeid].outcome if nodeid in suite.outcomes else "not collected"
        for nodeid in expected_deviations(suite)
        if nodeid not in suite.outcomes or suite.outcomes[nodeid].outcome != "failed"
    }
    assert not stale, "\n".join(f"{k}: {v}" for k, v in sorted(stale.items()))


def test_only_persist_queues_own_skips(suite: SuiteRun) -> None:
    """The only skipped tests are those persist-queue skips itself (in-memory, a known bug)."""
    reasons = own_skip_reasons(suite_source())
    foreign = {
        k: o.message
        for k, o in suite.outcomes.items()
        if o.outcome == "skipped" and o.message.removeprefix("Skipped: ") not in reasons
    }
    assert not foreign, foreign


def test_mysql_part_ran(suite: SuiteRun) -> None:
    """persist-queue's MySQL tests ran against the throwaway MariaDB (none skipped)."""
    if not suite.mysql:
        pytest.skip("run through `make test` (or scripts/mariadb.sh) to start the throwaway MariaDB")
    mysql = [o for k, o in suite.outcomes.items() if k.startswith(MYSQL_FILE)]
    assert mysql
    assert all(o.outcome != "skipped" for o in mysql)


def test_deviation_list_is_well_formed() -> None:
    """Each deviation names a copied test file and gives a one-line reason."""
    files = {p.name for p in suite_source().glob("test_*.py")}
    for nodeid, reason in DEVIATIONS.items():
        assert nodeid.split("::")[0] in files, nodeid
        assert reason.strip(), nodeid
        assert "\n" not in reason, nodeid


def counts(run: SuiteRun) -> Counter[str]:
    """Passed, expected deviations and skipped tests of a run."""
    return Counter(_label(run, k, o) for k, o in run.outcomes.items())


def _label(run: SuiteRun, nodeid: str, o: Outcome) -> str:
    return "deviation" if o.outcome == "failed" and nodeid in expected_deviations(run) else o.outcome


def test_migration_guide_states_the_counts(suite: SuiteRun) -> None:
    """The migration guide (docs/guides/migrating.md) gives this run's passed / deviation / skipped counts."""
    if not suite.mysql:
        pytest.skip("the guide's counts include the MySQL tests")
    c = counts(suite)
    sentence = (
        f"of its {c.total()} tests, {c['passed']} pass, {c['deviation']} are expected deviations (listed in "
        f"`tests/persistqueue_suite_deviations.py`) and {c['skipped']} skip"
    )
    assert sentence in " ".join(MIGRATION_GUIDE.read_text(encoding="utf-8").split()), sentence


if __name__ == "__main__":
    import tempfile

    # An optional argument names an empty directory to keep the copied suite in.
    with tempfile.TemporaryDirectory() as tmp:
        run = run_suite(Path(sys.argv[1] if len(sys.argv) > 1 else tmp), mysql_env())
    for nodeid, o in sorted(run.outcomes.items()):
        print(f"{_label(run, nodeid, o):9} {nodeid}  {o.message[:300]}")
    print(dict(counts(run)), "collect errors:", run.collect_errors, "rc:", run.returncode)
