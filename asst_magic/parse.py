"""Cell text to the user's message: ``{name}`` interpolation that leaves code alone.

>>> interpolate("Plot {n} points: {'a': 1} {{n}}", {"n": 3})
"Plot 3 points: {'a': 1} {n}"
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["get_target", "interpolate"]

# ``{{name}}`` (an escaped field), a lone ``{{``, or ``{name}``. A ``}}`` elsewhere is
# text: nested JSON and dicts end in ``}}`` and must reach the assistant as typed.
_FIELD = re.compile(r"\{\{([A-Za-z_][A-Za-z0-9_]*)\}\}|\{\{|\{([A-Za-z_][A-Za-z0-9_]*)\}")


def interpolate(text: str, namespace: Mapping[str, Any]) -> str:
    """Replace ``{name}`` by ``str(namespace[name])`` when ``name`` is defined; ``{{`` is ``{``."""

    def substitute(match: re.Match[str]) -> str:
        escaped, name = match.group(1), match.group(2)
        if escaped is not None:
            return "{" + escaped + "}"
        if name is None:
            return "{"
        return str(namespace[name]) if name in namespace else match.group(0)

    return _FIELD.sub(substitute, text)


def get_target(words: list[str]) -> tuple[str, str]:
    """``NAME`` or ``NAME as LOCAL`` (from ``%asst_get``) to ``(name, local)``.

    >>> get_target(["summary", "as", "table"])
    ('summary', 'table')
    """
    if len(words) == 1:
        name = local = words[0]
    elif len(words) == 3 and words[1] == "as":
        name, local = words[0], words[2]
    else:
        raise ValueError("expected NAME or NAME as LOCAL, e.g. `%asst_get summary as table`")
    for word in (name, local):
        if not word.isidentifier() or keyword.iskeyword(word):
            raise ValueError(f"{word!r} is not a Python variable name")
    return name, local
