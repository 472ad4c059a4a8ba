"""The accumulator: strings append, lists merge by index, lifecycle objects replace."""

from __future__ import annotations

from pathlib import Path

from asst_magic.accumulate import Snapshot, accumulate_delta, apply
from asst_magic.backends.http import decode_events

VECTORS = Path(__file__).parent / "vectors" / "assistants"


def fold(name: str) -> Snapshot:
    snap = Snapshot()
    for event, data in decode_events(iter([(VECTORS / name).read_bytes()])):
        apply(snap, event, data)
    return snap


def test_strings_append_and_lists_merge_by_index() -> None:
    acc = {"content": [{"index": 0, "type": "text", "text": {"value": "Hel", "annotations": []}}]}
    accumulate_delta(acc, {"content": [{"index": 0, "type": "text", "text": {"value": "lo"}}]})
    accumulate_delta(acc, {"content": [{"index": 1, "type": "image_file", "image_file": {}}]})
    assert acc["content"][0]["text"] == {"value": "Hello", "annotations": []}
    assert acc["content"][1]["type"] == "image_file"


def test_identity_keys_are_replaced_not_appended() -> None:
    acc = {"id": "call_1", "type": "function", "function": {"arguments": "", "output": None}}
    accumulate_delta(acc, {"type": "function", "function": {"arguments": "{}", "output": "ok"}})
    assert acc == {
        "id": "call_1",
        "type": "function",
        "function": {"arguments": "{}", "output": "ok"},
    }


def test_text_run_vector_folds_to_the_final_message() -> None:
    snap = fold("text-run.2.sse")
    (message,) = snap.messages.values()
    assert message["content"][0]["text"]["value"].startswith("Hello! I'm just a program")
    assert snap.status == "completed"
    assert snap.order == [("message", "msg_Tn5DNmiQEPZ80biW5AukKrvH")]


def test_streamed_code_matches_the_completed_step() -> None:
    snap = Snapshot()
    completed = None
    for event, data in decode_events(iter([(VECTORS / "code-interpreter-logs.sse").read_bytes()])):
        if event == "thread.run.step.delta" or event == "thread.run.step.created":
            apply(snap, event, data)
        elif event == "thread.run.step.completed" and completed is None:
            completed = data
    step = snap.steps[completed["id"]]
    streamed = step["step_details"]["tool_calls"][0]["code_interpreter"]["input"]
    assert streamed == completed["step_details"]["tool_calls"][0]["code_interpreter"]["input"]


def test_unknown_events_leave_the_snapshot_unchanged() -> None:
    snap = apply(Snapshot(), "thread.something.new", {"id": "x"})
    assert snap == Snapshot()


def test_cancel_marks_running_calls_interrupted() -> None:
    snap = apply(Snapshot(), "client.call", {"tool_call_id": "call_1", "status": "running"})
    apply(snap, "client.cancelled", {})
    assert snap.status == "cancelled"
    assert snap.calls["call_1"]["status"] == "error"
