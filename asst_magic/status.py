"""The run's status line: one muted line of words, elapsed time, tokens and errors.

Pure, like ``render``; the live view shows the very same markup while the run streams.

>>> from asst_magic.accumulate import Snapshot
>>> status_text(Snapshot(run={"status": "incomplete",
...     "incomplete_details": {"reason": "max_completion_tokens"}}), 1.5)
'incomplete: max tokens · 1.5 s'
"""

from __future__ import annotations

import html
from typing import Any

from asst_magic.accumulate import Snapshot
from asst_magic.sections import ERROR, IGNORE_MATH, MUTED
from asst_magic.work import Look, ended, phase

__all__ = ["run_mark", "status_line", "status_output", "status_parts", "status_text"]

Output = dict[str, Any]

_REASONS: dict[str, str] = {
    "max_completion_tokens": "max tokens",
    "max_prompt_tokens": "prompt too long",
}
_STATUS_WORDS = {
    "queued": "queued",
    "in_progress": "in progress",
    "requires_action": "requires action",
    "cancelling": "cancelling",
    "completed": "completed",
    "failed": "failed",
    "cancelled": "cancelled",
    "expired": "expired",
    "incomplete": "incomplete",
}


def status_text(snap: Snapshot, elapsed: float | None = None) -> str:
    """One line: status word, elapsed seconds, tokens, and the error if the run failed."""
    before, after = status_parts(snap, elapsed)
    return " · ".join([before, *([f"{elapsed:.1f} s"] if elapsed is not None else ()), *after])


def status_parts(snap: Snapshot, elapsed: float | None = None) -> tuple[str, list[str]]:
    """The status line's words before the elapsed time, and those after it."""
    after = []
    usage = snap.run.get("usage") or {}
    if usage.get("total_tokens"):
        after.append(f"{usage['total_tokens']} tokens")
    error = snap.error or snap.run.get("last_error")
    after += snap.notes
    if error:
        after.append(f"{error.get('code') or 'error'}: {error.get('message', '')}")
    return _status_word(snap, elapsed), after


def _status_word(snap: Snapshot, elapsed: float | None) -> str:
    status = snap.status
    if not snap.run and snap.error is not None:
        return "not started"  # the stream broke before the run existed
    if status == "in_progress" and snap.order and snap.order[-1][0] == "thought":
        return "thinking…"
    if status == "in_progress":
        doing = _tool_phase(snap, elapsed)
        if doing is not None:
            return doing
    if status == "requires_action" and any(
        c.get("status") == "running" for c in snap.calls.values()
    ):
        return "running functions…"
    if status == "incomplete":
        reason = str((snap.run.get("incomplete_details") or {}).get("reason") or "")
        return f"incomplete: {_REASONS.get(reason, reason or 'no reason given')}"
    return _STATUS_WORDS.get(status, status)


def _tool_phase(snap: Snapshot, elapsed: float | None) -> str | None:
    """``writing code…``, ``running code…`` or ``searching files…`` while the last block is
    such a step in progress."""
    if not snap.order or snap.order[-1][0] != "step":
        return None
    step = snap.steps[snap.order[-1][1]]
    calls = step.get("step_details", {}).get("tool_calls") or []
    if step.get("status") != "in_progress" or not calls:
        return None
    if calls[-1].get("type") == "file_search":
        return "searching files…"
    if calls[-1].get("type") != "code_interpreter":
        return None
    look = Look("none", elapsed)
    return f"{phase(calls[-1], step, snap, look, last=True)} code…"


_MARKS = {
    "failed": "✗ failed",
    "expired": "✗ expired",
    "cancelled": "■ cancelled",
    "cancelling": "■ cancelling",
}


def run_mark(run: dict[str, Any]) -> tuple[str, str] | None:
    """How the history marks a run that did not complete: a short mark, and the whole line.

    From the run object alone (``status``, ``last_error``, ``incomplete_details``).

    >>> run_mark({"status": "failed", "last_error": {"code": "server_error", "message": "Down."}})
    ('✗ failed', '✗ failed: Down.')
    """
    status = str(run.get("status") or "completed")
    if status == "completed":
        return None
    word = _MARKS.get(status) or _status_word(Snapshot(run=run), None)
    error = run.get("last_error") or {}
    reason = error.get("message") or error.get("code")
    return word.split(":")[0], f"{word}: {reason}" if reason else word


def status_output(snap: Snapshot, elapsed: float | None = None) -> Output:
    """The status line as a display output; the live view shows the very same markup."""
    failed = snap.status in ("failed", "expired") or snap.error is not None
    return status_line(status_text(snap, elapsed), failed=failed, final=ended(snap))


def status_line(text: str, *, failed: bool = False, final: bool = False) -> Output:
    """One muted line (red when ``failed``), never typeset as math."""
    style = f"{ERROR if failed else MUTED};font-size:var(--jp-ui-font-size1,13px);padding:1px 0"
    final_class = " asst-final" if final else ""
    line = f'<div class="asst-status{final_class} {IGNORE_MATH}" style="{style}">'
    line += f"{html.escape(text)}</div>"
    return _display({"text/html": line, "text/plain": text})


def _display(data: dict[str, Any]) -> Output:
    return {"output_type": "display_data", "data": data, "metadata": {}}
