"""The notebook side of ``--var`` and ``%asst_get``: namespace in, namespace out.

>>> shared(["n"], {"n": 3}, limit=1000)[0].description
'`n`: int = 3'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from asst_magic.variables.codec import Encoded, VariableError, encode
from asst_magic.variables.describe import describe

__all__ = ["shared", "summary"]


def shared(
    names: Sequence[str], namespace: Mapping[str, Any], *, limit: int
) -> tuple[Encoded, ...]:
    """Encode and describe the ``--var`` values; ``VariableError`` names the first problem."""
    found: list[Encoded] = []
    for name in dict.fromkeys(names):
        if not name.isidentifier() or name.startswith("_"):
            raise VariableError(f"{name!r} is not a variable name the assistant can use.")
        if name not in namespace:
            raise VariableError(f"{name} is not defined in this notebook.")
        value = namespace[name]
        encoded = encode(name, value, limit=limit)
        found.append(replace(encoded, description=describe(name, value)))
    return tuple(found)


def summary(value: Any) -> str:
    """``DataFrame, 4 rows × 3 columns``: what ``%asst_get`` reports it bound."""
    shape = getattr(value, "shape", None)
    kind = type(value).__name__
    if kind == "DataFrame" and shape is not None:
        return f"DataFrame, {shape[0]} rows × {shape[1]} columns"
    if kind == "Image":
        return "figure (PNG, shown above)"
    if shape is not None:
        return f"{kind}, shape {'×'.join(map(str, shape)) or 'scalar'}"
    if isinstance(value, dict | list):
        return f"{kind} of {len(value)} items"
    return kind
