"""What a function call sends back to the model: its return value or error as capped text.

>>> format_output({"temp": 21.5, "when": dt.date(2024, 5, 1)})
'{"temp": 21.5, "when": "2024-05-01"}'
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import PurePath
from typing import Any

__all__ = ["DEFAULT_MAX_OUTPUT_CHARS", "exception_text", "format_error", "format_output"]

DEFAULT_MAX_OUTPUT_CHARS = 20_000


def format_output(value: Any, max_chars: int | None = DEFAULT_MAX_OUTPUT_CHARS) -> str:
    """A return value as the text sent to the model: str as is, else JSON, else repr; capped."""
    if isinstance(value, str):
        return _truncate(value, max_chars)
    try:
        text = json.dumps(value, default=_to_json, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        text = _safe_repr(value)
    return _truncate(text, max_chars)


def format_error(error: str, max_chars: int | None = DEFAULT_MAX_OUTPUT_CHARS) -> str:
    """A failed call's message as the text sent to the model: ``Error: ...``; capped."""
    return _truncate(f"Error: {error}", max_chars)


def exception_text(exc: BaseException) -> str:
    """``TypeError: message`` (or just the class name when the message is empty)."""
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _truncate(text: str, max_chars: int | None) -> str:
    if max_chars is None or len(text) <= max_chars:
        return text
    return f"{text[:max_chars]}… [truncated {len(text) - max_chars:,} characters]"


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception as exc:
        return f"<{type(value).__name__} object; repr failed: {exception_text(exc)}>"


def _to_json(value: Any) -> Any:
    """JSON-able stand-ins for common non-JSON values; TypeError for the rest (-> repr)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if hasattr(value, "model_dump") and not isinstance(value, type):  # pydantic
        return value.model_dump(mode="json")
    library = type(value).__module__.split(".", 1)[0]
    if library == "pandas" and hasattr(value, "to_json"):
        orient = "records" if hasattr(value, "columns") else "index"
        return json.loads(value.to_json(orient=orient, date_format="iso"))
    if library == "numpy" and hasattr(value, "tolist"):
        return value.tolist()
    for kinds, convert_value in _JSON_STAND_INS:
        if isinstance(value, kinds):
            return convert_value(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _sorted_if_possible(items: set[Any] | frozenset[Any]) -> list[Any]:
    try:
        return sorted(items)
    except TypeError:
        return list(items)


_JSON_STAND_INS: list[tuple[type | tuple[type, ...], Callable[[Any], Any]]] = [
    ((dt.datetime, dt.date, dt.time), lambda v: v.isoformat()),
    (dt.timedelta, lambda v: v.total_seconds()),
    (enum.Enum, lambda v: v.value),
    ((set, frozenset), _sorted_if_possible),
    ((uuid.UUID, Decimal, PurePath), str),
]
