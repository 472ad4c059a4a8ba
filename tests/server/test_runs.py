"""Runs driven through the real openai SDK: streaming, polling, tools, cancel, failures."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import openai
from openai import AssistantEventHandler
from openai.types.beta.threads import Text, TextDelta
from server_support import BOTH_STORES, sse_events

# The server suite runs against both stores (SQLite and PostgreSQL).
STORES = BOTH_STORES

Serve = Callable[..., openai.OpenAI]

HELLO = {"user": "Hello", "turns": [{"text": ["Hi", " there", "!"]}]}
WEATHER_TOOL = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}},
}
WEATHER = {
    "user": "Weather in Paris?",
    "turns": [
        {
            "tool_calls": [
                {"type": "function", "name": "get_weather", "arguments": ['{"city":', '"Paris"}']}
            ]
        },
        {"text": ["It is ", "sunny."]},
    ],
}


class Recorder(AssistantEventHandler):
    """Keeps every event name and text delta the SDK hands to a user's handler."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []
        self.deltas: list[str] = []
        self.done_texts: list[str] = []

    def on_event(self, event: Any) -> None:
        self.names.append(event.event)

    def on_text_delta(self, delta: TextDelta, snapshot: Text) -> None:
        self.deltas.append(delta.value or "")

    def on_text_done(self, text: Text) -> None:
        self.done_texts.append(text.value)


def setup(client: openai.OpenAI, text: str, **assistant: Any) -> tuple[str, str]:
    created = client.beta.assistants.create(model="replay", **assistant)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": text}])
    return created.id, thread.id


def test_stream_with_event_handler_gets_each_text_delta_separately(serve: Serve) -> None:
    client = serve([HELLO])
    assistant_id, thread_id = setup(client, "Hello")
    handler = Recorder()
    with client.beta.threads.runs.stream(
        thread_id=thread_id, assistant_id=assistant_id, event_handler=handler
    ) as stream:
        stream.until_done()
        run = stream.get_final_run()
    assert handler.deltas == ["Hi", " there", "!"]
    assert handler.done_texts == ["Hi there!"]
    assert handler.names[:3] == [
        "thread.run.created",
        "thread.run.queued",
        "thread.run.in_progress",
    ]
    assert handler.names[-1] == "thread.run.completed"
    assert run.status == "completed" and run.usage is not None and run.usage.total_tokens > 0
    messages = client.beta.threads.messages.list(thread_id=thread_id, order="asc").data
    assert [m.role for m in messages] == ["user", "assistant"]
    assert messages[1].content[0].text.value == "Hi there!"  # type: ignore[union-attr]
    assert messages[1].run_id == run.id and messages[1].status == "completed"


def test_create_and_poll_reaches_completed(serve: Serve) -> None:
    client = serve([HELLO])
    assistant_id, thread_id = setup(client, "Hello")
    run = client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id)
    assert run.status == "completed"
    assert run.started_at is not None and run.completed_at is not None
    raw = client.beta.threads.runs.with_raw_response.retrieve(run.id, thread_id=thread_id)
    assert int(raw.headers["openai-poll-after-ms"]) > 0
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread_id).data
    assert [s.type for s in steps] == ["message_creation"]
    assert steps[0].usage is not None and steps[0].status == "completed"
    step = client.beta.threads.runs.steps.retrieve(steps[0].id, thread_id=thread_id, run_id=run.id)
    assert step.step_details.message_creation.message_id  # type: ignore[union-attr]


def test_create_thread_and_run_streams_thread_created_first(serve: Serve) -> None:
    client = serve([HELLO])
    assistant = client.beta.assistants.create(model="replay")
    handler = Recorder()
    with client.beta.threads.create_and_run_stream(
        assistant_id=assistant.id,
        thread={"messages": [{"role": "user", "content": "Hello"}]},
        event_handler=handler,
    ) as stream:
        stream.until_done()
    assert handler.names[0] == "thread.created"
    assert handler.names[1] == "thread.run.created"
    assert "".join(handler.deltas) == "Hi there!"


def test_function_call_requires_action_then_submit_stream_continues_same_run(serve: Serve) -> None:
    client = serve([WEATHER])
    assistant_id, thread_id = setup(client, "Weather in Paris?", tools=[WEATHER_TOOL])
    with client.beta.threads.runs.stream(thread_id=thread_id, assistant_id=assistant_id) as stream:
        stream.until_done()
        run = stream.get_final_run()
    assert run.status == "requires_action"
    calls = run.required_action.submit_tool_outputs.tool_calls  # type: ignore[union-attr]
    assert [(c.function.name, c.function.arguments) for c in calls] == [
        ("get_weather", '{"city":"Paris"}')
    ]
    handler = Recorder()
    with client.beta.threads.runs.submit_tool_outputs_stream(
        thread_id=thread_id,
        run_id=run.id,
        tool_outputs=[{"tool_call_id": calls[0].id, "output": "sunny, 21C"}],
        event_handler=handler,
    ) as stream:
        stream.until_done()
        final = stream.get_final_run()
    assert final.id == run.id and final.status == "completed"
    assert handler.names[:3] == [
        "thread.run.step.completed",
        "thread.run.queued",
        "thread.run.in_progress",
    ]
    assert "".join(handler.deltas) == "It is sunny."
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread_id, order="asc").data
    tool_call = steps[0].step_details.tool_calls[0]  # type: ignore[union-attr]
    assert tool_call.function.output == "sunny, 21C"  # type: ignore[union-attr]


