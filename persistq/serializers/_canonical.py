"""Key-order-independent forms of values, for ``sort_keys=True``."""

from __future__ import annotations

from typing import Any


def _sort_key(key: Any) -> tuple[str, str]:
    return (type(key).__qualname__, repr(key))


def sorted_items(mapping: dict[Any, Any]) -> list[tuple[Any, Any]]:
    """Return the mapping's items in a deterministic order."""
    try:
        return sorted(mapping.items(), key=lambda kv: kv[0])
    except TypeError:
        # Keys of mixed, unorderable types: order by type name, then repr.
        return sorted(mapping.items(), key=lambda kv: _sort_key(kv[0]))


def canonical(value: Any) -> Any:
    """Return ``value`` with the keys of every nested dict in sorted order.

    Lists and tuples are rebuilt (keeping their type) so dicts inside them are
    sorted too; everything else is returned as is.
    """
    if isinstance(value, dict):
        return {k: canonical(v) for k, v in sorted_items(value)}
    if isinstance(value, list):
        return [canonical(v) for v in value]
    if type(value) is tuple:
        return tuple(canonical(v) for v in value)
    return value
