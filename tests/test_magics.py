"""``%%assistant`` in a fresh in-process shell against the real local server (replay cassette)."""

from __future__ import annotations

import _thread
import base64
import json
import sys
import threading
from pathlib import Path
from typing import Any

import openai
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from magic_support import InterruptingStdout

import asst_magic
from asst_magic.functions import default_registry
from asst_magic.magics import AssistantMagics, RunInterrupted

WIDGET = "application/vnd.jupyter.widget-view+json"


def cell(ip: Any, body: str, line: str = "") -> list[dict[str, Any]]:
    """Run one ``%%assistant`` cell; return the outputs it left (as a saved notebook has them)."""
    ip.display_pub.outputs.clear()
    ip.run_cell_magic("assistant", line, body)
    return ip.display_pub.saved


def magics(ip: Any) -> AssistantMagics:
    return ip.magics_manager.registry["AssistantMagics"]


def plain(outputs: list[dict[str, Any]]) -> list[str]:
    return [o["data"]["text/plain"] for o in outputs]


def server_run(local_server: Any, outputs: list[dict[str, Any]]) -> Any:
    ids = outputs[-1]["metadata"]["asst_magic"]
    client = openai.OpenAI(base_url=local_server.base_url, api_key=local_server.token)
    return client.beta.threads.runs.retrieve(ids["run_id"], thread_id=ids["thread_id"])


def test_text_answer_replaces_the_widget_with_markdown(shell: Any) -> None:
    outputs = cell(shell, "hello")
    answer, status = outputs
    assert answer["data"] == {"text/markdown": "Hello **world**!", "text/plain": "Hello **world**!"}
    assert status["data"]["text/plain"].startswith("completed · ")
    ids = answer["metadata"]["asst_magic"]
    assert ids["thread_id"] == magics(shell).thread_id
    assert ids["run_id"].startswith("run_") and ids["assistant_id"].startswith("asst_")
    assert not any(WIDGET in o["data"] for o in outputs)


def test_files_the_code_writes_are_offered_under_their_own_names(
    shell: Any, tmp_path: Path
) -> None:
    saved = tmp_path / "assistant_files"
    first = cell(shell, "write a summary")
    assert "Files: assistant_files/summary.csv" in plain(first)
    assert (saved / "summary.csv").read_text() == "year,total\n2024,1\n"
    second = cell(shell, "write another summary")  # same name, new content: kept apart
    [chips] = [o for o in second if o["data"]["text/plain"].startswith("Files: ")]
    assert chips["data"]["text/plain"] == "Files: assistant_files/summary (2).csv"
    assert (
        'href="assistant_files/summary%20%282%29.csv" download="summary (2).csv"'
        in (chips["data"]["text/html"])
    )
    assert (saved / "summary (2).csv").read_text() == "year,total\n2024,2\n"
    cell(shell, "plot it")  # plots are shown, not saved beside the notebook
    assert sorted(p.name for p in saved.iterdir()) == ["summary (2).csv", "summary.csv"]


def test_code_logs_and_image_render(shell: Any) -> None:
    code, logs, image, answer, status = cell(shell, "plot it")
    assert '<span class="kn">import</span>' in code["data"]["text/html"]
    assert code["data"]["text/plain"] == (
        "import matplotlib.pyplot as plt\nprint(6 * 7)\nplt.plot([1, 2, 3]); plt.show()"
    )
    assert logs["data"]["text/plain"] == "42\n"
    assert base64.b64decode(image["data"]["image/png"]).startswith(b"\x89PNG")
    assert answer["data"]["text/markdown"] == "Here is the plot."
    assert status["data"]["text/plain"].startswith("completed")


