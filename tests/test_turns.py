"""``%asst_thread history`` as turns: one output per question, older ones folded, runs marked.

The end-to-end test runs real cells against the real local server (replay cassette)
and checks each mark against the server's own run objects (``runs.list``).
"""

from __future__ import annotations

import base64
import re
import sys
from html.parser import HTMLParser
from typing import Any

import openai
import pytest
from magic_support import InterruptingStdout
from test_magics import cell, magics, plain

from asst_magic.accumulate import Snapshot
from asst_magic.markup import html_block
from asst_magic.turns import Turn, history_outputs, read_turns, turn_output


def text_message(mid: str, role: str, text: str, run_id: str | None = None) -> dict[str, Any]:
    content = [{"type": "text", "text": {"value": text, "annotations": []}}]
    return {"id": mid, "role": role, "content": content, "run_id": run_id, "status": "completed"}


def code_step(code: str, logs: str, run_id: str) -> dict[str, Any]:
    call = {
        "id": "call_1",
        "type": "code_interpreter",
        "code_interpreter": {"input": code, "outputs": [{"type": "logs", "logs": logs}]},
    }
    details = {"type": "tool_calls", "tool_calls": [call]}
    step = {"id": "step_1", "type": "tool_calls", "run_id": run_id, "status": "completed"}
    return step | {"step_details": details}


def markdown(output: dict[str, Any]) -> str:
    return str(output["data"]["text/markdown"])


def turn_tags(output: dict[str, Any]) -> list[str]:
    """The opening tags of the turn's own ``<details>`` elements."""
    return re.findall(r'<details class="asst-turn"[^>]*>', markdown(output))


def summary_of(output: dict[str, Any]) -> str:
    match = re.search(r'<summary class="asst-turn-summary[^>]*>(.*?)</summary>', markdown(output))
    assert match is not None
    return re.sub(r"<[^>]+>", "", match.group(1))


# -- rendering ---------------------------------------------------------------------------


def test_each_turn_is_one_folded_output_and_the_newest_is_open() -> None:
    events = []
    for n in range(3):
        events += [
            ("thread.message.completed", text_message(f"q{n}", "user", f"Question {n}")),
            (
                "thread.message.completed",
                text_message(f"a{n}", "assistant", f"Answer {n}", f"r{n}"),
            ),
            ("thread.run.completed", {"id": f"r{n}", "status": "completed"}),
        ]
    turns = read_turns(events, "thread_1")
    *shown, last = history_outputs(turns, "thread_1")
    assert len(shown) == 3  # one output per question with its answer
    assert [len(turn_tags(o)) for o in shown] == [1, 1, 1]
    assert [" open" in turn_tags(o)[0] for o in shown] == [False, False, True]
    assert [summary_of(o) for o in shown] == [f"You Question {n}" for n in range(3)]
    assert "Answer 1" in markdown(shown[1]) and "Answer 2" not in markdown(shown[1])
    assert [o["metadata"]["asst_magic"]["run_id"] for o in shown] == ["r0", "r1", "r2"]
    assert last["data"]["text/plain"] == "history of thread_1 · 3 turns · 6 messages"


def test_a_long_question_sums_up_on_one_line_and_shows_whole_inside() -> None:
    question = "Please load sales.csv and plot revenue by month, then " + "x" * 80 + "\nand more"
    turn = Turn(text_message("q", "user", question), Snapshot(thread_id="t"))
    output = turn_output(turn, open_=False)
    line = summary_of(output)
    assert line.startswith("You Please load sales.csv") and line.endswith("…")
    assert len(line) < 100 and "\n" not in line
    assert html_block("and more") in markdown(output)  # the whole question, inside the turn


def test_failed_cancelled_and_incomplete_runs_are_marked_from_the_run_object() -> None:
    failed = {"status": "failed", "last_error": {"code": "server_error", "message": "Boom $5."}}
    incomplete = {"status": "incomplete", "incomplete_details": {"reason": "max_prompt_tokens"}}
    cases = [
        (failed, "✗ failed", "✗ failed: Boom $5.", True),
        ({"status": "cancelled"}, "■ cancelled", "■ cancelled", False),
        (incomplete, "incomplete", "incomplete: prompt too long", False),
        ({"status": "expired", "last_error": None}, "✗ expired", "✗ expired", True),
    ]
    for run, short, line, red in cases:
        turn = Turn(text_message("q", "user", "Hi"), Snapshot(thread_id="t"), [run])
        output = turn_output(turn, open_=True)
        assert summary_of(output) == f"You Hi · {short}"
        assert output["data"]["text/plain"] == f"You: Hi\n[{line}]"
        pattern = r'<div class="(asst-status [^"]*)" style="([^"]*)">([^<]*)</div>'
        [(classes, style, text)] = re.findall(pattern, markdown(output))
        assert text == html_block(line)  # the whole line, at the end of the turn
        assert "mathjax_ignore" in classes and ("error-color" in style) is red
    done = Turn(text_message("q", "user", "Hi"), Snapshot(thread_id="t"), [{"status": "completed"}])
    assert "asst-status" not in markdown(turn_output(done, open_=True))


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.pre_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.stack:
            while self.stack.pop() != tag:
                pass

    def handle_data(self, data: str) -> None:
        if "pre" in self.stack:
            self.pre_text.append(data)


