"""Routes for threads and their messages."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from asst_magic.server.api.errors import bad_request
from asst_magic.server.api.requests import new_thread, parse_message, tool_resources
from asst_magic.server.api.validate import (
    json_body,
    page_params,
    parse_metadata,
)
from asst_magic.server.objects import (
    ACTIVE_RUN_STATUSES,
    deleted_object,
    list_object,
)
from asst_magic.server.state import state_of

__all__ = ["routes"]

Obj = dict[str, Any]


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
        thread["tool_resources"] = tool_resources(state, body) or {}
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
    message = parse_message(state, thread["id"], body, "")
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