def test_parallel_function_calls_need_all_outputs(serve: Serve) -> None:
    entry = {
        "user": "Both please",
        "turns": [
            {
                "tool_calls": [
                    {"type": "function", "name": "get_weather", "arguments": "{}"},
                    {"type": "function", "name": "get_time", "arguments": "{}"},
                ]
            },
            {"text": "Done."},
        ],
    }
    client = serve([entry])
    assistant_id, thread_id = setup(client, "Both please")
    run = client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id)
    calls = run.required_action.submit_tool_outputs.tool_calls  # type: ignore[union-attr]
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]
    outputs = [{"tool_call_id": c.id, "output": c.function.name} for c in calls]
    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id, thread_id=thread_id, tool_outputs=outputs
    )
    assert run.status == "completed"


def test_cancel_mid_stream_ends_stream_with_run_cancelled(serve: Serve) -> None:
    slow = {
        "user": "Count slowly",
        "delay": 0.02,
        "turns": [{"text": [f"{i} " for i in range(500)]}],
    }
    client = serve([slow])
    assistant_id, thread_id = setup(client, "Count slowly")
    names: list[str] = []
    with client.beta.threads.runs.stream(thread_id=thread_id, assistant_id=assistant_id) as stream:
        for event in stream:
            names.append(event.event)
            if event.event == "thread.message.delta" and names.count(event.event) == 1:
                run_id = stream.current_run.id  # type: ignore[union-attr]
                cancelled = client.beta.threads.runs.cancel(run_id, thread_id=thread_id)
                assert cancelled.status == "cancelling"
    assert names[-1] == "thread.run.cancelled"
    cancelling = names.index("thread.run.cancelling")
    assert "thread.message.delta" not in names[cancelling:]
    assert names.count("thread.message.delta") < 500
    run = client.beta.threads.runs.retrieve(cancelled.id, thread_id=thread_id)
    assert run.status == "cancelled" and run.cancelled_at is not None
    message = client.beta.threads.messages.list(thread_id=thread_id, limit=1).data[0]
    assert message.status == "incomplete"
    assert (
        message.incomplete_details is not None
        and message.incomplete_details.reason == "run_cancelled"
    )
    # The thread is free again.
    client.beta.threads.messages.create(thread_id=thread_id, role="user", content="Hello")


def test_run_keeps_going_after_the_streaming_client_disconnects(serve: Serve) -> None:
    slow = {"user": "Hello", "delay": 0.01, "turns": [{"text": [f"{i} " for i in range(40)]}]}
    client = serve([slow])
    assistant_id, thread_id = setup(client, "Hello")
    with client.beta.threads.runs.with_streaming_response.create(
        thread_id=thread_id, assistant_id=assistant_id, stream=True
    ) as response:
        for line in response.iter_lines():
            if line.startswith("data: ") and '"thread.message.delta"' in line:
                break
    run = client.beta.threads.runs.list(thread_id=thread_id).data[0]
    run = client.beta.threads.runs.poll(run.id, thread_id=thread_id, poll_interval_ms=20)
    assert run.status == "completed"
    message = client.beta.threads.messages.list(thread_id=thread_id, limit=1).data[0]
    assert message.content[0].text.value == "".join(f"{i} " for i in range(40))  # type: ignore[union-attr]


def test_unmatched_user_message_fails_run_naming_the_message(serve: Serve) -> None:
    client = serve([HELLO])
    assistant_id, thread_id = setup(client, "What is the airspeed of an unladen swallow?")
    run = client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id)
    assert run.status == "failed" and run.last_error is not None
    assert run.last_error.code == "invalid_prompt"
    assert run.last_error.message == (
        "replay cassette has no entry for the user message 'What is the airspeed of an unladen "
        "swallow?' (cassettes: c0.jsonl); add one or use a live model"
    )


def test_replay_without_a_cassette_fails_run_saying_how_to_get_an_answer(serve: Serve) -> None:
    client = serve()  # no cassette at all: the first thing a new user may hit
    assistant_id, thread_id = setup(client, "Hello")
    run = client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id)
    assert run.status == "failed" and run.last_error is not None
    assert run.last_error.code == "invalid_prompt"
    assert run.last_error.message.startswith("the replay model has no cassette to answer from")
    assert "AssistantMagics.cassette" in run.last_error.message
    assert "$ASST_MAGIC_MODEL_URL" in run.last_error.message


