"""Issue 06 end to end: the local server over a Chat Completions playback endpoint.

Each scenario is checked twice, from a fresh server each time: as the Assistants
events the real ``openai`` SDK streams from our server, and as what ``%%assistant``
renders in an in-process shell. The playback server stands in only for the
model's words; the server, the SDK, the magic (and, for ``python``, the kernel)
are real. Scripted replies are consumed in order, so every test starts its own
playback endpoint and local server (about 0.1 s each; the endpoint is fixed per server).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest
from chat_replay_server import ChatReplayServer, Reply, chat_chunk, python_call_body, sse_body
from IPython.core.interactiveshell import InteractiveShell
from magic_support import notebook_shell
from server_support import client_for

from asst_magic.functions import default_registry
from asst_magic.magics import AssistantMagics
from asst_magic.server import ServerConfig, ServerHandle, start_in_thread

VECTORS = Path(__file__).parent.parent / "vectors" / "chat"
SECRET = "sk-test-secret"
MODEL = "gpt-4o"
# Escapes of every kind, a non-ASCII letter and a character outside the BMP: JSON-encoded
# one character per stream chunk, every escape sequence (\n, \t, \", \\, \u00e9, the
# surrogate pair \ud83d\ude00) arrives split across chunks.
CODE = 'name = "café 😀"\nprint(f"{name}\\t{len(name)}")\nprint("say \\"hi\\" \\\\ bye")\n'
CODE_LOGS = 'café 😀\t6\nsay "hi" \\ bye\n'
CITY = {"type": "object", "properties": {"city": {"type": "string"}}}
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": CITY}}

Events = list[Any]  # openai AssistantStreamEvent


def vector(name: str) -> Reply:
    return Reply.sse((VECTORS / name).read_bytes())


def answer(text: str) -> Reply:
    """The model's final words, with usage (55 tokens), as a streamed reply."""
    usage = {"prompt_tokens": 50, "completion_tokens": 5}
    chunks = [
        chat_chunk({"role": "assistant", "content": text}),
        chat_chunk({}, "stop"),
        {"object": "chat.completion.chunk", "choices": [], "usage": usage},
    ]
    return Reply.sse(sse_body(chunks))


def python_call() -> Reply:
    pieces = len(json.dumps({"code": CODE}))  # one character per chunk
    return Reply.sse(python_call_body(CODE, pieces, {"prompt_tokens": 30, "completion_tokens": 9}))


def rate_limited() -> Reply:
    # The provider echoes the key, as some do: it must not reach anything a user sees.
    return Reply.error(429, f"slow down, {SECRET}", headers=[("Retry-After", "0")])


def broken() -> Reply:
    # Retry-After: 0 keeps the test fast; the server has no backoff setting to turn down.
    return Reply.error(500, f"upstream exploded ({SECRET})", headers=[("Retry-After", "0")])


@dataclass
class Bridge:
    """A local server whose model is a playback Chat Completions endpoint."""

    upstream: ChatReplayServer
    handle: ServerHandle
    client: openai.OpenAI

    def stream(self, tools: Sequence[dict[str, Any]] = (), question: str = "Hi") -> Events:
        """Stream one new run on a new thread with the real SDK; every event it got."""
        sdk: Any = self.client  # tools and thread are plain dicts, as a user writes them
        assistant = sdk.beta.assistants.create(model=MODEL, tools=list(tools))
        thread = {"messages": [{"role": "user", "content": question}]}
        return list(
            sdk.beta.threads.create_and_run(assistant_id=assistant.id, thread=thread, stream=True)
        )

    def submit(self, run: Any, outputs: dict[str, str]) -> Events:
        """Answer a run's function calls (by call id); the streamed events until it stops."""
        tool_outputs: Any = [{"tool_call_id": i, "output": o} for i, o in outputs.items()]
        stream = self.client.beta.threads.runs.submit_tool_outputs(
            run.id, thread_id=run.thread_id, tool_outputs=tool_outputs, stream=True
        )
        return list(stream)


