"""Every code example of the documentation site (``docs/**/*.md``) runs as written.

Each fenced ```` ```python ```` block runs as its own process (``python -W error``) in a fresh
temporary directory, with a hard timeout, and must exit 0. An HTML comment on the line before a
block's fence changes that:

* ``<!-- no-run: reason -->``: the block is not run (the reason is required);
* ``<!-- continue -->``: the block runs after the block before it on the same page, in the same
  directory (a walk-through whose later steps need the files of the earlier ones). A ```` ```sh ````
  block runs (``bash -e``, with this interpreter's ``bin`` directory first on ``PATH``) only when
  marked so; an unmarked shell block is an install or ``make`` line, not an example;
* ``<!-- requires: mysql -->``: the block needs the throwaway MariaDB of ``make test``; without it
  the block is skipped (and fails on CI, as the other MySQL tests do). The DSN host part
  ``app:secret@db.internal:3306/jobs`` is replaced by the test server's, and each ``table=NAME``
  by a fresh table, dropped afterwards;
* ``<!-- requires: postgresql -->``: the same for the throwaway PostgreSQL of ``make test``
  (``PERSISTQ_PG_*``): ``app:secret@db.internal:5432/work`` becomes the test server's, each
  ``table=NAME`` a fresh name, and every table holding that name is dropped afterwards.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import _mysql_support
import _pg_support
import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
TIMEOUT = 90.0
"""Seconds one block may run before its process group is killed."""

DSN_PLACEHOLDER = "app:secret@db.internal:3306/jobs"
"""The user, password, host, port and database the MySQL examples show."""

PG_DSN_PLACEHOLDER = "app:secret@db.internal:5432/work"
"""The user, password, host, port and database the PostgreSQL examples show."""

SERVICES = {"mysql": DSN_PLACEHOLDER, "postgresql": PG_DSN_PLACEHOLDER}
"""What a ``requires`` marker may name, and the DSN placeholder its examples use."""

_FENCE = re.compile(r"^```([\w-]*)\s*$")
_MARKER = re.compile(r"^<!--\s*(no-run|continue|requires)\s*(?::\s*(.*?))?\s*-->$")
_TABLE = re.compile(r"([?&]table=)([A-Za-z0-9_-]+)")
# Fences the site may use. A block in another language (``py``, ``python3``) would escape
# this test, so an unknown one fails test_docs_fences_are_known.
KNOWN_LANGUAGES = {"python", "sh", "text", "json", "toml", "ini"}


@dataclass
class Block:
    """One fenced code block of a page."""

    page: str
    line: int
    language: str
    code: str
    marker: str | None = None
    argument: str = ""


@dataclass
class Chain:
    """Blocks that run in order in one directory: a block and the ``continue`` blocks after it."""

    blocks: list[Block] = field(default_factory=list)

    @property
    def id(self) -> str:
        """The page and line of the first block, for the test id."""
        first = self.blocks[0]
        return f"{first.page}:{first.line}"

    @property
    def service(self) -> str | None:
        """The server a block of the chain requires (``mysql`` or ``postgresql``), if any."""
        needed = {b.argument for b in self.blocks if b.marker == "requires"}
        if len(needed) > 1:
            raise AssertionError(f"{self.id}: one chain cannot require {sorted(needed)}")
        return needed.pop() if needed else None


def parse_page(path: Path) -> list[Block]:
    """The fenced blocks of one Markdown page, each with the marker on the line before it."""
    page = path.relative_to(DOCS).as_posix()
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    previous = ""
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        if fence is None:
            if lines[i].strip():
                previous = lines[i].strip()
            i += 1
            continue
        start = i
        i += 1
        body: list[str] = []
        while i < len(lines) and lines[i].rstrip() != "```":
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise AssertionError(f"{page}:{start + 1}: unclosed code fence")
        marker = _MARKER.match(previous)
        blocks.append(
            Block(
                page,
                start + 1,
                fence.group(1),
                "\n".join(body) + "\n",
                marker.group(1) if marker else None,
                (marker.group(2) or "") if marker else "",
            )
        )
        previous = ""
        i += 1
    return blocks


def pages() -> list[Path]:
    """Every Markdown page of the site."""
    return sorted(DOCS.rglob("*.md"))


def chains() -> list[Chain]:
    """The runnable blocks of every page, grouped into chains."""
    found: list[Chain] = []
    for path in pages():
        page_chains: list[Chain] = []
        for block in parse_page(path):
            if block.marker == "no-run":
                continue
            if block.marker == "continue":
                if not page_chains:
                    raise AssertionError(f"{block.page}:{block.line}: 'continue' with no block before it")
                page_chains[-1].blocks.append(block)
            elif block.language == "python":
                page_chains.append(Chain([block]))
        found += page_chains
    return found


CHAINS = chains()


def _rewrite(code: str, placeholder: str, env: dict[str, str], prefix: str) -> str:
    """``code`` pointed at the test server, each ``table=NAME`` made fresh by ``prefix``."""
    from urllib.parse import quote

    server = (
        f"{quote(env['user'], safe='')}:{quote(env['password'], safe='')}"
        f"@{env['host']}:{env['port']}/{env['database']}"
    )

    def table(match: re.Match[str]) -> str:
        return match.group(1) + prefix + match.group(2)

    return _TABLE.sub(table, code.replace(placeholder, server))


def _run(block: Block, code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env["PATH"] = os.pathsep.join((str(Path(sys.executable).parent), env.get("PATH", "")))
    if block.language == "python":
        argv = [sys.executable, "-W", "error", "-c", code]
    elif block.language == "sh":
        argv = ["bash", "-e", "-o", "pipefail", "-c", code]
    else:
        raise AssertionError(f"{block.page}:{block.line}: cannot run a {block.language!r} block")
    # A session of its own, so a hung example's children die with it.
    with subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as proc:
        try:
            out, err = proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            pytest.fail(f"{block.page}:{block.line}: still running after {TIMEOUT} s\n{out}\n{err}")
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


@pytest.mark.parametrize("chain", CHAINS, ids=[c.id for c in CHAINS])
def test_docs_example_runs(chain: Chain, tmp_path: Path) -> None:
    """The example (and the steps that continue it) exits 0 in a fresh directory."""
    env: dict[str, str] | None = None
    service = chain.service
    if service == "mysql":
        env = _mysql_support.server_env()
    elif service == "postgresql":
        env = _pg_support.server_env()
    prefix = f"docs{uuid.uuid4().hex[:8]}_"
    try:
        for block in chain.blocks:
            code = block.code
            if service is not None and env is not None:
                code = _rewrite(code, SERVICES[service], env, prefix)
            result = _run(block, code, tmp_path)
            assert result.returncode == 0, (
                f"{block.page}:{block.line} exited {result.returncode}\n"
                f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
            )
    finally:
        if env is not None:
            # Every table the example made carries the prefix: data, pending and dict tables alike.
            (_mysql_support if service == "mysql" else _pg_support).drop_matching(env, prefix)


def test_docs_markers_are_well_formed() -> None:
    """Every no-run marker gives a reason, and every requires marker names a known service."""
    for path in pages():
        for block in parse_page(path):
            where = f"{block.page}:{block.line}"
            if block.marker == "no-run":
                assert block.argument, f"{where}: no-run needs a reason"
            if block.marker == "requires":
                assert block.argument in SERVICES, f"{where}: unknown requirement {block.argument!r}"


def test_docs_fences_are_known() -> None:
    """Every code block names a known language, so none escapes the run test by its spelling."""
    for path in pages():
        for block in parse_page(path):
            assert block.language in KNOWN_LANGUAGES, (
                f"{block.page}:{block.line}: fence language {block.language!r}"
            )


@pytest.mark.parametrize(
    ("module_name", "page"),
    [
        ("persistq", "reference/persistq.md"),
        ("persistq.sync", "reference/sync.md"),
        ("persistq.admin", "reference/admin.md"),
    ],
)
def test_reference_page_names_every_export(module_name: str, page: str) -> None:
    """Each name a namespace exports is rendered (a ``:::`` block) or named on its reference page."""
    import importlib

    module = importlib.import_module(module_name)
    text = (DOCS / page).read_text(encoding="utf-8")
    rendered = set(re.findall(rf"^::: {re.escape(module_name)}\.(\w+)$", text, flags=re.M))
    named = set(re.findall(r"`(\w+)`", text))
    missing = [name for name in module.__all__ if name not in rendered and name not in named]
    assert not missing, f"{page} does not document {missing}"


def test_docs_have_examples() -> None:
    """The site carries examples on the home page, in getting started and in the guides."""
    ran = {chain.blocks[0].page.split("/")[0] for chain in CHAINS}
    assert {"index.md", "getting-started.md", "guides"} <= ran
    assert len(CHAINS) >= 15
