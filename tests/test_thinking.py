"""The model's reasoning in the notebook: folded into a snapshot, shown as "Thinking…"."""

from __future__ import annotations

import re
from typing import Any

from asst_magic.accumulate import Snapshot, apply
from asst_magic.render import SLOT, Renderer, render, render_text, thought_html

REASONING = "asst_magic.reasoning.delta"


def thought(text: str) -> dict[str, Any]:
    return {"object": REASONING, "run_id": "run_1", "delta": {"text": text}}


def streamed(*events: tuple[str, Any]) -> Snapshot:
    snap = Snapshot(run={"id": "run_1", "status": "in_progress"})
    for name, data in events:
        apply(snap, name, data)
    return snap


def message(text: str) -> list[tuple[str, Any]]:
    delta = {"content": [{"index": 0, "type": "text", "text": {"value": text}}]}
    return [
        ("thread.message.created", {"id": "msg_1", "role": "assistant", "content": []}),
        ("thread.message.delta", {"id": "msg_1", "delta": delta}),
    ]


def opening_tag(html: str) -> str:
    match = re.match(r"<details[^>]*>", html)
    assert match is not None, html
    return match.group(0)


def test_reasoning_pieces_join_into_one_live_section() -> None:
    snap = streamed((REASONING, thought("Add ")), (REASONING, thought("2 and 2.")))
    [section, status] = render(snap)
    assert section["data"]["text/plain"] == "Thinking…"
    tag = opening_tag(section["data"]["text/html"])
    assert "asst-thought" in tag and " open" not in tag  # a folded section
    assert "Add 2 and 2.</div></details>" in section["data"]["text/html"]
    assert status["data"]["text/plain"].startswith("thinking…")


def test_reasoning_stays_folded_unless_nothing_should_fold() -> None:
    snap = streamed((REASONING, thought("Add.")), *message("Four."))
    for collapse, opened in (("code", False), ("all", False), ("none", True)):
        section = render(snap, collapse=collapse)[0]["data"]["text/html"]
        assert (" open" in opening_tag(section)) is opened, collapse


def test_reasoning_is_never_typeset_as_math() -> None:
    snap = streamed((REASONING, thought("It costs $5 and $6.")))
    assert "mathjax_ignore" in opening_tag(render(snap)[0]["data"]["text/html"])


def test_the_section_stops_being_live_once_the_answer_starts_and_keeps_its_place() -> None:
    snap = streamed((REASONING, thought("<b>4</b>")), *message("Four."))
    outputs = render(snap)
    assert [o["data"]["text/plain"] for o in outputs[:2]] == ["Thinking", "Four."]
    assert "&lt;b&gt;4&lt;/b&gt;" in outputs[0]["data"]["text/html"]  # escaped, not markup


def test_reasoning_after_a_step_starts_a_new_section() -> None:
    snap = streamed((REASONING, thought("first")), *message("A."), (REASONING, thought("second")))
    sections = [o for o in render(snap) if "asst-thought" in o["data"].get("text/html", "")]
    assert [
        "first" in sections[0]["data"]["text/html"],
        "second" in sections[1]["data"]["text/html"],
    ] == [True, True]
    assert sections[1]["data"]["text/plain"] == "Thinking…"


def test_plain_text_mode_shows_only_the_answer() -> None:
    snap = streamed((REASONING, thought("hidden")), *message("Four."))
    assert render_text(snap) == "Four."


def test_the_live_view_appends_reasoning_inside_its_section() -> None:
    snap = streamed((REASONING, thought("Add ")), (REASONING, thought("2 and 2.")))
    [part] = Renderer().live(snap)
    assert (part.mode, part.text) == ("text", "Add 2 and 2.")
    assert part.shell == thought_html(SLOT, live=True)
    assert " open" not in opening_tag(part.shell) and "Thinking…" in part.shell
