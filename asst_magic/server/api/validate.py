"""Request parsing and validation, raising OpenAI-shaped 400s."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from asst_magic.server.api.errors import APIError, bad_request
from asst_magic.server.api.payload import load_json
from asst_magic.server.objects import function_tool, text_block

__all__ = [
    "TOOL_TYPES",
    "describe",
    "json_body",
    "optional_str",
    "page_params",
    "parse_bool",
    "parse_content",
    "parse_metadata",
    "parse_reasoning_effort",
    "parse_run_options",
    "parse_settings",
    "parse_tool_resources",
    "parse_tools",
    "require_str",
    "string_limits",
]

Obj = dict[str, Any]

TOOL_TYPES = ("code_interpreter", "function", "file_search")


async def json_body(request: Request) -> Obj:
    """The request's JSON object (an empty body is ``{}``); see ``payload`` for what is refused."""
    raw = await request.body()
    if not raw.strip():
        return {}
    body = load_json(raw)
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.", code="invalid_type")
    return body


def require_str(body: Obj, name: str) -> str:
    """A required, non-empty string field."""
    if body.get(name) is None:
        raise bad_request(
            f"Missing required parameter: '{name}'.", name, code="missing_required_parameter"
        )
    value = optional_str(body, name)
    if not value:
        raise bad_request(f"Invalid '{name}': empty string.", name, code="invalid_value")
    return value


def optional_str(body: Obj, name: str) -> str | None:
    """A string field that may be absent or null."""
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise bad_request(
            f"Invalid type for '{name}': expected a string, but got {describe(value)} instead.",
            name,
            code="invalid_type",
        )
    return value


def parse_metadata(body: Obj, param: str = "metadata") -> Obj | None:
    """``metadata``: at most 16 string pairs."""
    value = body.get("metadata")
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise bad_request(
            f"Invalid '{param}': expected an object of string values.", param, code="invalid_type"
        )
    if len(value) > 16:
        raise bad_request(f"Invalid '{param}': at most 16 keys.", param, code="invalid_value")
    for key, text in value.items():
        if len(key) > 64 or len(text) > 512:
            raise bad_request(
                f"Invalid '{param}.{key[:64]}': keys are at most 64 characters and values at "
                "most 512.",
                param,
                code="invalid_value",
            )
    return value


def parse_tools(body: Obj, param: str = "tools") -> list[Obj] | None:
    """Validated, normalized tools (function tools get OpenAI's defaults)."""
    tools = body.get("tools")
    if tools is None:
        return None
    if not isinstance(tools, list):
        raise bad_request(f"Invalid type for '{param}': expected an array.", param, "invalid_type")
    return [_tool(tool, f"{param}[{i}]") for i, tool in enumerate(tools)]


def _tool(tool: Any, param: str) -> Obj:
    kind = tool.get("type") if isinstance(tool, dict) else None
    if kind not in TOOL_TYPES:
        raise bad_request(
            f"Invalid value: {json.dumps(kind)}. Supported values are: 'code_interpreter', "
            "'function', and 'file_search'.",
            f"{param}.type",
            code="invalid_value",
        )
    if kind != "function":
        return dict(tool)
    function = tool.get("function")
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise bad_request(
            f"Missing required parameter: '{param}.function.name'.",
            f"{param}.function.name",
            code="missing_required_parameter",
        )
    parameters = function.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise _wrong_type(f"{param}.function.parameters", "a JSON Schema object", parameters)
    return function_tool(function)


def parse_content(content: Any, param: str) -> list[Obj]:
    """Message content (a string, or a list of text / image parts) as content blocks."""
    if isinstance(content, str):
        return [text_block(content)]
    if not isinstance(content, list) or not content:
        raise bad_request(
            f"Invalid '{param}': expected a string or a non-empty array of content parts.",
            param,
            code="invalid_type",
        )
    return [_part(part, f"{param}[{i}]") for i, part in enumerate(content)]


