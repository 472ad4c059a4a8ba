"""How a Chat Completions turn ends decides how the run ends, and what the next request carries.

Each test starts a playback endpoint and a local server in front of it (about
0.1 s each) and drives the server with the real ``openai`` SDK.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from chat_replay_server import ChatReplayServer, Reply, chat_chunk, sse_body
from provider_endpoint import ProviderEndpoint, Stall
from server_support import client_for, sse_events

from asst_magic.server import ServerConfig, start_in_thread
from asst_magic.server.launch import spawn
from asst_magic.server.models.chat_errors import provider_message
from asst_magic.server.runs.streams import REASONING_EVENT, REASONING_HEADER

CITY = {"type": "object", "properties": {"city": {"type": "string"}}}
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": CITY}}
Start = Callable[..., tuple[ChatReplayServer, Any]]


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Start]:
    """A playback endpoint with ``replies`` and an SDK client of a local server before it."""
    with ExitStack() as stack:

        def begin(replies: Sequence[Reply], **options: Any) -> tuple[ChatReplayServer, Any]:
            upstream = stack.enter_context(ChatReplayServer(replies))
            config = ServerConfig(
                tmp_path / "data",
                model_url=upstream.base_url,
                code_interpreter=False,
                **options,
            )
            handle = stack.enter_context(start_in_thread(config))
            return upstream, client_for(handle)

        yield begin


def run(
    client: Any, model: str = "gpt-4o", tools: Sequence[Any] = (), thread_id: str | None = None
) -> Any:
    """One streamed run to its end (or pause); the final run object."""
    assistant = client.beta.assistants.create(model=model, tools=list(tools))
    if thread_id is None:
        thread = {"messages": [{"role": "user", "content": "Hi"}]}
        events = client.beta.threads.create_and_run(
            assistant_id=assistant.id, thread=thread, stream=True
        )
    else:
        client.beta.threads.messages.create(thread_id, role="user", content="Again")
        events = client.beta.threads.runs.create(thread_id, assistant_id=assistant.id, stream=True)
    runs = [e.data for e in events if e.event.startswith("thread.run.") and ".step." not in e.event]
    return runs[-1]


def statuses(client: Any, run: Any) -> tuple[list[str], list[str]]:
    """The statuses of the run's steps and messages, oldest first."""
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=run.thread_id, order="asc").data
    messages = client.beta.threads.messages.list(run.thread_id, run_id=run.id, order="asc").data
    return [s.status for s in steps], [m.status for m in messages]


def text_of(client: Any, run: Any) -> list[str]:
    messages = client.beta.threads.messages.list(run.thread_id, run_id=run.id, order="asc").data
    return [m.content[0].text.value if m.content else "" for m in messages]


def words(text: str) -> Reply:
    return Reply.sse(
        sse_body([chat_chunk({"role": "assistant", "content": text}), chat_chunk({}, "stop")])
    )


# ── A stream is finished only when the provider says so ───────────────────────

CUT = [
    pytest.param(b"", False, id="empty-body"),
    pytest.param(b"data: [DONE]\n\n", False, id="only-done"),
    pytest.param(sse_body([chat_chunk({"content": "Half an ans"})], done=False), True, id="cut"),
    pytest.param(sse_body([chat_chunk({"content": "Half an ans"})]), True, id="no-finish-reason"),
]


@pytest.mark.parametrize(("body", "wrote"), CUT)
def test_a_stream_without_a_finish_reason_fails_the_run(
    start: Start, body: bytes, wrote: bool
) -> None:
    _, client = start([Reply.sse(body)])
    ended = run(client)
    assert ended.status == "failed" and ended.last_error.code == "server_error"
    assert ended.last_error.message.startswith("The model stream ended early: http://127.0.0.1:")
    after = "after part of the answer" if wrote else "before any answer"
    assert after in ended.last_error.message
    steps, messages = statuses(client, ended)
    # What was written stays readable, marked unfinished; nothing is left in progress.
    assert (steps, messages) == ((["failed"], ["incomplete"]) if wrote else ([], []))


@pytest.mark.parametrize(
    "frame",
    [
        b'event: error\ndata: {"error": {"message": "Overloaded."}}\n\n',
        b'error: {"code":500,"message":"Overloaded.","type":"server_error"}\n\n',
        b'data: {"object":"error","message":"Overloaded.","type":"InternalServerError"}\n\n',
    ],
    ids=["event-error", "llamacpp-error-field", "vllm-error-object"],
)
def test_an_error_frame_fails_the_run_with_the_providers_words(start: Start, frame: bytes) -> None:
    body = sse_body([chat_chunk({"content": "Hel"})], done=False) + frame
    _, client = start([Reply.sse(body)])
    ended = run(client)
    assert ended.status == "failed"
    assert ended.last_error.message.endswith("failed mid-answer: Overloaded.")
    assert statuses(client, ended) == (["failed"], ["incomplete"])


