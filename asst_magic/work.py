"""How a tool call is drawn: a "show work" section whose state decides summary and folding.

A code step is "writing" while its code streams, "running" once the code stopped
growing (or printed), then "done"; it stays open while active and then folds as
the ``collapse`` setting says. Pure, like ``render``.

>>> look = Look("code", None)
>>> look.collapse
'code'
"""

from __future__ import annotations

import base64
import functools
import html
import json
from typing import Any, NamedTuple

from asst_magic.accumulate import TERMINAL_STATUSES, Snapshot, call_result
from asst_magic.sections import code_html, error_html, function_html, logs_html, search_html
from asst_magic.tracebacks import find_error

__all__ = [
    "CODE_CSS",
    "Look",
    "Work",
    "code_block",
    "code_shell",
    "ended",
    "logs_shell",
    "phase",
    "printed_text",
    "render_call",
    "render_image",
    "render_logs",
    "search_summary",
    "work",
]

Output = dict[str, Any]

# Token colours follow JupyterLab's editor variables, so the code reads like a code
# cell in both light and dark themes; the fallbacks are mid-tones that read on
# white and on near-black alike (GitHub, nbviewer, VS Code).
CODE_CSS = (
    "<style>"
    ".asst-code{border-left:3px solid var(--jp-brand-color1,#5b8fd6);padding:2px 8px;"
    "margin:4px 0;background:var(--jp-cell-editor-background,rgba(127,127,127,.08))}"
    ".asst-code pre{margin:0;padding:0;background:transparent;white-space:pre;overflow-x:auto;"
    "color:var(--jp-content-font-color1,inherit);font-family:var(--jp-code-font-family,monospace)}"
    ".asst-code [class^=k],.asst-code .ow{color:var(--jp-mirror-editor-keyword-color,#b06bd0);"
    "font-weight:bold}"
    ".asst-code [class^=s]{color:var(--jp-mirror-editor-string-color,#4a9f5c)}"
    ".asst-code [class^=c]{color:var(--jp-mirror-editor-comment-color,#8a8a8a);font-style:italic}"
    ".asst-code [class^=m]{color:var(--jp-mirror-editor-number-color,#d7843a)}"
    ".asst-code .nf,.asst-code .nc{color:var(--jp-mirror-editor-def-color,#4a8fd8)}"
    ".asst-code .nb,.asst-code .bp{color:var(--jp-mirror-editor-builtin-color,#2aa1b3)}"
    ".asst-code .o{color:var(--jp-mirror-editor-operator-color,#a070c0)}"
    "</style>"
)
_WRITING_PAUSE = 0.5  # seconds without new code before a code step counts as running
_ACTIVE = ("writing", "running", "requested")


class Look(NamedTuple):
    """How blocks are drawn: what folds once done (see ``render.COLLAPSE``), the run's clock."""

    collapse: str
    elapsed: float | None


class Work(NamedTuple):
    """One tool call as a "show work" section: its state decides its summary and folding."""

    call: dict[str, Any]
    state: tuple[str, float | None, bool, bool]  # phase, seconds, open, outputs open


def work(
    call: dict[str, Any], step: dict[str, Any], snap: Snapshot, look: Look, *, last: bool
) -> Work:
    now = phase(call, step, snap, look, last=last)
    stamps = snap.clock.get(step.get("id", ""), {})
    seconds = None
    if "ended" in stamps and "written" in stamps:
        seconds = max(stamps["ended"] - stamps["written"], 0.0)
    active = now in _ACTIVE
    folds = look.collapse != "none" and not active
    return Work(call, (now, seconds, not folds, not (folds and look.collapse == "all")))


def phase(
    call: dict[str, Any], step: dict[str, Any], snap: Snapshot, look: Look, *, last: bool
) -> str:
    if call.get("type") == "function":
        state = snap.calls.get(call.get("id", ""), {})
        result = call_result(call.get("function") or {}, state)
        if result is not None:
            return "error" if state.get("status") == "error" else "done"
        return "done" if ended(snap) else str(state.get("status") or "requested")
    if step.get("status") not in (None, "in_progress") or ended(snap):
        return "done"
    if call.get("type") == "file_search":
        return "running"
    ci = call.get("code_interpreter") or {}
    if ci.get("outputs") or not last:
        return "running"
    written = snap.clock.get(step.get("id", ""), {}).get("written")
    if look.elapsed is not None and written is not None:
        return "running" if look.elapsed - written >= _WRITING_PAUSE else "writing"
    return "writing"


def ended(snap: Snapshot) -> bool:
    return snap.status in TERMINAL_STATUSES or snap.status == "history" or snap.interrupted


def render_call(work: Work, snap: Snapshot) -> list[Output]:
    call = work.call
    kind = call.get("type")
    if kind == "code_interpreter":
        return _render_code(call.get("code_interpreter") or {}, work, snap)
    if kind == "function":
        return [_render_function(call, snap.calls.get(call.get("id", ""), {}), work)]
    if kind == "file_search":
        return [_render_search(call.get("file_search") or {}, work)]
    return [_display({"text/plain": f"[{kind} tool call]"})]


def code_block(body: str) -> str:
    """The highlighted block around ``body`` (token spans; the live view's slot)."""
    return f'{CODE_CSS}<div class="highlight asst-code"><pre><span></span>{body}</pre></div>\n'


