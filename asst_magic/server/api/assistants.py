"""Routes for assistants and files."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from asst_magic.server.api.errors import bad_request
from asst_magic.server.api.payload import check_text
from asst_magic.server.api.requests import tool_resources
from asst_magic.server.api.validate import (
    json_body,
    page_params,
    parse_metadata,
    parse_reasoning_effort,
    parse_settings,
    parse_tools,
    require_str,
    string_limits,
)
from asst_magic.server.ids import new_id
from asst_magic.server.objects import assistant_object, deleted_object, list_object
from asst_magic.server.state import ServerState, state_of

__all__ = ["routes"]

Obj = dict[str, Any]

_ASSISTANT_FIELDS = ("name", "description", "instructions", "reasoning_effort")


def _assistant_fields(state: ServerState, body: Obj) -> Obj:
    string_limits(body)
    fields = {k: body[k] for k in _ASSISTANT_FIELDS if k in body}
    if "reasoning_effort" in body:
        fields["reasoning_effort"] = parse_reasoning_effort(body)
    fields.update(parse_settings(body))
    if "tool_resources" in body:
        fields["tool_resources"] = tool_resources(state, body) or {}
    tools = parse_tools(body)
    if tools is not None:
        fields["tools"] = tools
    if "metadata" in body:
        fields["metadata"] = parse_metadata(body) or {}
    return fields


async def create_assistant(request: Request) -> Response:
    state = state_of(request)
    body = await json_body(request)
    model = require_str(body, "model")
    fields = _assistant_fields(state, body)
    assistant = assistant_object(new_id("asst_"), state.now(), {**fields, "model": model})
    state.store.put("assistant", assistant)
    return state.json(assistant)


async def retrieve_assistant(request: Request) -> Response:
    state = state_of(request)
    return state.json(state.require("assistant", request.path_params["assistant_id"]))


async def update_assistant(request: Request) -> Response:
    state = state_of(request)
    body = await json_body(request)  # read first: a concurrent update may land meanwhile
    assistant = state.require("assistant", request.path_params["assistant_id"])
    fields = _assistant_fields(state, body)
    if "model" in body:
        fields["model"] = require_str(body, "model")
    assistant.update(fields)
    state.store.put("assistant", assistant)
    return state.json(assistant)


async def delete_assistant(request: Request) -> Response:
    state = state_of(request)
    assistant = state.require("assistant", request.path_params["assistant_id"])
    state.store.delete(assistant["id"])
    return state.json(deleted_object(assistant["id"], "assistant.deleted"))


async def list_assistants(request: Request) -> Response:
    state = state_of(request)
    items, more = state.store.page("assistant", **page_params(request))
    return state.json(list_object(items, more))


async def upload_file(request: Request) -> Response:
    state = state_of(request)
    async with request.form(max_part_size=state.config.max_body_bytes) as form:
        upload, purpose = form.get("file"), form.get("purpose")
        if not isinstance(upload, UploadFile):
            raise bad_request(
                "Missing required parameter: 'file'.", "file", code="missing_required_parameter"
            )
        if not isinstance(purpose, str) or not purpose:
            raise bad_request(
                "Missing required parameter: 'purpose'.", "purpose", "missing_required_parameter"
            )
        data = await upload.read()
        name = upload.filename or "upload"
    check_text(purpose, "purpose")
    check_text(name, "file")
    file = state.store.add_file(data, name, purpose, state.now())
    return state.json(file)


async def retrieve_file(request: Request) -> Response:
    state = state_of(request)
    return state.json(state.require("file", request.path_params["file_id"]))


async def delete_file(request: Request) -> Response:
    state = state_of(request)
    file = state.require("file", request.path_params["file_id"])
    state.store.delete_file(file["id"])
    return state.json(deleted_object(file["id"], "file"))


async def file_content(request: Request) -> Response:
    state = state_of(request)
    file = state.require("file", request.path_params["file_id"])
    data = state.store.read_file(file["id"])
    return Response(data, media_type="application/octet-stream")


async def list_files(request: Request) -> Response:
    state = state_of(request)
    purpose = request.query_params.get("purpose") or None
    # The Files list pages up to 10,000 (its default); the Assistants lists up to 100.
    page = page_params(request, most=10_000, default=10_000)
    items, more = state.store.page("file", purpose=purpose, **page)
    return state.json(list_object(items, more))


routes = [
    Route("/assistants", create_assistant, methods=["POST"]),
    Route("/assistants", list_assistants, methods=["GET"]),
    Route("/assistants/{assistant_id}", retrieve_assistant, methods=["GET"]),
    Route("/assistants/{assistant_id}", update_assistant, methods=["POST"]),
    Route("/assistants/{assistant_id}", delete_assistant, methods=["DELETE"]),
    Route("/files", upload_file, methods=["POST"]),
    Route("/files", list_files, methods=["GET"]),
    Route("/files/{file_id}", retrieve_file, methods=["GET"]),
    Route("/files/{file_id}", delete_file, methods=["DELETE"]),
    Route("/files/{file_id}/content", file_content, methods=["GET"]),
]