@pytest.mark.parametrize("reason", ["insufficient_system_resource", "content_filter", "recitation"])
def test_an_unknown_finish_reason_ends_incomplete_with_that_reason(
    start: Start, reason: str
) -> None:
    body = sse_body([chat_chunk({"content": "Part"}), chat_chunk({}, reason)])
    _, client = start([Reply.sse(body)])
    ended = run(client)
    assert (ended.status, ended.incomplete_details.reason) == ("incomplete", reason)
    assert statuses(client, ended) == (["completed"], ["incomplete"])
    assert text_of(client, ended) == ["Part"]


def test_length_inside_a_tool_call_closes_its_step_without_running_it(start: Start) -> None:
    head = {
        "index": 0,
        "id": "call_x",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"ci'},
    }
    body = sse_body([chat_chunk({"tool_calls": [head]}), chat_chunk({}, "length")])
    _, client = start([Reply.sse(body)])
    ended = run(client, tools=[WEATHER])
    assert (ended.status, ended.incomplete_details.reason) == (
        "incomplete",
        "max_completion_tokens",
    )
    assert ended.required_action is None
    steps = client.beta.threads.runs.steps.list(ended.id, thread_id=ended.thread_id).data
    assert [s.status for s in steps] == ["failed"]
    assert "token limit before finishing its tool calls" in steps[0].last_error.message


# ── What the next request carries ─────────────────────────────────────────────


def test_text_after_a_call_in_the_same_turn_goes_back_inside_that_turn(start: Start) -> None:
    call = {
        "index": 0,
        "id": "call_w",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
    }
    body = sse_body(
        [
            chat_chunk({"tool_calls": [call]}),
            chat_chunk({"content": "Checking."}),
            chat_chunk({}, "tool_calls"),
        ]
    )
    upstream, client = start([Reply.sse(body), words("Sunny.")])
    paused = run(client, tools=[WEATHER])
    assert paused.status == "requires_action"
    assert statuses(client, paused) == (
        ["in_progress", "completed"],
        ["completed"],
    )  # not left open
    [required] = paused.required_action.submit_tool_outputs.tool_calls
    items: Any = [{"tool_call_id": required.id, "output": "sunny"}]
    done = list(
        client.beta.threads.runs.submit_tool_outputs(
            paused.id, thread_id=paused.thread_id, tool_outputs=items, stream=True
        )
    )
    assert done[-1].data.status == "completed"
    *_, assistant, tool = upstream.requests[1].body["messages"]
    assert assistant["content"] == "Checking." and assistant["tool_calls"][0]["id"] == "call_w"
    assert tool == {"role": "tool", "tool_call_id": "call_w", "content": "sunny"}


def test_provider_fields_go_back_only_to_the_model_that_sent_them(start: Start) -> None:
    call = {
        "index": 0,
        "id": "call_00_abc",
        "type": "function",
        "function": {"name": "get_weather", "arguments": "{}"},
    }
    thinking = sse_body(
        [
            chat_chunk(
                {
                    "role": "assistant",
                    "content": None,
                    "reasoning_content": "Hmm",
                    "x_extra": {"k": 1},
                }
            ),
            chat_chunk(
                {
                    "tool_calls": [
                        {**call, "extra_content": {"google": {"thought_signature": "sig"}}}
                    ]
                }
            ),
            chat_chunk({}, "tool_calls"),
        ]
    )
    upstream, client = start([Reply.sse(thinking), words("Done."), words("Other model.")])
    paused = run(client, model="deepseek-reasoner", tools=[WEATHER])
    [required] = paused.required_action.submit_tool_outputs.tool_calls
    items: Any = [{"tool_call_id": required.id, "output": "ok"}]
    list(
        client.beta.threads.runs.submit_tool_outputs(
            paused.id, thread_id=paused.thread_id, tool_outputs=items, stream=True
        )
    )
    run(client, model="gpt-4o", tools=[WEATHER], thread_id=paused.thread_id)

    same, other = (upstream.requests[i].body["messages"] for i in (1, 2))
    [turn] = [m for m in same if m.get("tool_calls")]
    assert (turn["reasoning_content"], turn["x_extra"]) == ("Hmm", {"k": 1})
    assert turn["tool_calls"][0]["id"] == "call_00_abc"
    assert turn["tool_calls"][0]["extra_content"] == {"google": {"thought_signature": "sig"}}
    [elsewhere] = [m for m in other if m.get("tool_calls")]
    assert set(elsewhere) == {"role", "content", "tool_calls"}  # nothing of the other provider's
    assert set(elsewhere["tool_calls"][0]) == {"id", "type", "function"}
    assert len(elsewhere["tool_calls"][0]["id"]) == 9  # our own id, in the shape all accept


