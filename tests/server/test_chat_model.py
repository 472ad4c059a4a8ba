"""The Chat Completions model against a real loopback HTTP server, via the real openai SDK."""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import itertools
import json
import logging
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import openai
import pytest
from chat_replay_server import ChatReplayServer, ReceivedRequest, Reply, sse_body

from asst_magic.server.config import ServerConfig
from asst_magic.server.launch import start_in_thread
from asst_magic.server.models import ModelRegistry
from asst_magic.server.models.base import (
    AssistantText,
    Chunk,
    ConversationItem,
    ModelError,
    TextChunk,
    ToolCallChunk,
    ToolCallRecord,
    ToolCallStart,
    TurnEnd,
    TurnRequest,
    Usage,
    UserText,
)
from asst_magic.server.models.chat import (
    ChatCompletionsModel,
    ChatModelProvider,
    endpoint_from_env,
)
from asst_magic.server.models.chat_messages import build_messages, short_call_id
from asst_magic.server.models.partial_json import StringFieldDecoder
from asst_magic.server.models.recorder import CassetteRecorder, RecordingModel
from asst_magic.server.models.replay import ReplayModel

VECTORS = Path(__file__).parent.parent / "vectors" / "chat"
SECRET = "sk-test-SECRET-0123456789"
CODE_INTERPRETER = {"type": "code_interpreter"}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
# Escapes of every kind, a non-ASCII letter and a character outside the BMP (a surrogate pair).
TRICKY_CODE = 'print("tab\\there")\nname = "café 😀"\nprint(f"{name!r}\\n", "/\\\\")\n'


def request(
    *conversation: ConversationItem,
    tools: Sequence[dict[str, Any]] = (CODE_INTERPRETER,),
    turn_index: int = 0,
    run_id: str = "run_1",
    **extra: Any,
) -> TurnRequest:
    return TurnRequest(
        model="gpt-4o",
        instructions=extra.pop("instructions", "You are a data analyst."),
        conversation=conversation or (UserText("Hi"),),
        tools=tuple(tools),
        thread_id="thread_1",
        run_id=run_id,
        turn_index=turn_index,
        **extra,
    )


def collect(model: Any, turn_request: TurnRequest) -> list[Chunk]:
    async def run() -> list[Chunk]:
        try:
            return [chunk async for chunk in model.turn(turn_request)]
        finally:
            if hasattr(model, "aclose"):
                await model.aclose()

    return asyncio.run(run())


