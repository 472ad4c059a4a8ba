"""Rendering snapshots to notebook output dicts, compared with ``==``."""

from __future__ import annotations

import base64
from typing import Any

from asst_magic.accumulate import Snapshot, apply
from asst_magic.render import Renderer, render, render_text, status_text

PNG = b"\x89PNG\r\n\x1a\nfake"
IDS = {"asst_magic": {"assistant_id": "asst_1", "thread_id": "thread_1", "run_id": "run_1"}}
RUN = {"id": "run_1", "assistant_id": "asst_1", "thread_id": "thread_1", "status": "completed"}


def display(data: dict[str, Any]) -> dict[str, Any]:
    return {"output_type": "display_data", "data": data, "metadata": IDS}


def message(text: str, *parts: dict[str, Any]) -> dict[str, Any]:
    content = [{"type": "text", "text": {"value": text, "annotations": []}}, *parts]
    return {"id": "msg_1", "role": "assistant", "content": content}


def code_step(code: str, *outputs: dict[str, Any]) -> dict[str, Any]:
    call = {
        "id": "call_1",
        "type": "code_interpreter",
        "code_interpreter": {"input": code, "outputs": list(outputs)},
    }
    return {
        "id": "step_1",
        "type": "tool_calls",
        "status": "completed",
        "step_details": {"type": "tool_calls", "tool_calls": [call]},
    }


def snapshot(*events: tuple[str, Any], run: dict[str, Any] | None = None) -> Snapshot:
    snap = Snapshot()
    for name, data in events:
        apply(snap, name, data)
    apply(snap, "thread.run.completed", run or RUN)
    return snap


def test_text_renders_as_markdown_with_ids_in_metadata() -> None:
    snap = snapshot(("thread.message.completed", message("Hello **world**")))
    assert render(snap)[0] == display(
        {"text/markdown": "Hello **world**", "text/plain": "Hello **world**"}
    )


def test_status_line_is_last_with_tokens() -> None:
    run = RUN | {"usage": {"total_tokens": 42}}
    snap = snapshot(("thread.message.completed", message("Hi")), run=run)
    status = render(snap, elapsed=1.25)[-1]
    assert status["data"]["text/plain"] == "completed · 1.2 s · 42 tokens"
    assert 'class="asst-status asst-final mathjax_ignore' in status["data"]["text/html"]


def test_code_is_highlighted_by_pygments_then_logs_then_image() -> None:
    step = code_step(
        "import math\nprint(1)",
        {"type": "logs", "logs": "1\n"},
        {"type": "image", "image": {"file_id": "file_1"}},
    )
    snap = snapshot(
        ("thread.run.step.completed", step),
        ("client.file", {"file_id": "file_1", "content": PNG, "path": "f/file_1.png"}),
    )
    code, logs, image, _status = render(snap)
    assert '<span class="kn">import</span>' in code["data"]["text/html"]
    assert "var(--jp-mirror-editor-keyword-color" in code["data"]["text/html"]
    assert code["data"]["text/plain"] == "import math\nprint(1)"
    assert logs["data"]["text/plain"] == "1\n"
    assert '<pre class="asst-logs"' in logs["data"]["text/html"]
    assert image == display(
        {"image/png": base64.b64encode(PNG).decode(), "text/plain": "[image file_1]"}
    )


def test_function_call_shows_name_pretty_arguments_status_and_result() -> None:
    call = {
        "id": "call_f",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}', "output": None},
    }
    step = {
        "id": "step_f",
        "type": "tool_calls",
        "status": "in_progress",
        "step_details": {"type": "tool_calls", "tool_calls": [call]},
    }
    snap = snapshot(
        ("thread.run.step.created", step),
        ("client.call", {"tool_call_id": "call_f", "status": "done", "output": "sunny"}),
    )
    out = render(snap)[0]
    assert out["data"]["text/plain"] == 'ƒ get_weather({\n  "city": "Paris"\n}) · done\n→ sunny'
    assert (
        "<code>get_weather(city=&#x27;Paris&#x27;)</code> → &#x27;sunny&#x27;"
        in (out["data"]["text/html"])
    )


def function_step(arguments: str) -> dict[str, Any]:
    call = {"index": 0, "id": "call_f", "type": "function"}
    call["function"] = {"name": "get_weather", "arguments": arguments, "output": None}
    details = {"type": "tool_calls", "tool_calls": [call]}
    return {"id": "step_f", "type": "tool_calls", "status": "in_progress", "step_details": details}


