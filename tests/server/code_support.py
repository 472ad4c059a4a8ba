"""Helpers for code-interpreter server tests: cassettes of code turns and one streamed run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import openai
from server_support import sse_events

__all__ = ["Outcome", "ask_code", "code_cassette", "streamed_outputs"]


def code_cassette(scripts: dict[str, tuple[str, str]]) -> list[dict[str, Any]]:
    """One entry per ``user text: (code the model runs, its answer after)``."""
    return [
        {
            "user": user,
            "turns": [
                {"tool_calls": [{"type": "code_interpreter", "input": [code]}]},
                {"text": [answer]},
            ],
        }
        for user, (code, answer) in scripts.items()
    ]


@dataclass
class Outcome:
    """What a client sees of one run: its events, final run, code call, and answer."""

    events: list[tuple[str, Any]]
    run: Any
    step: Any
    message: Any

    @property
    def call(self) -> Any:
        return self.step.step_details.tool_calls[0].code_interpreter

    @property
    def logs(self) -> str:
        return "".join(o.logs for o in self.call.outputs if o.type == "logs")


def ask_code(
    client: openai.OpenAI,
    assistant_id: str,
    text: str,
    thread_id: str | None = None,
    **message: Any,
) -> Outcome:
    """Post ``text`` (on a new thread unless given) and stream a run to its end."""
    thread_id = thread_id or client.beta.threads.create().id
    client.beta.threads.messages.create(thread_id, role="user", content=text, **message)
    with client.beta.threads.runs.with_streaming_response.create(
        thread_id=thread_id, assistant_id=assistant_id, stream=True
    ) as response:
        events = sse_events(response.iter_bytes())
    run = client.beta.threads.runs.retrieve(events[0][1]["id"], thread_id=thread_id)
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread_id, order="asc").data
    messages = client.beta.threads.messages.list(thread_id, run_id=run.id).data
    return Outcome(events, run, steps[0], messages[0] if messages else None)


def streamed_outputs(events: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    """Every ``code_interpreter.outputs`` entry streamed in step deltas, in order."""
    found = []
    for name, data in events:
        if name == "thread.run.step.delta":
            for call in data["delta"]["step_details"]["tool_calls"]:
                found += call.get("code_interpreter", {}).get("outputs", [])
    return found
