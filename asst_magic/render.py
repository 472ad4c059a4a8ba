"""Turn a run snapshot into notebook output dicts (``display_data`` mime bundles).

Pure: the same snapshot always renders to equal outputs. ``Renderer`` adds a
cache so a live view re-renders only the block that is still growing.

>>> from asst_magic.accumulate import Snapshot
>>> render(Snapshot(run={"status": "completed"}))[-1]["data"]["text/plain"]
'completed'
"""

from __future__ import annotations

import html
import json
from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from typing import Any

from asst_magic.accumulate import Snapshot, call_result, code_calls, image_ids
from asst_magic.citations import cite, searched_files, sources_line
from asst_magic.markup import for_display
from asst_magic.sections import IGNORE_MATH, MUTED, files_html, thought_html
from asst_magic.status import status_line, status_output, status_parts, status_text
from asst_magic.tracebacks import find_error
from asst_magic.work import (
    Look,
    Work,
    code_shell,
    ended,
    logs_shell,
    printed_text,
    render_call,
    render_image,
    render_logs,
    search_summary,
    work,
)

__all__ = [
    "COLLAPSE",
    "SLOT",
    "Block",
    "LivePart",
    "Renderer",
    "render",
    "render_text",
    "status_line",
    "status_output",
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


#: What folds once it is done: ``code`` (code and function calls), ``all`` (their output
#: too) or ``none``. Plots, error lines and the answer always stay in view.
COLLAPSE = ("code", "all", "none")


class Renderer:
    """Render snapshots block by block, reusing the outputs of blocks that did not change."""

    def __init__(self, collapse: str = "code") -> None:
        self._cache: dict[Hashable, tuple[Hashable, list[Output]]] = {}
        self.collapse = collapse

    def blocks(self, snap: Snapshot, elapsed: float | None = None) -> list[Block]:
        """``(key, outputs)`` per transcript block; an unchanged block keeps its list object."""
        meta = {"asst_magic": snap.ids}
        blocks: list[Block] = []
        look = Look(self.collapse, elapsed)
        for key, fingerprint, part in _parts(snap, look):
            cached = self._cache.get(key)
            if cached is None or cached[0] != fingerprint:
                outputs = _render_part(part, snap, look)
                cached = (fingerprint, [_with_meta(o, meta) for o in outputs])
                self._cache[key] = cached
            blocks.append((key, cached[1]))
        return blocks

    def live(self, snap: Snapshot, elapsed: float | None = None) -> list[LivePart]:
        """The transcript as live parts: growing text and code raw, the rest as cached HTML."""
        parts: list[LivePart] = []
        look = Look(self.collapse, elapsed)
        for key, fingerprint, (kind, value) in _parts(snap, look):
            name = "/".join(map(str, key)) if isinstance(key, tuple) else str(key)
            if kind == "content" and value.get("type") == "text" and value.get("role") != "user":
                # Raw: the page closes half-written markup itself, so the text only grows.
                text = _linked_text(value.get("text") or {}, snap)
                parts.append(LivePart(name, "markdown", "", text))
            elif kind == "call" and value.call.get("type") == "code_interpreter":
                parts += self._live_code(name, value, snap)
            elif kind == "thought":  # appended into its <details>, so an opened one stays open
                text, live, open_ = value
                parts.append(LivePart(name, "text", thought_html(SLOT, live, open_), text))
            else:
                parts += self._live_static(name, key, fingerprint, (kind, value), snap, look)
        return parts

    def _live_code(self, name: str, section: Work, snap: Snapshot) -> list[LivePart]:
        ci = section.call.get("code_interpreter") or {}
        parts = [LivePart(name, "code", code_shell(section, SLOT), ci.get("input") or "")]
        for i, item in enumerate(ci.get("outputs") or ()):
            logs = item.get("logs") or ""
            if item.get("type") == "logs" and find_error(logs) is None:
                shell = logs_shell(section, SLOT, logs)
                parts.append(LivePart(f"{name}/{i}", "text", shell, logs))
            elif item.get("type") == "logs":  # a traceback: shown as it will stay
                html_ = render_logs(logs, section)["data"]["text/html"]
                parts.append(LivePart(f"{name}/{i}", "html", html_))
            elif item.get("type") == "image":
                image = render_image((item.get("image") or {}).get("file_id", ""), snap)
                parts.append(LivePart(f"{name}/{i}", "html", _bundle_html(image["data"])))
        return parts

    def _live_static(
        self,
        name: str,
        key: Hashable,
        fingerprint: Hashable,
        part: tuple[str, Any],
        snap: Snapshot,
        look: Look,
    ) -> list[LivePart]:
        live_key = ("live", key)
        cached = self._cache.get(live_key)
        if cached is None or cached[0] != fingerprint:
            cached = (fingerprint, _render_part(part, snap, look))
            self._cache[live_key] = cached
        outputs = cached[1]
        return [
            LivePart(f"{name}/{i}" if i else name, "html", _bundle_html(o["data"]))
            for i, o in enumerate(outputs)
        ]

    def render(self, snap: Snapshot, elapsed: float | None = None) -> list[Output]:
        """All outputs of the transcript followed by the status line."""
        outputs = [o for _, block in self.blocks(snap, elapsed) for o in block]
        status = _with_meta(status_output(snap, elapsed), {"asst_magic": snap.ids})
        return [*outputs, status]


def render(snap: Snapshot, elapsed: float | None = None, *, collapse: str = "code") -> list[Output]:
    """The snapshot as notebook outputs: transcript blocks, then the status line."""
    return Renderer(collapse).render(snap, elapsed)


def _with_meta(output: Output, meta: dict[str, Any]) -> Output:
    return {**output, "metadata": meta}


def _display(data: dict[str, Any]) -> Output:
    return {"output_type": "display_data", "data": data, "metadata": {}}


# -- splitting a snapshot into blocks -------------------------------------------------


def _parts(snap: Snapshot, look: Look) -> Iterator[tuple[Hashable, Hashable, tuple[str, Any]]]:
    """``(key, fingerprint, (kind, part))`` for every block; the fingerprint changes with it."""
    nfiles, code_images = len(snap.files), _code_images(snap)
    for n, (kind, item_id) in enumerate(snap.order):
        if kind == "thought":
            live = n == len(snap.order) - 1 and not ended(snap)
            text, open_ = snap.thoughts.get(item_id, ""), look.collapse == "none"
            state = (text, live, open_)
            yield (item_id, 0), ("thought", len(text), live, open_), ("thought", state)
        elif kind == "step":
            step = snap.steps[item_id]
            calls = step.get("step_details", {}).get("tool_calls") or []
            for i, call in enumerate(calls):
                section = work(call, step, snap, look, last=i == len(calls) - 1)
                fingerprint = (_call_fingerprint(call, snap, nfiles), section.state)
                yield (item_id, i), fingerprint, ("call", section)
        else:
            message = snap.messages[item_id]
            for i, part in enumerate(message.get("content") or []):
                if _file_id(part) in code_images:
                    continue  # already shown under the code that made it
                part = {**part, "role": message.get("role", "assistant")}
                part["streaming"] = message.get("status") == "in_progress" and not ended(snap)
                yield (item_id, i), _part_fingerprint(part, nfiles), ("content", part)
            made = _attached(message)
            if made:
                saved = tuple(snap.files.get(f, {}).get("path") for f in made)
                yield (item_id, "files"), ("files", saved), ("files", made)


def _attached(message: dict[str, Any]) -> list[str]:
    """The files an assistant message offers (what its code wrote to /mnt/data)."""
    if message.get("role") != "assistant":
        return []
    return [a["file_id"] for a in message.get("attachments") or () if a.get("file_id")]


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
        value, notes = text.get("value") or "", text.get("annotations") or ()
        return "text", len(value), len(notes), nfiles, part["streaming"]
    return part.get("type"), nfiles


def _render_part(part: tuple[str, Any], snap: Snapshot, look: Look) -> list[Output]:
    kind, value = part
    if kind == "call":
        return render_call(value, snap)
    if kind == "thought":
        return [_render_thought(*value)]
    if kind == "files":
        return [_render_files(value, snap)]
    return _render_content(value, snap)


def _render_thought(text: str, live: bool, open_: bool) -> Output:
    label = "Thinking…" if live else "Thinking"
    shown = thought_html(html.escape(text), live, open_)
    return _display({"text/html": shown, "text/plain": label})


def _render_files(file_ids: list[str], snap: Snapshot) -> Output:
    """A download chip per file, named as the code named it."""
    files = {fid: snap.files.get(fid, {}) for fid in file_ids}
    chips = [(str(f.get("name") or fid), f.get("path")) for fid, f in files.items()]
    plain = "Files: " + ", ".join(path or name for name, path in chips)
    return _display({"text/html": files_html(chips), "text/plain": plain})


# -- message content ------------------------------------------------------------------


def _render_content(part: dict[str, Any], snap: Snapshot) -> list[Output]:
    kind = part.get("type")
    if kind == "text":
        text = _linked_text(part.get("text") or {}, snap)
        if part.get("role") == "user":
            return [_render_user_turn(text)]
        shown = for_display(text, streaming=bool(part.get("streaming")))
        return [_display({"text/markdown": shown, "text/plain": text})]
    if kind == "image_file":
        return [render_image((part.get("image_file") or {}).get("file_id", ""), snap)]
    if kind == "image_url":
        url = (part.get("image_url") or {}).get("url", "")
        return [_display({"text/markdown": f"![image]({url})", "text/plain": url})]
    return [_display({"text/plain": f"[{kind} content]"})]


def _render_user_turn(text: str) -> Output:
    """A question in the history: a rule above it, so every turn starts visibly."""
    style = (
        "margin:14px 0 4px;padding:6px 0 0;border-top:2px solid var(--jp-border-color1,#bbb);"
        "white-space:pre-wrap"
    )
    line = (
        f'<div class="asst-turn {IGNORE_MATH}" style="{style}">'
        f'<b style="{MUTED}">You</b><br>{html.escape(text)}</div>'
    )
    return _display({"text/html": line, "text/plain": f"You: {text}"})


def _bundle_html(data: dict[str, Any]) -> str:
    """One output's mime bundle as HTML for the live view (HTML, an image, or plain text)."""
    if "text/html" in data:
        return str(data["text/html"])
    if "image/png" in data:
        alt = html.escape(str(data.get("text/plain", "")), quote=True)
        # As JupyterLab shows an image output: inline, with no margin below.
        png = data["image/png"]
        return f'<img src="data:image/png;base64,{png}" alt="{alt}" style="margin:0">'
    pre = "margin:2px 0;font-family:var(--jp-code-font-family,monospace);white-space:pre"
    return f'<pre style="{pre}">{html.escape(str(data.get("text/plain", "")))}</pre>'


def _linked_text(text: dict[str, Any], snap: Snapshot) -> str:
    """The text with each ``file_path`` annotation pointing at the local copy of its file,
    and file citations numbered, their files listed under it (see ``citations``)."""
    value = str(text.get("value") or "")
    for note in text.get("annotations") or ():
        file_id = (note.get("file_path") or {}).get("file_id")
        local = snap.files.get(file_id or "", {}).get("path")
        if local and note.get("text"):
            value = value.replace(note["text"], local)
    value, sources = cite({**text, "value": value}, searched_files(snap.steps.values()))
    return f"{value}\n\n{sources_line(sources)}" if sources else value


# -- plain text -----------------------------------------------------------------------


def render_text(snap: Snapshot) -> str:
    """The transcript as plain text for a terminal; it only grows while the run streams."""
    parts, text = list(_parts(snap, Look("none", None))), ""
    for n, (key, _, (kind, value)) in enumerate(parts):
        if text and not text.endswith("\n"):
            text += "\n"  # the previous block is finished once the next one starts
        if kind == "call":
            done = n + 1 < len(parts) or _step_done(snap, key)
            text += _call_text(value.call, snap, done)
        elif kind == "files":
            paths = (snap.files.get(f, {}).get("path") for f in value)
            text += "".join(f"\n[file: {path}]" for path in paths if path) + "\n"
        elif kind == "thought":
            continue  # a terminal shows the answer; reasoning stays a notebook extra
        else:
            text += _content_text(value, snap)
    return text


def _step_done(snap: Snapshot, key: Hashable) -> bool:
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
        result, printed = call_result(fn, state), printed_text(state)
        tail = f"\n{printed}" if printed else ""
        tail += f"\n→ {result}\n" if result is not None else ""
        return f"\nƒ {fn.get('name')}({fn.get('arguments') or ''}){tail}"
    if call.get("type") == "file_search":
        return f"\n{search_summary(call.get('file_search') or {}, active=not ended)}\n"
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
