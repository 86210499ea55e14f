"""The public surface: exports, the sync/async parity, and docstrings."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import pytest

import persistq
import persistq.sync

MODULES = ["persistq", "persistq.sync", "persistq.errors", "persistq.serializers"]

# Methods that exist on one side only, by design.
ASYNC_ONLY = {"aclose", "__aenter__", "__aexit__"}
SYNC_ONLY = {"__enter__", "__exit__"}
# The async PDict has no __len__ on purpose: a blocking len() in async code is a trap.
SYNC_ONLY_BY_NAME = {"PDict": {"__len__"}}


@pytest.mark.parametrize("module_name", MODULES)
def test_all_matches_what_the_module_defines(module_name: str) -> None:
    """Every name in __all__ exists, and every public name is in __all__."""
    module = importlib.import_module(module_name)
    exported = set(module.__all__)
    for name in exported:
        assert hasattr(module, name), f"{module_name}.{name} in __all__ but missing"
    public = {
        n
        for n, v in vars(module).items()
        if not n.startswith("_")
        and not inspect.ismodule(v)
        and getattr(v, "__module__", module_name).startswith("persistq")
        and n not in {"annotations"}
    }
    assert public <= exported, f"public but not exported: {public - exported}"


def _public_methods(cls: type) -> dict[str, Any]:
    out = {}
    for name, value in inspect.getmembers(cls):
        if name.startswith("_") and name not in {
            "__len__",
            "__aenter__",
            "__aexit__",
            "__enter__",
            "__exit__",
        }:
            continue
        if callable(value) or isinstance(value, property):
            out[name] = value
    return out


def _params(fn: Any) -> list[tuple[str, Any, Any]]:
    sig = inspect.signature(fn)
    return [(p.name, p.kind, p.default) for p in sig.parameters.values() if p.name != "self"]


@pytest.mark.parametrize("name", persistq.sync.__all__)
def test_sync_twin_matches_async_original(name: str) -> None:
    """persistq.sync.X has the same methods and parameters as persistq.X."""
    sync_obj = getattr(persistq.sync, name)
    async_obj = getattr(persistq, name)
    if not inspect.isclass(sync_obj) or not hasattr(sync_obj, "_async_cls"):
        assert sync_obj is async_obj
        return
    a = _public_methods(async_obj)
    s = _public_methods(sync_obj)
    sync_only = SYNC_ONLY | SYNC_ONLY_BY_NAME.get(name, set())
    assert set(a) - ASYNC_ONLY == set(s) - sync_only, "method sets drifted"
    assert _params(sync_obj.__init__) == _params(async_obj.__init__)
    for method in set(a) - ASYNC_ONLY - sync_only:
        if isinstance(a[method], property):
            assert isinstance(s[method], property), method
            continue
        assert _params(s[method]) == _params(a[method]), f"{name}.{method} parameters drifted"
        assert inspect.iscoroutinefunction(a[method]) or method in {"statistics", "__len__"}, method
        assert not inspect.iscoroutinefunction(s[method]), method


@pytest.mark.parametrize("module_name", MODULES)
def test_public_classes_and_methods_have_docstrings(module_name: str) -> None:
    """Every public class and public method carries a docstring."""
    module = importlib.import_module(module_name)
    for name in module.__all__:
        obj = getattr(module, name)
        if not inspect.isclass(obj):
            continue
        assert obj.__doc__, f"{module_name}.{name} has no docstring"
        for mname, member in vars(obj).items():
            if mname.startswith("_"):
                continue
            if callable(member) or isinstance(member, property):
                assert member.__doc__, f"{module_name}.{name}.{mname} has no docstring"


def test_async_aliases_point_at_the_async_classes() -> None:
    """The Async… names of persist-queue map to the async classes."""
    assert persistq.AsyncSQLiteQueue is persistq.SQLiteQueue
    assert persistq.AsyncFIFOSQLiteQueue is persistq.SQLiteQueue
    assert persistq.AsyncFILOSQLiteQueue is persistq.FILOSQLiteQueue
    assert persistq.FIFOSQLiteQueue is persistq.SQLiteQueue
