"""Cell text to the user's message: ``{name}`` interpolation that leaves code alone.

>>> interpolate("Plot {n} points: {'a': 1} {{n}}", {"n": 3})
"Plot 3 points: {'a': 1} {n}"
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["interpolate"]

# ``{{`` / ``}}`` escapes, or ``{identifier}``; any other brace is just text.
_FIELD = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")


def interpolate(text: str, namespace: Mapping[str, Any]) -> str:
    """Replace ``{name}`` by ``str(namespace[name])`` when ``name`` is defined; ``{{`` is ``{``."""

    def substitute(match: re.Match[str]) -> str:
        token, name = match.group(0), match.group(1)
        if name is None:
            return token[0]
        return str(namespace[name]) if name in namespace else token

    return _FIELD.sub(substitute, text)
