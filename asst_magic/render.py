"""Turn a run snapshot into notebook output dicts (``display_data`` mime bundles).

Pure: the same snapshot always renders to equal outputs. ``Renderer`` adds a
cache so a live view re-renders only the block that is still growing.

>>> from asst_magic.accumulate import Snapshot
>>> render(Snapshot(run={"status": "completed"}))[-1]["data"]["text/plain"]
'completed'
"""

from __future__ import annotations

import base64
import functools
import html
import json
from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from typing import Any

from asst_magic.accumulate import (
    TERMINAL_STATUSES,
    Snapshot,
    call_result,
    code_calls,
    image_ids,
)

__all__ = [
    "SLOT",
    "Block",
    "LivePart",
    "Renderer",
    "code_html",
    "logs_html",
    "render",
    "render_text",
    "status_parts",
    "status_text",
    "thought_html",
]

Output = dict[str, Any]
Block = tuple[Hashable, list[Output]]

#: Where a live part's streamed content goes inside its HTML shell.
SLOT = "<!--asst-slot-->"


@dataclass(frozen=True, slots=True)
class LivePart:
    """One output of the transcript as the live view streams it.

    ``mode`` says what ``text`` is: ``markdown`` source, ``code`` (highlighted as it
    grows) or ``text`` (logs), each shown inside ``shell`` at ``SLOT``; or ``html``,
    where ``shell`` is the whole output and ``text`` is empty. Each part stands for
    exactly one output of the final render, so the live view looks like the result.
    """

    key: str
    mode: str
    shell: str
    text: str = ""