def code_shell(work: Work, body: str) -> str:
    """A code step's whole HTML: ``body`` in its block, under its foldable summary."""
    ci = work.call.get("code_interpreter") or {}
    phase, seconds, open_, _ = work.state
    summary = _code_summary(ci.get("input") or "", phase, seconds, ci)
    return code_html(code_block(body), summary, open_=open_)


def logs_shell(work: Work, body: str, logs: str) -> str:
    """A code step's printed output around ``body``; its line count once the step is done."""
    phase, _, _, outputs_open = work.state
    lines = None if phase in _ACTIVE else logs.rstrip("\n").count("\n") + 1
    return logs_html(body, open_=outputs_open, lines=lines)


@functools.lru_cache(maxsize=64)
def _highlight(code: str) -> str:
    # A finished block renders again when its logs and images arrive: its code has not
    # changed, so neither has its HTML. The live view's highlighter already made most of
    # it while the code streamed (imported here, late: asst_magic.live imports render).
    from asst_magic.live.highlight import highlight_code

    return highlight_code(code)


def _render_code(ci: dict[str, Any], work: Work, snap: Snapshot) -> list[Output]:
    code = ci.get("input") or ""
    outputs = [_display({"text/html": code_shell(work, _highlight(code)), "text/plain": code})]
    for item in ci.get("outputs") or ():
        if item.get("type") == "logs":
            outputs.append(render_logs(item.get("logs") or "", work))
        elif item.get("type") == "image":
            outputs.append(render_image((item.get("image") or {}).get("file_id", ""), snap))
    return outputs


def _code_summary(code: str, phase: str, seconds: float | None, ci: dict[str, Any]) -> str:
    # While active the summary holds no count: the live view re-sends a block whose
    # summary changes, so it changes only when the phase does.
    if phase == "writing":
        return "Writing code…"
    if phase == "running":
        return "Running code…"
    lines = code.rstrip("\n").count("\n") + 1 if code.strip() else 0
    parts = ["Ran code", f"{lines} line{'s' * (lines != 1)}"]
    if seconds is not None:
        parts.append(f"{seconds:.1f} s")
    logs = "".join(o.get("logs") or "" for o in ci.get("outputs") or () if o.get("type") == "logs")
    error = find_error(logs)
    if error is not None:
        parts.append(error.ename)
    return " · ".join(parts)


def render_logs(logs: str, work: Work) -> Output:
    """Printed output; with a traceback, what came before it, then the readable error."""
    error = find_error(logs)
    if error is None:
        shown = logs_shell(work, html.escape(logs), logs)
        return _display({"text/html": shown, "text/plain": logs})
    before = error.before
    shown = logs_shell(work, html.escape(before), before) if before.strip() else ""
    shown += error_html(error)
    if error.after.strip():
        shown += logs_html(html.escape(error.after), open_=True, lines=None)
    return _display({"text/html": shown, "text/plain": logs})


def render_image(file_id: str, snap: Snapshot) -> Output:
    file = snap.files.get(file_id)
    if file is None or not file.get("content"):
        return _display({"text/plain": f"[image {file_id}]"})
    png = base64.b64encode(file["content"]).decode("ascii")
    return _display({"image/png": png, "text/plain": f"[image {file_id}]"})


def _render_function(call: dict[str, Any], state: dict[str, Any], work: Work) -> Output:
    fn = call.get("function") or {}
    name, args = fn.get("name") or "?", _pretty_json(fn.get("arguments") or "")
    status = state.get("status") or ("done" if fn.get("output") is not None else "requested")
    result, printed = call_result(fn, state), printed_text(state)
    plain = f"ƒ {name}({args}) · {status}" + (f"\n{printed}" if printed else "")
    plain += f"\n→ {result}" if result is not None else ""
    html_ = function_html(call, state, result, open_=work.state[2])
    return _display({"text/html": html_, "text/plain": plain})


def _render_search(search: dict[str, Any], work: Work) -> Output:
    """A file search: what it found (file, score, the passage when the server sent it)."""
    summary = search_summary(search, active=work.state[0] in _ACTIVE)
    results = search.get("results") or []
    plain = summary + "".join(f"\n  {_result_label(r)}" for r in results)
    body = search_html(
        [(_result_label(r), _result_passage(r)) for r in results], summary, open_=work.state[2]
    )
    return _display({"text/html": body, "text/plain": plain})


def search_summary(search: dict[str, Any], *, active: bool) -> str:
    """``Searched files · 2 results`` (``Searching files…`` while it runs)."""
    if active:
        return "Searching files…"
    found = len(search.get("results") or ())
    return f"Searched files · {found} result{'s' * (found != 1)}" if found else "Searched files"


def _result_label(result: dict[str, Any]) -> str:
    name = result.get("file_name") or result.get("file_id") or "?"
    score = result.get("score")
    return f"{name} · score {score:.2f}" if isinstance(score, int | float) else str(name)


def _result_passage(result: dict[str, Any]) -> str:
    parts = result.get("content") or ()
    return "\n".join(str(p.get("text") or "") for p in parts if p.get("type") == "text")


def printed_text(state: dict[str, Any]) -> str:
    """What the function printed while it ran, without the trailing newline."""
    return str(state.get("printed") or "").removesuffix("\n")


def _pretty_json(text: str) -> str:
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text  # still streaming, or not JSON: show it as it came


def _display(data: dict[str, Any]) -> Output:
    return {"output_type": "display_data", "data": data, "metadata": {}}