def test_list_shaped_and_refusal_content_is_the_answer(start: Start) -> None:
    parts = [
        {"type": "thinking", "thinking": [{"type": "text", "text": "hm"}]},
        {"type": "text", "text": "Bonjour"},
    ]
    body = sse_body(
        [
            chat_chunk({"content": parts}),
            chat_chunk({"content": [{"type": "text", "text": "!"}]}),
            chat_chunk({"refusal": " No more."}, "stop"),
        ]
    )
    _, client = start([Reply.sse(body)])
    ended = run(client)
    assert ended.status == "completed"
    assert text_of(client, ended) == ["Bonjour! No more."]


# ── Reasoning reaches only the clients that ask for it ────────────────────────


def reasoning_reply() -> Reply:
    return Reply.sse(
        sse_body(
            [
                chat_chunk({"reasoning": "Let me "}),
                chat_chunk({"reasoning": "see."}),
                chat_chunk({"content": "Yes."}, "stop"),
            ]
        )
    )


@pytest.mark.parametrize("asked", [True, False])
def test_reasoning_streams_as_an_extra_event_only_when_asked(start: Start, asked: bool) -> None:
    _, client = start([reasoning_reply()])
    assistant = client.beta.assistants.create(model="qwen3:8b")
    headers = {REASONING_HEADER: "1"} if asked else {}
    thread: Any = {"messages": [{"role": "user", "content": "Hi"}]}
    with client.beta.threads.with_streaming_response.create_and_run(
        assistant_id=assistant.id, thread=thread, stream=True, extra_headers=headers
    ) as response:
        events = sse_events(response.iter_bytes())
    thoughts = [data["delta"]["text"] for name, data in events if name == REASONING_EVENT]
    assert thoughts == (["Let me ", "see."] if asked else [])
    assert events[-1] == ("done", "[DONE]")


# ── Error texts ───────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("body", "shown"),
    [
        (
            [
                {
                    "error": {
                        "code": 400,
                        "message": "API key not valid.",
                        "status": "INVALID_ARGUMENT",
                    }
                }
            ],
            "API key not valid.",
        ),
        (
            {
                "object": "error",
                "message": {"detail": [{"loc": ["body", "messages", 2], "msg": "bad id"}]},
            },
            "bad id (body.messages.2)",
        ),
        ({"detail": "Unauthorized"}, "Unauthorized"),
        ({"error": "model 'x' not found"}, "model 'x' not found"),
        ({"unexpected": [1, 2]}, '{"unexpected": [1, 2]}'),
    ],
    ids=["gemini-list", "mistral-detail", "detail-string", "error-string", "unknown-shape"],
)
def test_error_bodies_of_any_shape_become_their_message(body: Any, shown: str) -> None:
    assert provider_message(body, None) == shown


def test_an_http_error_message_has_one_period(start: Start) -> None:
    _, client = start([Reply.error(401, "Incorrect API key provided.")])
    ended = run(client)
    assert ended.status == "failed"
    assert "(HTTP 401): Incorrect API key provided. Check the API key" in ended.last_error.message
    assert ".." not in ended.last_error.message


# ── Timeouts are configurable ─────────────────────────────────────────────────


def test_a_spawned_server_takes_its_idle_timeout_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASST_MAGIC_MODEL_IDLE_TIMEOUT", "0.3")
    with ProviderEndpoint() as endpoint:
        config = ServerConfig(
            tmp_path / "data", model_url=endpoint.base_url, code_interpreter=False
        )
        with spawn(config) as handle:
            endpoint.script("openai", [Stall()])
            ended = run(client_for(handle))
    assert ended.status == "failed"
    assert "sent nothing for 0.3 s before starting its answer" in ended.last_error.message


def test_a_bad_timeout_is_refused_before_the_server_starts(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "asst_magic.server", "serve", "--no-code-interpreter"]
    cmd += ["--data-dir", str(tmp_path), "--model-url", "http://127.0.0.1:9/v1"]
    env = {**os.environ, "ASST_MAGIC_MODEL_CONNECT_TIMEOUT": "soon"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert (
        "$ASST_MAGIC_MODEL_CONNECT_TIMEOUT must be a number of seconds, not 'soon'" in done.stderr
    )
