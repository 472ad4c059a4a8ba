"""``%asst_thread history`` as turns: each question with its answer and work in one output.

A turn is a ``<details>`` whose ``<summary>`` is the question on one line (with a
mark when a run failed, was cancelled or stopped short); inside are the answer, the
"show work" sections (folded by the ``collapse`` setting) and the mark's whole line.
Older turns are folded, the newest ``OPEN_TURNS`` open; it all works without
JavaScript, in a saved notebook too. The output is Markdown with raw HTML blocks,
so the answer renders exactly as a run's own answer does (tables, math).

>>> question = {"id": "m1", "role": "user", "content": [{"type": "text",
...     "text": {"value": "Plot it", "annotations": []}}]}
>>> [turn] = read_turns([("thread.message.completed", question),
...     ("thread.run.cancelled", {"id": "r1", "status": "cancelled"})], "thread_1")
>>> history_text([turn], "thread_1").splitlines()
['You: Plot it', '[■ cancelled]', '', '[history of thread_1 · 1 turn · 1 message]']
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from asst_magic.accumulate import Snapshot, apply
from asst_magic.markup import close_fence, html_block
from asst_magic.render import Renderer, render_text
from asst_magic.sections import ERROR, IGNORE_MATH, MUTED
from asst_magic.status import run_mark, status_line

if TYPE_CHECKING:
    from asst_magic.view import DisplayPublisher

__all__ = ["OPEN_TURNS", "Turn", "history_outputs", "history_text", "read_turns", "show_history"]

Output = dict[str, Any]

#: How many of the newest turns stay open: the last one, where the user left off.
OPEN_TURNS = 1

# A rule above every turn, so each starts visibly even when folded.
_TURN = "margin:14px 0 4px;padding:6px 0 0;border-top:2px solid var(--jp-border-color1,#bbb)"
_SUMMARY = "cursor:pointer;padding:1px 0;overflow-wrap:anywhere"
_QUESTION = "white-space:pre-wrap;margin:2px 0 6px"
_SUMMARY_MAX = 90


@dataclass
class Turn:
    """A question (``None`` before the first one) and what the runs that answered it did."""

    question: dict[str, Any] | None
    snap: Snapshot
    runs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The question's text."""
        parts = (self.question or {}).get("content") or ()
        texts = [(p.get("text") or {}).get("value") or "" for p in parts if p.get("type") == "text"]
        return "\n".join(texts).strip()

    @property
    def marks(self) -> list[tuple[str, str, bool]]:
        """``(short, line, failed)`` for each of the turn's runs that did not complete."""
        marks = []
        for run in self.runs:
            mark = run_mark(run)
            if mark is not None:
                marks.append((*mark, run.get("status") in ("failed", "expired")))
        return marks


def read_turns(events: Iterable[tuple[str, Any]], thread_id: str) -> list[Turn]:
    """Split a backend's history events into turns: each question starts one.

    The ``thread.run.<status>`` event that ends a run is kept as the turn's run object.
    """
    turns: list[Turn] = []
    for name, data in events:
        if name == "thread.message.completed" and data.get("role") == "user":
            turns.append(Turn(data, _snapshot(thread_id)))
            continue
        if not turns:
            turns.append(Turn(None, _snapshot(thread_id)))
        if name.startswith("thread.run.") and not name.startswith("thread.run.step."):
            turns[-1].runs.append(data)
        else:
            apply(turns[-1].snap, name, data)
    return turns


def _snapshot(thread_id: str) -> Snapshot:
    return Snapshot(thread_id=thread_id, run={"status": "history"})  # every block is done


def show_history(
    turns: list[Turn], thread_id: str, pub: DisplayPublisher | None, *, collapse: str = "code"
) -> None:
    """Publish one output per turn and the summary line; without ``pub``, print the text."""
    if pub is None:
        print(history_text(turns, thread_id))
        return
    for output in history_outputs(turns, thread_id, collapse=collapse):
        pub.publish(output["data"], output["metadata"])