def test_next_cell_continues_the_thread_and_history_shows_both(
    shell: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    first = cell(shell, "hello")
    second = cell(shell, "and again")
    thread = first[0]["metadata"]["asst_magic"]["thread_id"]
    assert second[0]["metadata"]["asst_magic"]["thread_id"] == thread
    shell.run_line_magic("asst_thread", "")
    assert capsys.readouterr().out == f"{thread}\n"
    shell.display_pub.outputs.clear()
    shell.run_line_magic("asst_thread", "history")
    assert plain(shell.display_pub.saved) == [
        "You: hello\nHello **world**!",
        "You: and again\nStill here.",
        f"history of {thread} · 2 turns · 4 messages",
    ]


def test_asst_thread_new_and_switch(shell: Any) -> None:
    first = cell(shell, "hello")[0]["metadata"]["asst_magic"]["thread_id"]
    shell.run_line_magic("asst_thread", "new")
    second = cell(shell, "hello")[0]["metadata"]["asst_magic"]["thread_id"]
    assert second != first
    shell.run_line_magic("asst_thread", first)
    assert cell(shell, "and again")[0]["metadata"]["asst_magic"]["thread_id"] == first


def test_new_flag_starts_a_fresh_thread(shell: Any) -> None:
    first = cell(shell, "hello")[0]["metadata"]["asst_magic"]["thread_id"]
    fresh = cell(shell, "hello", "--new")[0]["metadata"]["asst_magic"]["thread_id"]
    assert fresh != first and magics(shell).thread_id == fresh


def test_output_option_stores_the_result(shell: Any) -> None:
    cell(shell, "plot it", "-o result")
    result = shell.user_ns["result"]
    assert result.status == "completed" and result.text == "Here is the plot."
    (step,) = result.steps
    assert step.logs == "42\n" and step.images[0].startswith(b"\x89PNG")
    assert result.usage["total_tokens"] > 0
    assert result.thread_id == magics(shell).thread_id
    assert result.calls == []


def test_result_lists_the_function_calls(shell: Any) -> None:
    default_registry.register(lambda city: f"sunny in {city}", name="get_weather")
    try:
        cell(shell, "weather please", "-o result")
    finally:
        default_registry.remove("get_weather")
    (call,) = shell.user_ns["result"].calls
    assert (call.name, call.status, call.output) == ("get_weather", "done", "sunny in Paris")
    assert json.loads(call.arguments) == {"city": "Paris"}


def test_interpolates_defined_names(shell: Any) -> None:
    shell.user_ns["greeting"] = "hello"
    assert plain(cell(shell, "{greeting}"))[0] == "Hello **world**!"


def test_blank_cell_body_shows_usage_with_an_example(shell: Any) -> None:
    with pytest.raises(UsageError) as caught:
        shell.run_cell_magic("assistant", "--new", "  \n")
    assert str(caught.value).startswith(
        "%%assistant needs a message in the cell body, for example:\n\n    %%assistant\n"
    )
    assert "[--thread ID] [--new]" in str(caught.value)  # then argparse's usage


def test_truly_empty_cell_gets_ipythons_own_message(shell: Any) -> None:
    # IPython answers before the magic runs: a cell magic with no body at all.
    result = shell.run_cell("%%assistant\n")
    assert isinstance(result.error_in_exec, UsageError)
    assert str(result.error_in_exec).startswith(
        "%%assistant is a cell magic, but the cell body is empty."
    )


def test_unknown_thread_names_it_and_hints(shell: Any) -> None:
    with pytest.raises(UsageError) as caught:
        shell.run_cell_magic("assistant", "--thread thread_nope", "hello")
    assert str(caught.value).startswith("thread thread_nope not found. Start a new one with")
    assert "%asst_thread new" in str(caught.value)
    assert magics(shell).thread_id is None


def test_missing_file_is_named(shell: Any) -> None:
    with pytest.raises(UsageError, match=r"--file nope\.csv: no such file"):
        shell.run_cell_magic("assistant", "--file nope.csv", "hello")


def test_attached_file_is_uploaded(shell: Any, tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    assert plain(cell(shell, "hello", "--file data.csv"))[0] == "Hello **world**!"


def test_failed_run_shows_last_error_and_keeps_no_thread(shell: Any) -> None:
    outputs = cell(shell, "fail please")
    assert plain(outputs)[-1].startswith("failed")
    assert plain(outputs)[-1].endswith("server_error: the model exploded")
    assert magics(shell).thread_id is None


def test_unanswered_message_fails_with_the_cassette_hint(shell: Any) -> None:
    status = plain(cell(shell, "no such entry"))[-1]
    assert "invalid_prompt: replay cassette has no entry for the user message" in status


def test_function_call_round_in_the_same_view(shell: Any) -> None:
    @asst_magic.function
    def get_weather(city: str) -> str:
        """Weather in a city."""
        return f"sunny in {city}"

    try:
        call, answer, status = cell(shell, "weather please")
    finally:
        default_registry.remove("get_weather")
    assert (
        call["data"]["text/plain"]
        == 'ƒ get_weather({\n  "city": "Paris"\n}) · done\n→ sunny in Paris'
    )
    assert answer["data"]["text/markdown"] == "It is sunny in Paris."
    assert status["data"]["text/plain"].startswith("completed")


def test_two_rounds_with_parallel_calls(shell: Any) -> None:
    cities: list[str] = []
    default_registry.register(lambda city: cities.append(city) or city.upper(), name="get_weather")
    try:
        outputs = cell(shell, "two rounds")
    finally:
        default_registry.remove("get_weather")
    assert cities == ["Oslo", "Rome", "Lima"]
    assert [p.rsplit("→ ", 1)[-1] for p in plain(outputs)[:3]] == ["OSLO", "ROME", "LIMA"]
    assert plain(outputs)[3] == "Done."


def test_interrupt_cancels_the_run_keeps_output_and_next_cell_works(
    shell: Any, local_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    magics(shell).display = "text"
    stdout = InterruptingStdout(trigger="upon")
    monkeypatch.setattr(sys, "stdout", stdout)
    result = shell.run_cell("%%assistant\nlong story")
    shown = stdout.getvalue().removeprefix("[Starting the local assistant server…]\n")
    assert shown.startswith("Once upon") and "[cancelled · " in shown
    assert shown.count("Once upon") == 1  # what was shown is not repeated by the final flush
    # The cell ends in error, so "Run All" stops, but with one line, not a traceback.
    assert isinstance(result.error_in_exec, RunInterrupted)
    assert "was cancelled (interrupted). The thread is kept" in shown
    assert "Traceback" not in shown
    assert "never ended at all." not in shown
    # The stream's reader thread ended when the stream was closed, before the cancel.
    assert not [t for t in threading.enumerate() if t.name == "asst-magic-reader"]
    thread_id = magics(shell).thread_id
    assert thread_id is not None  # the user chose to stop: the conversation continues
    client = openai.OpenAI(base_url=local_server.base_url, api_key=local_server.token)
    (run,) = client.beta.threads.runs.list(thread_id).data
    assert run.status == "cancelled"
    magics(shell).display = "widget"
    assert plain(cell(shell, "and again"))[0] == "Still here."


def test_interrupt_during_a_function_cancels_the_run(shell: Any, local_server: Any) -> None:
    never = threading.Event()

    def slow_weather() -> str:
        _thread.interrupt_main()
        never.wait(30)
        return "too late"

    default_registry.register(slow_weather)
    try:
        with pytest.raises(RunInterrupted):
            cell(shell, "slow weather")
    finally:
        default_registry.remove("slow_weather")
    outputs = shell.display_pub.saved
    assert plain(outputs)[0].endswith("· error\n→ interrupted")
    assert plain(outputs)[-1].startswith("cancelled")
    assert server_run(local_server, outputs).status == "cancelled"


def test_text_mode_streams_plain_text(shell: Any, capsys: pytest.CaptureFixture[str]) -> None:
    magics(shell).display = "text"
    shell.run_cell_magic("assistant", "", "plot it")
    out = capsys.readouterr().out
    # The first cell starts the server: a terminal says so on a line of its own.
    assert out.startswith("[Starting the local assistant server…]\n\n```python\nimport matplotlib")
    # A terminal cannot show plots, so they are saved, under the name the server gave them.
    assert "```\n42\n[image: assistant_files/code_interpreter_image_" in out
    assert "Here is the plot.\n[completed · " in out


def test_load_is_cheap_and_unload_stops_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The server child imports asst_magic: from the install, or (uninstalled) from the repo.
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parents[1]))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ASST_MAGIC_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ASST_MAGIC_CASSETTE", str(Path(__file__).parent / "cassettes/magic.jsonl"))
    ip = InteractiveShell()
    asst_magic.load_ipython_extension(ip)
    loaded = magics(ip)
    assert loaded._backends == {}  # nothing started at load
    ip.run_cell_magic("assistant", "", "hello")
    assert "Hello **world**!" in capsys.readouterr().out
    backend = loaded._backends["local"][1]
    asst_magic.unload_ipython_extension(ip)
    with pytest.raises(openai.APIConnectionError):
        openai.OpenAI(base_url=backend.base_url, api_key="k", max_retries=0).files.list()
    assert "assistant" not in ip.magics_manager.magics["cell"]


@pytest.mark.parametrize(
    ("setting", "environ", "expected"),
    [
        ("", {}, "replay"),
        ("", {"OPENAI_API_KEY": "sk-test"}, "default"),
        ("", {"OPENAI_API_KEY": "sk-test", "ASST_MAGIC_CASSETTE": "a.jsonl"}, "replay"),
        ("", {"ASST_MAGIC_MODEL_URL": "http://127.0.0.1:1/v1", "ASST_MAGIC_MODEL": "m"}, "m"),
        ("gpt-4o", {"ASST_MAGIC_CASSETTE": "a.jsonl"}, "gpt-4o"),
    ],
)
def test_model_follows_the_setting_then_the_environment(
    setting: str, environ: dict[str, str], expected: str
) -> None:
    # A notebook with a cassette stays offline even where an API key is set; a user
    # who configured a live model gets it without naming the model twice.
    ip = InteractiveShell()
    try:
        magic = AssistantMagics(ip, environ=environ)
        magic.model = setting
        assert magic._model() == expected
    finally:
        ip.clear_instance()


def test_code_network_setting_reaches_the_server_and_the_status_line(
    shell: Any, local_server: Any
) -> None:
    from magic_support import SharedServer

    configs: list[Any] = []
    magics(shell)._launcher = lambda config: configs.append(config) or SharedServer(local_server)
    outputs = cell(shell, "hello")
    assert "code network" not in outputs[-1]["data"]["text/plain"]
    shell.run_line_magic("config", "AssistantMagics.code_network = True")
    shell.run_line_magic("config", "AssistantMagics.code_sandbox = 'required'")
    outputs = cell(shell, "hello")  # a changed setting starts the server again
    assert (configs[-1].code_network, configs[-1].code_sandbox) == (True, "required")
    status = outputs[-1]["data"]["text/plain"]
    assert status.startswith("completed · ") and " · code network on" in status
