"""Routes for threads and their messages."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from asst_magic.server.errors import bad_request, not_found
from asst_magic.server.ids import new_id
from asst_magic.server.objects import (
    ACTIVE_RUN_STATUSES,
    deleted_object,
    list_object,
    message_object,
    thread_object,
)
from asst_magic.server.state import ServerState, state_of
from asst_magic.server.validate import (
    json_body,
    page_params,
    parse_content,
    parse_metadata,
    parse_tool_resources,
)

__all__ = ["new_thread", "parse_messages", "routes"]

Obj = dict[str, Any]


def parse_messages(state: ServerState, thread_id: str, raw: Any, param: str) -> list[Obj]:
    """Validated message objects for ``thread_id`` (not yet stored)."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise bad_request(f"Invalid type for '{param}': expected an array.", param, "invalid_type")
    return [_message(state, thread_id, m, f"{param}[{i}]") for i, m in enumerate(raw)]


def _message(state: ServerState, thread_id: str, raw: Any, param: str) -> Obj:
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


def new_thread(state: ServerState, body: Obj) -> tuple[Obj, list[Obj]]:
    """A validated thread and its initial messages (not yet stored)."""
    thread = thread_object(
        new_id("thread_"),
        state.now(),
        {
            "metadata": parse_metadata(body),
            "tool_resources": parse_tool_resources(body),
        },
    )
    messages = parse_messages(state, thread["id"], body.get("messages"), "messages")
    return thread, messages


async def create_thread(request: Request) -> Response:
    state = state_of(request)
    thread, messages = new_thread(state, await json_body(request))
    with state.store.transaction():
        state.store.put("thread", thread)
        for message in messages:
            state.store.put("message", message)
    return state.json(thread)


async def retrieve_thread(request: Request) -> Response:
    state = state_of(request)
    return state.json(state.require("thread", request.path_params["thread_id"]))


async def update_thread(request: Request) -> Response:
    state = state_of(request)
    body = await json_body(request)  # read first: a concurrent update may land meanwhile
    thread = state.require("thread", request.path_params["thread_id"])
    if "metadata" in body:
        thread["metadata"] = parse_metadata(body) or {}
    if "tool_resources" in body:
        thread["tool_resources"] = parse_tool_resources(body) or {}
    state.store.put("thread", thread)
    return state.json(thread)


async def delete_thread(request: Request) -> Response:
    state = state_of(request)
    thread = state.require("thread", request.path_params["thread_id"])
    active = state.store.select("run", thread_id=thread["id"], statuses=ACTIVE_RUN_STATUSES)
    if active:
        raise bad_request(
            f"Thread {thread['id']} has an active run {active[-1]['id']}; cancel it before "
            "deleting the thread."
        )
    state.store.delete_thread(thread["id"])
    sandbox = state.engine.sandbox
    if sandbox is not None:  # its kernel and /mnt/data files go with it
        await sandbox.close_thread(thread["id"], delete_files=True)
    return state.json(deleted_object(thread["id"], "thread.deleted"))


async def create_message(request: Request) -> Response:
    state = state_of(request)
    thread = state.require("thread", request.path_params["thread_id"])
    body = await json_body(request)
    message = _message(state, thread["id"], body, "")
    active = state.store.select("run", thread_id=thread["id"], statuses=ACTIVE_RUN_STATUSES)
    if active:
        raise bad_request(
            f"Can't add messages to {thread['id']} while a run {active[-1]['id']} is active."
        )
    state.store.put("message", message)
    return state.json(message)


async def retrieve_message(request: Request) -> Response:
    state = state_of(request)
    thread_id = state.require("thread", request.path_params["thread_id"])["id"]
    return state.json(state.require("message", request.path_params["message_id"], thread_id))


async def update_message(request: Request) -> Response:
    state = state_of(request)
    body = await json_body(request)  # read first: a concurrent update may land meanwhile
    thread_id = state.require("thread", request.path_params["thread_id"])["id"]
    message = state.require("message", request.path_params["message_id"], thread_id)
    if "metadata" not in body:
        return state.json(message)
    # A message its run is still writing changes on the run's copy, or the run's next
    # commit would drop the new metadata.
    return state.json(state.engine.update_message_metadata(message, parse_metadata(body) or {}))


async def delete_message(request: Request) -> Response:
    state = state_of(request)
    thread_id = state.require("thread", request.path_params["thread_id"])["id"]
    message = state.require("message", request.path_params["message_id"], thread_id)
    state.store.delete(message["id"])
    return state.json(deleted_object(message["id"], "thread.message.deleted"))


async def list_messages(request: Request) -> Response:
    state = state_of(request)
    thread_id = state.require("thread", request.path_params["thread_id"])["id"]
    run_id = request.query_params.get("run_id")
    items, more = state.store.page(
        "message", thread_id=thread_id, run_id=run_id, **page_params(request)
    )
    return state.json(list_object(items, more))


routes = [
    Route("/threads", create_thread, methods=["POST"]),
    Route("/threads/{thread_id}", retrieve_thread, methods=["GET"]),
    Route("/threads/{thread_id}", update_thread, methods=["POST"]),
    Route("/threads/{thread_id}", delete_thread, methods=["DELETE"]),
    Route("/threads/{thread_id}/messages", create_message, methods=["POST"]),
    Route("/threads/{thread_id}/messages", list_messages, methods=["GET"]),
    Route("/threads/{thread_id}/messages/{message_id}", retrieve_message, methods=["GET"]),
    Route("/threads/{thread_id}/messages/{message_id}", update_message, methods=["POST"]),
    Route("/threads/{thread_id}/messages/{message_id}", delete_message, methods=["DELETE"]),
]