def test_work_sections_stay_whole_raw_html_inside_the_turn() -> None:
    # A blank line in code would end a raw HTML block in Markdown, and a $ or a backtick
    # in it would pair with one in the answer when JupyterLab looks for math.
    code = "total = 0\n\nprint(f'${total}')  # `x` \\(y\\)\n"
    events = [
        ("thread.message.completed", text_message("q", "user", "Sum it")),
        ("thread.run.step.completed", code_step(code, "$0\n\nok\n", "r1")),
        (
            "thread.message.completed",
            text_message("a", "assistant", "It costs $5 and $x^2$.", "r1"),
        ),
        ("thread.run.completed", {"id": "r1", "status": "completed"}),
    ]
    [output] = history_outputs(read_turns(events, "t"), "t")[:-1]
    assert markdown(output).endswith("\n\n</details>\n")
    blocks = markdown(output).removesuffix("\n").split("\n\n")
    html_blocks = [b for b in blocks if b.startswith("<")]
    assert all("\n" not in b and "$" not in b and "`" not in b for b in html_blocks)
    parser = _Tags()
    parser.feed(" ".join(html_blocks))
    shown = "".join(parser.pre_text)
    assert "total = 0\n\nprint(f'${total}')" in shown and "$0\n\nok" in shown
    assert '<span class="mathjax_ignore">\\$</span>5 and $x^2$' in markdown(output)


# -- end to end: real cells, the real server ------------------------------------------


def test_history_marks_the_runs_as_the_server_has_them(
    shell: Any, local_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    cell(shell, "hello")
    cell(shell, "fail please")  # the model fails before it writes anything
    magics(shell).display = "text"
    stdout, original = InterruptingStdout(trigger="upon"), sys.stdout
    monkeypatch.setattr(sys, "stdout", stdout)
    shell.run_cell("%%assistant\nlong story")  # ■ pressed while the answer streams
    monkeypatch.setattr(sys, "stdout", original)
    magics(shell).display = "widget"
    cell(shell, "cut short")
    cell(shell, "and again")
    thread_id = magics(shell).thread_id
    client = openai.OpenAI(base_url=local_server.base_url, api_key=local_server.token)
    runs = client.beta.threads.runs.list(thread_id, order="asc").data
    statuses = ["completed", "failed", "cancelled", "incomplete", "completed"]
    assert [r.status for r in runs] == statuses

    shell.display_pub.outputs.clear()
    shell.run_line_magic("asst_thread", "history")
    *turns, last = shell.display_pub.saved
    assert [t["metadata"]["asst_magic"]["run_id"] for t in turns] == [r.id for r in runs]
    texts = plain(turns)
    assert texts[0] == "You: hello\nHello **world**!"
    assert texts[1] == "You: fail please\n[✗ failed: the model exploded]"
    assert texts[2].startswith("You: long story\nOnce upon") and texts[2].endswith("[■ cancelled]")
    assert (
        texts[3] == "You: cut short\nThe answer runs to more words than\n[incomplete: max tokens]"
    )
    assert texts[4] == "You: and again\nStill here."
    summaries = [summary_of(t) for t in turns]
    assert summaries[1:4] == [
        "You fail please · ✗ failed",
        "You long story · ■ cancelled",
        "You cut short · incomplete",
    ]
    assert [" open" in turn_tags(t)[0] for t in turns] == [False] * 4 + [True]
    assert last["data"]["text/plain"] == f"history of {thread_id} · 5 turns · 9 messages"


def test_history_in_plain_text_prints_the_turns_and_their_marks(
    shell: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    cell(shell, "hello")
    cell(shell, "fail please")
    thread_id = magics(shell).thread_id
    magics(shell).display = "text"
    capsys.readouterr()
    shell.run_line_magic("asst_thread", "history")
    assert capsys.readouterr().out == (
        "You: hello\nHello **world**!\n\n"
        "You: fail please\n[✗ failed: the model exploded]\n\n"
        f"[history of {thread_id} · 2 turns · 3 messages]\n"
    )


def test_a_plot_in_the_history_is_an_inline_image_inside_its_turn(shell: Any) -> None:
    cell(shell, "plot it")
    shell.display_pub.outputs.clear()
    shell.run_line_magic("asst_thread", "history")
    turn, _ = shell.display_pub.saved
    assert set(turn["data"]) == {"text/markdown", "text/plain"}  # one output, no image apart
    shown = markdown(turn)
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="[^"]*">', shown)
    assert len(images) == 1 and base64.b64decode(images[0]).startswith(b"\x89PNG")
    assert shown.index("Ran code") < shown.index("<img") < shown.index("Here is the plot.")