def test_unknown_model_fails_run_naming_model_and_what_is_available(serve: Serve) -> None:
    client = serve([HELLO])
    assistant = client.beta.assistants.create(model="gpt-nonexistent")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Hello"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "failed" and run.last_error is not None
    assert "gpt-nonexistent" in run.last_error.message
    assert "replay (cassettes: c0.jsonl)" in run.last_error.message
    # The run's own model overrides the assistant's.
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, model="replay"
    )
    assert run.status == "completed" and run.model == "replay"


def test_model_error_fails_run_and_length_ends_incomplete(serve: Serve) -> None:
    entries = [
        {
            "user": "Break",
            "turns": [{"error": {"code": "rate_limit_exceeded", "message": "slow down"}}],
        },
        {"user": "Ramble", "turns": [{"text": ["a", "b"], "finish": "length"}]},
    ]
    client = serve(entries)
    assistant_id, thread_id = setup(client, "Break")
    run = client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id)
    assert run.status == "failed" and run.failed_at is not None
    assert run.last_error is not None and run.last_error.code == "rate_limit_exceeded"
    assert run.last_error.message == "slow down"
    client.beta.threads.messages.create(thread_id=thread_id, role="user", content="Ramble")
    run = client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id)
    assert run.status == "incomplete"
    assert run.incomplete_details is not None
    assert run.incomplete_details.reason == "max_completion_tokens"


def test_code_interpreter_without_sandbox_fails_with_clear_error(serve: Serve) -> None:
    entry = {
        "user": "Compute",
        "turns": [{"tool_calls": [{"type": "code_interpreter", "input": "print(1)"}]}],
    }
    client = serve([entry])
    assistant_id, thread_id = setup(client, "Compute", tools=[{"type": "code_interpreter"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id)
    assert run.status == "failed" and run.last_error is not None
    assert "code interpreter is unavailable" in run.last_error.message
    step = client.beta.threads.runs.steps.list(run.id, thread_id=thread_id).data[0]
    assert step.status == "failed" and step.last_error is not None


def test_nth_occurrence_of_same_text_uses_nth_entry(serve: Serve) -> None:
    entries = [
        {"user": "Again", "turns": [{"text": "first"}]},
        {"user": "Again", "turns": [{"text": "second"}]},
    ]
    client = serve(entries)
    assistant_id, thread_id = setup(client, "  Again ")
    answers = []
    for _ in range(3):
        client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id)
        answers.append(client.beta.threads.messages.list(thread_id=thread_id, limit=1).data[0])
        client.beta.threads.messages.create(thread_id=thread_id, role="user", content="Again")
    texts = [m.content[0].text.value for m in answers]  # type: ignore[union-attr]
    assert texts == ["first", "second", "second"]


def test_cassette_edits_are_picked_up_without_restart(serve: Serve, tmp_path: Any) -> None:
    client = serve([HELLO])
    assistant_id, thread_id = setup(client, "Hello")
    path = tmp_path / "c0.jsonl"
    path.write_text('{"user": "Hello", "turns": [{"text": "edited"}]}\n# a comment\n\n')
    import os

    os.utime(path, ns=(1, 10**18))  # a distinct mtime even on coarse-clock filesystems
    client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id)
    message = client.beta.threads.messages.list(thread_id=thread_id, limit=1).data[0]
    assert message.content[0].text.value == "edited"  # type: ignore[union-attr]


def test_internal_model_crash_fails_run_and_sends_error_event(serve: Serve) -> None:
    from asst_magic.server.models import ModelRegistry, NamedModel

    class Broken:
        async def turn(self, request: Any) -> Any:
            raise RuntimeError("boom")
            yield  # pragma: no cover

    client = serve(models=ModelRegistry([NamedModel("broken", Broken())]))
    assistant = client.beta.assistants.create(model="broken")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "x"}])
    with client.beta.threads.runs.with_streaming_response.create(
        thread_id=thread.id, assistant_id=assistant.id, stream=True
    ) as response:
        events = sse_events(response.iter_bytes())
    names = [name for name, _ in events]
    assert names[-3:] == ["thread.run.failed", "error", "done"]
    assert "boom" in events[-2][1]["error"]["message"]
    assert client.beta.threads.runs.list(thread_id=thread.id).data[0].status == "failed"


def test_second_client_thread_can_read_while_a_run_streams(serve: Serve) -> None:
    slow = {"user": "Hello", "delay": 0.005, "turns": [{"text": ["x"] * 60}]}
    client = serve([slow])
    assistant_id, thread_id = setup(client, "Hello")
    seen = threading.Event()
    with client.beta.threads.runs.stream(thread_id=thread_id, assistant_id=assistant_id) as stream:
        for event in stream:
            if event.event == "thread.message.delta" and not seen.is_set():
                seen.set()
                runs = client.beta.threads.runs.list(thread_id=thread_id).data
                assert runs[0].status == "in_progress"
    assert seen.is_set()