class Sleeps:
    """The retry seam: records the waits instead of sleeping."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def stream_with(
    replies: Sequence[Reply], turn_request: TurnRequest, **options: Any
) -> tuple[list[Chunk], list[ReceivedRequest]]:
    with ChatReplayServer(replies) as server:
        options.setdefault("sleep", Sleeps())
        model = ChatCompletionsModel(server.base_url, SECRET, "gpt-4o", **options)
        chunks = collect(model, turn_request)
    return chunks, server.requests


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def vector(name: str) -> Reply:
    return Reply.sse((VECTORS / name).read_bytes())


def without_echo(chunk: Chunk) -> Chunk:
    """A ``TurnEnd`` without its provider echo (compared on its own)."""
    assert isinstance(chunk, TurnEnd)
    return dataclasses.replace(chunk, echo=None)


def echoed_ids(chunk: Chunk) -> dict[int, str]:
    """The provider tool-call ids a ``TurnEnd`` keeps for the next request, by call index."""
    assert isinstance(chunk, TurnEnd) and chunk.echo is not None
    return {index: call["id"] for index, call in chunk.echo.calls.items()}


def texts(chunks: list[Chunk]) -> str:
    return "".join(c.text for c in chunks if isinstance(c, TextChunk))


def arguments(chunks: list[Chunk], index: int) -> str:
    return "".join(c.text for c in chunks if isinstance(c, ToolCallChunk) and c.index == index)


# ── Recorded vectors ──────────────────────────────────────────────────────────


def test_text_vector_streams_text_then_stop_with_usage() -> None:
    chunks, _ = stream_with([vector("text.sse")], request())
    assert chunks == [TextChunk("Foo"), TextChunk("!"), TurnEnd("stop", Usage(9, 2))]


def test_request_carries_system_user_files_and_python_tool() -> None:
    turn_request = request(UserText("Plot it", ("sales.csv",)), max_completion_tokens=500)
    _, requests = stream_with([vector("text.sse")], turn_request)
    sent = requests[0]
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {SECRET}"
    body = sent.body
    assert body["model"] == "gpt-4o" and body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["max_tokens"] == 500  # a local server: the widely known name
    assert body["messages"][0] == {"role": "system", "content": "You are a data analyst."}
    user = body["messages"][1]
    assert user["role"] == "user" and user["content"].startswith("Plot it")
    assert "/mnt/data/sales.csv" in user["content"]
    [tool] = body["tools"]
    assert tool["function"]["name"] == "python"
    assert tool["function"]["parameters"]["required"] == ["code"]
    assert "Jupyter" in tool["function"]["description"]


def test_tool_call_vector_streams_function_arguments_verbatim() -> None:
    chunks, requests = stream_with([vector("tool-call.sse")], request(tools=[WEATHER_TOOL]))
    assert chunks[0] == ToolCallStart(0, "function", "get_weather")
    assert arguments(chunks, 0) == '{"city":"New York City"}'
    assert [type(c) for c in chunks[1:-1]] == [ToolCallChunk] * 7  # streamed, not buffered
    assert without_echo(chunks[-1]) == TurnEnd("tool_calls", Usage(44, 16))
    assert echoed_ids(chunks[-1]) == {0: "call_4XzlGBLtUe9dy3GVNV4jhq7h"}  # the provider's id
    assert requests[0].body["tools"] == [WEATHER_TOOL]


def test_parallel_tool_calls_vector_keeps_calls_apart() -> None:
    chunks, _ = stream_with([vector("parallel-tool-calls.sse")], request(tools=[WEATHER_TOOL]))
    starts = [c for c in chunks if isinstance(c, ToolCallStart)]
    assert starts == [
        ToolCallStart(0, "function", "GetWeatherArgs"),
        ToolCallStart(1, "function", "get_stock_price"),
    ]
    assert json.loads(arguments(chunks, 0)) == {"city": "Edinburgh", "country": "GB", "units": "c"}
    assert json.loads(arguments(chunks, 1)) == {"ticker": "AAPL", "exchange": "NASDAQ"}
    assert without_echo(chunks[-1]) == TurnEnd("tool_calls", Usage(149, 60))
    assert echoed_ids(chunks[-1]) == {
        0: "call_JMW1whyEaYG438VE1OIflxA2",
        1: "call_DNYTawLBoN8fj3KN6qU9N1Ou",
    }


def test_length_vector_ends_the_turn_as_length() -> None:
    chunks, _ = stream_with([vector("length.sse")], request())
    assert chunks == [TextChunk('{"'), TurnEnd("length", Usage(79, 1))]


def test_refusal_vector_becomes_text() -> None:
    chunks, _ = stream_with([vector("refusal.sse")], request())
    assert texts(chunks) == "I'm sorry, I can't assist with that request."
    assert chunks[-1] == TurnEnd("stop", Usage(79, 11))


def test_long_text_vector_streams_every_piece_in_order() -> None:
    raw = (VECTORS / "long-text.sse").read_text()
    expected = [
        delta["content"]
        for line in raw.splitlines()
        if line.startswith("data: {")
        for choice in json.loads(line[6:])["choices"]
        if (delta := choice["delta"]).get("content")
    ]
    chunks, _ = stream_with([vector("long-text.sse")], request())
    assert [c.text for c in chunks if isinstance(c, TextChunk)] == expected
    assert isinstance(chunks[-1], TurnEnd) and chunks[-1].finish == "stop"


# ── Synthetic streams: what other servers send ────────────────────────────────


def python_call_stream(fragments: Sequence[str], **first: Any) -> bytes:
    head = {
        "index": 0,
        "id": "call_py",
        "type": "function",
        "function": {"name": "python", "arguments": ""},
    }
    deltas = [chunk({"role": "assistant", "tool_calls": [{**head, **first}]})]
    deltas += [
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": f}}]}) for f in fragments
    ]
    deltas.append(chunk({}, "tool_calls"))
    return sse_body(deltas)


def test_python_call_code_is_decoded_as_it_arrives_even_split_inside_escapes() -> None:
    encoded = json.dumps({"code": TRICKY_CODE})  # ASCII-only: \uXXXX escapes, a surrogate pair
    cut_inside_escapes = [i for i, ch in enumerate(encoded) if ch == "\\"] + [
        encoded.index("\\u") + 4,  # "\ud83d" | ...: cut inside the \u escape itself
        encoded.index("\\ude00") + 1,  # between the halves of the surrogate pair
    ]
    cuts = sorted({0, *[c + 1 for c in cut_inside_escapes], len(encoded)})
    fragments = [encoded[a:b] for a, b in itertools.pairwise(cuts)]
    assert any(f.endswith("\\") for f in fragments)

    chunks, requests = stream_with([Reply.sse(python_call_stream(fragments))], request())
    assert chunks[0] == ToolCallStart(0, "code_interpreter")
    code_pieces = [c.text for c in chunks if isinstance(c, ToolCallChunk)]
    assert "".join(code_pieces) == TRICKY_CODE
    assert len(code_pieces) > 5 and all(code_pieces)
    assert code_pieces[0] == "print("  # available long before the JSON string closes
    assert without_echo(chunks[-1]) == TurnEnd("tool_calls", None)
    assert "stream_options" in requests[0].body


def test_string_decoder_survives_every_two_way_split() -> None:
    encoded = json.dumps({"lang": "py", "opts": {"a": [1, "}"]}, "code": TRICKY_CODE, "n": 2})
    for cut in range(len(encoded) + 1):
        decoder = StringFieldDecoder("code")
        out = decoder.feed(encoded[:cut]) + decoder.feed(encoded[cut:]) + decoder.finish()
        assert out == TRICKY_CODE, cut


def test_string_decoder_is_liberal_about_the_argument_shape() -> None:
    raw = StringFieldDecoder("code")
    assert raw.feed("print(1)") + raw.feed("\n") + raw.finish() == "print(1)\n"
    other_key = StringFieldDecoder("code")
    assert other_key.feed('{"script": "x = 1"}') + other_key.finish() == "x = 1"


def test_tool_calls_sent_whole_in_one_chunk_without_index_or_usage() -> None:
    calls = [
        {
            "id": "call_a",
            "type": "function",
            "function": {"name": "python", "arguments": '{"code": "1 + 1"}'},
        },
        {
            "id": "call_b",
            "type": "function",
            "function": {"name": "get_weather", "arguments": {"city": "Oslo"}},
        },
    ]
    # Ollama-style: the whole answer in one chunk, finish_reason "stop" next to the calls.
    body = sse_body([chunk({"role": "assistant", "content": "", "tool_calls": calls}, "stop")])
    chunks, _ = stream_with([Reply.sse(body)], request(tools=[CODE_INTERPRETER, WEATHER_TOOL]))
    last = chunks[-1]
    assert [*chunks[:-1], without_echo(last)] == [
        ToolCallStart(0, "code_interpreter"),
        ToolCallChunk(0, "1 + 1"),
        ToolCallStart(1, "function", "get_weather"),
        ToolCallChunk(1, '{"city": "Oslo"}'),
        TurnEnd("tool_calls", None),
    ]
    assert echoed_ids(last) == {0: "call_a", 1: "call_b"}


def test_text_stream_without_usage_ends_with_no_usage() -> None:
    body = sse_body([chunk({"content": "Hel"}), chunk({"content": "lo"}), chunk({}, "stop")])
    chunks, _ = stream_with([Reply.sse([body[:40], body[40:]])], request())
    assert chunks == [TextChunk("Hel"), TextChunk("lo"), TurnEnd("stop", None)]


def test_python_name_is_an_ordinary_function_without_the_code_interpreter() -> None:
    body = python_call_stream(['{"code": "1"}'])
    chunks, requests = stream_with([Reply.sse(body)], request(tools=[WEATHER_TOOL]))
    assert chunks[0] == ToolCallStart(0, "function", "python")
    assert arguments(chunks, 0) == '{"code": "1"}'
    assert [t["function"]["name"] for t in requests[0].body["tools"]] == ["get_weather"]


def test_error_inside_the_stream_fails_the_turn() -> None:
    body = sse_body([chunk({"content": "Hi"}), {"error": {"message": "model overloaded"}}])
    with pytest.raises(ModelError, match="model overloaded"):
        stream_with([Reply.sse(body)], request())


def test_plain_json_completion_is_accepted_when_the_server_ignores_stream() -> None:
    completion = {
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Done."},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 1},
    }
    reply = Reply(200, (("Content-Type", "application/json"),), (json.dumps(completion).encode(),))
    chunks, _ = stream_with([reply], request())
    assert chunks == [TextChunk("Done."), TurnEnd("stop", Usage(5, 1))]


# ── Errors and retries ────────────────────────────────────────────────────────


def test_429_with_retry_after_seconds_is_retried_after_that_wait() -> None:
    sleeps = Sleeps()
    replies = [Reply.error(429, "Rate limit reached", [("Retry-After", "7")]), vector("text.sse")]
    chunks, requests = stream_with(replies, request(), sleep=sleeps)
    assert texts(chunks) == "Foo!"
    assert sleeps.waits == [7.0]
    assert len(requests) == 2


def test_retry_after_as_http_date_is_measured_against_the_clock() -> None:
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 12, usegmt=True)
    sleeps = Sleeps()
    replies = [Reply.error(503, "busy", [("Retry-After", date)]), vector("text.sse")]
    chunks, _ = stream_with(replies, request(), sleep=sleeps, clock=lambda: now)
    assert texts(chunks) == "Foo!"
    assert sleeps.waits == [12.0]


def test_500_every_time_fails_after_retries_with_backoff(caplog: pytest.LogCaptureFixture) -> None:
    sleeps = Sleeps()
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ModelError) as failure:
        stream_with(
            [Reply.error(500, "The server had an error")], request(), sleep=sleeps, backoff=0.25
        )
    error = failure.value
    assert error.code == "server_error"
    message = str(error)
    assert "HTTP 500" in message and "4 attempts" in message
    assert "The server had an error" in message and "127.0.0.1" in message
    assert sleeps.waits == [0.25, 0.5, 1.0]
    assert SECRET not in message and SECRET not in caplog.text


def test_429_every_time_is_a_rate_limit_error() -> None:
    with pytest.raises(ModelError) as failure:
        stream_with([Reply.error(429, "Slow down")], request(), max_retries=1)
    assert failure.value.code == "rate_limit_exceeded"
    assert "HTTP 429" in str(failure.value) and "Slow down" in str(failure.value)


def test_rejected_stream_options_are_dropped_and_the_request_resent() -> None:
    replies = [
        Reply.error(400, "Unrecognized request argument: stream_options"),
        vector("text.sse"),
    ]
    sleeps = Sleeps()
    chunks, requests = stream_with(replies, request(), sleep=sleeps)
    assert texts(chunks) == "Foo!"
    assert "stream_options" in requests[0].body and "stream_options" not in requests[1].body
    assert sleeps.waits == []


def test_connection_refused_names_the_url_and_what_to_do() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    model = ChatCompletionsModel(f"http://127.0.0.1:{port}/v1", SECRET, "llama3.1", sleep=Sleeps())
    with pytest.raises(ModelError) as failure:
        collect(model, request())
    message = str(failure.value)
    assert f"http://127.0.0.1:{port}/v1" in message and "connection refused" in message
    assert "--model-url" in message and SECRET not in message


def test_api_key_is_never_shown_even_when_the_provider_echoes_it() -> None:
    model = ChatCompletionsModel("https://example.invalid/v1", SECRET, "gpt-4o")
    assert SECRET not in repr(model) and "***" in repr(model)
    echo = Reply.error(401, f"Incorrect API key provided: {SECRET}.")
    with pytest.raises(ModelError) as failure:
        stream_with([echo], request())
    message = str(failure.value)
    assert "HTTP 401" in message and "API key" in message and SECRET not in message
    assert failure.value.__cause__ is None and failure.value.__context__ is not None
    assert SECRET not in repr(endpoint_from_env({"OPENAI_API_KEY": SECRET}))


# ── Conversation → messages ───────────────────────────────────────────────────


def test_earlier_turns_become_messages_with_grouped_tool_calls() -> None:
    conversation = (
        UserText("Load the data", ("d.csv",)),
        AssistantText("Loading it."),
        ToolCallRecord("call_1", "code_interpreter", None, "import pandas as pd", ""),
        ToolCallRecord("call_2", "code_interpreter", None, "print(1)", "1\n"),
        AssistantText("It has one row."),
        UserText("Weather?"),
        ToolCallRecord("call_3", "function", "get_weather", '{"city":"Oslo"}', '{"temp": 3}'),
    )
    _, requests = stream_with(
        [vector("text.sse")], request(*conversation, tools=[CODE_INTERPRETER, WEATHER_TOOL])
    )
    messages = requests[0].body["messages"]
    assert [m["role"] for m in messages] == [
        "system",
        "user",
        "assistant",
        "tool",
        "tool",
        "assistant",
        "user",
        "assistant",
        "tool",
    ]
    round_one = messages[2]
    assert round_one["content"] == "Loading it."
    assert [json.loads(c["function"]["arguments"]) for c in round_one["tool_calls"]] == [
        {"code": "import pandas as pd"},
        {"code": "print(1)"},
    ]
    assert [c["function"]["name"] for c in round_one["tool_calls"]] == ["python", "python"]
    # No provider id was kept for these calls: each gets a 9-letter id made from ours.
    ids = [short_call_id(f"call_{n}") for n in (1, 2, 3)]
    assert [c["id"] for c in round_one["tool_calls"]] == ids[:2]
    assert messages[3] == {"role": "tool", "tool_call_id": ids[0], "content": "(no output)"}
    assert messages[4] == {"role": "tool", "tool_call_id": ids[1], "content": "1\n"}
    assert messages[7]["tool_calls"] == [
        {
            "id": ids[2],
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
        }
    ]
    assert messages[8]["content"] == '{"temp": 3}'


def long_history() -> tuple[ConversationItem, ...]:
    return (
        UserText("first question " + "x" * 400),
        AssistantText("first answer " + "y" * 400),
        UserText("second question"),
        AssistantText("Let me compute."),
        ToolCallRecord("call_1", "code_interpreter", None, "print(2)", "2"),
        AssistantText("second answer"),
        UserText("latest question"),
    )


def test_context_budget_drops_the_oldest_turns_but_keeps_system_and_latest_user() -> None:
    messages = build_messages(request(*long_history()), context_tokens=300)
    assert messages[0]["role"] == "system"
    assert [m.get("content") for m in messages[1:]] == [
        "second question",
        "Let me compute.",
        "2",
        "second answer",
        "latest question",
    ]
    assert len(build_messages(request(*long_history()), context_tokens=None)) == 8


def test_tiny_budget_keeps_only_what_must_stay() -> None:
    history = (
        *long_history()[:-1],
        UserText("latest"),
        ToolCallRecord("c9", "function", "f", "{}", "ok"),
    )
    messages = build_messages(request(*history), context_tokens=1)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool"]
    assert messages[1]["content"] == "latest"


def test_last_messages_truncation_keeps_tool_rounds_whole() -> None:
    truncation = {"type": "last_messages", "last_messages": 3}
    messages = build_messages(request(*long_history(), options={"truncation": truncation}))
    assert [m["role"] for m in messages] == ["system", "assistant", "tool", "assistant", "user"]
    assert messages[1]["tool_calls"][0]["id"] == short_call_id("call_1")


def test_run_options_reach_the_endpoint_in_chat_completions_terms() -> None:
    options = {"tool_choice": {"type": "code_interpreter"}, "top_p": 0.5}
    turn_request = request(temperature=0.2, options=options)
    _, requests = stream_with([vector("text.sse")], turn_request)
    body = requests[0].body
    assert body["tool_choice"] == {"type": "function", "function": {"name": "python"}}
    assert (body["top_p"], body["temperature"]) == (0.5, 0.2)


# ── Configuration ─────────────────────────────────────────────────────────────


def test_endpoint_from_env_covers_local_azure_and_openai() -> None:
    local = endpoint_from_env(
        {
            "ASST_MAGIC_MODEL_URL": "http://localhost:11434/v1",
            "ASST_MAGIC_MODEL": "llama3.1",
            "OPENAI_API_KEY": "k",
        }
    )
    assert local is not None and (local.base_url, local.api_key, local.model) == (
        "http://localhost:11434/v1",
        None,
        "llama3.1",
    )
    azure = endpoint_from_env(
        {
            "AZURE_OPENAI_ENDPOINT": "https://r.openai.azure.com",
            "AZURE_OPENAI_API_KEY": "az",
            "ASST_MAGIC_MODEL": "dep",
        }
    )
    assert (
        azure is not None
        and azure.model == "dep"
        and azure.api_key == "az"
        and azure.azure_api_version
    )
    openai_only = endpoint_from_env({"OPENAI_API_KEY": "k"})
    assert openai_only is not None and openai_only.base_url == "https://api.openai.com/v1"
    assert endpoint_from_env({}) is None
    with pytest.raises(ModelError, match="ASST_MAGIC_MODEL_URL"):
        ChatCompletionsModel.from_env({})


def test_azure_deployment_is_routed_by_the_sdk() -> None:
    with ChatReplayServer([vector("text.sse")]) as server:
        env = {
            "AZURE_OPENAI_ENDPOINT": server.base_url.removesuffix("/v1"),
            "AZURE_OPENAI_API_KEY": SECRET,
            "AZURE_OPENAI_API_VERSION": "2024-10-21",
            "ASST_MAGIC_MODEL": "my-deployment",
        }
        model = ChatCompletionsModel.from_env(env, sleep=Sleeps())
        chunks = collect(model, request())
    assert texts(chunks) == "Foo!"
    sent = server.requests[0]
    assert sent.path == "/openai/deployments/my-deployment/chat/completions?api-version=2024-10-21"
    assert sent.headers["api-key"] == SECRET
    assert "max_completion_tokens" not in sent.body


# ── Recording ─────────────────────────────────────────────────────────────────


def test_recorded_run_is_a_valid_cassette_that_replays_the_same_chunks(tmp_path: Path) -> None:
    code_call = python_call_stream(['{"code": "print(6', " * 7)\\", 'n"}'])
    usage = {"choices": [], "usage": {"prompt_tokens": 30, "completion_tokens": 9}}
    code_call = code_call.replace(b"data: [DONE]", sse_body([usage], done=True))
    answer = sse_body([chunk({"content": "The answer"}), chunk({"content": " is 42."}, "stop")])
    cassette = tmp_path / "cassettes" / "run.jsonl"
    first = request(UserText("What is 6 * 7?"), instructions=None)
    record = ToolCallRecord("call_py", "code_interpreter", None, "print(6 * 7)\n", "42\n")
    second = request(UserText("What is 6 * 7?"), record, turn_index=1, instructions=None)

    with ChatReplayServer([Reply.sse(code_call), Reply.sse(answer)]) as server:
        live = ChatCompletionsModel(server.base_url, SECRET, "gpt-4o", sleep=Sleeps())
        model = RecordingModel(live, CassetteRecorder(cassette))
        live_turns, after_first = asyncio.run(two_turns(model, first, second, cassette))

    assert (
        json.loads(after_first.splitlines()[1])["turns"][0]["tool_calls"][0]["type"]
        == "code_interpreter"
    )
    lines = cassette.read_text().splitlines()
    assert lines[0].startswith("#") and len(lines) == 2
    assert json.loads(lines[1]) == {
        "user": "What is 6 * 7?",
        "turns": [
            {
                "tool_calls": [{"type": "code_interpreter", "input": ["print(6", " * 7)", "\n"]}],
                "usage": {"prompt_tokens": 30, "completion_tokens": 9},
            },
            {"text": ["The answer", " is 42."]},
        ],
    }
    replay = ReplayModel([cassette])
    replayed = [collect(replay, first), collect(replay, second)]
    assert [turn[:-1] for turn in replayed] == [turn[:-1] for turn in live_turns]
    assert [turn[-1].finish for turn in replayed] == ["tool_calls", "stop"]  # type: ignore[union-attr]
    assert replayed[0][-1] == without_echo(live_turns[0][-1])


async def two_turns(
    model: RecordingModel, first: TurnRequest, second: TurnRequest, cassette: Path
) -> tuple[list[list[Chunk]], str]:
    """Both turns of one run on one event loop; the cassette as it was between them."""
    try:
        turns = [[chunk async for chunk in model.turn(first)]]
        between = cassette.read_text()
        turns.append([chunk async for chunk in model.turn(second)])
    finally:
        await model.aclose()
    return turns, between


def test_a_failed_turn_is_not_recorded(tmp_path: Path) -> None:
    cassette = tmp_path / "c.jsonl"
    with ChatReplayServer([Reply.error(500, "down")]) as server:
        live = ChatCompletionsModel(server.base_url, SECRET, "m", max_retries=0, sleep=Sleeps())
        with pytest.raises(ModelError):
            collect(RecordingModel(live, CassetteRecorder(cassette)), request())
    assert not cassette.exists()


def test_recorder_keeps_existing_entries_and_adds_one_per_run(tmp_path: Path) -> None:
    cassette = tmp_path / "c.jsonl"
    cassette.write_text('{"user": "old", "turns": [{"text": "kept"}]}\n')
    recorder = CassetteRecorder(cassette)
    recorder.record(request(UserText("a"), run_id="r1"), [TextChunk("one"), TurnEnd("stop", None)])
    recorder.record(
        request(UserText("a"), UserText("b"), run_id="r2"),
        [TextChunk("x"), TurnEnd("length", None)],
    )
    entries = [json.loads(line) for line in cassette.read_text().splitlines()]
    assert entries == [
        {"user": "old", "turns": [{"text": "kept"}]},
        {"user": "a", "turns": [{"text": ["one"]}]},
        {"user": "b", "turns": [{"text": ["x"], "finish": "length"}]},
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.jsonl"]  # no temp files left


# ── Behind the local server: what an Assistants client sees ──────────────────


def run_on_local_server(
    replies: Sequence[Reply],
    tools: Sequence[dict[str, Any]],
    tmp_path: Path,
    *,
    sandbox: bool = False,
) -> tuple[list[Any], list[ReceivedRequest]]:
    """One streamed run through the real local server, the model behind it being ``replies``."""
    with ChatReplayServer(replies) as upstream:
        chat = ChatCompletionsModel(upstream.base_url, SECRET, "", sleep=Sleeps())
        registry = ModelRegistry([ChatModelProvider(chat)])
        config = ServerConfig(tmp_path / "data", code_interpreter=sandbox)
        options: dict[str, Any] = {} if sandbox else {"sandbox": None}
        with start_in_thread(config, models=registry, **options) as server:
            # Any: tools and thread are plain dicts, as a user would write them.
            client: Any = openai.OpenAI(base_url=server.base_url, api_key=server.token)
            assistant = client.beta.assistants.create(model="llama3.1", tools=list(tools))
            thread = {"messages": [{"role": "user", "content": "What is 6 * 7?"}]}
            stream = client.beta.threads.create_and_run(
                assistant_id=assistant.id, thread=thread, stream=True
            )
            events = list(stream)
    return events, upstream.requests


def message_text_deltas(events: list[Any]) -> list[str]:
    return [
        part.text.value
        for e in events
        if e.event == "thread.message.delta"
        for part in e.data.delta.content or ()
        if part.type == "text"
    ]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_local_server_streams_text_and_usage_from_the_endpoint(tmp_path: Path) -> None:
    events, requests = run_on_local_server([vector("text.sse")], [], tmp_path)
    assert message_text_deltas(events) == ["Foo", "!"]
    run = events[-1].data
    assert events[-1].event == "thread.run.completed"
    assert (run.usage.prompt_tokens, run.usage.completion_tokens) == (9, 2)
    assert requests[0].body["model"] == "llama3.1"  # the run's model passes through


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_local_server_ends_a_length_cut_run_incomplete(tmp_path: Path) -> None:
    events, _ = run_on_local_server([vector("length.sse")], [], tmp_path)
    assert events[-1].event == "thread.run.incomplete"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_local_server_asks_the_client_to_call_the_function(tmp_path: Path) -> None:
    events, _ = run_on_local_server([vector("tool-call.sse")], [WEATHER_TOOL], tmp_path)
    assert events[-1].event == "thread.run.requires_action"
    [call] = events[-1].data.required_action.submit_tool_outputs.tool_calls
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "New York City"}


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_local_server_fails_the_run_when_the_endpoint_keeps_failing(tmp_path: Path) -> None:
    events, requests = run_on_local_server([Reply.error(500, "boom")], [], tmp_path)
    assert events[-1].event == "thread.run.failed"
    error = events[-1].data.last_error
    assert error.code == "server_error" and "HTTP 500" in error.message and "boom" in error.message
    assert len(requests) == 4


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_local_server_runs_streamed_python_code_in_a_real_kernel(tmp_path: Path) -> None:
    code = 'x = "6 * 7 = "\nprint(x + str(6 * 7))\n'
    encoded = json.dumps({"code": code})
    cuts = [
        0,
        encoded.index("\\n") + 1,
        encoded.index("\\n") + 2,
        encoded.index('\\"') + 1,
        len(encoded),
    ]
    fragments = [encoded[a:b] for a, b in itertools.pairwise(sorted(set(cuts)))]
    answer = sse_body([chunk({"content": "It is 42."}, "stop")])
    replies = [Reply.sse(python_call_stream(fragments)), Reply.sse(answer)]
    events, requests = run_on_local_server(replies, [CODE_INTERPRETER], tmp_path, sandbox=True)
    inputs = [
        call.code_interpreter.input
        for e in events
        if e.event == "thread.run.step.delta"
        for call in e.data.delta.step_details.tool_calls or ()
        if call.type == "code_interpreter" and call.code_interpreter.input
    ]
    assert "".join(inputs) == code and len(inputs) > 1
    assert message_text_deltas(events) == ["It is 42."]
    assert events[-1].event == "thread.run.completed"
    tool_message = requests[1].body["messages"][-1]
    assert tool_message["role"] == "tool" and "6 * 7 = 42" in tool_message["content"]
