"""The live view: throttled repaints, finished blocks sent once, then ordinary outputs."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from live_support import Replica, batches, recording_comms

from asst_magic.accumulate import Snapshot, apply
from asst_magic.view import RunView, TextView

WIDGET = "application/vnd.jupyter.widget-view+json"


class FakeLive:
    """Records every batch of ops the view sends, as the live widget would send it."""

    def __init__(
        self, log: list[list[Any]], clock: list[float] | None = None, cost: float = 0.0
    ) -> None:
        self.model_id = f"w{len(log)}"
        self.log, self.closed = log, False
        self.clock, self.cost = clock, cost

    def send_batch(self, ops: list[Any]) -> int:
        self.log.append(ops)
        if self.clock is not None:
            self.clock[0] += self.cost  # a paint that takes time
        return len(json.dumps(ops))

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


def code_step(code: str) -> dict[str, Any]:
    call = {
        "id": "c1",
        "type": "code_interpreter",
        "code_interpreter": {"input": code, "outputs": []},
    }
    details = {"type": "tool_calls", "tool_calls": [call]}
    return {"id": "step_1", "type": "tool_calls", "status": "in_progress", "step_details": details}


def code_delta(snap: Snapshot, piece: str) -> None:
    call = {"index": 0, "type": "code_interpreter", "code_interpreter": {"input": piece}}
    delta = {"step_details": {"type": "tool_calls", "tool_calls": [call]}}
    apply(snap, "thread.run.step.delta", {"id": "step_1", "delta": delta})


def started() -> Snapshot:
    snap = apply(
        Snapshot(), "thread.run.created", {"id": "run_1", "thread_id": "t", "status": "in_progress"}
    )
    return apply(
        snap, "thread.message.created", {"id": "msg_1", "role": "assistant", "content": []}
    )


def ticking() -> Any:
    """A clock that advances 0.1 s each time it is read: every update is due."""
    now = [0.0]

    def clock() -> float:
        now[0] += 0.1
        return now[0]

    return clock


def replayed(log: list[list[Any]]) -> Replica:
    replica = Replica()
    for ops in log:
        replica.apply(ops)
    return replica


def test_repaints_follow_the_throttle_not_the_event_count() -> None:
    now = [0.0]
    log: list[list[Any]] = []
    view = RunView(
        Publisher(), repaint_hz=20, clock=lambda: now[0], widget_factory=lambda: FakeLive(log)
    )
    snap = started()
    for i in range(200):  # 100 events a second for 2 s
        now[0] += 0.01
        text_delta(snap, 0, f"w{i} ")
        view.update(snap)
    assert 39 <= view.repaints <= 41  # 2 s at 20 repaints a second, not 200


def test_a_repaint_sends_only_what_is_new() -> None:
    log: list[list[Any]] = []
    view = RunView(Publisher(), clock=ticking(), widget_factory=lambda: FakeLive(log))
    snap = started()
    for i in range(50):
        text_delta(snap, 0, f"word{i} ")
        view.update(snap)
    text_delta(snap, 1, "second")
    view.update(snap)
    added = [op[2] for ops in log for op in ops if op[0] == "add"]
    assert len(added) > 10  # many repaints, each with only the pieces new since the last
    assert "".join(added) == "".join(f"word{i} " for i in range(50)) + "second"
    assert replayed(log).texts()[:2] == ["".join(f"word{i} " for i in range(50)), "second"]


def test_code_lines_are_highlighted_once_and_the_open_line_each_repaint() -> None:
    log: list[list[Any]] = []
    view = RunView(Publisher(), clock=ticking(), widget_factory=lambda: FakeLive(log))
    snap = started()
    code = "import math\nfor i in range(3):\n    print(math.pi * i)"
    apply(snap, "thread.run.step.created", code_step(""))
    for i in range(len(code)):
        code_delta(snap, code[i])
        view.update(snap)
    view.update(snap, force=True)
    code_ops = [op for ops in log for op in ops if op[0] == "code"]
    done = [op[2] for op in code_ops if op[2]]
    assert len(done) == 2  # two finished lines, each sent (and highlighted) once
    assert '<span class="kn">import</span>' in done[0]
    open_line = code_ops[-1][3]  # the open line, highlighted
    assert open_line.startswith('    <span class="nb">print</span>(math')
    assert open_line.endswith("i)")
    assert replayed(log).texts()[0] == code


def test_a_held_back_token_is_due_within_one_interval() -> None:
    now = [0.0]
    log: list[list[Any]] = []
    view = RunView(
        Publisher(), repaint_hz=25, clock=lambda: now[0], widget_factory=lambda: FakeLive(log)
    )
    snap = started()
    view.update(snap)  # the run appears: painted at once
    now[0] += 0.005
    text_delta(snap, 0, "Hello")
    view.update(snap)  # too soon after the last repaint: held back...
    assert replayed(log).texts()[0] != "Hello"
    assert view.wait() == pytest.approx(0.035)  # ...and the stream wakes the view when due
    now[0] += view.wait()
    view.update(snap)
    assert replayed(log).texts()[0] == "Hello"
    assert view.wait() == 0.25  # nothing held back: only the idle tick


def test_slow_paints_space_the_repaints_out() -> None:
    now = [0.0]
    log: list[list[Any]] = []
    view = RunView(
        Publisher(),
        repaint_hz=25,
        clock=lambda: now[0],
        widget_factory=lambda: FakeLive(log, now, cost=0.1),  # each paint takes 100 ms
    )
    snap = started()
    for i in range(1000):  # 1,000 events a second for 1 s, plus the paint time
        now[0] += 0.001
        text_delta(snap, 0, f"w{i} ")
        view.update(snap)
    # Not one repaint per event: at most half the time goes to painting.
    assert view.repaints <= now[0] / 0.2 + 1


def test_tiny_slow_deltas_do_not_multiply_the_bytes() -> None:
    now = [0.0]
    log: list[list[Any]] = []
    view = RunView(
        Publisher(), repaint_hz=25, clock=lambda: now[0], widget_factory=lambda: FakeLive(log)
    )
    snap = started()
    for _ in range(3000):  # one character every 20 ms for a minute
        now[0] += 0.02
        text_delta(snap, 0, "x")
        view.update(snap)
        if view.wait() < 0.02:
            now[0] += view.wait()
            view.update(snap)
    sent = sum(len(json.dumps(ops)) for ops in log)
    assert sent <= 2 * 3000 + 2048 + 200  # content, as much overhead, the allowance
    shown = replayed(log).texts()[0]
    assert set(shown) == {"x"} and len(shown) >= 3000 - 50  # at most a second behind


def test_finish_replaces_the_widget_with_plain_outputs() -> None:
    publisher, log = Publisher(), []
    widgets: list[FakeLive] = []

    def factory() -> FakeLive:
        widgets.append(FakeLive(log))
        return widgets[-1]

    view = RunView(publisher, widget_factory=factory)
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


def test_the_real_widget_sends_each_batch_once_as_a_new_model_key() -> None:
    with recording_comms() as comms:
        view = RunView(Publisher(), clock=ticking())
        snap = started()
        for i in range(100):
            text_delta(snap, 0, f"word{i} ")
            view.update(snap)
        view.update(snap, force=True)
        apply(snap, "thread.run.completed", {"id": "run_1", "status": "completed"})
        view.finish(snap)
    updates = [m for m in comms if m["msg_type"] == "comm_msg"]
    keys = [next(iter(m["data"]["state"])) for m in updates if m["data"].get("state")]
    assert keys == [f"b{i}" for i in range(1, len(keys) + 1)]  # one new key per repaint
    replica = replayed(batches(comms))
    assert replica.texts()[0] == "".join(f"word{i} " for i in range(100))
    live_bytes = sum(m["bytes"] for m in updates)
    # The content once, at most as much again in overhead, plus the pacer's allowance.
    assert live_bytes <= 2 * 690 + 2048 + 200
    assert any(m["msg_type"] == "comm_close" for m in comms)


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
