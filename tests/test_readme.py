"""Every Python example in the README runs as written.

A block marked ``<!-- requires: postgresql -->`` (or ``mysql``) on the line before its fence runs against
the throwaway server of ``make test``, its placeholder DSN and ``table=`` names rewritten as the site's
examples are (``tests/test_docs.py``); without the server it is skipped (and fails on CI).
"""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from pathlib import Path

import _mysql_support
import _pg_support
import pytest
from test_docs import SERVICES, _rewrite

README = Path(__file__).resolve().parent.parent / "README.md"
TEXT = README.read_text(encoding="utf-8")
BLOCKS: list[tuple[str, str]] = re.findall(
    r"^(?:<!--\s*requires:\s*(\w+)\s*-->\n)?```python\n(.*?)```", TEXT, flags=re.S | re.M
)


@pytest.mark.parametrize(("service", "code"), BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_example_runs(service: str, code: str, tmp_path: Path) -> None:
    """The README example exits 0 when run in an empty directory (on the test server when it needs one)."""
    env: dict[str, str] | None = None
    prefix = f"readme{uuid.uuid4().hex[:8]}_"
    if service == "mysql":
        env = _mysql_support.server_env()
    elif service == "postgresql":
        env = _pg_support.server_env()
    elif service:
        pytest.fail(f"unknown requirement {service!r}")
    if env is not None:
        code = _rewrite(code, SERVICES[service], env, prefix)
    try:
        result = subprocess.run(
            [sys.executable, "-W", "error", "-c", code],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        if env is not None:
            # Every table the example made carries the prefix: data, pending and dict tables alike.
            (_mysql_support if service == "mysql" else _pg_support).drop_matching(env, prefix)
    assert result.returncode == 0, result.stderr


def test_readme_has_examples() -> None:
    """The README carries one example per face: asyncio, blocking (persistq.sync) and a server URL."""
    codes = [code for _, code in BLOCKS]
    assert any("asyncio.run(" in c for c in codes)
    assert any("import persistq.sync" in c and "://" not in c for c in codes)
    assert any(service and "://" in c for service, c in BLOCKS)


def test_readme_links_into_the_site() -> None:
    """Every relative link of the README names a page of the site that exists."""
    links = re.findall(r"\]\((docs/[^)#]+)(?:#[^)]*)?\)", TEXT)
    assert len(links) >= 10
    missing = [link for link in links if not (README.parent / link).is_file()]
    assert not missing, missing