# Token colours follow JupyterLab's editor variables, so the code reads like a code
# cell in both light and dark themes; the fallbacks are mid-tones that read on
# white and on near-black alike (GitHub, nbviewer, VS Code).
CODE_CSS = (
    "<style>"
    ".asst-code{border-left:3px solid var(--jp-brand-color1,#5b8fd6);padding:2px 8px;"
    "margin:4px 0;background:var(--jp-cell-editor-background,rgba(127,127,127,.08))}"
    ".asst-code pre{margin:0;padding:0;background:transparent;"
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
_MUTED = "color:var(--jp-ui-font-color2,#888)"
_ERROR = "color:var(--jp-error-color1,#d9534f)"
_PRE = "margin:2px 0;font-family:var(--jp-code-font-family,monospace);white-space:pre-wrap"
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


class Renderer:
    """Render snapshots block by block, reusing the outputs of blocks that did not change."""

    def __init__(self) -> None:
        self._cache: dict[Hashable, tuple[Hashable, list[Output]]] = {}

    def blocks(self, snap: Snapshot) -> list[Block]:
        """``(key, outputs)`` per transcript block; an unchanged block keeps its list object."""
        meta = {"asst_magic": snap.ids}
        blocks: list[Block] = []
        for key, fingerprint, part in _parts(snap):
            cached = self._cache.get(key)
            if cached is None or cached[0] != fingerprint:
                cached = (fingerprint, [_with_meta(o, meta) for o in _render_part(part, snap)])
                self._cache[key] = cached
            blocks.append((key, cached[1]))
        return blocks

    def live(self, snap: Snapshot) -> list[LivePart]:
        """The transcript as live parts: growing text and code raw, the rest as cached HTML."""
        parts: list[LivePart] = []
        for key, fingerprint, (kind, value) in _parts(snap):
            name = "/".join(map(str, key)) if isinstance(key, tuple) else str(key)
            if kind == "content" and value.get("type") == "text":
                parts.append(LivePart(name, "markdown", "", _content_markdown(value, snap)))
            elif kind == "call" and value.get("type") == "code_interpreter":
                parts += self._live_code(name, value.get("code_interpreter") or {}, snap)
            elif kind == "thought":  # appended into its <details>, so an opened one stays open
                text, live = value
                parts.append(LivePart(name, "text", thought_html(SLOT, live), text))
            else:
                parts += self._live_static(name, key, fingerprint, (kind, value), snap)
        return parts

    def _live_code(self, name: str, ci: dict[str, Any], snap: Snapshot) -> list[LivePart]:
        parts = [LivePart(name, "code", code_html(SLOT), ci.get("input") or "")]
        for i, item in enumerate(ci.get("outputs") or ()):
            if item.get("type") == "logs":
                logs = item.get("logs") or ""
                parts.append(LivePart(f"{name}/{i}", "text", logs_html(SLOT), logs))
            elif item.get("type") == "image":
                image = _render_image((item.get("image") or {}).get("file_id", ""), snap)
                parts.append(LivePart(f"{name}/{i}", "html", _bundle_html(image["data"])))
        return parts

    def _live_static(
        self,
        name: str,
        key: Hashable,
        fingerprint: Hashable,
        part: tuple[str, Any],
        snap: Snapshot,
    ) -> list[LivePart]:
        live_key = ("live", key)
        cached = self._cache.get(live_key)
        if cached is None or cached[0] != fingerprint:
            cached = (fingerprint, _render_part(part, snap))
            self._cache[live_key] = cached
        outputs = cached[1]
        return [
            LivePart(f"{name}/{i}" if i else name, "html", _bundle_html(o["data"]))
            for i, o in enumerate(outputs)
        ]

    def render(self, snap: Snapshot, elapsed: float | None = None) -> list[Output]:
        """All outputs of the transcript followed by the status line."""
        outputs = [o for _, block in self.blocks(snap) for o in block]
        status = _with_meta(_status_output(snap, elapsed), {"asst_magic": snap.ids})
        return [*outputs, status]


def render(snap: Snapshot, elapsed: float | None = None) -> list[Output]:
    """The snapshot as notebook outputs: transcript blocks, then the status line."""
    return Renderer().render(snap, elapsed)


def _with_meta(output: Output, meta: dict[str, Any]) -> Output:
    return {**output, "metadata": meta}


def _display(data: dict[str, Any]) -> Output:
    return {"output_type": "display_data", "data": data, "metadata": {}}


# -- splitting a snapshot into blocks -------------------------------------------------


def _parts(snap: Snapshot) -> Iterator[tuple[Hashable, Hashable, tuple[str, Any]]]:
    """``(key, fingerprint, (kind, part))`` for every block; the fingerprint changes with it."""
    nfiles, code_images = len(snap.files), _code_images(snap)
    for n, (kind, item_id) in enumerate(snap.order):
        if kind == "thought":
            live = n == len(snap.order) - 1 and snap.status not in TERMINAL_STATUSES
            text = snap.thoughts.get(item_id, "")
            yield (item_id, 0), ("thought", len(text), live), ("thought", (text, live))
        elif kind == "step":
            calls = snap.steps[item_id].get("step_details", {}).get("tool_calls") or []
            for i, call in enumerate(calls):
                yield (item_id, i), _call_fingerprint(call, snap, nfiles), ("call", call)
        else:
            message = snap.messages[item_id]
            for i, part in enumerate(message.get("content") or []):
                if _file_id(part) in code_images:
                    continue  # already shown under the code that made it
                part = {**part, "role": message.get("role", "assistant")}
                yield (item_id, i), _part_fingerprint(part, nfiles), ("content", part)


def _code_images(snap: Snapshot) -> set[str | None]:
    steps = (snap.steps[item_id] for kind, item_id in snap.order if kind == "step")
    return {file_id for step in steps for ci in code_calls(step) for file_id in image_ids(ci)}


def _file_id(part: dict[str, Any]) -> str | None:
    return (
        (part.get("image_file") or {}).get("file_id") if part.get("type") == "image_file" else None
    )


def _call_fingerprint(call: dict[str, Any], snap: Snapshot, nfiles: int) -> Hashable:
    kind = call.get("type")
    if kind == "code_interpreter":
        ci = call.get("code_interpreter") or {}
        return kind, len(ci.get("input") or ""), len(ci.get("outputs") or ()), nfiles
    if kind == "function":
        fn = call.get("function") or {}
        state = snap.calls.get(call.get("id", ""), {})
        result = call_result(fn, state)
        return (
            kind,
            len(fn.get("arguments") or ""),
            result,
            state.get("status"),
            state.get("printed"),
        )
    return kind, json.dumps(call, sort_keys=True, default=str)


def _part_fingerprint(part: dict[str, Any], nfiles: int) -> Hashable:
    if part.get("type") == "text":
        text = part.get("text") or {}
        return "text", len(text.get("value") or ""), len(text.get("annotations") or ()), nfiles
    return part.get("type"), nfiles


def _render_part(part: tuple[str, Any], snap: Snapshot) -> list[Output]:
    kind, value = part
    if kind == "call":
        return _render_call(value, snap)
    if kind == "thought":
        return [_render_thought(*value)]
    return _render_content(value, snap)


def _render_thought(text: str, live: bool) -> Output:
    label = "Thinking…" if live else "Thinking"
    return _display({"text/html": thought_html(html.escape(text), live), "text/plain": label})


def thought_html(body: str, live: bool) -> str:
    """The model's reasoning folded under a "Thinking…" line (``body`` escaped, or ``SLOT``)."""
    label = "Thinking…" if live else "Thinking"
    summary = f'<summary style="{_MUTED};cursor:pointer">{label}</summary>'
    return f'<details>{summary}<div style="{_MUTED};{_PRE}">{body}</div></details>'



# -- tool calls -----------------------------------------------------------------------


def _render_call(call: dict[str, Any], snap: Snapshot) -> list[Output]:
    kind = call.get("type")
    if kind == "code_interpreter":
        return _render_code(call.get("code_interpreter") or {}, snap)
    if kind == "function":
        return [_render_function(call, snap.calls.get(call.get("id", ""), {}))]
    return [_display({"text/plain": f"[{kind} tool call]"})]


@functools.lru_cache(maxsize=64)
def _highlight(code: str) -> str:
    # A finished block renders again when its logs and images arrive: its code has not
    # changed, so neither has its HTML. The live view's highlighter already made most of
    # it while the code streamed (imported here, late: asst_magic.live imports this module).
    from asst_magic.live.highlight import highlight_code

    return highlight_code(code)


def code_html(body: str) -> str:
    """A code block's HTML around ``body`` (Pygments spans; ``SLOT`` in the live view)."""
    return f'{CODE_CSS}<div class="highlight asst-code"><pre><span></span>{body}</pre></div>\n'


def logs_html(body: str) -> str:
    """Code logs' HTML around ``body`` (escaped text; ``SLOT`` in the live view)."""
    return f'<pre class="asst-logs" style="{_PRE}">{body}</pre>'


def _render_code(ci: dict[str, Any], snap: Snapshot) -> list[Output]:
    code = ci.get("input") or ""
    outputs = [_display({"text/html": code_html(_highlight(code)), "text/plain": code})]
    for item in ci.get("outputs") or ():
        if item.get("type") == "logs":
            outputs.append(_render_logs(item.get("logs") or ""))
        elif item.get("type") == "image":
            outputs.append(_render_image((item.get("image") or {}).get("file_id", ""), snap))
    return outputs


def _render_logs(logs: str) -> Output:
    return _display({"text/html": logs_html(html.escape(logs)), "text/plain": logs})


def _render_image(file_id: str, snap: Snapshot) -> Output:
    file = snap.files.get(file_id)
    if file is None or not file.get("content"):
        return _display({"text/plain": f"[image {file_id}]"})
    png = base64.b64encode(file["content"]).decode("ascii")
    return _display({"image/png": png, "text/plain": f"[image {file_id}]"})


def _render_function(call: dict[str, Any], state: dict[str, Any]) -> Output:
    fn = call.get("function") or {}
    name, args = fn.get("name") or "?", _pretty_json(fn.get("arguments") or "")
    status = state.get("status") or ("done" if fn.get("output") is not None else "requested")
    result, printed = call_result(fn, state), _printed(state)
    plain = f"ƒ {name}({args}) · {status}" + (f"\n{printed}" if printed else "")
    plain += f"\n→ {result}" if result is not None else ""
    tone = _ERROR if status == "error" else _MUTED
    parts = [
        f'<div class="asst-fn"><code>ƒ {html.escape(name)}</code> '
        f'<span style="{tone}">· {html.escape(status)}</span>',
        f'<pre style="{_PRE}">{html.escape(args)}</pre>',
    ]
    if printed:
        style = f"{_PRE};{_MUTED}"
        parts.append(f'<pre class="asst-printed" style="{style}">{html.escape(printed)}</pre>')
    if result is not None:
        style = f"{_PRE};{_ERROR}" if status == "error" else _PRE
        parts.append(f'<pre style="{style}">→ {html.escape(str(result))}</pre>')
    return _display({"text/html": "".join(parts) + "</div>", "text/plain": plain})


def _printed(state: dict[str, Any]) -> str:
    """What the function printed while it ran, without the trailing newline."""
    return str(state.get("printed") or "").removesuffix("\n")


def _pretty_json(text: str) -> str:
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text  # still streaming, or not JSON: show it as it came


# -- message content ------------------------------------------------------------------


def _render_content(part: dict[str, Any], snap: Snapshot) -> list[Output]:
    kind = part.get("type")
    if kind == "text":
        text = _content_markdown(part, snap)
        return [_display({"text/markdown": text, "text/plain": text})]
    if kind == "image_file":
        return [_render_image((part.get("image_file") or {}).get("file_id", ""), snap)]
    if kind == "image_url":
        url = (part.get("image_url") or {}).get("url", "")
        return [_display({"text/markdown": f"![image]({url})", "text/plain": url})]
    return [_display({"text/plain": f"[{kind} content]"})]


def _content_markdown(part: dict[str, Any], snap: Snapshot) -> str:
    text = _linked_text(part.get("text") or {}, snap)
    return f"**You:** {text}" if part.get("role") == "user" else text


def _bundle_html(data: dict[str, Any]) -> str:
    """One output's mime bundle as HTML for the live view (HTML, an image, or plain text)."""
    if "text/html" in data:
        return str(data["text/html"])
    if "image/png" in data:
        alt = html.escape(str(data.get("text/plain", "")), quote=True)
        return f'<img src="data:image/png;base64,{data["image/png"]}" alt="{alt}">'
    return f'<pre style="{_PRE}">{html.escape(str(data.get("text/plain", "")))}</pre>'


def _linked_text(text: dict[str, Any], snap: Snapshot) -> str:
    """The text with each ``file_path`` annotation pointing at the local copy of its file."""
    value = str(text.get("value") or "")
    for note in text.get("annotations") or ():
        file_id = (note.get("file_path") or {}).get("file_id")
        local = snap.files.get(file_id or "", {}).get("path")
        if local and note.get("text"):
            value = value.replace(note["text"], local)
    return value


# -- status line ----------------------------------------------------------------------


def status_text(snap: Snapshot, elapsed: float | None = None) -> str:
    """One line: status word, elapsed seconds, tokens, and the error if the run failed."""
    if snap.status == "history":
        count = len(snap.messages)
        return f"history of {snap.thread_id} · {count} message{'s' * (count != 1)}"
    before, after = status_parts(snap)
    parts = [before, *([f"{elapsed:.1f} s"] if elapsed is not None else ()), *after]
    return " · ".join(parts)


def status_parts(snap: Snapshot) -> tuple[str, list[str]]:
    """The status line's words before the elapsed time, and those after it."""
    after = []
    usage = snap.run.get("usage") or {}
    if usage.get("total_tokens"):
        after.append(f"{usage['total_tokens']} tokens")
    error = snap.error or snap.run.get("last_error")
    after += snap.notes
    if error:
        after.append(f"{error.get('code') or 'error'}: {error.get('message', '')}")
    return _status_word(snap), after


def _status_word(snap: Snapshot) -> str:
    status = snap.status
    if not snap.run and snap.error is not None:
        return "not started"  # the stream broke before the run existed
    if status == "in_progress" and _running_code(snap):
        return "running code"
    if status == "requires_action" and any(
        c.get("status") == "running" for c in snap.calls.values()
    ):
        return "running functions"
    return _STATUS_WORDS.get(status, status)


def _running_code(snap: Snapshot) -> bool:
    if not snap.order or snap.order[-1][0] != "step":
        return False
    step = snap.steps[snap.order[-1][1]]
    calls = step.get("step_details", {}).get("tool_calls") or []
    return step.get("status") == "in_progress" and any(
        c.get("type") == "code_interpreter" for c in calls
    )


def _status_output(snap: Snapshot, elapsed: float | None) -> Output:
    text = status_text(snap, elapsed)
    failed = snap.status in ("failed", "expired") or snap.error is not None
    style = _ERROR if failed else _MUTED
    line = f'<div class="asst-status" style="{style}">{html.escape(text)}</div>'
    return _display({"text/html": line, "text/plain": text})


# -- plain text -----------------------------------------------------------------------


def render_text(snap: Snapshot) -> str:
    """The transcript as plain text for a terminal; it only grows while the run streams."""
    parts, text = list(_parts(snap)), ""
    for n, (key, _, (kind, value)) in enumerate(parts):
        if text and not text.endswith("\n"):
            text += "\n"  # the previous block is finished once the next one starts
        if kind == "call":
            ended = n + 1 < len(parts) or _step_ended(snap, key)
            text += _call_text(value, snap, ended)
        elif kind == "thought":
            continue  # a terminal shows the answer; reasoning stays a notebook extra
        else:
            text += _content_text(value, snap)
    return text


def _step_ended(snap: Snapshot, key: Hashable) -> bool:
    step_id = str(key[0] if isinstance(key, tuple) else key)
    return snap.steps.get(step_id, {}).get("status") not in (None, "in_progress")


def _call_text(call: dict[str, Any], snap: Snapshot, ended: bool) -> str:
    if call.get("type") == "code_interpreter":
        ci = call.get("code_interpreter") or {}
        text = f"\n```python\n{ci.get('input') or ''}"
        outputs = ci.get("outputs") or []
        if outputs or ended:  # the fence closes once the code is complete
            text += "\n```\n"
        for item in outputs:
            if item.get("type") == "logs":
                text += item.get("logs") or ""
            elif item.get("type") == "image":
                text += _image_text((item.get("image") or {}).get("file_id", ""), snap)
        return text
    if call.get("type") == "function":
        fn = call.get("function") or {}
        state = snap.calls.get(call.get("id", ""), {})
        result, printed = call_result(fn, state), _printed(state)
        tail = f"\n{printed}" if printed else ""
        tail += f"\n→ {result}\n" if result is not None else ""
        return f"\nƒ {fn.get('name')}({fn.get('arguments') or ''}){tail}"
    return f"\n[{call.get('type')} tool call]\n"


def _content_text(part: dict[str, Any], snap: Snapshot) -> str:
    if part.get("type") == "text":
        prefix = "You: " if part.get("role") == "user" else ""
        return prefix + _linked_text(part.get("text") or {}, snap)
    if part.get("type") == "image_file":
        return _image_text((part.get("image_file") or {}).get("file_id", ""), snap)
    return ""


def _image_text(file_id: str, snap: Snapshot) -> str:
    path = snap.files.get(file_id, {}).get("path")
    return f"[image: {path}]\n" if path else ""  # listed once it has been saved
