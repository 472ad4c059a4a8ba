"""The live view: throttled repaints, finished blocks sent once, then ordinary outputs."""

from __future__ import annotations

import io
from typing import Any

from asst_magic.accumulate import Snapshot, apply
from asst_magic.view import RunView, TextView

WIDGET = "application/vnd.jupyter.widget-view+json"


class Output:
    """Records every ``outputs`` assignment, as ipywidgets would send it to the front end."""

    def __init__(self, log: list[tuple[str, Any]]) -> None:
        self.model_id = f"w{len(log)}"
        self.log, self._outputs = log, ()
        self.closed = False

    @property
    def outputs(self) -> Any:
        return self._outputs

    @outputs.setter
    def outputs(self, value: Any) -> None:
        self._outputs = value
        self.log.append((self.model_id, value))

    def close(self) -> None:
        self.closed = True


class Publisher:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    def publish(
        self, data: Any, metadata: Any = None, *, transient: Any = None, update: bool = False
    ) -> None:
        self.messages.append({"data": data, "transient": transient, "update": update})

    def clear_output(self, wait: bool = False) -> None:
        self.messages.append({"clear": True, "wait": wait})


def text_delta(snap: Snapshot, index: int, value: str) -> None:
    delta = {"content": [{"index": index, "type": "text", "text": {"value": value}}]}
    apply(snap, "thread.message.delta", {"id": "msg_1", "delta": delta})


def started() -> Snapshot:
    snap = apply(
        Snapshot(), "thread.run.created", {"id": "run_1", "thread_id": "t", "status": "in_progress"}
    )
    return apply(
        snap, "thread.message.created", {"id": "msg_1", "role": "assistant", "content": []}
    )


def test_repaints_follow_the_throttle_not_the_event_count() -> None:
    now = [0.0]
    log: list[tuple[str, Any]] = []
    view = RunView(
        Publisher(), repaint_hz=20, clock=lambda: now[0], output_factory=lambda: Output(log)
    )
    snap = started()
    for i in range(200):  # 100 events a second for 2 s
        now[0] += 0.01
        text_delta(snap, 0, f"w{i} ")
        view.update(snap)
    assert 39 <= view.repaints <= 41  # 2 s at 20 repaints a second, not 200


def test_finished_blocks_are_not_re_sent() -> None:
    log: list[tuple[str, Any]] = []
    view = RunView(Publisher(), repaint_hz=0, output_factory=lambda: Output(log))
    snap = started()
    text_delta(snap, 0, "first")
    view.update(snap)
    text_delta(snap, 1, "second")
    view.update(snap)
    text_delta(snap, 1, " more")
    view.update(snap)
    sent = [
        outputs[0]["data"]["text/plain"]
        for _, outputs in log
        if outputs
        and "text/plain" in outputs[0].get("data", {})
        and WIDGET not in outputs[0]["data"]
    ]
    assert sent == ["first", "second", "second more"]


def test_finish_replaces_the_widget_with_plain_outputs() -> None:
    publisher, log = Publisher(), []
    widgets: list[Output] = []

    def factory() -> Output:
        widgets.append(Output(log))
        return widgets[-1]

    view = RunView(publisher, output_factory=factory)
    snap = started()
    text_delta(snap, 0, "Hi")
    view.update(snap)
    apply(snap, "thread.run.completed", {"id": "run_1", "thread_id": "t", "status": "completed"})
    view.finish(snap)
    shown, cleared, answer, status = publisher.messages
    # Only the widget view, so a notebook never saves a stale "%%assistant run" fallback.
    assert list(shown["data"]) == [WIDGET]
    # clear_output(wait=True) then plain displays: front ends swap them in without a flicker,
    # and nbval (which ignores clears and updates) compares exactly the final outputs.
    assert cleared == {"clear": True, "wait": True}
    assert answer == {
        "data": {"text/markdown": "Hi", "text/plain": "Hi"},
        "transient": None,
        "update": False,
    }
    assert status["data"]["text/plain"].startswith("completed")
    assert all(widget.closed for widget in widgets)


def test_text_view_writes_only_what_is_new() -> None:
    stream = io.StringIO()
    view = TextView(stream, repaint_hz=0)
    snap = started()
    text_delta(snap, 0, "Hel")
    view.update(snap)
    text_delta(snap, 0, "lo")
    view.update(snap)
    apply(snap, "thread.run.completed", {"id": "run_1", "thread_id": "t", "status": "completed"})
    view.finish(snap)
    assert stream.getvalue().startswith("Hello\n[completed · ")


def code_step_event(name: str, status: str, code: str) -> tuple[str, dict[str, Any]]:
    call = {"id": "call_1", "type": "code_interpreter", "code_interpreter": {"input": code}}
    step = {
        "id": "step_1",
        "type": "tool_calls",
        "status": status,
        "step_details": {"type": "tool_calls", "tool_calls": [call]},
    }
    return name, step


def test_text_view_closes_the_code_fence_of_code_that_printed_nothing() -> None:
    stream = io.StringIO()
    view = TextView(stream, repaint_hz=0)
    snap = apply(Snapshot(), *code_step_event("thread.run.step.created", "in_progress", "x = 1"))
    view.update(snap)
    assert stream.getvalue() == "\n```python\nx = 1"  # still streaming: the fence stays open
    apply(snap, *code_step_event("thread.run.step.completed", "completed", "x = 1"))
    view.update(snap)
    apply(snap, "thread.message.created", {"id": "msg_1", "role": "assistant", "content": []})
    text_delta(snap, 0, "Stored x.")
    view.finish(snap)
    # The answer reads as prose after the closed block, not as more code.
    assert stream.getvalue().startswith("\n```python\nx = 1\n```\nStored x.\n[queued")


def test_text_view_closes_the_fence_when_the_next_block_starts() -> None:
    stream = io.StringIO()
    view = TextView(stream, repaint_hz=0)
    snap = apply(Snapshot(), *code_step_event("thread.run.step.created", "in_progress", "x = 1"))
    view.update(snap)
    apply(snap, "thread.message.created", {"id": "msg_1", "role": "assistant", "content": []})
    text_delta(snap, 0, "Stored x.")
    view.update(snap)
    assert stream.getvalue() == "\n```python\nx = 1\n```\nStored x."
