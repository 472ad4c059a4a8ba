"""The result of one run, as data: what ``-o NAME`` stores in the user namespace."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from asst_magic.accumulate import Snapshot, call_result, code_calls, image_ids

__all__ = ["CallResult", "RunResult", "StepResult"]


@dataclass(frozen=True)
class StepResult:
    """One code-interpreter call: the code, its logs and the PNG bytes of its images."""

    code: str
    logs: str = ""
    images: list[bytes] = field(default_factory=list)


@dataclass(frozen=True)
class CallResult:
    """One function call: its name, JSON arguments, what it returned or raised, and status."""

    name: str
    arguments: str
    output: str | None = None
    status: str = "requested"
    printed: str = ""


@dataclass(frozen=True)
class RunResult:
    """Final text, messages, code steps, files, status and usage of one run.

    >>> RunResult(status="completed", text="Hi").text
    'Hi'
    """

    status: str
    text: str = ""
    messages: list[dict[str, Any]] = field(default_factory=list)
    steps: list[StepResult] = field(default_factory=list)
    calls: list[CallResult] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    usage: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    assistant_id: str | None = None
    thread_id: str | None = None
    run_id: str | None = None
    #: Where the magic saves files: ``/mnt/data/NAME`` in ``code`` is rewritten to it.
    files_dir: str = "assistant_files"

    @property
    def code(self) -> str:
        """The code the run ran as one cell (what ``%asst_code`` inserts); "" if none."""
        from asst_magic.code_cell import code_cell, saved_names

        codes = [step.code for step in self.steps]
        if not codes:
            return ""
        saved = saved_names(self.messages, self.files)
        return code_cell(self.thread_id, [(self.run_id or "?", codes)], saved, self.files_dir)

    @classmethod
    def from_snapshot(cls, snap: Snapshot, *, files_dir: str = "assistant_files") -> RunResult:
        """Collect a finished run's snapshot into a result."""
        messages = [snap.messages[i] for kind, i in snap.order if kind == "message"]
        texts = [_text(m) for m in messages if m.get("role", "assistant") == "assistant"]
        return cls(
            status=snap.status,
            text="\n\n".join(t for t in texts if t),
            messages=messages,
            steps=_code_steps(snap),
            calls=_function_calls(snap),
            files={fid: f.get("path", "") for fid, f in snap.files.items()},
            usage=snap.run.get("usage") or {},
            error=snap.error or snap.run.get("last_error"),
            files_dir=files_dir,
            **snap.ids,
        )

    def __repr__(self) -> str:
        text = self.text if len(self.text) <= 60 else self.text[:57] + "..."
        tokens = self.usage.get("total_tokens", 0)
        return (
            f"<RunResult {self.status}: {text!r}, {len(self.steps)} code steps, "
            f"{len(self.files)} files, {tokens} tokens>"
        )

    def _repr_markdown_(self) -> str:
        return f"{self.text}\n\n*{self.status} · run `{self.run_id}` · thread `{self.thread_id}`*"


def _text(message: dict[str, Any]) -> str:
    parts = message.get("content") or []
    return "".join((p.get("text") or {}).get("value", "") for p in parts if p.get("type") == "text")


def _steps(snap: Snapshot) -> list[dict[str, Any]]:
    return [snap.steps[step_id] for kind, step_id in snap.order if kind == "step"]


def _code_steps(snap: Snapshot) -> list[StepResult]:
    return [_code_step(ci, snap) for step in _steps(snap) for ci in code_calls(step)]


def _code_step(ci: dict[str, Any], snap: Snapshot) -> StepResult:
    outputs = ci.get("outputs") or []
    logs = "".join(o.get("logs", "") for o in outputs if o.get("type") == "logs")
    images = [snap.files[i]["content"] for i in image_ids(ci) if i in snap.files]
    return StepResult(code=ci.get("input") or "", logs=logs, images=images)


def _function_calls(snap: Snapshot) -> list[CallResult]:
    calls = [
        call
        for step in _steps(snap)
        for call in (step.get("step_details") or {}).get("tool_calls") or ()
        if call.get("type") == "function"
    ]
    return [_call_result(call, snap.calls.get(call.get("id", ""), {})) for call in calls]


def _call_result(call: dict[str, Any], state: dict[str, Any]) -> CallResult:
    fn = call.get("function") or {}
    status = state.get("status") or ("done" if fn.get("output") is not None else "requested")
    return CallResult(
        name=fn.get("name") or "",
        arguments=fn.get("arguments") or "",
        output=call_result(fn, state),
        status=status,
        printed=state.get("printed") or "",
    )
