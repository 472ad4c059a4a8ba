"""Routes for runs (including create-and-run) and run steps."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from asst_magic.server.api.errors import bad_request, conflict_active_run, not_found
from asst_magic.server.api.requests import new_thread, parse_messages
from asst_magic.server.api.validate import (
    describe,
    json_body,
    optional_str,
    page_params,
    parse_bool,
    parse_metadata,
    parse_reasoning_effort,
    parse_run_options,
    parse_settings,
    parse_tools,
    require_str,
    string_limits,
)
from asst_magic.server.ids import new_id
from asst_magic.server.objects import ACTIVE_RUN_STATUSES, list_object, run_object
from asst_magic.server.runs.streams import REASONING_HEADER, EventStream
from asst_magic.server.state import SSE_HEADERS, ServerState, state_of
from asst_magic.server.store.database import StoreConflict

__all__ = ["routes"]

Obj = dict[str, Any]


def _new_run(state: ServerState, thread_id: str, body: Obj) -> Obj:
    assistant = state.require("assistant", require_str(body, "assistant_id"))
    for name in ("model", "additional_instructions"):
        optional_str(body, name)
    string_limits(body)
    fields = dict(body)
    fields["tools"] = parse_tools(body)
    fields["metadata"] = parse_metadata(body)
    fields.update(parse_settings(body))
    fields.update(parse_run_options(body))
    if "reasoning_effort" in body:
        fields["reasoning_effort"] = parse_reasoning_effort(body)
    now = state.now()
    expires = now + state.config.run_expiry_seconds
    return run_object(new_id("run_"), thread_id, now, assistant, fields, expires)


async def create_run(request: Request) -> Response:
    state = state_of(request)
    thread = state.require("thread", request.path_params["thread_id"])
    body = await json_body(request)
    run = _new_run(state, thread["id"], body)
    extra = parse_messages(
        state, thread["id"], body.get("additional_messages"), "additional_messages"
    )
    stream = parse_bool(body, "stream")
    state.ensure_idle(thread["id"])
    _commit(state, run, extra)
    return state.run_response(run, stream, reasoning=_wants_reasoning(request))


def _commit(state: ServerState, run: Obj, messages: list[Obj]) -> None:
    """Store a new run and its messages; the database refuses a second active run."""
    try:
        with state.store.transaction():
            for message in messages:
                state.store.put("message", message)
            state.store.put("run", run)
    except StoreConflict as exc:  # another replica started one since ensure_idle looked
        state.ensure_idle(run["thread_id"])
        raise conflict_active_run(run["thread_id"], "(one that has just ended)") from exc


async def create_thread_and_run(request: Request) -> Response:
    state = state_of(request)
    body = await json_body(request)
    raw_thread = body.get("thread") or {}
    if not isinstance(raw_thread, dict):
        raise bad_request(
            "Invalid type for 'thread': expected an object.", "thread", "invalid_type"
        )
    thread, messages = new_thread(state, raw_thread)
    run = _new_run(state, thread["id"], body)
    stream = parse_bool(body, "stream")
    thread_event = {**thread, "tool_resources": thread["tool_resources"] or _empty_resources()}
    with state.store.transaction():
        state.store.put("thread", thread)
        for message in messages:
            state.store.put("message", message)
        state.store.put("run", run)
    return state.run_response(run, stream, thread_event, reasoning=_wants_reasoning(request))


def _empty_resources() -> Obj:
    return {"code_interpreter": {"file_ids": []}}


def _run_of(request: Request) -> tuple[ServerState, Obj]:
    state = state_of(request)
    thread = state.require("thread", request.path_params["thread_id"])
    return state, state.require("run", request.path_params["run_id"], thread["id"])


async def retrieve_run(request: Request) -> Response:
    state, run = _run_of(request)
    return state.json(run, poll=True)


async def update_run(request: Request) -> Response:
    body = await json_body(request)  # read first: the run may change while the body arrives
    state, run = _run_of(request)
    if "metadata" not in body:
        return state.json(run)
    # Only metadata changes here; an active run's status belongs to its driver.
    return state.json(state.engine.update_metadata(run, parse_metadata(body) or {}))


async def list_runs(request: Request) -> Response:
    state = state_of(request)
    thread = state.require("thread", request.path_params["thread_id"])
    items, more = state.store.page("run", thread_id=thread["id"], **page_params(request))
    return state.json(list_object(items, more))


async def cancel_run(request: Request) -> Response:
    state, run = _run_of(request)
    if run["status"] not in ACTIVE_RUN_STATUSES or run["status"] == "cancelling":
        raise bad_request(f"Cannot cancel run with status '{run['status']}'.")
    if not state.engine.has(run["id"]):
        raise bad_request(f"Run {run['id']} is not active on this server.")
    return state.json(state.engine.cancel(run["id"]), poll=True)


async def submit_tool_outputs(request: Request) -> Response:
    body = await json_body(request)  # read first: the run may change while the body arrives
    state, run = _run_of(request)
    stream = parse_bool(body, "stream")
    # No await from here on: checking and claiming the pending step is atomic.
    outputs = _tool_outputs(state.engine.pending_calls(run["id"]), body.get("tool_outputs"))
    if not stream:
        return state.json(state.engine.submit(run["id"], outputs, None), poll=True)
    events = EventStream(reasoning=_wants_reasoning(request))
    state.engine.submit(run["id"], outputs, events)
    return StreamingResponse(events, headers=SSE_HEADERS)


def _wants_reasoning(request: Request) -> bool:
    """Whether the client asked for the model's reasoning as extra events (see streams)."""
    return request.headers.get(REASONING_HEADER, "").strip().lower() in ("1", "true", "yes")


