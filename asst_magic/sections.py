"""The "show work" sections: code steps, their output, errors and function calls as HTML.

Each is a ``<details>`` element with a one-line ``<summary>``, so it folds in any
frontend (and in a saved notebook) without JavaScript. Every element carries
``mathjax_ignore``: a ``$`` in code, logs or a summary is never typeset.

>>> call_summary("get_weather", '{"city": "Paris"}', "sunny")
"get_weather(city='Paris') → 'sunny'"
"""

from __future__ import annotations

import html
import json
import os
import urllib.parse
from typing import Any

from asst_magic.tracebacks import CodeError, tidy_traceback

__all__ = [
    "ERROR",
    "IGNORE_MATH",
    "MUTED",
    "call_summary",
    "code_html",
    "details",
    "error_html",
    "files_html",
    "function_html",
    "logs_html",
    "thought_html",
]

#: Classes that keep MathJax 3 (JupyterLab) and MathJax 2 (nbviewer, classic) away.
IGNORE_MATH = "mathjax_ignore tex2jax_ignore"
MUTED = "color:var(--jp-ui-font-color2,#888)"
ERROR = "color:var(--jp-error-color1,#d9534f)"
_MONO = "font-family:var(--jp-code-font-family,monospace);font-size:var(--jp-code-font-size,13px)"
# No wrapping: wide output (a 22-column DataFrame) and long code lines scroll sideways.
_PRE = f"margin:2px 0;{_MONO};white-space:pre;overflow-x:auto;line-height:1.35"
_SUMMARY = f"cursor:pointer;{MUTED};font-size:var(--jp-ui-font-size1,13px);padding:1px 0"
_BOX = "margin:2px 0"
_ERROR_BOX = (
    "margin:4px 0;padding:4px 8px;border-left:3px solid var(--jp-error-color1,#d9534f);"
    "background:var(--jp-rendermime-error-background,rgba(217,83,79,.08))"
)
# Reasoning is prose: it wraps, unlike code and logs.
_PROSE = f"margin:2px 0;{MUTED};white-space:pre-wrap;overflow-wrap:anywhere"
_SUMMARY_MAX = 100
_CHIP = (
    "display:inline-block;margin:2px 6px 2px 0;padding:1px 10px;border-radius:10px;"
    "border:1px solid var(--jp-border-color1,#bbb);text-decoration:none;"
    "color:var(--jp-content-font-color1,inherit);font-size:var(--jp-ui-font-size1,13px)"
)


def details(summary: str, body: str, *, open_: bool, kind: str, tone: str = MUTED) -> str:
    """A foldable section: ``summary`` (already HTML) always shown, ``body`` when open."""
    state = " open" if open_ else ""
    return (
        f'<details class="asst-section asst-{kind} {IGNORE_MATH}" style="{_BOX}"{state}>'
        f'<summary style="{_SUMMARY};{tone}">{summary}</summary>{body}</details>'
    )


def code_html(highlighted: str, summary: str, *, open_: bool) -> str:
    """The code step: its highlighted HTML under a "Ran code · N lines · T s" summary."""
    return details(html.escape(summary), highlighted, open_=open_, kind="code")


def logs_html(body: str, *, open_: bool, lines: int | None) -> str:
    """What the code printed (``body``: escaped text, or the live view's slot), scrolling
    sideways when wide; the summary counts the ``lines`` once the step is done."""
    pre = f'<pre class="asst-logs" style="{_PRE}">{body}</pre>'
    summary = "Output" if lines is None else f"Output · {lines} line{'s' * (lines != 1)}"
    return details(summary, pre, open_=open_, kind="output")


def thought_html(body: str, live: bool, open_: bool = False) -> str:
    """The model's reasoning under a "Thinking…" line (``body`` escaped, or the live slot).

    Folded while it streams and after, unless the ``collapse`` setting is ``none``.
    """
    label = "Thinking…" if live else "Thinking"
    text = f'<div class="asst-thought-text" style="{_PROSE}">{body}</div>'
    return details(label, text, open_=open_, kind="thought")


