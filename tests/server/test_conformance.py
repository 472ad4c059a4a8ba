"""Our server against recordings of OpenAI's: same event names, in order, with the same keys.

Each test replays the recorded scenario (same requests, a cassette built from the
recording's own deltas so chunk counts match) and compares, event by event:

- the event name sequence, exactly (including the final ``done`` / ``[DONE]``);
- the keys of every ``data`` object, recursively: nested objects (``delta``,
  ``delta.content[i].text``, ``step_details``, ``tool_calls[i].function``,
  ``required_action``, ``usage``, message ``content`` blocks, ``tools``, ...) must
  have the same key sets; list entries are compared pairwise by position.
- A ``null`` on either side matches anything (nullable fields such as ``usage``,
  ``last_error``, ``started_at`` hold null or an object depending on timing).

Ids, timestamps and text differ by design and are not compared. The synthetic
vectors (written for this project) omit ``reasoning_effort`` from runs and have an
empty run ``tool_resources``, where the real recordings (and we) send
``reasoning_effort`` and ``tool_resources.code_interpreter``: for those two files
these two keys are allowed extra.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
from server_support import BOTH_STORES, VECTORS, sse_events

# The server suite runs against both stores (SQLite and PostgreSQL).
STORES = BOTH_STORES

Serve = Callable[..., openai.OpenAI]
Events = list[tuple[str, Any]]
INCLUDE = ["step_details.tool_calls[*].file_search.results[*].content"]


def recorded(name: str) -> Events:
    return sse_events(iter([(VECTORS / name).read_bytes()]))


def request_body(name: str) -> Any:
    return json.loads((VECTORS / name).read_text())


def text_pieces(events: Events) -> list[str]:
    return [
        d["delta"]["content"][0]["text"]["value"]
        for name, d in events
        if name == "thread.message.delta"
    ]


def argument_pieces(events: Events) -> list[str]:
    pieces = []
    for name, data in events:
        if name == "thread.run.step.delta":
            call = data["delta"]["step_details"]["tool_calls"][0]
            if "id" not in call:  # the first delta carries the id and empty arguments
                pieces.append(call["function"]["arguments"])
    return pieces


def usage_of(events: Events, event: str) -> dict[str, int]:
    usage = next(d["usage"] for name, d in events if name == event and d.get("usage"))
    return {
        "prompt_tokens": usage["prompt_tokens"],
        "completion_tokens": usage["completion_tokens"],
    }


def shape_diffs(ours: Any, theirs: Any, path: str, extra_ok: frozenset[str]) -> list[str]:
    """Where the key sets of ``ours`` and ``theirs`` differ (recursively)."""
    if ours is None or theirs is None:
        return []
    if isinstance(theirs, dict) and isinstance(ours, dict):
        diffs = []
        missing, extra = set(theirs) - set(ours), set(ours) - set(theirs) - extra_ok
        if missing or extra:
            diffs.append(f"{path}: missing {sorted(missing)}, extra {sorted(extra)}")
        for key in set(ours) & set(theirs):
            diffs += shape_diffs(ours[key], theirs[key], f"{path}.{key}", extra_ok)
        return diffs
    if isinstance(theirs, list) and isinstance(ours, list):
        diffs = []
        for i, (mine, recorded_item) in enumerate(zip(ours, theirs, strict=False)):
            diffs += shape_diffs(mine, recorded_item, f"{path}[{i}]", extra_ok)
        return diffs
    if isinstance(theirs, dict | list) != isinstance(ours, dict | list):
        return [f"{path}: {type(ours).__name__} where the recording has {type(theirs).__name__}"]
    return []


def assert_conforms(ours: Events, theirs: Events, extra_ok: frozenset[str] = frozenset()) -> None:
    assert [n for n, _ in ours] == [n for n, _ in theirs]
    diffs = []
    for i, ((name, mine), (_, recorded_data)) in enumerate(zip(ours, theirs, strict=True)):
        if recorded_data == "[DONE]":
            assert mine == "[DONE]"
            continue
        diffs += shape_diffs(mine, recorded_data, f"#{i} {name}", extra_ok)
    assert diffs == []


def stream_run(client: openai.OpenAI, thread_id: str, assistant_id: str) -> Events:
    with client.beta.threads.runs.with_streaming_response.create(
        thread_id=thread_id,
        assistant_id=assistant_id,
        stream=True,
        include=INCLUDE,  # type: ignore[arg-type]
    ) as response:
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        return sse_events(response.iter_bytes())


def submit_stream(client: openai.OpenAI, events: Events, output: str) -> Events:
    run = next(d for name, d in events if name == "thread.run.requires_action")
    call_id = run["required_action"]["submit_tool_outputs"]["tool_calls"][0]["id"]
    with client.beta.threads.runs.with_streaming_response.submit_tool_outputs(
        run["id"],
        thread_id=run["thread_id"],
        stream=True,
        tool_outputs=[{"tool_call_id": call_id, "output": output}],
    ) as response:
        return sse_events(response.iter_bytes())


def test_text_run_matches_recording(serve: Serve) -> None:
    theirs = recorded("text-run.2.sse")
    user = request_body("text-run.1.request.json")["messages"][0]["content"]
    turn = {"text": text_pieces(theirs), "usage": usage_of(theirs, "thread.run.step.completed")}
    client = serve([{"user": user, "turns": [turn]}])
    assistant = client.beta.assistants.create(
        **{**request_body("text-run.0.request.json"), "model": "replay"}
    )
    thread = client.beta.threads.create(**request_body("text-run.1.request.json"))
    ours = stream_run(client, thread.id, assistant.id)
    assert len(text_pieces(ours)) == 33
    assert_conforms(ours, theirs)


def test_function_call_create_and_run_then_submit_match_recording(serve: Serve) -> None:
    first, second = recorded("function-call.1.sse"), recorded("function-call.2.sse")
    body = request_body("function-call.1.request.json")
    tool_turn = {
        "tool_calls": [
            {"type": "function", "name": "get_current_weather", "arguments": argument_pieces(first)}
        ]
    }
    text_turn = {"text": text_pieces(second)}
    user = body["thread"]["messages"][0]["content"]
    client = serve([{"user": user, "turns": [tool_turn, text_turn]}])
    assistant = client.beta.assistants.create(
        **{**request_body("function-call.0.request.json"), "model": "replay"}
    )
    with client.beta.threads.with_streaming_response.create_and_run(
        assistant_id=assistant.id, thread=body["thread"], stream=True
    ) as response:
        ours = sse_events(response.iter_bytes())
    assert_conforms(ours, first)
    assert_conforms(submit_stream(client, ours, "warm and sunny"), second)


def test_synthetic_function_call_on_existing_thread_matches_vectors(serve: Serve) -> None:
    first, second = (
        recorded("synthetic-function-call.1.sse"),
        recorded("synthetic-function-call.2.sse"),
    )
    run = next(d for name, d in first if name == "thread.run.created")
    tool_turn = {
        "tool_calls": [
            {"type": "function", "name": "get_weather", "arguments": argument_pieces(first)}
        ]
    }
    client = serve(
        [{"user": "Weather in Paris?", "turns": [tool_turn, {"text": text_pieces(second)}]}]
    )
    assistant = client.beta.assistants.create(model="replay", instructions="", tools=run["tools"])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Weather in Paris?"}])
    ours = stream_run(client, thread.id, assistant.id)
    allowed = frozenset({"reasoning_effort", "code_interpreter"})
    assert_conforms(ours, first, allowed)
    assert_conforms(submit_stream(client, ours, "sunny, 21C"), second, allowed)


def test_plain_responses_match_recorded_objects(serve: Serve) -> None:
    client = serve([])
    for prefix, create in (
        ("text-run.0", lambda b: client.beta.assistants.with_raw_response.create(**b)),
        ("function-call.0", lambda b: client.beta.assistants.with_raw_response.create(**b)),
        ("text-run.1", lambda b: client.beta.threads.with_raw_response.create(**b)),
    ):
        theirs = json.loads((VECTORS / f"{prefix}.response.json").read_text())
        ours = json.loads(create(request_body(f"{prefix}.request.json")).text)
        assert shape_diffs(ours, theirs, prefix, frozenset()) == []
        assert ours["id"].split("_")[0] == theirs["id"].split("_")[0]
    assert Path(VECTORS / "text-run.2.meta.json").exists()


def code_pieces(events: Events) -> list[str]:
    """The streamed code of the first code_interpreter call, piece by piece."""
    pieces = []
    for name, data in events:
        if name == "thread.run.step.delta":
            call = data["delta"]["step_details"]["tool_calls"][0]
            if "id" not in call and "input" in call["code_interpreter"]:
                pieces.append(call["code_interpreter"]["input"])
    return pieces


def output_delta_indexes(events: Events) -> list[int]:
    """Positions of the step deltas that stream code_interpreter ``outputs``."""
    return [
        i
        for i, (name, data) in enumerate(events)
        if name == "thread.run.step.delta"
        and "outputs" in data["delta"]["step_details"]["tool_calls"][0]["code_interpreter"]
        and "id" not in data["delta"]["step_details"]["tool_calls"][0]
    ]


def test_code_interpreter_run_matches_recording(serve: Serve) -> None:
    """The recorded code ends in a bare expression (``solution``).

    OpenAI's sandbox gave its value to the model but reported no output, so the
    recording has no ``outputs`` delta. Our kernel reports an expression's value as
    ``logs`` (the user sees what the model saw): we check that this is exactly one
    delta, shaped as OpenAI's logs deltas (from the synthetic vector), then compare
    the rest of the stream with the recording.
    """
    theirs = recorded("code-interpreter-logs.sse")
    run = next(d for name, d in theirs if name == "thread.run.created")
    code_turn = {"tool_calls": [{"type": "code_interpreter", "input": code_pieces(theirs)}]}
    user = "Solve 3x + 11 = 14."
    client = serve(
        [{"user": user, "turns": [code_turn, {"text": text_pieces(theirs)}]}],
        code_interpreter=True,
    )
    assistant = client.beta.assistants.create(
        model="replay", instructions=run["instructions"], tools=run["tools"]
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": user}])
    ours = stream_run(client, thread.id, assistant.id)

    (extra,) = output_delta_indexes(ours)
    synthetic = recorded("synthetic-code-interpreter-image.sse")
    logs_delta = synthetic[output_delta_indexes(synthetic)[0]][1]
    assert shape_diffs(ours[extra][1], logs_delta, "outputs delta", frozenset()) == []
    output = ours[extra][1]["delta"]["step_details"]["tool_calls"][0]["code_interpreter"]
    assert output["outputs"] == [{"index": 0, "type": "logs", "logs": "[1]\n"}]
    assert_conforms(ours[:extra] + ours[extra + 1 :], theirs)