def _tool_outputs(expected: list[str], raw: Any) -> dict[str, str]:
    if not isinstance(raw, list):
        raise bad_request(
            "Missing required parameter: 'tool_outputs'.",
            "tool_outputs",
            code="missing_required_parameter",
        )
    outputs: dict[str, str] = {}
    for i, item in enumerate(raw):
        call_id = item.get("tool_call_id") if isinstance(item, dict) else None
        if not isinstance(call_id, str) or call_id not in expected or call_id in outputs:
            raise bad_request(
                f"Invalid 'tool_outputs[{i}].tool_call_id': {call_id!r} is not one of the "
                f"run's pending tool calls {expected} (or was given twice).",
                f"tool_outputs[{i}].tool_call_id",
                code="invalid_value",
            )
        outputs[call_id] = _output(item, f"tool_outputs[{i}].output")
    if set(outputs) != set(expected):
        raise bad_request(
            f"Expected tool outputs for call_ids {expected}, got {list(outputs)}",
            "tool_outputs",
        )
    return outputs


def _output(item: Obj, param: str) -> str:
    output = item.get("output")
    if output is None:
        raise bad_request(
            f"Missing required parameter: '{param}'.", param, code="missing_required_parameter"
        )
    if not isinstance(output, str):
        raise bad_request(
            f"Invalid type for '{param}': expected a string, but got {describe(output)} "
            "instead. Serialize structured results, e.g. with json.dumps.",
            param,
            code="invalid_type",
        )
    return output


async def list_steps(request: Request) -> Response:
    state, run = _run_of(request)
    items, more = state.store.page("step", run_id=run["id"], **page_params(request))
    return state.json(list_object(items, more))


async def retrieve_step(request: Request) -> Response:
    state, run = _run_of(request)
    step_id = request.path_params["step_id"]
    step = state.store.get("step", step_id)
    if step is None or step["run_id"] != run["id"]:
        raise not_found("run step", step_id)
    return state.json(step)


routes = [
    Route("/threads/runs", create_thread_and_run, methods=["POST"]),
    Route("/threads/{thread_id}/runs", create_run, methods=["POST"]),
    Route("/threads/{thread_id}/runs", list_runs, methods=["GET"]),
    Route("/threads/{thread_id}/runs/{run_id}", retrieve_run, methods=["GET"]),
    Route("/threads/{thread_id}/runs/{run_id}", update_run, methods=["POST"]),
    Route("/threads/{thread_id}/runs/{run_id}/cancel", cancel_run, methods=["POST"]),
    Route(
        "/threads/{thread_id}/runs/{run_id}/submit_tool_outputs",
        submit_tool_outputs,
        methods=["POST"],
    ),
    Route("/threads/{thread_id}/runs/{run_id}/steps", list_steps, methods=["GET"]),
    Route("/threads/{thread_id}/runs/{run_id}/steps/{step_id}", retrieve_step, methods=["GET"]),
]