def _part(part: Any, param: str) -> Obj:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "text" and isinstance(part.get("text"), str):
        return text_block(part["text"])
    inner = part.get(kind) if kind in ("image_file", "image_url") else None
    if kind == "image_url" and isinstance(inner, dict) and isinstance(inner.get("url"), str):
        return {"type": kind, kind: _image_fields(inner, "url")}
    if kind == "image_file" and isinstance(inner, dict):
        return {"type": kind, kind: _image_fields(inner, "file_id")}
    raise bad_request(
        f"Invalid content part at '{param}': expected type 'text', 'image_file' or "
        "'image_url' with its matching field.",
        param,
        code="invalid_value",
    )


def _image_fields(inner: Obj, key: str) -> Obj:
    """An image part's fields: its ``url``/``file_id`` and a ``detail`` level."""
    out = {key: inner.get(key)}
    detail = inner.get("detail")
    if detail is not None:
        if detail not in ("auto", "low", "high"):
            raise _one_of("detail", ("auto", "low", "high"), detail)
        out["detail"] = detail
    return out


def page_params(request: Request, *, most: int = 100, default: int = 20) -> Obj:
    """``limit`` (1-``most``, default ``default``), ``order`` (asc/desc, default desc),
    ``after``, ``before``.

    Example: ``page_params(request, most=10_000, default=10_000)`` for the Files list.
    """
    query = request.query_params
    try:
        limit = int(query.get("limit", str(default)))
    except ValueError:
        limit = -1
    if not 1 <= limit <= most:
        raise bad_request(
            f"Invalid 'limit': expected an integer between 1 and {most}.", "limit", "invalid_value"
        )
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise bad_request(
            "Invalid 'order': expected 'asc' or 'desc'.", "order", code="invalid_value"
        )
    return {
        "limit": limit,
        "order": order,
        "after": query.get("after"),
        "before": query.get("before"),
    }


def describe(value: Any) -> str:
    """How an error message names the JSON type of ``value``."""
    names = {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        list: "an array",
        str: "a string",
        type(None): "null",
    }
    return names.get(type(value), "an object")


def parse_bool(body: Obj, name: str, default: bool = False) -> bool:
    """A boolean field; absent or null is ``default`` (the string "false" is an error)."""
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _wrong_type(name, "a boolean", value)
    return value


_RANGES = {"temperature": (0.0, 2.0), "top_p": (0.0, 1.0)}
_COUNTS = ("max_prompt_tokens", "max_completion_tokens")
_FORMAT_TYPES = ("text", "json_object", "json_schema")


def parse_settings(body: Obj) -> Obj:
    """The model settings present in ``body`` (temperature, top_p, token limits, format)."""
    out: Obj = {}
    for name, (low, high) in _RANGES.items():
        if body.get(name) is not None:
            out[name] = _number(body[name], name, low, high)
    for name in _COUNTS:
        if body.get(name) is not None:
            out[name] = _count(body[name], name)
    if body.get("response_format") is not None:
        out["response_format"] = _response_format(body["response_format"])
    if "parallel_tool_calls" in body:
        out["parallel_tool_calls"] = parse_bool(body, "parallel_tool_calls", True)
    return out


def parse_tool_resources(body: Obj, param: str = "tool_resources") -> Obj | None:
    """``tool_resources``: an object whose ``code_interpreter.file_ids`` are strings."""
    value = body.get("tool_resources")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _wrong_type(param, "an object", value)
    code = value.get("code_interpreter")
    if code is None:
        return value
    if not isinstance(code, dict):
        raise _wrong_type(f"{param}.code_interpreter", "an object", code)
    ids = code.get("file_ids")
    if ids is not None and not (isinstance(ids, list) and all(isinstance(i, str) for i in ids)):
        raise _wrong_type(f"{param}.code_interpreter.file_ids", "an array of strings", ids)
    return value


