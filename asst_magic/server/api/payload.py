"""Request JSON the store can keep: no lone surrogates, no NaN/Infinity, no runaway nesting.

Checked before any route sees the body, so a value that could not be sent back
out is refused with a 400 and never written.

>>> load_json(b'{"name": "ok"}')
{'name': 'ok'}
"""

from __future__ import annotations

import json
import math
from typing import Any

from asst_magic.server.api.errors import APIError, bad_request

__all__ = ["MAX_DEPTH", "check_text", "load_json"]

MAX_DEPTH = 64  # far deeper than any real tool schema; far below Python's recursion limit

_JSON_HINT = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
    "using your HTTP library correctly. The API expects a JSON payload, but what was sent "
    "was not valid JSON.)"
)


class _NotFinite(ValueError):
    """A number JSON cannot carry (NaN, Infinity, or a float that overflows)."""


def load_json(raw: bytes) -> Any:
    """Parse a request body; any value the API could not store and send back is a 400."""
    try:
        value = json.loads(raw, parse_constant=_constant, parse_float=_float)
    except _NotFinite as exc:
        raise bad_request(
            f"Invalid JSON number {exc}: NaN and Infinity are not JSON; send a finite number "
            "(or null)."
        ) from exc
    except RecursionError as exc:
        raise _too_deep("") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request(_JSON_HINT) from exc
    _check_tree(value)
    return value


def check_text(value: str, param: str) -> None:
    """A 400 naming ``param`` when ``value`` holds a lone UTF-16 surrogate."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = value[exc.start]
        raise bad_request(
            f"Invalid '{param or 'body'}': the string holds a lone UTF-16 surrogate "
            f"(\\u{ord(bad):04x}), which is not Unicode text. Send valid UTF-8 (escape "
            "pairs \\ud83d\\ude00 must come in pairs).",
            param or None,
            code="invalid_value",
        ) from None


def _constant(name: str) -> Any:
    raise _NotFinite(name)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 parses to inf
        raise _NotFinite(text)
    return value


def _check_tree(value: Any) -> None:
    """Walk the parsed body (without recursion): depth, and every key and string."""
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        item, param, depth = stack.pop()
        if isinstance(item, str):
            check_text(item, param)
            continue
        if not isinstance(item, dict | list):
            continue
        if depth >= MAX_DEPTH:
            raise _too_deep(param)
        if isinstance(item, list):
            stack.extend((v, f"{param}[{i}]", depth + 1) for i, v in enumerate(item))
            continue
        for key, child in item.items():
            name = f"{param}.{key}" if param else key
            check_text(key, name)
            stack.append((child, name, depth + 1))


def _too_deep(param: str) -> APIError:
    where = f"'{param}'" if param else "The request body"
    return bad_request(
        f"{where} is nested more than {MAX_DEPTH} levels deep; flatten the value.",
        param or None,
        code="invalid_value",
    )