def test_function_arguments_show_as_they_stream_then_pretty_printed() -> None:
    snap = snapshot(("thread.run.step.created", function_step('{"ci')))
    renderer = Renderer()
    assert renderer.render(snap)[0]["data"]["text/plain"] == 'ƒ get_weather({"ci) · requested'
    more = {"tool_calls": [{"index": 0, "function": {"arguments": 'ty": "Oslo"}'}}]}
    apply(snap, "thread.run.step.delta", {"id": "step_f", "delta": {"step_details": more}})
    shown = renderer.render(snap)[0]["data"]["text/plain"]
    assert shown == 'ƒ get_weather({\n  "city": "Oslo"\n}) · requested'
    apply(snap, "client.call", {"tool_call_id": "call_f", "status": "running"})
    assert renderer.render(snap)[0]["data"]["text/plain"].endswith("}) · running")


def test_function_error_is_shown_in_the_error_colour() -> None:
    snap = snapshot(
        ("thread.run.step.created", function_step("{}")),
        ("client.call", {"tool_call_id": "call_f", "status": "error", "error": "KeyError: 'x'"}),
    )
    out = render(snap)[0]["data"]
    assert out["text/plain"] == "ƒ get_weather({}) · error\n→ KeyError: 'x'"
    assert out["text/html"].count("var(--jp-error-color1") == 2  # the status and the error


def test_file_path_annotation_links_to_the_local_copy() -> None:
    text = "[Download](sandbox:/mnt/data/a.csv)"
    note = {
        "type": "file_path",
        "text": "sandbox:/mnt/data/a.csv",
        "start_index": 11,
        "end_index": 34,
        "file_path": {"file_id": "file_c"},
    }
    msg = message(text)
    msg["content"][0]["text"]["annotations"] = [note]
    snap = snapshot(
        ("thread.message.completed", msg),
        ("client.file", {"file_id": "file_c", "content": b"x", "path": "out/a.csv"}),
    )
    assert render(snap)[0]["data"]["text/markdown"] == "[Download](out/a.csv)"


def test_message_image_shown_once_when_the_code_already_showed_it() -> None:
    step = code_step("plot()", {"type": "image", "image": {"file_id": "file_1"}})
    msg = message("Done.", {"type": "image_file", "image_file": {"file_id": "file_1"}})
    snap = snapshot(
        ("thread.run.step.completed", step),
        ("thread.message.completed", msg),
        ("client.file", {"file_id": "file_1", "content": PNG, "path": "p.png"}),
    )
    assert sum("image/png" in o["data"] for o in render(snap)) == 1


def test_failed_run_shows_last_error_code_and_message() -> None:
    run = RUN | {"status": "failed", "last_error": {"code": "server_error", "message": "boom"}}
    snap = snapshot(run=run)
    assert status_text(snap) == "failed · server_error: boom"


def test_renderer_reuses_finished_blocks() -> None:
    renderer = Renderer()
    snap = snapshot(("thread.message.created", {"id": "msg_1", "role": "assistant", "content": []}))
    delta = {"content": [{"index": 0, "type": "text", "text": {"value": "a"}}]}
    apply(snap, "thread.message.delta", {"id": "msg_1", "delta": delta})
    first = renderer.blocks(snap)
    apply(
        snap,
        "thread.message.delta",
        {
            "id": "msg_1",
            "delta": {"content": [{"index": 1, "type": "text", "text": {"value": "b"}}]},
        },
    )
    second = renderer.blocks(snap)
    assert second[0][1] is first[0][1]  # unchanged block: same list, nothing to re-send
    assert len(second) == 2


def test_plain_text_marks_code_and_lists_images() -> None:
    step = code_step(
        "print(1)",
        {"type": "logs", "logs": "1\n"},
        {"type": "image", "image": {"file_id": "file_1"}},
    )
    snap = snapshot(
        ("thread.run.step.completed", step),
        ("thread.message.completed", message("ok")),
        ("client.file", {"file_id": "file_1", "content": PNG, "path": "d/f.png"}),
    )
    assert render_text(snap) == "\n```python\nprint(1)\n```\n1\n[image: d/f.png]\nok"


def test_function_call_shows_what_it_printed_before_its_result() -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    step = {
        "id": "step_1",
        "type": "tool_calls",
        "status": "completed",
        "step_details": {"type": "tool_calls", "tool_calls": [call]},
    }
    state = {"tool_call_id": "call_1", "status": "done", "output": "", "printed": "hi <b>\n"}
    snap = snapshot(("thread.run.step.completed", step), ("client.call", state))
    (shown, _status) = render(snap)
    assert shown["data"]["text/plain"] == "ƒ f({}) · done\nhi <b>\n→ "  # an empty result too
    assert '<pre class="asst-printed"' in shown["data"]["text/html"]
    assert "hi &lt;b&gt;</pre>" in shown["data"]["text/html"]
    assert render_text(snap) == "\nƒ f({})\nhi <b>\n→ \n"