def _number(value: Any, name: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _wrong_type(name, "a number", value)
    if not low <= value <= high:
        raise bad_request(
            f"Invalid '{name}': {value} is out of range; expected a number from {low:g} "
            f"to {high:g}.",
            name,
            code="invalid_value",
        )
    return float(value)


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong_type(name, "an integer", value)
    if value < 1:
        raise bad_request(
            f"Invalid '{name}': {value}; expected a positive integer.", name, "invalid_value"
        )
    return value


def _response_format(value: Any) -> Any:
    if value == "auto":
        return value
    kind = value.get("type") if isinstance(value, dict) else None
    if kind not in _FORMAT_TYPES:
        raise bad_request(
            "Invalid 'response_format': expected \"auto\" or an object whose 'type' is "
            "'text', 'json_object' or 'json_schema'.",
            "response_format",
            code="invalid_value",
        )
    return value


def _wrong_type(param: str, expected: str, value: Any) -> APIError:
    return bad_request(
        f"Invalid type for '{param}': expected {expected}, but got {describe(value)} instead.",
        param,
        code="invalid_type",
    )


REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
_TOOL_CHOICES = ("none", "auto", "required")
_LIMITS = {"name": 256, "description": 512, "instructions": 256_000}


def string_limits(body: Obj) -> None:
    """OpenAI's length limits on ``name``, ``description`` and ``instructions``."""
    for name, limit in _LIMITS.items():
        value = optional_str(body, name)
        if value is not None and len(value) > limit:
            raise bad_request(
                f"Invalid '{name}': string too long. Expected a string with maximum length "
                f"{limit}, but got a string with length {len(value)} instead.",
                name,
                code="string_above_max_length",
            )


def parse_reasoning_effort(body: Obj) -> str | None:
    """``reasoning_effort``: one of OpenAI's levels, or null."""
    value = body.get("reasoning_effort")
    if value is not None and value not in REASONING_EFFORTS:
        raise _one_of("reasoning_effort", REASONING_EFFORTS, value)
    return value


def parse_run_options(body: Obj) -> Obj:
    """A run's ``truncation_strategy`` and ``tool_choice``, when present."""
    out: Obj = {}
    if body.get("truncation_strategy") is not None:
        out["truncation_strategy"] = _truncation(body["truncation_strategy"])
    if body.get("tool_choice") is not None:
        out["tool_choice"] = _tool_choice(body["tool_choice"])
    return out


def _truncation(value: Any) -> Obj:
    param = "truncation_strategy"
    if not isinstance(value, dict):
        raise _wrong_type(param, "an object", value)
    kind = value.get("type")
    if kind not in ("auto", "last_messages"):
        raise _one_of(f"{param}.type", ("auto", "last_messages"), kind)
    last = value.get("last_messages")
    if last is not None:
        last = _count(last, f"{param}.last_messages")
    return {"type": kind, "last_messages": last}


def _tool_choice(value: Any) -> Any:
    if isinstance(value, str):
        if value not in _TOOL_CHOICES:
            raise _one_of("tool_choice", _TOOL_CHOICES, value)
        return value
    if not isinstance(value, dict):
        raise _wrong_type("tool_choice", "a string or an object", value)
    kind = value.get("type")
    if kind not in TOOL_TYPES:
        raise _one_of("tool_choice.type", TOOL_TYPES, kind)
    if kind != "function":
        return {"type": kind}
    function = value.get("function")
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise bad_request(
            "Missing required parameter: 'tool_choice.function.name'.",
            "tool_choice.function.name",
            code="missing_required_parameter",
        )
    return {"type": "function", "function": {"name": function["name"]}}


def _one_of(param: str, allowed: tuple[str, ...], value: Any) -> APIError:
    names = ", ".join(f"'{a}'" for a in allowed)
    return bad_request(
        f"Invalid value for '{param}': {json.dumps(value)[:80]}. Supported values are: {names}.",
        param,
        code="invalid_value",
    )