@pytest.fixture
def bridge(tmp_path: Path) -> Iterator[Callable[..., Bridge]]:
    """Start a playback endpoint and a local server in front of it; both stop after the test."""
    with ExitStack() as stack:

        def start(replies: Sequence[Reply], *, code_interpreter: bool = False) -> Bridge:
            upstream = stack.enter_context(ChatReplayServer(replies))
            endpoint = {"model_url": upstream.base_url, "model": MODEL, "model_api_key": SECRET}
            code = {"code_interpreter": code_interpreter, "code_pool_size": 0}
            config = ServerConfig(tmp_path / "data", **endpoint, **code)
            handle = stack.enter_context(start_in_thread(config))
            return Bridge(upstream, handle, client_for(handle))

        yield start


@pytest.fixture
def notebook(
    bridge: Callable[..., Bridge], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., InteractiveShell]]:
    """A fresh in-process shell whose ``%%assistant`` talks to a new bridge (widget display)."""
    monkeypatch.chdir(tmp_path)
    opened: list[AssistantMagics] = []

    def open_shell(replies: Sequence[Reply], *, code_interpreter: bool = False) -> Any:
        handle = bridge(replies, code_interpreter=code_interpreter).handle
        ip, magics = notebook_shell(handle, {})
        magics.model = MODEL
        opened.append(magics)
        return ip

    yield open_shell
    for magics in opened:
        magics.close()


@pytest.fixture
def weather_functions() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """``get_weather`` and the parallel vector's two functions, offered to cells; calls logged."""
    calls: list[tuple[str, dict[str, Any]]] = []

    def get_weather(city: str, country: str = "", units: str = "c") -> str:
        calls.append(("weather", {"city": city, "country": country, "units": units}))
        return f"18°{units.upper()} and sunny in {city}"

    def get_stock_price(ticker: str, exchange: str) -> str:
        calls.append(("stock", {"ticker": ticker, "exchange": exchange}))
        return f"{ticker} 227.79 USD"

    default_registry.register(get_weather, description="Weather in a city.")
    default_registry.register(get_weather, name="GetWeatherArgs", description="Weather.")
    default_registry.register(get_stock_price, description="A stock's last price.")
    try:
        yield calls
    finally:
        for name in ("get_weather", "GetWeatherArgs", "get_stock_price"):
            default_registry.remove(name)


def cell(ip: Any, body: str = "Hi") -> list[dict[str, Any]]:
    """Run one ``%%assistant`` cell; the outputs it left, as a saved notebook holds them."""
    ip.display_pub.outputs.clear()
    result = ip.run_cell(f"%%assistant\n{body}")
    assert result.error_in_exec is None, result.error_in_exec  # no traceback, ever
    outputs: list[dict[str, Any]] = ip.display_pub.saved
    assert SECRET not in json.dumps(outputs)
    return outputs


def plain(outputs: list[dict[str, Any]]) -> list[str]:
    return [o["data"]["text/plain"] for o in outputs]


def names(events: Events) -> list[str]:
    return [e.event for e in events]


def shown(events: Events) -> str:
    """Everything the SDK received, as JSON text."""
    return json.dumps([e.data.model_dump(mode="json") for e in events])


def text_deltas(events: Events) -> list[str]:
    return [
        part.text.value
        for e in events
        if e.event == "thread.message.delta"
        for part in e.data.delta.content or ()
        if part.type == "text" and part.text and part.text.value
    ]


def tool_deltas(events: Events) -> list[Any]:
    """The tool-call deltas of every ``thread.run.step.delta``, in order."""
    return [
        call
        for e in events
        if e.event == "thread.run.step.delta"
        for call in getattr(e.data.delta.step_details, "tool_calls", None) or ()
    ]


RUN_START = ["thread.created", "thread.run.created", "thread.run.queued", "thread.run.in_progress"]
STEP_START = ["thread.run.step.created", "thread.run.step.in_progress"]
MESSAGE_START = ["thread.message.created", "thread.message.in_progress"]


