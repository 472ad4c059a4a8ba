"""What blocks look like and say: show-work sections, errors, math, status words."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from asst_magic.accumulate import Snapshot, apply
from asst_magic.markup import DOLLAR
from asst_magic.render import Renderer, render, status_text

RUN = {"id": "run_1", "assistant_id": "asst_1", "thread_id": "thread_1", "status": "completed"}
TRACEBACKS = Path(__file__).parent / "vectors" / "tracebacks" / "ipykernel.jsonl"


def code_step(code: str, *outputs: dict[str, Any], status: str = "completed") -> dict[str, Any]:
    call = {"id": "call_1", "type": "code_interpreter"}
    call["code_interpreter"] = {"input": code, "outputs": list(outputs)}
    details = {"type": "tool_calls", "tool_calls": [call]}
    return {"id": "step_1", "type": "tool_calls", "status": status, "step_details": details}


def fn_step(status: str = "in_progress") -> dict[str, Any]:
    call = {"id": "call_f", "type": "function"}
    call["function"] = {"name": "get_weather", "arguments": '{"city": "Paris"}', "output": None}
    details = {"type": "tool_calls", "tool_calls": [call]}
    return {"id": "step_f", "type": "tool_calls", "status": status, "step_details": details}


def message(text: str, status: str = "completed") -> dict[str, Any]:
    content = [{"type": "text", "text": {"value": text, "annotations": []}}]
    return {"id": "msg_1", "role": "assistant", "status": status, "content": content}


def snap_of(*events: tuple[str, Any], run: dict[str, Any] | None = RUN) -> Snapshot:
    snap = Snapshot()
    for name, data in events:
        apply(snap, name, data)
    if run is not None:
        apply(snap, f"thread.run.{run['status']}", run)
    return snap


def html_of(output: dict[str, Any]) -> str:
    return str(output["data"]["text/html"])


def summary(output: dict[str, Any]) -> str:
    match = re.search(r"<summary[^>]*>(.*?)</summary>", html_of(output))
    assert match is not None
    return re.sub(r"<[^>]+>", "", match.group(1)).replace("&#x27;", "'")


def is_open(output: dict[str, Any]) -> bool:
    return bool(re.match(r'<details [^>]*" open>', html_of(output)))


# ── math only where meant ──────────────────────────────────────────────────────


def test_status_and_error_lines_are_never_typeset() -> None:
    error = {"code": "no_model", "message": "Set $ASST_MAGIC_CASSETTE or $ASST_MAGIC_MODEL."}
    snap = snap_of(run=RUN | {"status": "failed", "last_error": error})
    status = render(snap)[-1]
    assert "mathjax_ignore" in html_of(status) and "tex2jax_ignore" in html_of(status)
    assert "$ASST_MAGIC_CASSETTE" in status["data"]["text/plain"]


def test_currency_in_an_answer_stays_text_and_math_renders() -> None:
    text = "Revenue was $1.2M and Q2 $3.4M; the fit is \\(y = X\\beta\\)."
    out = render(snap_of(("thread.message.completed", message(text))))[0]
    assert out["data"]["text/markdown"] == (
        f"Revenue was {DOLLAR}1.2M and Q2 {DOLLAR}3.4M; the fit is $y = X\\beta$."
    )
    assert out["data"]["text/plain"] == text  # what was written, for every other reader


def test_half_written_markdown_is_closed_only_while_it_streams() -> None:
    live = snap_of(
        ("thread.message.in_progress", message("Total: **562,", "in_progress")), run=None
    )
    assert render(live)[0]["data"]["text/markdown"] == "Total: **562,**"
    done = snap_of(("thread.message.completed", message("Total: **562,")))
    assert render(done)[0]["data"]["text/markdown"] == "Total: **562,"


# ── show work ──────────────────────────────────────────────────────────────────


def test_a_finished_code_step_folds_under_a_one_line_summary() -> None:
    step = code_step("import pandas as pd\nprint(1)\n", {"type": "logs", "logs": "1\n"})
    snap = snap_of(("thread.run.step.in_progress", step | {"status": "in_progress"}))
    apply(snap, "client.clock", {"id": "step_1", "at": 1.0})
    apply(snap, "thread.run.step.completed", step)
    apply(snap, "client.clock", {"id": "step_1", "at": 1.4})
    apply(snap, "thread.run.completed", RUN)
    code, logs, _ = render(snap)
    assert summary(code) == "Ran code · 2 lines · 0.4 s"
    assert not is_open(code)
    assert is_open(logs) and summary(logs) == "Output · 1 line"  # results stay in view
    assert code["data"]["text/plain"] == "import pandas as pd\nprint(1)\n"


@pytest.mark.parametrize(
    ("collapse", "code_open", "logs_open"),
    [("none", True, True), ("code", False, True), ("all", False, False)],
)
def test_the_collapse_setting_decides_what_folds(
    collapse: str, code_open: bool, logs_open: bool
) -> None:
    snap = snap_of(("thread.run.step.completed", code_step("x", {"type": "logs", "logs": "1"})))
    code, logs, _ = Renderer(collapse).render(snap)
    assert (is_open(code), is_open(logs)) == (code_open, logs_open)


def test_a_code_step_is_open_and_says_writing_then_running() -> None:
    step = code_step("import pandas", status="in_progress")
    snap = snap_of(("thread.run.step.in_progress", step), run=None)
    apply(snap, "thread.run.in_progress", RUN | {"status": "in_progress"})
    apply(snap, "client.clock", {"id": "step_1", "at": 2.0})
    writing = Renderer().render(snap, elapsed=2.1)
    assert summary(writing[0]) == "Writing code…" and is_open(writing[0])
    assert status_text(snap, 2.1).startswith("writing code…")
    running = Renderer().render(snap, elapsed=2.6)  # the code stopped growing
    assert summary(running[0]) == "Running code…" and is_open(running[0])
    assert status_text(snap, 2.6).startswith("running code…")


def test_wide_output_and_code_scroll_instead_of_wrapping() -> None:
    wide = "  ".join(f"column_{i:02d}" for i in range(22)) + "\n"
    code, logs, _ = render(
        snap_of(("thread.run.step.completed", code_step("x = 1", {"type": "logs", "logs": wide})))
    )
    assert "white-space:pre;overflow-x:auto" in html_of(logs)
    assert "pre-wrap" not in html_of(logs) + html_of(code)
    assert "white-space:pre;overflow-x:auto" in html_of(code)


def test_a_function_call_is_one_line_name_args_and_result() -> None:
    running = snap_of(
        ("thread.run.step.created", fn_step()),
        ("client.call", {"tool_call_id": "call_f", "status": "running"}),
        run=RUN | {"status": "requires_action"},
    )
    out = render(running)[0]
    assert summary(out) == "get_weather(city='Paris') · running…" and is_open(out)
    apply(running, "client.call", {"tool_call_id": "call_f", "status": "done", "output": "sunny"})
    apply(running, "thread.run.completed", RUN)
    done = render(running)[0]
    assert summary(done) == "get_weather(city='Paris') → 'sunny'"
    assert not is_open(done)


# ── errors ─────────────────────────────────────────────────────────────────────


def key_error_logs() -> str:
    record = json.loads(TRACEBACKS.read_text().splitlines()[0])
    return "loaded\n" + "\n".join(record["tb"]) + "\n"


def test_an_error_shows_its_message_and_failing_line_with_the_traceback_folded() -> None:
    step = code_step("df['revenue']", {"type": "logs", "logs": key_error_logs()})
    code, logs, _ = render(snap_of(("thread.run.step.completed", step)))
    shown = html_of(logs)
    assert summary(code).endswith("· KeyError")
    assert "KeyError: &#x27;revenue&#x27;</div>" in shown
    assert "line 4:</span> df[&#x27;revenue&#x27;]" in shown
    traceback = shown[shown.index('class="asst-section asst-traceback') :]
    assert not re.search(r'asst-traceback[^>]*" open>', traceback)  # one click away
    assert "File pandas/core/frame.py:4330" in traceback
    for noise in ("Cell In[", "site-packages", "Could not get source"):
        assert noise not in shown
    assert "loaded" in shown  # what it printed first is kept
    assert logs["data"]["text/plain"] == key_error_logs()


# ── status words ───────────────────────────────────────────────────────────────


def test_incomplete_says_why() -> None:
    details = {"reason": "max_completion_tokens"}
    snap = snap_of(run=RUN | {"status": "incomplete", "incomplete_details": details})
    assert status_text(snap) == "incomplete: max tokens"
    other = snap_of(run=RUN | {"status": "incomplete", "incomplete_details": None})
    assert status_text(other) == "incomplete: no reason given"


def test_history_marks_each_question_as_a_new_turn() -> None:
    question = {"id": "msg_u", "role": "user", "content": message("Plot it")["content"]}
    snap = Snapshot(thread_id="thread_1", run={"status": "history"})
    apply(snap, "thread.message.completed", question)
    turn = render(snap)[0]
    assert 'class="asst-turn' in html_of(turn) and "border-top" in html_of(turn)
    assert turn["data"]["text/plain"] == "You: Plot it"


def test_the_live_view_shows_each_section_as_it_will_stay() -> None:
    from asst_magic.render import SLOT
    from asst_magic.work import _highlight

    code = "import pandas as pd\nprint(1)\n"
    snap = snap_of(("thread.run.step.completed", code_step(code, {"type": "logs", "logs": "1\n"})))
    renderer = Renderer()
    live, final = renderer.live(snap), renderer.render(snap)
    assert [p.mode for p in live] == ["code", "text"]
    assert live[0].shell.replace(SLOT, _highlight(code)) == html_of(final[0])
    assert live[1].shell.replace(SLOT, "1\n") == html_of(final[1])
    error = code_step("df['revenue']", {"type": "logs", "logs": key_error_logs()})
    failed = snap_of(("thread.run.step.completed", error))
    [_, shown] = renderer.live(failed)
    assert shown.mode == "html" and shown.shell == html_of(renderer.render(failed)[1])


def test_a_finished_step_gets_its_summary_without_its_code_sent_again() -> None:
    from asst_magic.live import LiveDiff

    renderer, diff = Renderer(), LiveDiff()
    code = "".join(f"x{i} = {i}\n" for i in range(200))
    live = code_step(code, status="in_progress")
    snap = snap_of(("thread.run.step.in_progress", live), run=RUN | {"status": "in_progress"})
    first, _ = diff.ops(renderer.live(snap, elapsed=0.0))
    apply(snap, "thread.run.step.completed", code_step(code))
    second, _ = diff.ops(renderer.live(snap, elapsed=1.0))
    assert [op[0] for op in second] == ["shell"]  # the new summary, folded: no code again
    assert "Ran code · 200 lines" in second[0][2] and "open>" not in second[0][2]
    assert len(str(second)) < len(str(first)) / 5
