"""Fold run events into a snapshot of the run: no I/O, no clock, no globals.

Server events are Assistants API v2 stream events (``thread.message.delta``...).
Client events (``client.*``) are what the magic itself adds: fetched files, the
status of functions it runs in the kernel, and notes for the status line.

>>> snap = Snapshot()
>>> snap = apply(snap, "thread.message.created", {"id": "msg_1", "content": []})
>>> delta = {"content": [{"index": 0, "type": "text", "text": {"value": "Hi"}}]}
>>> snap = apply(snap, "thread.message.delta", {"id": "msg_1", "delta": delta})
>>> snap.messages["msg_1"]["content"][0]["text"]["value"]
'Hi'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "TERMINAL_STATUSES",
    "Snapshot",
    "accumulate_delta",
    "apply",
    "call_result",
    "code_calls",
    "image_ids",
]

TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled", "expired", "incomplete"})

# Keys that name a thing rather than carry streamed content: replaced, never appended.
_IDENTITY_KEYS = frozenset({"index", "type", "id"})


@dataclass(slots=True)
class Snapshot:
    """Everything known about one run (or one thread's history) so far.

    ``order`` lists ``("step", id)`` and ``("message", id)`` in the order they
    first appeared, which is the order the transcript shows them. ``calls``
    holds the client-side state of function calls keyed by tool call id
    (``status`` is requested / running / done / error, plus ``output``).
    ``files`` holds fetched file contents: ``{"content": bytes, "path": str}``.
    ``thoughts`` holds the model's reasoning (``("thought", id)`` in ``order``).
    """

    thread_id: str | None = None
    run: dict[str, Any] = field(default_factory=dict)
    order: list[tuple[str, str]] = field(default_factory=list)
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    thoughts: dict[str, str] = field(default_factory=dict)  # streamed reasoning, by block
    interrupted: bool = False  # the user stopped the stream (the ■ button, Ctrl-C)
    notes: list[str] = field(default_factory=list)  # the backend's words for the status line
    # Per step, seconds into the run: when its code last grew ("written") and when it ended.
    clock: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def status(self) -> str:
        """The run's status, or ``queued`` before the run exists."""
        return str(self.run.get("status") or "queued")

    @property
    def ids(self) -> dict[str, str | None]:
        """The assistant, thread and run ids this snapshot belongs to."""
        return {
            "assistant_id": self.run.get("assistant_id"),
            "thread_id": self.thread_id or self.run.get("thread_id"),
            "run_id": self.run.get("id"),
        }


def code_calls(step: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``code_interpreter`` objects (``input``, ``outputs``) of a tool-calls step."""
    calls = (step.get("step_details") or {}).get("tool_calls") or ()
    return [c.get("code_interpreter") or {} for c in calls if c.get("type") == "code_interpreter"]


def image_ids(ci: dict[str, Any]) -> list[str]:
    """File ids of the images a code-interpreter call produced, in order."""
    outputs = ci.get("outputs") or ()
    return [(o.get("image") or {}).get("file_id", "") for o in outputs if o.get("type") == "image"]


def call_result(fn: dict[str, Any], state: dict[str, Any]) -> str | None:
    """A function call's error, else its output (from this session, else the server's)."""
    for value in (state.get("error"), state.get("output"), fn.get("output")):
        if value is not None:
            return str(value)
    return None


def accumulate_delta(acc: dict[str, Any], delta: dict[str, Any]) -> dict[str, Any]:
    """Merge ``delta`` into ``acc`` in place: strings append, lists merge by ``index``."""
    for key, value in delta.items():
        old = acc.get(key)
        if type(value) is str and type(old) is str and key not in _IDENTITY_KEYS:
            # The common case first: a streamed piece of text. Dropping the dict's
            # reference leaves ``old`` the string's only one, so CPython grows it in
            # place; ``old + value`` would copy the whole text on every delta.
            acc[key] = None
            old += value
            acc[key] = old
        elif old is None or key in _IDENTITY_KEYS:
            acc[key] = value
        elif isinstance(value, dict) and isinstance(old, dict):
            accumulate_delta(old, value)
        elif isinstance(value, list) and isinstance(old, list):
            _merge_list(old, value)
        else:
            acc[key] = value
    return acc


def _merge_list(acc: list[Any], delta: list[Any]) -> None:
    for item in delta:
        index = item.get("index") if isinstance(item, dict) else None
        if index is None:
            acc.append(item)
        elif index < len(acc):
            accumulate_delta(acc[index], item)
        else:
            acc.append(dict(item))


def apply(snap: Snapshot, event: str, data: Any) -> Snapshot:
    """Fold one event into ``snap`` and return it; unknown events leave it unchanged.

    The snapshot is updated in place: it belongs to one run, and copying it on
    every delta would make a long stream quadratic.
    """
    _HANDLERS.get(event, _ignore)(snap, data)
    return snap


def _ignore(snap: Snapshot, data: Any) -> None:
    return None


def _thread(snap: Snapshot, data: dict[str, Any]) -> None:
    snap.thread_id = data["id"]


def _run(snap: Snapshot, data: dict[str, Any]) -> None:
    snap.run = data
    snap.thread_id = snap.thread_id or data.get("thread_id")
    if data.get("last_error"):
        snap.error = data["last_error"]


def _step(snap: Snapshot, data: dict[str, Any]) -> None:
    step_id = data["id"]
    if step_id not in snap.steps and data.get("type") == "tool_calls":
        snap.order.append(("step", step_id))
    old = snap.steps.get(step_id)
    if old is not None and data.get("type") == "tool_calls":
        _keep_streamed_calls(old, data)
    snap.steps[step_id] = data


def _keep_streamed_calls(old: dict[str, Any], new: dict[str, Any]) -> None:
    """A step object without its calls (``*.in_progress``) keeps the ones streamed so far."""
    new_calls = new.get("step_details", {}).get("tool_calls")
    old_calls = old.get("step_details", {}).get("tool_calls")
    if not new_calls and old_calls:
        new["step_details"] = old["step_details"]


def _step_delta(snap: Snapshot, data: dict[str, Any]) -> None:
    step = snap.steps.get(data["id"])
    if step is None:  # a delta before its created event: be liberal
        step = {"id": data["id"], "type": "tool_calls", "status": "in_progress"}
        _step(snap, step)
    accumulate_delta(step, data["delta"])


def _message(snap: Snapshot, data: dict[str, Any]) -> None:
    message_id = data["id"]
    if message_id not in snap.messages:
        snap.order.append(("message", message_id))
    snap.messages[message_id] = data


def _message_delta(snap: Snapshot, data: dict[str, Any]) -> None:
    message = snap.messages.get(data["id"])
    if message is None:
        message = {"id": data["id"], "role": "assistant", "content": []}
        _message(snap, message)
    accumulate_delta(message, data["delta"])


def _thought(snap: Snapshot, data: dict[str, Any]) -> None:
    """Reasoning continues the last block if that is reasoning, else starts a new one."""
    text = (data.get("delta") or {}).get("text") or ""
    if not snap.order or snap.order[-1][0] != "thought":
        snap.order.append(("thought", f"thought_{len(snap.thoughts)}"))
    key = snap.order[-1][1]
    snap.thoughts[key] = snap.thoughts.get(key, "") + text


def _error(snap: Snapshot, data: dict[str, Any]) -> None:
    snap.error = data.get("error", data) if isinstance(data, dict) else {"message": str(data)}


def _call_status(snap: Snapshot, data: dict[str, Any]) -> None:
    call = snap.calls.setdefault(data["tool_call_id"], {})
    call.update(data)


def _file(snap: Snapshot, data: dict[str, Any]) -> None:
    snap.files[data["file_id"]] = data


def _clock(snap: Snapshot, data: dict[str, Any]) -> None:
    """Stamp a step: when its code last grew, and when it ended (``data["at"]`` seconds)."""
    step = snap.steps.get(data["id"])
    if step is None:
        return
    stamps = snap.clock.setdefault(data["id"], {})
    size = float(sum(len(ci.get("input") or "") for ci in code_calls(step)))
    if size != stamps.get("size"):
        stamps.update(size=size, written=data["at"])
    if step.get("status") not in (None, "in_progress") and "ended" not in stamps:
        stamps["ended"] = data["at"]


def _cancelled(snap: Snapshot, data: dict[str, Any]) -> None:
    snap.interrupted = True
    # Unconfirmed: the user stopped waiting for the server (a second Ctrl-C).
    status = "cancelled" if data.get("confirmed", True) else "cancelling"
    snap.run = {**snap.run, "status": status}
    for call in snap.calls.values():
        if call.get("status") in ("requested", "running"):
            call.update(status="error", error="interrupted")


def _note(snap: Snapshot, text: str) -> None:
    if text not in snap.notes:
        snap.notes.append(text)


_RUN_EVENTS = (
    *("created", "queued", "in_progress", "requires_action", "cancelling", "cancelled"),
    *("completed", "failed", "expired", "incomplete"),
)

_HANDLERS: dict[str, Callable[[Snapshot, Any], None]] = {
    "thread.created": _thread,
    **{f"thread.run.{name}": _run for name in _RUN_EVENTS},
    "thread.run.step.created": _step,
    "thread.run.step.in_progress": _step,
    "thread.run.step.completed": _step,
    "thread.run.step.failed": _step,
    "thread.run.step.cancelled": _step,
    "thread.run.step.expired": _step,
    "thread.run.step.delta": _step_delta,
    "thread.message.created": _message,
    "thread.message.in_progress": _message,
    "thread.message.completed": _message,
    "thread.message.incomplete": _message,
    "thread.message.delta": _message_delta,
    "error": _error,
    "asst_magic.reasoning.delta": _thought,  # only sent to clients that ask (the magic does)
    "done": _ignore,
    "client.call": _call_status,
    "client.file": _file,
    "client.cancelled": _cancelled,
    "client.clock": _clock,
    "client.tick": _ignore,  # time passed: nothing to fold, but the view may repaint
    "client.note": _note,
}