# ── text ─────────────────────────────────────────────────────────────────────


def test_text_streams_as_message_deltas(bridge: Callable[..., Bridge]) -> None:
    events = bridge([vector("text.sse")]).stream()
    assert names(events) == [
        *RUN_START,
        *STEP_START,
        *MESSAGE_START,
        "thread.message.delta",
        "thread.message.delta",
        "thread.message.completed",
        "thread.run.step.completed",
        "thread.run.completed",
    ]
    assert text_deltas(events) == ["Foo", "!"]
    run = events[-1].data
    assert (run.usage.prompt_tokens, run.usage.completion_tokens) == (9, 2)


def test_text_renders_as_markdown(notebook: Callable[..., Any]) -> None:
    outputs = cell(notebook([vector("text.sse")]))
    assert [o["data"].get("text/markdown") for o in outputs[:-1]] == ["Foo!"]
    assert plain(outputs)[-1].startswith("completed · ")
    assert plain(outputs)[-1].endswith(" · 11 tokens")


# ── one tool call ────────────────────────────────────────────────────────────


def test_a_function_call_requires_action_then_completes(bridge: Callable[..., Bridge]) -> None:
    chat = bridge([vector("tool-call.sse"), answer("It is 18°C and sunny.")])
    events = chat.stream([WEATHER], "Weather in New York City?")
    deltas = ["thread.run.step.delta"] * 8
    assert names(events) == [*RUN_START, *STEP_START, *deltas, "thread.run.requires_action"]
    arguments = "".join(c.function.arguments or "" for c in tool_deltas(events))
    assert arguments == '{"city":"New York City"}'  # streamed in the endpoint's 7 fragments
    run = events[-1].data
    [call] = run.required_action.submit_tool_outputs.tool_calls
    assert (call.function.name, call.function.arguments) == ("get_weather", arguments)

    rest = chat.submit(run, {call.id: "18°C and sunny"})
    assert names(rest) == [  # the order OpenAI's recorded streams have
        "thread.run.step.completed",
        "thread.run.queued",
        "thread.run.in_progress",
        *STEP_START,
        *MESSAGE_START,
        "thread.message.delta",
        "thread.message.completed",
        "thread.run.step.completed",
        "thread.run.completed",
    ]
    assert text_deltas(rest) == ["It is 18°C and sunny."]
    assert rest[-1].data.usage.total_tokens == 60 + 55  # both model turns
    *_, assistant, tool_message = chat.upstream.requests[1].body["messages"]
    # The endpoint gets its own call id back (the SDK saw ours, call.id).
    provider_id = "call_4XzlGBLtUe9dy3GVNV4jhq7h"
    assert [c["id"] for c in assistant["tool_calls"]] == [provider_id] != [call.id]
    expected = {"role": "tool", "tool_call_id": provider_id, "content": "18°C and sunny"}
    assert tool_message == expected


def test_a_function_call_renders_with_its_answer(
    notebook: Callable[..., Any], weather_functions: list[tuple[str, dict[str, Any]]]
) -> None:
    ip = notebook([vector("tool-call.sse"), answer("It is 18°C and sunny in New York City.")])
    call, text, status = cell(ip, "Weather in New York City?")
    assert weather_functions == [
        ("weather", {"city": "New York City", "country": "", "units": "c"})
    ]
    assert call["data"]["text/plain"] == (
        'ƒ get_weather({\n  "city": "New York City"\n}) · done\n→ 18°C and sunny in New York City'
    )
    assert text["data"]["text/markdown"] == "It is 18°C and sunny in New York City."
    assert status["data"]["text/plain"].startswith("completed · ")


# ── parallel tool calls ──────────────────────────────────────────────────────


