"""JSON text the server sends: always valid UTF-8 and standard JSON, whatever was stored.

Objects stored before input was checked may hold lone UTF-16 surrogates (which
cannot be encoded as UTF-8) or NaN/Infinity (which JSON has no words for). They
are repaired on the way out, so an old data dir stays readable and deletable.

>>> dumps({"name": "a\\ud800b", "t": float("nan")})
b'{"name":"a\\xef\\xbf\\xbdb","t":null}'
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from starlette.responses import JSONResponse

from asst_magic.sse import encode_event

__all__ = ["SafeJSONResponse", "dumps", "encode_event_safely", "repaired"]

_SURROGATE = re.compile("[\ud800-\udfff]")


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON of ``value``, repaired first if it could not be sent as it is."""
    try:
        return _dumps(value)
    except (UnicodeEncodeError, ValueError):
        return _dumps(repaired(value))


class SafeJSONResponse(JSONResponse):
    """A ``JSONResponse`` whose body is ``dumps(content)``: it cannot fail to encode."""

    def render(self, content: Any) -> bytes:
        return dumps(content)


def encode_event_safely(event: str, data: Any) -> bytes:
    """``sse.encode_event``, repairing data a client could not parse."""
    try:
        return encode_event(event, data)
    except (UnicodeEncodeError, ValueError):
        return encode_event(event, repaired(data))


def repaired(value: Any) -> Any:
    """``value`` with lone surrogates as U+FFFD and non-finite numbers as ``null``.

    Iterative, so an object nested as deeply as an old store holds cannot
    overflow the stack.
    """
    root: list[Any] = [value]
    stack: list[tuple[Any, Any]] = [(root, 0)]
    while stack:
        holder, key = stack.pop()
        item = holder[key]
        if isinstance(item, dict):
            fixed = {_text(k): v for k, v in item.items()}
            holder[key] = fixed
            stack.extend((fixed, k) for k in fixed)
        elif isinstance(item, list):
            copy = list(item)
            holder[key] = copy
            stack.extend((copy, i) for i in range(len(copy)))
        elif isinstance(item, str):
            holder[key] = _text(item)
        elif isinstance(item, float) and not math.isfinite(item):
            holder[key] = None
    return root[0]


def _text(value: Any) -> Any:
    return _SURROGATE.sub("\ufffd", value) if isinstance(value, str) else value


def _dumps(value: Any) -> bytes:
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.encode("utf-8")
