"""The house rules of the layers: who may import whom (see ARCHITECTURE.md)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "persistq"


def _imports(path: Path) -> set[str]:
    """The modules a source file imports, as absolute ``persistq.…`` names where relative."""
    tree = ast.parse(path.read_text())
    package = ".".join(path.relative_to(PKG.parent).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def test_sync_face_imports_no_engine() -> None:
    """persistq.sync imports kinds, serializers, errors and persistq._runtime, never persistq.engines."""
    for path in (PKG / "sync").glob("*.py"):
        bad = sorted(m for m in _imports(path) if m.startswith("persistq.engines"))
        assert not bad, f"{path.name} imports {bad}"


def test_runtime_imports_neither_face_nor_engines() -> None:
    """persistq._runtime sits below the portal and the engines: it imports neither."""
    bad = sorted(m for m in _imports(PKG / "_runtime.py") if m.startswith("persistq."))
    assert not bad


def test_kinds_know_no_sql_and_no_engine_class() -> None:
    """Queue kinds hold no SQL and name no engine class: they get their store from a location."""
    sql = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE TABLE)\b[^\n]*\b(FROM|INTO|SET|WHERE|TABLE)\b")
    engine_classes = re.compile(r"\b(SQLite|MySQL|Postgres)(Ack)?(Engine|DictStore)\b")
    for path in [*(PKG / "queues").glob("*.py"), PKG / "pdict.py"]:
        text = path.read_text()
        assert not sql.search(text), f"{path.name} holds SQL"
        assert not engine_classes.search(text), f"{path.name} names an engine class"
        # persist-queue's MySQL constructors (host, user, passwd, …) resolve MySQL targets;
        # the file queue is its own engine's only kind.
        allowed = {"mysql.py": "mysql", "mysql_ack.py": "mysql", "file.py": "file"}.get(path.name)
        for module in _imports(path):
            engine = re.match(r"persistq\.engines\.(?!base|locations)([a-z_]+)", module)
            if engine:
                assert allowed, f"{path.name} imports {module}"
                assert engine.group(1).startswith(allowed), f"{path.name} imports {module}"


def test_only_compatibility_names_mention_sqlite_in_kinds() -> None:
    """In persistq/queues/ the only names with 'SQLite' are persist-queue's public compatibility aliases."""
    allowed = {
        "SQLiteQueue",
        "FIFOSQLiteQueue",
        "FILOSQLiteQueue",
        "SQLiteAckQueue",
        "FIFOSQLiteAckQueue",
        "FILOSQLiteAckQueue",
    }
    for path in (PKG / "queues").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                names = [node.name]
            elif isinstance(node, ast.Assign):
                names = [t.id for t in node.targets if isinstance(t, ast.Name)]
            for name in names:
                assert "sqlite" not in name.lower() or name in allowed, f"{path.name}: {name}"