def test_parallel_calls_arrive_in_one_required_action(bridge: Callable[..., Bridge]) -> None:
    chat = bridge([vector("parallel-tool-calls.sse"), answer("Both done.")])
    events = chat.stream([WEATHER])
    assert names(events[-1:]) == ["thread.run.requires_action"]
    calls = events[-1].data.required_action.submit_tool_outputs.tool_calls
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("GetWeatherArgs", {"city": "Edinburgh", "country": "GB", "units": "c"}),
        ("get_stock_price", {"ticker": "AAPL", "exchange": "NASDAQ"}),
    ]
    assert {d.index for d in tool_deltas(events)} == {0, 1}  # both streamed, by index
    rest = chat.submit(events[-1].data, {c.id: f"out {c.function.name}" for c in calls})
    assert names(rest)[-1] == "thread.run.completed"
    sent = [m for m in chat.upstream.requests[1].body["messages"] if m["role"] == "tool"]
    assert [m["content"] for m in sent] == ["out GetWeatherArgs", "out get_stock_price"]


def test_parallel_calls_render_each_call(
    notebook: Callable[..., Any], weather_functions: list[tuple[str, dict[str, Any]]]
) -> None:
    ip = notebook([vector("parallel-tool-calls.sse"), answer("Mild in Edinburgh; AAPL 227.79.")])
    weather, stock, text, status = plain(cell(ip))
    assert [kind for kind, _ in weather_functions] == ["weather", "stock"]
    assert weather.startswith("ƒ GetWeatherArgs({") and weather.endswith(
        "· done\n→ 18°C and sunny in Edinburgh"
    )
    assert stock.startswith("ƒ get_stock_price({") and stock.endswith("· done\n→ AAPL 227.79 USD")
    assert text == "Mild in Edinburgh; AAPL 227.79."
    assert status.startswith("completed · ")


# ── python: code split inside JSON escapes, run by the real kernel ───────────


def test_python_code_streams_decoded_and_runs(bridge: Callable[..., Bridge]) -> None:
    chat = bridge([python_call(), answer("Printed.")], code_interpreter=True)
    events = chat.stream([{"type": "code_interpreter"}])
    assert names(events)[-1] == "thread.run.completed"
    inputs = [
        d.code_interpreter.input
        for d in tool_deltas(events)
        if d.type == "code_interpreter" and d.code_interpreter and d.code_interpreter.input
    ]
    assert "".join(inputs) == CODE
    assert len(inputs) > len(CODE) // 2  # decoded as it arrived, not at the end
    [step] = [
        e.data
        for e in events
        if e.event == "thread.run.step.completed" and e.data.type == "tool_calls"
    ]
    [call] = step.step_details.tool_calls
    assert call.code_interpreter.input == CODE
    assert [o.logs for o in call.code_interpreter.outputs if o.type == "logs"] == [CODE_LOGS]
    assert text_deltas(events) == ["Printed."]


def test_python_code_renders_highlighted_with_the_kernels_logs(
    notebook: Callable[..., Any],
) -> None:
    ip = notebook([python_call(), answer("Printed.")], code_interpreter=True)
    code, logs, text, status = cell(ip, "Print something tricky.")
    assert code["data"]["text/plain"] == CODE
    assert '<span class="nb">print</span>' in code["data"]["text/html"]
    assert logs["data"]["text/plain"] == CODE_LOGS
    assert text["data"]["text/markdown"] == "Printed."
    assert status["data"]["text/plain"].startswith("completed · ")


def test_the_model_reads_a_compact_traceback_the_step_keeps_the_whole_one(
    bridge: Callable[..., Bridge],
) -> None:
    code = "import pandas as pd\ndf = pd.DataFrame({'a': [1]})\ndf['revenue']\n"
    chat = bridge([Reply.sse(python_call_body(code)), answer("Fixed.")], code_interpreter=True)
    events = chat.stream([{"type": "code_interpreter"}])
    [step] = [
        e.data
        for e in events
        if e.event == "thread.run.step.completed" and e.data.type == "tool_calls"
    ]
    logs = "".join(o.logs for o in step.step_details.tool_calls[0].code_interpreter.outputs)
    assert "Cell In[" in logs and "pandas/core/frame.py" in logs  # the whole traceback, kept
    messages = chat.upstream.requests[1].body["messages"]
    [seen] = [m["content"] for m in messages if m["role"] == "tool"]
    assert seen.startswith("Traceback (most recent call last):\n  Code, line 3\n    df['revenue']")
    assert seen.endswith("KeyError: 'revenue'\n")
    assert len(seen) * 5 < len(logs)


