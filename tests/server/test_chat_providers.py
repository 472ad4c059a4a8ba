"""Issue 10: the Chat Completions bridge against ten providers' stream shapes and rules.

One loopback endpoint (``provider_endpoint``) answers as OpenAI, Azure, Ollama,
vLLM, llama.cpp, Mistral, DeepSeek (thinking on), Gemini, Groq or OpenRouter,
picked by the run's model name, and refuses a request the way that provider
would when a documented second-turn rule is broken (id shapes, fields that must
come back). The local server, the real ``openai`` SDK and (for ``python``) the
kernel are real. Servers are shared by the whole module: one for the providers
reached by model name, one for Azure, and one of each with a short idle timeout.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from provider_endpoint import (
    THINKING,
    Calls,
    CutOff,
    Fail,
    ProviderEndpoint,
    Refuse,
    Say,
    Stall,
)
from provider_shapes import PROVIDERS, Provider
from server_support import client_for

from asst_magic.server import ServerConfig, start_in_thread

CITY = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": CITY}}
CODE = {"type": "code_interpreter"}
REASONING_KEYS = ("reasoning_content", "reasoning", "reasoning_details")
# Every event name the openai SDK's Assistants stream knows.
STANDARD_EVENTS = {
    "thread.created",
    *(f"thread.run.{s}" for s in ("created", "queued", "in_progress", "requires_action")),
    *(f"thread.run.{s}" for s in ("completed", "incomplete", "failed", "cancelling")),
    *(f"thread.run.{s}" for s in ("cancelled", "expired")),
    *(f"thread.run.step.{s}" for s in ("created", "in_progress", "delta", "completed")),
    *(f"thread.run.step.{s}" for s in ("failed", "cancelled", "expired")),
    *(f"thread.message.{s}" for s in ("created", "in_progress", "delta", "completed")),
    "thread.message.incomplete",
    "error",
}

parametrize_providers = pytest.mark.parametrize("provider", PROVIDERS, ids=lambda p: p.name)
Clients = dict[str, openai.OpenAI]


@pytest.fixture(scope="module")
def endpoint() -> Iterator[ProviderEndpoint]:
    with ProviderEndpoint() as running:
        yield running


@pytest.fixture(scope="module")
def clients(
    endpoint: ProviderEndpoint, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Clients]:
    """SDK clients of four local servers: main and Azure, each also with a 0.2 s idle timeout."""
    azure = {"model_url": f"{endpoint.root}/azure", "azure_api_version": "2024-10-21"}
    shapes = {
        # Kernels warm up while the other tests run; the python tests come last.
        "main": {"model_url": endpoint.base_url, "code_interpreter": True, "code_pool_size": 3},
        "azure": {**azure, "code_interpreter": True, "code_pool_size": 1},
        "main-fast": {"model_url": endpoint.base_url, "code_interpreter": False},
        "azure-fast": {**azure, "code_interpreter": False},
    }
    handles = {}
    try:
        for name, options in shapes.items():
            fast = {"model_idle_timeout": 0.2} if name.endswith("fast") else {}
            data = tmp_path_factory.mktemp(name)
            handles[name] = start_in_thread(
                ServerConfig(data, model_api_key="sk-fake-key", **fast, **options)  # type: ignore[arg-type]
            )
        yield {name: client_for(handle) for name, handle in handles.items()}
    finally:
        for handle in handles.values():
            handle.stop()


def sdk(clients: Clients, provider: Provider, fast: bool = False) -> Any:
    name = "azure" if provider.name == "azure" else "main"
    return clients[f"{name}-fast" if fast else name]


def run_once(
    client: Any, provider: Provider, tools: list[Any], question: str, thread_id: str | None = None
) -> tuple[list[Any], Any]:
    """Stream one run (on a new thread, or on ``thread_id``); its events and final run."""
    assistant = client.beta.assistants.create(model=provider.model, tools=tools)
    if thread_id is None:
        thread = {"messages": [{"role": "user", "content": question}]}
        stream = client.beta.threads.create_and_run(
            assistant_id=assistant.id, thread=thread, stream=True
        )
    else:
        client.beta.threads.messages.create(thread_id, role="user", content=question)
        stream = client.beta.threads.runs.create(thread_id, assistant_id=assistant.id, stream=True)
    events = list(stream)
    return events, final_run(events)


def final_run(events: list[Any]) -> Any:
    runs = [e.data for e in events if e.event.startswith("thread.run.") and ".step." not in e.event]
    return runs[-1]


def submit(client: Any, run: Any, outputs: dict[str, str]) -> tuple[list[Any], Any]:
    items: Any = [{"tool_call_id": i, "output": o} for i, o in outputs.items()]
    events = list(
        client.beta.threads.runs.submit_tool_outputs(
            run.id, thread_id=run.thread_id, tool_outputs=items, stream=True
        )
    )
    return events, final_run(events)


def assert_closed(client: Any, run: Any) -> None:
    """No step and no message of the run is left in progress, whatever its end."""
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=run.thread_id).data
    assert [s.status for s in steps if s.status == "in_progress"] == []
    messages = client.beta.threads.messages.list(run.thread_id, run_id=run.id).data
    assert [m.status for m in messages if m.status == "in_progress"] == []


def answer_text(client: Any, run: Any) -> str:
    messages = client.beta.threads.messages.list(run.thread_id, run_id=run.id, order="asc").data
    return "".join(part.text.value for m in messages for part in m.content if part.type == "text")


def tool_turns(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in body["messages"] if m.get("tool_calls")]


def assert_reasoning_round_trip(provider: Provider, body: dict[str, Any]) -> None:
    """Reasoning goes back only where the provider sent it, as it sent it."""
    [turn, *_] = tool_turns(body)
    sent = {key for m in body["messages"] for key in REASONING_KEYS if key in m}
    expected = {
        None: set(),
        "magistral": set(),
        "reasoning": {"reasoning"},
        "reasoning_content": {"reasoning_content"},
        "openrouter": {"reasoning", "reasoning_details"},
    }[provider.reasoning]
    assert sent == expected
    if provider.reasoning == "reasoning_content":
        assert turn["reasoning_content"] == THINKING


# ── Text, code, functions ─────────────────────────────────────────────────────


@parametrize_providers
def test_text_answer_completes_with_standard_events_only(
    endpoint: ProviderEndpoint, clients: Clients, provider: Provider
) -> None:
    endpoint.script(provider.name, [Say(f"Hello from {provider.name}.")])
    client = sdk(clients, provider)
    events, run = run_once(client, provider, [], "Hi")
    assert run.status == "completed", run.last_error
    assert answer_text(client, run) == f"Hello from {provider.name}."
    assert {e.event for e in events} <= STANDARD_EVENTS  # reasoning never reaches SDK clients
    assert THINKING not in json.dumps([e.data.model_dump() for e in events])


@parametrize_providers
def test_user_function_through_submit_tool_outputs(
    endpoint: ProviderEndpoint, clients: Clients, provider: Provider
) -> None:
    endpoint.script(
        provider.name, [Calls((("get_weather", {"city": "Oslo"}),)), Say("Sunny in Oslo.")]
    )
    client = sdk(clients, provider)
    _, run = run_once(client, provider, [WEATHER], "Weather in Oslo?")
    assert run.status == "requires_action", run.last_error
    [call] = run.required_action.submit_tool_outputs.tool_calls
    assert call.id.startswith("call_") and json.loads(call.function.arguments) == {"city": "Oslo"}
    _, done = submit(client, run, {call.id: "sunny"})
    assert done.status == "completed", done.last_error
    assert answer_text(client, done) == "Sunny in Oslo."
    tool_message = endpoint.requests(provider.name)[1]["messages"][-1]
    assert tool_message["role"] == "tool" and tool_message["content"] == "sunny"
    assert_reasoning_round_trip(provider, endpoint.requests(provider.name)[1])


@parametrize_providers
def test_parallel_calls_are_answered_together(
    endpoint: ProviderEndpoint, clients: Clients, provider: Provider
) -> None:
    calls = (("get_weather", {"city": "Oslo"}), ("get_weather", {"city": "Bergen"}))
    endpoint.script(provider.name, [Calls(calls), Say("Both sunny.")])
    client = sdk(clients, provider)
    _, run = run_once(client, provider, [WEATHER], "Oslo and Bergen?")
    assert run.status == "requires_action", run.last_error
    required = run.required_action.submit_tool_outputs.tool_calls
    assert [json.loads(c.function.arguments)["city"] for c in required] == ["Oslo", "Bergen"]
    _, done = submit(
        client,
        run,
        {c.id: f"sunny in {json.loads(c.function.arguments)['city']}" for c in required},
    )
    assert done.status == "completed", done.last_error
    body = endpoint.requests(provider.name)[1]
    [turn] = tool_turns(body)
    answered = [m["tool_call_id"] for m in body["messages"] if m["role"] == "tool"]
    assert answered == [c["id"] for c in turn["tool_calls"]] and len(set(answered)) == 2


# ── Endings that are not a finished answer ────────────────────────────────────


@parametrize_providers
def test_length_ends_incomplete(
    endpoint: ProviderEndpoint, clients: Clients, provider: Provider
) -> None:
    endpoint.script(provider.name, [CutOff("Once upon a")])
    client = sdk(clients, provider)
    _, run = run_once(client, provider, [], "A story?")
    assert run.status == "incomplete"
    assert run.incomplete_details.reason == "max_completion_tokens"
    [message] = client.beta.threads.messages.list(run.thread_id, run_id=run.id).data
    assert (message.status, message.content[0].text.value) == ("incomplete", "Once upon a")
    assert_closed(client, run)


@parametrize_providers
def test_mid_stream_failure_ends_the_run_with_the_providers_words(
    endpoint: ProviderEndpoint, clients: Clients, provider: Provider
) -> None:
    endpoint.script(provider.name, [Fail()])
    client = sdk(clients, provider)
    _, run = run_once(client, provider, [], "Hi")
    status, words = provider.midstream_outcome
    assert run.status == status
    if status == "failed":
        assert run.last_error.code == "server_error" and words in run.last_error.message
        assert ".." not in run.last_error.message
    else:
        assert run.incomplete_details.reason == words
    assert_closed(client, run)


@parametrize_providers
@pytest.mark.parametrize(
    ("status", "code", "hint"),
    [
        (401, "server_error", "Check the API key"),
        (429, "rate_limit_exceeded", "Wait a minute"),
        (500, "server_error", "Try again later"),
    ],
)
def test_http_errors_fail_the_run_with_a_clean_message(
    endpoint: ProviderEndpoint,
    clients: Clients,
    provider: Provider,
    status: int,
    code: str,
    hint: str,
) -> None:
    words = f"{provider.name} says no."
    tries = 1 if status == 401 else 4  # 429 and 500 are retried three times
    endpoint.script(provider.name, [Refuse(status, words)] * tries)
    client = sdk(clients, provider)
    _, run = run_once(client, provider, [], "Hi")
    assert run.status == "failed" and run.last_error.code == code
    message = run.last_error.message
    assert f"HTTP {status}" in message and words in message and hint in message
    assert ".." not in message and "{" not in message  # the provider's words, not its JSON
    assert endpoint.left(provider.name) == [] and len(endpoint.requests(provider.name)) == tries
    assert_closed(client, run)


@parametrize_providers
@pytest.mark.parametrize("mid_answer", [False, True], ids=["before", "mid-answer"])
def test_a_silent_endpoint_fails_the_run_after_the_idle_timeout(
    endpoint: ProviderEndpoint, clients: Clients, provider: Provider, mid_answer: bool
) -> None:
    endpoint.script(provider.name, [Stall(mid_answer)])
    client = sdk(clients, provider, fast=True)
    _, run = run_once(client, provider, [], "Hi")
    assert run.status == "failed" and run.last_error.code == "server_error"
    assert "sent nothing for 0.2 s" in run.last_error.message
    assert "--model-idle-timeout" in run.last_error.message
    assert_closed(client, run)


# ── Code interpreter (last: its kernels warm up meanwhile) ────────────────────


@parametrize_providers
def test_python_call_runs_then_later_turns_and_runs_carry_the_provider_data(
    endpoint: ProviderEndpoint, clients: Clients, provider: Provider
) -> None:
    code = {"code": "print(6 * 7)"}
    endpoint.script(provider.name, [Calls((("python", code),)), Say("It is 42."), Say("Still 42.")])
    client = sdk(clients, provider)
    _, run = run_once(client, provider, [CODE], "What is 6 * 7?")
    assert run.status == "completed", run.last_error
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=run.thread_id, order="asc").data
    [call] = steps[0].step_details.tool_calls
    assert call.id.startswith("call_") and call.code_interpreter.outputs[0].logs == "42\n"
    assert answer_text(client, run) == "It is 42."

    _, later = run_once(client, provider, [CODE], "And again?", thread_id=run.thread_id)
    assert later.status == "completed", later.last_error
    second_turn, later_run = endpoint.requests(provider.name)[1:]
    for body in (second_turn, later_run):  # the provider's own id, both times
        [turn] = tool_turns(body)
        assert turn["tool_calls"][0]["id"] != call.id
        assert (
            body["messages"][body["messages"].index(turn) + 1]["tool_call_id"]
            == turn["tool_calls"][0]["id"]
        )
        assert_reasoning_round_trip(provider, body)
    assert tool_turns(second_turn) == tool_turns(later_run)