def error_html(error: CodeError) -> str:
    """The error and the failing line, always shown; the whole traceback one click away."""
    head = f'<div class="asst-error-message" style="{ERROR};font-weight:bold;{_MONO}">'
    head += f"{html.escape(error.message)}</div>"
    if error.line is not None:
        where = html.escape(f"line {error.line}")
        source = html.escape(error.source or "")
        head += (
            f'<div class="asst-error-line" style="{_MONO};white-space:pre;overflow-x:auto">'
            f'<span style="{MUTED}">{where}:</span> {source}</div>'
        )
    tb = f'<pre style="{_PRE}">{html.escape(tidy_traceback(error.traceback))}</pre>'
    frames = tidy_traceback(error.traceback).count("\nFile ") + error.traceback.count("Cell In[")
    summary = f"Traceback · {frames} frame{'s' * (frames != 1)}"
    body = details(summary, tb, open_=False, kind="traceback")
    return f'<div class="asst-error {IGNORE_MATH}" style="{_ERROR_BOX}">{head}{body}</div>'


def function_html(
    call: dict[str, Any], state: dict[str, Any], result: str | None, *, open_: bool
) -> str:
    """A function call: ``name(args) → result`` as its summary, the JSON and prints inside."""
    fn = call.get("function") or {}
    name, arguments = fn.get("name") or "?", fn.get("arguments") or ""
    status = state.get("status") or ("done" if result is not None else "requested")
    tone = ERROR if status == "error" else MUTED
    summary = f"<code>{html.escape(call_summary(name, arguments, None))}</code>"
    if result is not None:
        shown = _short(f"error: {result}" if status == "error" else repr(result), 60)
        summary += f" → {html.escape(shown)}"
    else:
        summary += f" · {html.escape(status)}{'…' if status in ('running', 'requested') else ''}"
    body = f'<pre style="{_PRE}">{html.escape(_pretty_json(arguments))}</pre>'
    printed = str(state.get("printed") or "").removesuffix("\n")
    if printed:
        body += f'<pre class="asst-printed" style="{_PRE};{MUTED}">{html.escape(printed)}</pre>'
    if result is not None:
        style = f"{_PRE};{ERROR}" if status == "error" else _PRE
        body += f'<pre style="{style}">→ {html.escape(result)}</pre>'
    return details(summary, body, open_=open_, kind="function", tone=tone)


def search_html(results: list[tuple[str, str]], summary: str, *, open_: bool) -> str:
    """A file search: each result's ``label`` and, when there is one, its ``passage``."""
    rows = []
    for label, passage in results:
        rows.append(f'<div style="{_PROSE}">{html.escape(label)}</div>')
        if passage:
            rows.append(f'<pre style="{_PRE}">{html.escape(_short(passage, 600))}</pre>')
    if not results:
        rows.append(f'<div style="{_PROSE}">No results listed by the server.</div>')
    return details(html.escape(summary), "".join(rows), open_=open_, kind="search")


def files_html(files: list[tuple[str, str | None]]) -> str:
    """Download chips: ``(name, saved path)`` each; a file not saved shows its name only."""
    chips = []
    for name, path in files:
        label = html.escape(os.path.basename(path) if path else name)
        if path:
            href = html.escape(urllib.parse.quote(path), quote=True)
            link = f'<a class="asst-file" href="{href}" download="{label}" style="{_CHIP}">'
            chips.append(f"{link}⬇ {label}</a>")
        else:
            chips.append(f'<span class="asst-file" style="{_CHIP}">{label}</span>')
    return f'<div class="asst-files {IGNORE_MATH}" style="margin:4px 0">{"".join(chips)}</div>'


def call_summary(name: str, arguments: str, result: str | None) -> str:
    """``name(k='v', …)`` from the JSON arguments, ``→ repr(result)`` when there is one."""
    try:
        args = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        args = None  # still streaming
    if isinstance(args, dict):
        inner = ", ".join(f"{k}={_py(v)}" for k, v in args.items())
    else:
        inner = "…" if args is None else _py(args)
    text = f"{name}({_short(inner, _SUMMARY_MAX - len(name))})"
    return text if result is None else f"{text} → {_short(repr(result), 60)}"


def _py(value: Any) -> str:
    """A JSON value as Python would write it (``'Paris'``, ``True``, ``None``)."""
    return repr(value)


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 1, 1)] + "…"


def _pretty_json(text: str) -> str:
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text  # still streaming, or not JSON: show it as it came