def history_outputs(
    turns: list[Turn], thread_id: str, *, collapse: str = "code", open_turns: int = OPEN_TURNS
) -> list[Output]:
    """One output per turn, older ones folded, then the history's summary line."""
    first_open = len(turns) - open_turns
    outputs = [
        turn_output(turn, open_=n >= first_open, collapse=collapse) for n, turn in enumerate(turns)
    ]
    last = status_line(_summary_text(turns, thread_id), final=True)
    return [*outputs, {**last, "metadata": {"asst_magic": {"thread_id": thread_id}}}]


def turn_output(turn: Turn, *, open_: bool, collapse: str = "code") -> Output:
    """The turn as one Markdown output: the question as the summary of a ``<details>``."""
    head, full = _question_line(turn.text)
    state = " open" if open_ else ""
    chunks = [
        html_block(f'<details class="asst-turn" style="{_TURN}"{state}>{_summary(turn, head)}')
    ]
    if full:
        chunks.append(html_block(_question_html(turn.text)))
    # The blocks without the run's status line: the marks below take its place.
    blocks = Renderer(collapse).blocks(turn.snap, None)
    chunks += [_chunk(output["data"]) for _, block in blocks for output in block]
    for _, line, failed in turn.marks:
        chunks.append(html_block(status_line(line, failed=failed)["data"]["text/html"]))
    chunks.append("</details>")
    data = {"text/markdown": "\n\n".join(chunks) + "\n", "text/plain": _turn_text(turn)}
    runs = turn.runs[-1:] or [{}]
    ids = {"thread_id": turn.snap.thread_id, "run_id": runs[0].get("id")}
    ids["assistant_id"] = runs[0].get("assistant_id")
    return {"output_type": "display_data", "data": data, "metadata": {"asst_magic": ids}}


def history_text(turns: list[Turn], thread_id: str) -> str:
    """The history as plain text: the turns, a blank line apart, then the summary line."""
    return "\n\n".join([*map(_turn_text, turns), f"[{_summary_text(turns, thread_id)}]"])


# -- pieces of a turn ------------------------------------------------------------------


def _question_line(text: str) -> tuple[str, bool]:
    """The question on one line for the summary, and whether the full text needs showing."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    first = lines[0] if lines else "(no question)"
    short = first if len(first) <= _SUMMARY_MAX else first[: _SUMMARY_MAX - 1] + "…"
    return short, len(lines) > 1 or short != first


def _summary(turn: Turn, head: str) -> str:
    who = "You" if turn.question is not None else "Assistant"
    marks = "".join(
        f'<span class="asst-mark" style="{ERROR if bad else MUTED}"> · {html.escape(short)}</span>'
        for short, _, bad in turn.marks
    )
    text = html.escape(head) if turn.question is not None else ""
    return (
        f'<summary class="asst-turn-summary {IGNORE_MATH}" style="{_SUMMARY}">'
        f'<b style="{MUTED}">{who}</b> {text}{marks}</summary>'
    )


def _question_html(text: str) -> str:
    return f'<div class="asst-question {IGNORE_MATH}" style="{_QUESTION}">{html.escape(text)}</div>'


def _chunk(data: dict[str, Any]) -> str:
    """One rendered output as a piece of the turn's Markdown."""
    if "text/markdown" in data:
        return close_fence(str(data["text/markdown"]))  # an open fence would take the rest
    if "text/html" in data:
        return html_block(str(data["text/html"]))
    if "image/png" in data:
        alt = html.escape(str(data.get("text/plain", "image")), quote=True)
        return html_block(f'<img src="data:image/png;base64,{data["image/png"]}" alt="{alt}">')
    pre = f'<pre class="{IGNORE_MATH}">{html.escape(str(data.get("text/plain", "")))}</pre>'
    return html_block(pre)


def _turn_text(turn: Turn) -> str:
    lines = [f"You: {turn.text}"] if turn.question is not None else []
    answer = render_text(turn.snap).strip("\n")
    lines += [answer] if answer else []
    return "\n".join(lines + [f"[{line}]" for _, line, _ in turn.marks])


def _summary_text(turns: list[Turn], thread_id: str) -> str:
    count = sum(len(t.snap.messages) + (t.question is not None) for t in turns)
    return (
        f"history of {thread_id} · {len(turns)} turn{'s' * (len(turns) != 1)} · "
        f"{count} message{'s' * (count != 1)}"
    )
