"""Recorded Assistants streams, replayed as HTTP responses, through the real backend."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest

from asst_magic.accumulate import Snapshot, apply
from asst_magic.backends.assistants import AssistantsBackend, configured
from asst_magic.backends.base import BackendError, RunRequest
from asst_magic.backends.http import SDKBackend
from asst_magic.functions import FunctionRegistry
from asst_magic.render import render, render_text
from asst_magic.sse import SSEDecoder

VECTORS = Path(__file__).parent / "vectors" / "assistants"


def run(server: Any, tmp_path: Path, registry: FunctionRegistry | None = None) -> Snapshot:
    client = openai.OpenAI(base_url=server.base_url, api_key="test-key")
    backend = SDKBackend(client, hint="(test)", files_dir=tmp_path / "files")
    snap = Snapshot()
    try:
        for name, data in backend.stream_run(RunRequest("hi", assistant_id="asst_1"), registry):
            apply(snap, name, data)
    finally:
        backend.close()
    return snap


def texts(snap: Snapshot) -> list[str]:
    return [o["data"].get("text/markdown") or o["data"]["text/plain"] for o in render(snap)]


def test_text_run_renders_the_answer(replay: Callable[..., Any], tmp_path: Path) -> None:
    snap = run(replay("text-run.2.sse"), tmp_path)
    assert texts(snap) == [
        "Hello! I'm just a program, so I don't have feelings, but I'm here and ready to help "
        "you with whatever you need. How can I assist you today?",
        "completed · 73 tokens",
    ]


def test_code_interpreter_run_renders_code_then_answer(
    replay: Callable[..., Any], tmp_path: Path
) -> None:
    outputs = render(run(replay("code-interpreter-logs.sse"), tmp_path))
    code, answer, status = outputs
    assert code["data"]["text/plain"] == (
        "import sympy as sp\n\n# Define the variable\nx = sp.symbols('x')\n\n"
        "# Define the equation\nequation = sp.Eq(3*x + 11, 14)\n\n# Solve the equation\n"
        "solution = sp.solve(equation, x)\nsolution"
    )
    assert '<span class="kn">import</span>' in code["data"]["text/html"]
    # \( \) math is shown in dollars, which JupyterLab's Markdown renders (it drops \( ).
    assert answer["data"]["text/markdown"] == (
        "The solution to the equation $3x + 11 = 14$ is $x = 1$."
    )
    assert answer["data"]["text/plain"] == (
        "The solution to the equation \\( 3x + 11 = 14 \\) is \\( x = 1 \\)."
    )
    assert status["data"]["text/plain"] == "completed · 470 tokens"
    assert status["metadata"]["asst_magic"]["run_id"] == "run_hFJhXcOawW0kPuGK732XjIt9"


def test_file_search_run_shows_what_was_searched_and_numbers_the_citation(
    replay: Callable[..., Any], tmp_path: Path
) -> None:
    snap = run(replay("file-search.3.sse"), tmp_path)
    search, answer, status = render(snap)
    assert search["data"]["text/plain"] == (
        "Searched files · 1 result\n  favorite_foods.txt · score 0.68"
    )
    shown = search["data"]["text/html"]
    assert shown.startswith('<details class="asst-section asst-search')
    assert "Searched files · 1 result</summary>" in shown and " open>" not in shown  # folded
    assert "- Filip Carola: cake</pre>" in shown  # the passage the search found
    # The raw 【4:0†favorite_foods.txt】 marker becomes a number, its file listed below.
    assert answer["data"]["text/markdown"] == (
        "Filip's favorite food is cake[1].\n\nSources: [1] favorite_foods.txt"
    )
    assert status["data"]["text/plain"] == "completed · 2068 tokens"
    assert render_text(snap) == (
        "\nSearched files · 1 result\n"
        "Filip's favorite food is cake[1].\n\nSources: [1] favorite_foods.txt"
    )


def test_a_file_search_in_progress_says_so() -> None:
    events = SSEDecoder().feed((VECTORS / "file-search.3.sse").read_bytes())
    snap = Snapshot()
    for name, data in events:
        apply(snap, name, json.loads(data))
        if name == "thread.run.step.delta":
            break  # the search has started; its step is not completed yet
    search, status = render(snap)
    assert search["data"]["text/plain"] == "Searching files…"
    assert " open>" in search["data"]["text/html"]  # open while it runs
    assert status["data"]["text/plain"].startswith("searching files…")


def test_image_run_fetches_the_image_and_links_the_file(
    replay: Callable[..., Any], tmp_path: Path
) -> None:
    server = replay("synthetic-code-interpreter-image.sse")
    outputs = render(run(server, tmp_path))
    assert [sorted(o["data"]) for o in outputs] == [
        ["text/html", "text/plain"],  # the code
        ["text/html", "text/plain"],  # its logs
        ["image/png", "text/plain"],  # its image (the message's copy is not repeated)
        ["text/markdown", "text/plain"],
        ["text/html", "text/plain"],  # the status line
    ]
    assert outputs[1]["data"]["text/plain"] == "45\n"
    local = (tmp_path / "files" / "plot.png").as_posix()  # a linked file keeps its own name
    assert outputs[3]["data"]["text/markdown"] == f"The sum is 45. [Download the plot]({local})"
    assert ("GET", "/v1/files/file-img1/content", None) in server.requests


def test_function_call_round_submits_the_right_output(
    replay: Callable[..., Any], tmp_path: Path
) -> None:
    server = replay("function-call.1.sse", "function-call.2.sse")
    registry = FunctionRegistry()
    registry.register(lambda: "warm and sunny", name="get_current_weather")
    snap = run(server, tmp_path, registry)
    recorded = json.loads((VECTORS / "function-call.2.request.json").read_text())
    submit = [r for r in server.requests if r[1].endswith("/submit_tool_outputs")]
    # The right tool_call_id (from function-call.1's requires_action), submitted streamed.
    assert [r[2] for r in submit] == [recorded]
    assert recorded["tool_outputs"][0]["tool_call_id"] == "call_xyFYaEeyocjyE6jN64QTcxip"
    assert submit[0][1] == (
        "/v1/threads/thread_6oUGUBxLwhyApwhYBhWjHI5f/runs/run_oyfV44CrJXYJkvb2qsd80LvJ"
        "/submit_tool_outputs"
    )
    call, answer, status = texts(snap)
    assert call == "ƒ get_current_weather({}) · done\n→ warm and sunny"
    assert answer == (
        "Since it's warm and sunny outside, you should consider wearing lightweight, breathable "
        "clothing such as a t-shirt, shorts, or a light dress. Don't forget sunglasses and "
        "sunscreen to protect yourself from the sun!"
    )
    assert status == "completed · 598 tokens"
    assert snap.thread_id == "thread_6oUGUBxLwhyApwhYBhWjHI5f"


def test_unreachable_server_names_the_url(tmp_path: Path) -> None:
    client = openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="k", max_retries=0)
    backend = SDKBackend(client, hint="Start one with `asst-magic serve`.")
    with pytest.raises(BackendError) as caught:
        list(backend.stream_run(RunRequest("hi", assistant_id="asst_1")))
    backend.close()
    assert str(caught.value) == (
        "No assistant server at http://127.0.0.1:9/v1 (connection refused). "
        "Start one with `asst-magic serve`."
    )


def test_openai_api_key_alone_does_not_select_the_remote_backend() -> None:
    assert not configured({"OPENAI_API_KEY": "sk-test"})
    assert configured({"OPENAI_BASE_URL": "http://h/v1", "ASSISTANT_ID": "asst_1"})


def test_remote_backend_without_credentials_names_the_variables() -> None:
    with pytest.raises(BackendError, match="needs OPENAI_BASE_URL, OPENAI_API_KEY"):
        AssistantsBackend({"ASSISTANT_ID": "asst_1"})


def test_azure_settings_build_an_azure_client() -> None:
    environ = {
        "AZURE_OPENAI_ENDPOINT": "https://x.openai.azure.com",
        "AZURE_OPENAI_API_KEY": "k",
        "AZURE_OPENAI_API_VERSION": "2024-05-01-preview",
        "ASSISTANT_ID": "asst_1",
    }
    backend = AssistantsBackend(environ)
    assert isinstance(backend.client, openai.AzureOpenAI)
    assert backend.default_assistant() == "asst_1"
    backend.close()


def test_sdk_deprecation_is_quiet_only_for_the_backend_and_only_while_open(
    replay: Callable[..., Any],
) -> None:
    import warnings

    server = replay("text-run.2.sse")
    client = openai.OpenAI(base_url=server.base_url, api_key="test-key", max_retries=0)
    backend = SDKBackend(client, hint="(test)")
    try:
        # A user's own Assistants call (from their module, not ours) still warns.
        with pytest.warns(DeprecationWarning, match="The Assistants API is deprecated"):
            client.beta.threads.create()
        with warnings.catch_warnings(record=True) as caught:
            backend.create_thread()
        assert not [w for w in caught if "Assistants API" in str(w.message)]
    finally:
        backend.close()
    assert not [f for f in warnings.filters if "asst_magic" in str(f[3])]
