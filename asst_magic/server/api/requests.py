"""Request bodies that more than one route accepts: new threads and their messages."""

from __future__ import annotations

from typing import Any

from asst_magic.server.api.errors import bad_request, not_found
from asst_magic.server.api.validate import (
    parse_content,
    parse_metadata,
    parse_tool_resources,
)
from asst_magic.server.ids import new_id
from asst_magic.server.objects import message_object, thread_object
from asst_magic.server.state import ServerState

__all__ = ["new_thread", "parse_message", "parse_messages", "tool_resources"]

Obj = dict[str, Any]


def parse_messages(state: ServerState, thread_id: str, raw: Any, param: str) -> list[Obj]:
    """Validated message objects for ``thread_id`` (not yet stored)."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise bad_request(f"Invalid type for '{param}': expected an array.", param, "invalid_type")
    return [parse_message(state, thread_id, m, f"{param}[{i}]") for i, m in enumerate(raw)]


def parse_message(state: ServerState, thread_id: str, raw: Any, param: str) -> Obj:
    if not isinstance(raw, dict):
        raise bad_request(f"Invalid type for '{param}': expected an object.", param, "invalid_type")
    at = f"{param}." if param else ""  # a message body's own fields have no prefix
    role = raw.get("role")
    if role not in ("user", "assistant"):
        raise bad_request(
            f"Invalid value for '{at}role': expected 'user' or 'assistant'.",
            f"{at}role",
            code="invalid_value",
        )
    if "content" not in raw:
        raise bad_request(
            f"Missing required parameter: '{at}content'.",
            f"{at}content",
            code="missing_required_parameter",
        )
    content = parse_content(raw["content"], f"{at}content")
    _check_images(state, content, f"{at}content")
    attachments = _attachments(state, raw.get("attachments"), f"{at}attachments")
    return message_object(
        new_id("msg_"),
        thread_id,
        state.now(),
        role=role,
        content=content,
        attachments=attachments,
        metadata=parse_metadata(raw, f"{at}metadata"),
    )


def _attachments(state: ServerState, raw: Any, param: str) -> list[Obj]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise bad_request(f"Invalid type for '{param}': expected an array.", param, "invalid_type")
    out = []
    for i, item in enumerate(raw):
        file_id = item.get("file_id") if isinstance(item, dict) else None
        _require_file(state, file_id, f"{param}[{i}].file_id")
        tools = _attachment_tools(item.get("tools"), f"{param}[{i}].tools")
        out.append({"file_id": file_id, "tools": tools})
    return out


def _attachment_tools(raw: Any, param: str) -> list[Obj]:
    if raw is None:
        return []
    kinds = ("code_interpreter", "file_search")
    if not isinstance(raw, list) or not all(
        isinstance(t, dict) and t.get("type") in kinds for t in raw
    ):
        raise bad_request(
            f"Invalid '{param}': expected an array of tools like "
            '[{"type": "code_interpreter"}] (types: code_interpreter, file_search).',
            param,
            code="invalid_value",
        )
    return [dict(t) for t in raw]


def _check_images(state: ServerState, content: list[Obj], param: str) -> None:
    for i, block in enumerate(content):
        if block["type"] != "image_file":
            continue
        _require_file(state, block["image_file"].get("file_id"), f"{param}[{i}].image_file.file_id")


def _require_file(state: ServerState, file_id: Any, param: str) -> None:
    """A 400 when ``file_id`` is missing, a 404 when no such file is stored."""
    if not isinstance(file_id, str):
        raise bad_request(
            f"Missing required parameter: '{param}'.", param, code="missing_required_parameter"
        )
    if state.store.get("file", file_id) is None:
        raise not_found("file", file_id)


def tool_resources(state: ServerState, body: Obj) -> Obj | None:
    """``tool_resources`` whose files all exist for this user (else OpenAI's 404)."""
    resources = parse_tool_resources(body)
    code = (resources or {}).get("code_interpreter") or {}
    for i, file_id in enumerate(code.get("file_ids") or []):
        _require_file(state, file_id, f"tool_resources.code_interpreter.file_ids[{i}]")
    return resources


def new_thread(state: ServerState, body: Obj) -> tuple[Obj, list[Obj]]:
    """A validated thread and its initial messages (not yet stored)."""
    thread = thread_object(
        new_id("thread_"),
        state.now(),
        {
            "metadata": parse_metadata(body),
            "tool_resources": tool_resources(state, body),
        },
    )
    messages = parse_messages(state, thread["id"], body.get("messages"), "messages")
    return thread, messages
