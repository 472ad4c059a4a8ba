"""The JSON shapes of API objects, key for key as OpenAI's Assistants API v2 sends them."""

from __future__ import annotations

from typing import Any

__all__ = [
    "ACTIVE_RUN_STATUSES",
    "TERMINAL_RUN_STATUSES",
    "assistant_object",
    "deleted_object",
    "file_object",
    "function_tool",
    "list_object",
    "message_object",
    "run_object",
    "step_object",
    "text_block",
    "thread_object",
    "usage_object",
]

ACTIVE_RUN_STATUSES = frozenset({"queued", "in_progress", "requires_action", "cancelling"})
TERMINAL_RUN_STATUSES = frozenset({"completed", "failed", "cancelled", "expired", "incomplete"})

Obj = dict[str, Any]


def assistant_object(assistant_id: str, created_at: int, body: Obj) -> Obj:
    """An ``assistant`` from a create body (already validated)."""
    return {
        "id": assistant_id,
        "object": "assistant",
        "created_at": created_at,
        "name": body.get("name"),
        "description": body.get("description"),
        "model": body["model"],
        "instructions": body.get("instructions"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "temperature": body.get("temperature", 1.0),
        "reasoning_effort": body.get("reasoning_effort"),
        "tool_resources": body.get("tool_resources") or {},
        "metadata": body.get("metadata") or {},
        "response_format": body.get("response_format") or "auto",
    }


def thread_object(thread_id: str, created_at: int, body: Obj) -> Obj:
    """A ``thread``."""
    return {
        "id": thread_id,
        "object": "thread",
        "created_at": created_at,
        "metadata": body.get("metadata") or {},
        "tool_resources": body.get("tool_resources") or {},
    }


def message_object(
    message_id: str,
    thread_id: str,
    created_at: int,
    *,
    role: str,
    content: list[Obj],
    status: str = "completed",
    assistant_id: str | None = None,
    run_id: str | None = None,
    attachments: list[Obj] | None = None,
    metadata: Obj | None = None,
) -> Obj:
    """A ``thread.message``."""
    return {
        "id": message_id,
        "object": "thread.message",
        "created_at": created_at,
        "assistant_id": assistant_id,
        "thread_id": thread_id,
        "run_id": run_id,
        "status": status,
        "incomplete_details": None,
        "incomplete_at": None,
        "completed_at": created_at if status == "completed" else None,
        "role": role,
        "content": content,
        "attachments": attachments or [],
        "metadata": metadata or {},
    }


def text_block(value: str, annotations: list[Obj] | None = None) -> Obj:
    """A ``text`` content block."""
    return {"type": "text", "text": {"value": value, "annotations": annotations or []}}


def run_object(
    run_id: str, thread_id: str, created_at: int, assistant: Obj, body: Obj, expires_at: int
) -> Obj:
    """A queued ``thread.run``: the assistant's settings, overridden by the run's body."""
    instructions = body.get("instructions")
    if instructions is None:
        instructions = assistant.get("instructions")
    extra = body.get("additional_instructions")
    if extra:
        instructions = f"{instructions}\n\n{extra}" if instructions else extra
    tools = body.get("tools")
    return {
        "id": run_id,
        "object": "thread.run",
        "created_at": created_at,
        "assistant_id": assistant["id"],
        "thread_id": thread_id,
        "status": "queued",
        "started_at": None,
        "expires_at": expires_at,
        "cancelled_at": None,
        "failed_at": None,
        "completed_at": None,
        "required_action": None,
        "last_error": None,
        "model": body.get("model") or assistant["model"],
        "instructions": instructions,
        "tools": assistant["tools"] if tools is None else tools,
        "tool_resources": {"code_interpreter": {"file_ids": []}},
        "metadata": body.get("metadata") or {},
        "temperature": _given(body.get("temperature"), assistant["temperature"]),
        "top_p": _given(body.get("top_p"), assistant["top_p"]),
        "reasoning_effort": body.get("reasoning_effort", assistant.get("reasoning_effort")),
        "max_completion_tokens": body.get("max_completion_tokens"),
        "max_prompt_tokens": body.get("max_prompt_tokens"),
        "truncation_strategy": body.get("truncation_strategy")
        or {"type": "auto", "last_messages": None},
        "incomplete_details": None,
        "usage": None,
        "response_format": body.get("response_format") or assistant["response_format"],
        "tool_choice": body.get("tool_choice") or "auto",
        "parallel_tool_calls": _given(body.get("parallel_tool_calls"), True),
    }


def step_object(step_id: str, run: Obj, created_at: int, step_type: str, details: Obj) -> Obj:
    """An in-progress ``thread.run.step`` of ``run``."""
    return {
        "id": step_id,
        "object": "thread.run.step",
        "created_at": created_at,
        "run_id": run["id"],
        "assistant_id": run["assistant_id"],
        "thread_id": run["thread_id"],
        "type": step_type,
        "status": "in_progress",
        "cancelled_at": None,
        "completed_at": None,
        "expires_at": run["expires_at"],
        "failed_at": None,
        "last_error": None,
        "step_details": {"type": step_type, **details},
        "usage": None,
    }


def usage_object(prompt_tokens: int, completion_tokens: int) -> Obj:
    """Token usage as runs and steps report it."""
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_token_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }


def file_object(file_id: str, created_at: int, filename: str, size: int, purpose: str) -> Obj:
    """A ``file``."""
    return {
        "object": "file",
        "id": file_id,
        "purpose": purpose,
        "filename": filename,
        "bytes": size,
        "created_at": created_at,
        "expires_at": None,
        "status": "processed",
        "status_details": None,
    }


def function_tool(function: Obj) -> Obj:
    """A function tool with OpenAI's defaults filled in."""
    out: Obj = {"name": function["name"]}
    if function.get("description") is not None:
        out["description"] = function["description"]
    out["parameters"] = function.get("parameters") or {"type": "object", "properties": {}}
    out["strict"] = bool(function.get("strict", False))
    return {"type": "function", "function": out}


def list_object(data: list[Obj], has_more: bool) -> Obj:
    """A cursor page."""
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
    }


def deleted_object(object_id: str, kind: str) -> Obj:
    """What a delete returns (``kind`` like ``assistant.deleted``)."""
    return {"id": object_id, "object": kind, "deleted": True}


def _given(value: Any, default: Any) -> Any:
    return default if value is None else value
