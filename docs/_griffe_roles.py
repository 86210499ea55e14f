"""A griffe extension for the docs build: reStructuredText in docstrings becomes Markdown.

persistq's docstrings use Sphinx cross-reference roles (``:class:`~persistq.errors.Full```)
and reST's ``::`` before a literal block, which mkdocstrings would print literally. Here a role
naming a public persistq object (``persistq.…`` outside private modules) becomes an autorefs
link, so ``mkdocs build --strict`` fails when it names something the reference does not
document; any other role (a relative name, the standard library, an internal module) becomes
inline code. A paragraph ending in ``::`` ends in ``:`` (its indented block is a Markdown code
block already). The docstrings themselves stay as they are, readable in ``help()`` and editors.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:class|meth|func|mod|attr|exc|data|obj):`(~?)([^`<>]+?)`")
# Internal layers: documented in their docstrings, not on the site.
_LITERAL_BLOCK = re.compile(r"(?<=\S)::$", flags=re.M)
_INTERNAL = re.compile(r"^persistq\.(?:engines|queues|cli|migrate|pdict)\b|\._")


def _replace(match: re.Match[str]) -> str:
    short, target = match.group(1), match.group(2).strip()
    shown = target.rsplit(".", 1)[-1] if short else target
    if target.startswith("persistq") and not _INTERNAL.search(target):
        return f"[`{shown}`][{target}]"
    return f"`{shown}`"


def convert(text: str) -> str:
    """Return ``text`` with every Sphinx role replaced (see the module docstring)."""
    return _LITERAL_BLOCK.sub(":", _ROLE.sub(_replace, text))


class SphinxRoles(griffe.Extension):
    """Rewrite Sphinx roles in every docstring griffe loads, once the tree is built and before parsing."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Convert the roles of ``obj``'s docstring."""
        if obj.docstring is not None:
            obj.docstring.value = convert(obj.docstring.value)
