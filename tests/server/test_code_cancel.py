"""Cancelling a run while its code runs: the thread's kernel and next executions stay intact."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import openai
from server_support import client_for

from asst_magic.server import ServerHandle

Start = Callable[..., ServerHandle]


def code_entry(user: str, code: str) -> dict[str, Any]:
    return {
        "user": user,
        "turns": [
            {"tool_calls": [{"type": "code_interpreter", "input": [code]}]},
            {"text": "Done."},
        ],
    }


ENTRIES = [
    code_entry("set x", "x = 42"),
    code_entry("loop", 'print("looping", flush=True)\nwhile True:\n    pass'),
    code_entry("use x", "print(x + 1)"),
]


def ask(client: openai.OpenAI, assistant_id: str, thread_id: str, text: str) -> str:
    """Run ``text`` to its end; the logs of its code call."""
    client.beta.threads.messages.create(thread_id, role="user", content=text)
    run = client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id)
    assert run.status == "completed", run.last_error
    return logs_of(client, thread_id, run.id)


def logs_of(client: openai.OpenAI, thread_id: str, run_id: str) -> str:
    steps = client.beta.threads.runs.steps.list(run_id, thread_id=thread_id, order="asc").data
    call = steps[0].step_details.tool_calls[0].code_interpreter  # type: ignore[union-attr]
    return "".join(o.logs for o in call.outputs if o.type == "logs")


def cancel_while_looping(client: openai.OpenAI, assistant_id: str, thread_id: str) -> None:
    """Stream the looping run and cancel it once its code has printed."""
    client.beta.threads.messages.create(thread_id, role="user", content="loop")
    with client.beta.threads.runs.stream(thread_id=thread_id, assistant_id=assistant_id) as stream:
        for event in stream:
            if event.event == "thread.run.step.delta" and "looping" in event.model_dump_json():
                run_id = stream.current_run.id  # type: ignore[union-attr]
                client.beta.threads.runs.cancel(run_id, thread_id=thread_id)
                break
        stream.until_done()
        final = stream.get_final_run()
    assert final.status == "cancelled"


def test_next_run_after_cancelling_running_code_sees_its_output_and_state(
    start_server: Start,
) -> None:
    client = client_for(start_server(ENTRIES, code_interpreter=True, code_timeout=60.0))
    assistant = client.beta.assistants.create(model="replay", tools=[{"type": "code_interpreter"}])
    thread_id = client.beta.threads.create().id
    assert ask(client, assistant.id, thread_id, "set x") == ""
    for _ in range(3):  # the lost output was a race: go round a few times
        cancel_while_looping(client, assistant.id, thread_id)
        assert ask(client, assistant.id, thread_id, "use x") == "43\n"