# ── length ───────────────────────────────────────────────────────────────────


def test_length_makes_the_run_incomplete(bridge: Callable[..., Bridge]) -> None:
    events = bridge([vector("length.sse")]).stream()
    assert names(events)[-3:] == [
        "thread.message.incomplete",
        "thread.run.step.completed",
        "thread.run.incomplete",
    ]
    assert text_deltas(events) == ['{"']
    assert events[-1].data.incomplete_details.reason == "max_completion_tokens"


def test_length_shows_incomplete(notebook: Callable[..., Any]) -> None:
    text, status = plain(cell(notebook([vector("length.sse")])))
    assert text == '{"'  # what came before the cut is kept
    assert status.startswith("incomplete: max tokens · ")  # and why


# ── a 429, then success ──────────────────────────────────────────────────────


def test_a_rate_limit_is_retried(
    bridge: Callable[..., Bridge], capfd: pytest.CaptureFixture[str]
) -> None:
    chat = bridge([rate_limited(), vector("text.sse")])
    events = chat.stream()
    assert names(events)[-1] == "thread.run.completed"
    assert text_deltas(events) == ["Foo", "!"]
    assert len(chat.upstream.requests) == 2
    assert chat.upstream.requests[-1].headers["authorization"] == f"Bearer {SECRET}"
    out, err = capfd.readouterr()
    assert SECRET not in out + err + shown(events)


def test_a_rate_limit_still_renders_completed(notebook: Callable[..., Any]) -> None:
    outputs = plain(cell(notebook([rate_limited(), vector("text.sse")])))
    assert outputs[0] == "Foo!"
    assert outputs[-1].startswith("completed · ")


# ── a 500, every time ────────────────────────────────────────────────────────


def test_a_failing_endpoint_fails_the_run_with_a_clear_error(
    bridge: Callable[..., Bridge], capfd: pytest.CaptureFixture[str]
) -> None:
    chat = bridge([broken()])
    events = chat.stream()
    assert names(events) == [*RUN_START, "thread.run.failed"]
    error = events[-1].data.last_error
    assert error.code == "server_error"
    assert error.message == (
        f"The model endpoint {chat.upstream.base_url} failed (HTTP 500, 4 attempts): "
        "upstream exploded (***). Try again later, or check the model server's logs."
    )
    assert len(chat.upstream.requests) == 4  # the first try and three retries
    out, err = capfd.readouterr()
    assert SECRET not in out + err + shown(events)


def test_a_failing_endpoint_shows_failed_with_the_error(
    notebook: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    [status] = plain(cell(notebook([broken()])))
    assert re.fullmatch(
        r"failed · \d+\.\d s · server_error: The model endpoint http://127\.0\.0\.1:\d+/v1 "
        r"failed \(HTTP 500, 4 attempts\): upstream exploded \(\*\*\*\)\. "
        r"Try again later, or check the model server's logs\.",
        status,
    ), status
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    assert SECRET not in captured.out + captured.err


# ── reasoning ────────────────────────────────────────────────────────────────


def test_reasoning_shows_as_a_collapsed_thinking_section_before_the_answer(
    notebook: Callable[..., Any],
) -> None:
    thinking = [
        chat_chunk({"role": "assistant", "reasoning_content": p}) for p in ("2 + 2", " is 4")
    ]
    body = sse_body([*thinking, chat_chunk({"content": "Four."}, "stop")])
    outputs = cell(notebook([Reply.sse(body)]))
    assert plain(outputs) == ["Thinking", "Four.", plain(outputs)[-1]]
    html = outputs[0]["data"]["text/html"]
    opening = html[: html.index(">") + 1]
    assert opening.startswith("<details class=") and " open" not in opening  # closed until opened
    assert ">2 + 2 is 4</div></details>" in html
