"""The Chat Completions model wired into the server: config, CLI, spawn, record -> replay."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest
from chat_replay_server import ChatReplayServer, Reply, chat_chunk, python_call_body, sse_body
from server_support import client_for, write_cassette

from asst_magic.server import ServerConfig, ServerHandle, spawn, start_in_thread
from asst_magic.server.arguments import build_parser
from asst_magic.server.cli import model_settings

SECRET = "sk-test-SECRET-0123456789"
CODE = 'x = "6 * 7 = "\nprint(x + str(6 * 7))\n'
QUESTION = "What is 6 * 7?"


@dataclass
class Transcript:
    """What an Assistants client saw of one streamed run."""

    events: list[str]
    code: str
    logs: str
    text: str
    usage: tuple[int, int]


def run_transcript(handle: ServerHandle, model: str) -> Transcript:
    """Stream one code-interpreter run with the real SDK and keep what a user would see."""
    # Any: tools and thread are plain dicts, as a user would write them.
    client: Any = client_for(handle)
    assistant = client.beta.assistants.create(model=model, tools=[{"type": "code_interpreter"}])
    thread = {"messages": [{"role": "user", "content": QUESTION}]}
    events = list(
        client.beta.threads.create_and_run(assistant_id=assistant.id, thread=thread, stream=True)
    )
    [step] = [
        e.data
        for e in events
        if e.event == "thread.run.step.completed" and e.data.type == "tool_calls"
    ]
    [call] = step.step_details.tool_calls
    [message] = [e.data for e in events if e.event == "thread.message.completed"]
    run = events[-1].data
    return Transcript(
        events=[e.event for e in events],
        code=call.code_interpreter.input,
        logs="".join(o.logs for o in call.code_interpreter.outputs if o.type == "logs"),
        text=message.content[0].text.value,
        usage=(run.usage.prompt_tokens, run.usage.completion_tokens),
    )


def code_then_answer() -> list[Reply]:
    usage = {"prompt_tokens": 40, "completion_tokens": 12}
    answer = [
        chat_chunk({"content": "6 * 7"}),
        chat_chunk({"content": " is 42."}, "stop"),
        {"object": "chat.completion.chunk", "choices": [], "usage": usage},
    ]
    return [Reply.sse(python_call_body(CODE, usage=usage)), Reply.sse(sse_body(answer))]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_a_recorded_run_replays_offline_to_the_same_transcript(tmp_path: Path) -> None:
    cassette = tmp_path / "recorded.jsonl"
    with ChatReplayServer(code_then_answer()) as upstream:
        live_config = ServerConfig(
            tmp_path / "live", model_url=upstream.base_url, record_cassette=cassette
        )
        with start_in_thread(live_config) as handle:
            live = run_transcript(handle, "llama3.1")
    assert live.events[-1] == "thread.run.completed"
    assert (live.code, live.text) == (CODE, "6 * 7 is 42.")
    assert "6 * 7 = 42" in live.logs  # the real kernel ran it

    replay_config = ServerConfig(tmp_path / "offline", cassettes=(cassette,))
    with start_in_thread(replay_config) as handle:
        replayed = run_transcript(handle, "replay")
    assert replayed == live


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_with_an_endpoint_every_name_but_replay_goes_to_it(tmp_path: Path) -> None:
    cassette = write_cassette(
        tmp_path / "c.jsonl", [{"user": "Hello", "turns": [{"text": "from the cassette"}]}]
    )
    answer = Reply.sse(sse_body([chat_chunk({"content": "from the endpoint"}, "stop")]))
    with ChatReplayServer([answer]) as upstream:
        config = ServerConfig(
            tmp_path / "data",
            cassettes=(cassette,),
            model_url=upstream.base_url,
            code_interpreter=False,
        )
        with start_in_thread(config, sandbox=None) as handle:
            client = client_for(handle)
            texts = {name: answer_of(client, name, "Hello") for name in ("replay", "my-model")}
    assert texts == {"replay": "from the cassette", "my-model": "from the endpoint"}
    assert [r.body["model"] for r in upstream.requests] == ["my-model"]


def answer_of(client: openai.OpenAI, model: str, question: str) -> str:
    """The assistant's answer to ``question`` from a polled (non-streamed) run."""
    return answer_and_responses(client, model, question)[0]


def answer_and_responses(client: openai.OpenAI, model: str, question: str) -> tuple[str, str]:
    """The answer, and the JSON of every object the client got about the run."""
    assistant = client.beta.assistants.create(model=model)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": question}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed", run.last_error
    messages = client.beta.threads.messages.list(thread_id=thread.id).data
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data
    seen = [assistant, thread, run, *messages, *steps]
    content: Any = messages[0].content[0]
    return str(content.text.value), json.dumps([o.model_dump(mode="json") for o in seen])


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_run_settings_reach_the_endpoint(tmp_path: Path) -> None:
    answer = Reply.sse(sse_body([chat_chunk({"content": "ok"}, "stop")]))
    with ChatReplayServer([answer]) as upstream:
        config = ServerConfig(tmp_path / "data", model_url=upstream.base_url)
        with start_in_thread(config, sandbox=None) as handle:
            client: Any = client_for(handle)
            assistant = client.beta.assistants.create(
                model="m", tools=[{"type": "code_interpreter"}]
            )
            history = [{"role": "user", "content": f"question {n}"} for n in range(3)]
            thread = client.beta.threads.create(messages=history)
            run = client.beta.threads.runs.create_and_poll(
                thread_id=thread.id,
                assistant_id=assistant.id,
                top_p=0.5,
                parallel_tool_calls=False,
                tool_choice={"type": "code_interpreter"},
                response_format={"type": "json_object"},
                truncation_strategy={"type": "last_messages", "last_messages": 1},
            )
    assert run.status == "completed"
    sent = upstream.requests[0].body
    assert [m["content"] for m in sent["messages"] if m["role"] == "user"] == ["question 2"]
    assert (sent["top_p"], sent["parallel_tool_calls"]) == (0.5, False)
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "python"}}
    assert sent["response_format"] == {"type": "json_object"}


# ── Spawned servers: the key travels in the environment only ─────────────────


def cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def rate_limited_then(text: str) -> list[Reply]:
    # The provider echoes the key in its error, as some do; it must not reach our logs.
    busy = Reply.error(429, f"slow down, {SECRET}", headers=[("Retry-After", "0")])
    return [busy, Reply.sse(sse_body([chat_chunk({"content": text}, "stop")]))]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_spawn_forwards_the_model_settings_and_keeps_the_key_out_of_argv(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    with ChatReplayServer(rate_limited_then("Hi from llama")) as upstream:
        config = ServerConfig(
            tmp_path / "data",
            model_url=upstream.base_url,
            model="llama3.1",
            model_api_key=SECRET,
            context_tokens=4096,
            code_interpreter=False,
        )
        assert SECRET not in repr(config)
        with spawn(config) as handle:
            assert handle.pid is not None
            argv = cmdline(handle.pid)
            answer, responses = answer_and_responses(client_for(handle), "anything", "Hello")
    assert answer == "Hi from llama"
    assert f"--model-url {upstream.base_url}" in argv and "--model llama3.1" in argv
    assert "--context-tokens 4096" in argv and SECRET not in argv
    sent = upstream.requests[-1]
    assert sent.body["model"] == "llama3.1"
    assert sent.headers["authorization"] == f"Bearer {SECRET}"
    assert len(upstream.requests) == 2  # the 429 was retried
    out, err = capfd.readouterr()
    assert SECRET not in out + err + responses


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_a_spawned_server_takes_its_endpoint_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    with ChatReplayServer(rate_limited_then("Hi from the env")) as upstream:
        monkeypatch.setenv("ASST_MAGIC_MODEL_URL", upstream.base_url)
        monkeypatch.setenv("ASST_MAGIC_MODEL_API_KEY", SECRET)
        monkeypatch.setenv("ASST_MAGIC_MODEL", "qwen2.5")
        with spawn(ServerConfig(tmp_path / "data", code_interpreter=False)) as handle:
            assert handle.pid is not None
            assert SECRET not in cmdline(handle.pid)
            answer = answer_of(client_for(handle), "gpt-4o", "Hello")
    assert answer == "Hi from the env"
    assert upstream.requests[-1].body["model"] == "qwen2.5"
    assert upstream.requests[-1].headers["authorization"] == f"Bearer {SECRET}"
    out, err = capfd.readouterr()
    assert SECRET not in out + err


# ── The CLI's precedence: flags, then ASST_MAGIC_*, then Azure / OpenAI variables ──


def settings(*argv: str, **environ: str) -> dict[str, Any]:
    return model_settings(build_parser().parse_args(["serve", *argv]), environ)


def test_cli_model_flags_override_the_environment() -> None:
    env = {"ASST_MAGIC_MODEL_URL": "http://env/v1", "ASST_MAGIC_MODEL": "env-model"}
    assert settings("--model-url", "http://flag/v1", **env, ASST_MAGIC_MODEL_API_KEY="k") == {
        "model_url": "http://flag/v1",
        "model": "env-model",
        "model_api_key": "k",
        "azure_api_version": None,
    }
    assert settings("--model", "m", **env)["model_url"] == "http://env/v1"
    assert settings("--model", "m", **env)["model"] == "m"
    azure = settings(AZURE_OPENAI_ENDPOINT="https://r.openai.azure.com", AZURE_OPENAI_API_KEY="a")
    assert azure["model_api_key"] == "a" and azure["azure_api_version"]
    assert settings() == {"model": ""}


def test_cli_refuses_to_record_without_a_live_model(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from asst_magic.server.cli import main

    for name in ("ASST_MAGIC_MODEL_URL", "AZURE_OPENAI_ENDPOINT", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SystemExit):
        main(["serve", "--record-cassette", "x.jsonl"])
    assert "--model-url" in capsys.readouterr().err
