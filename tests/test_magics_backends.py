"""``%%assistant`` across backends, and runs that never start: in-process shells, real servers."""

from __future__ import annotations

import _thread
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from IPython.core.error import UsageError
from magic_support import CASSETTE, InterruptingStdout, ReplayServer, Truncated
from test_magics import WIDGET, cell, magics, plain

from asst_magic.sse import encode_event


@pytest.fixture(scope="module")
def other_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str]]:
    """A second real server, reached as the `assistants` backend; with its assistant's id."""
    from asst_magic.server.config import ServerConfig
    from asst_magic.server.launch import spawn

    data_dir = tmp_path_factory.mktemp("other-server-data")
    with spawn(ServerConfig(data_dir=data_dir, cassettes=(CASSETTE,))) as handle:
        client = openai.OpenAI(base_url=handle.base_url, api_key=handle.token)
        tools: Any = [{"type": "code_interpreter"}]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # the SDK's, for our own call
            assistant = client.beta.assistants.create(model="replay", tools=tools)
        yield handle, assistant.id


def remote_environ(shell: Any, base_url: str, key: str, assistant_id: str) -> None:
    magic = magics(shell)
    remote = {"OPENAI_BASE_URL": base_url, "OPENAI_API_KEY": key, "ASSISTANT_ID": assistant_id}
    magic.environ = {**magic.environ, **remote}


def thread_of(outputs: list[dict[str, Any]]) -> str:
    return str(outputs[-1]["metadata"]["asst_magic"]["thread_id"])


def test_each_backend_continues_its_own_thread(
    shell: Any, other_server: tuple[Any, str], capsys: pytest.CaptureFixture[str]
) -> None:
    handle, assistant_id = other_server
    magics(shell).backend = "local"
    remote_environ(shell, handle.base_url, handle.token, assistant_id)
    local = thread_of(cell(shell, "hello"))
    remote = thread_of(cell(shell, "hello", "--backend assistants"))
    assert remote != local
    again = cell(shell, "and again")
    assert thread_of(again) == local and plain(again)[0] == "Still here."
    again = cell(shell, "and again", "--backend assistants")
    assert thread_of(again) == remote and plain(again)[0] == "Still here."
    shell.run_line_magic("asst_thread", "")  # the thread of the configured backend
    magics(shell).backend = "assistants"
    shell.run_line_magic("asst_thread", "")
    assert capsys.readouterr().out == f"{local}\n{remote}\n"
    client = openai.OpenAI(base_url=handle.base_url, api_key=handle.token)
    assert len(client.beta.threads.messages.list(remote).data) == 4


def test_azure_settings_reach_an_assistants_server_as_the_azure_samples_do(
    shell: Any, other_server: tuple[Any, str]
) -> None:
    # The Azure samples' variables, pointed at our own server (it also serves Azure's layout).
    handle, assistant_id = other_server
    magic = magics(shell)
    magic.environ = {
        **magic.environ,
        "AZURE_OPENAI_ENDPOINT": handle.base_url.removesuffix("/v1"),
        "AZURE_OPENAI_API_KEY": handle.token,
        "AZURE_OPENAI_API_VERSION": "2024-05-01-preview",
        "ASSISTANT_ID": assistant_id,
    }
    magic.backend = "auto"  # the variables alone select the assistants backend
    outputs = cell(shell, "hello")
    assert plain(outputs)[0] == "Hello **world**!"
    assert plain(outputs)[-1].startswith("completed · ")
    client = openai.OpenAI(base_url=handle.base_url, api_key=handle.token)
    assert len(client.beta.threads.messages.list(thread_of(outputs)).data) == 2  # that server's
    assert handle.token not in repr(outputs)


def test_unknown_assistant_on_a_thread_posts_nothing_and_names_the_fix(
    shell: Any, local_server: Any
) -> None:
    thread = thread_of(cell(shell, "hello"))
    with pytest.raises(UsageError) as caught:
        shell.run_cell_magic("assistant", "--assistant asst_doesnotexist", "and again")
    assert str(caught.value) == (
        f"No assistant asst_doesnotexist at {local_server.base_url}. Check `%config "
        "AssistantMagics.assistant_id` (or ASSISTANT_ID), or drop --assistant."
    )
    client = openai.OpenAI(base_url=local_server.base_url, api_key=local_server.token)
    history = client.beta.threads.messages.list(thread, order="asc").data
    assert [m.role for m in history] == ["user", "assistant"]  # no unanswered message
    # The cassette's n-th "and again" is still the first: the next cell answers as usual.
    assert plain(cell(shell, "and again"))[0] == "Still here."


def test_a_stream_that_breaks_before_the_run_exists_leaves_no_live_widget(
    shell: Any, tmp_path: Path
) -> None:
    thread = encode_event("thread.created", {"id": "thread_b", "object": "thread"})
    server = ReplayServer([Truncated(thread)])
    try:
        magics(shell).backend = "assistants"
        remote_environ(shell, server.base_url, "test-key", "asst_1")
        outputs = cell(shell, "hello")
    finally:
        server.close()
    assert not any(WIDGET in o["data"] for o in outputs)  # the queued widget was replaced
    (status,) = plain(outputs)
    assert status.startswith("not started · ")
    assert f"connection_error: The connection to {server.base_url} broke during the run (" in status
    assert status.endswith("Run the cell again.")
    assert magics(shell).thread_id is None


def test_a_second_interrupt_while_cancelling_shows_no_traceback(
    shell: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    cell(shell, "hello")  # starts the backend
    backend = magics(shell)._backends["local"][1]
    cancel = backend.cancel

    def impatient_cancel(thread_id: str, run_id: str | None) -> None:
        _thread.interrupt_main()  # the user presses ■ again while the cancel is awaited
        cancel(thread_id, run_id)

    monkeypatch.setattr(backend, "cancel", impatient_cancel)
    magics(shell).display = "text"
    stdout = InterruptingStdout(trigger="upon")
    monkeypatch.setattr(sys, "stdout", stdout)
    shell.run_cell("%%assistant\nlong story")
    shown = stdout.getvalue()
    assert shown.startswith("Once upon") and shown.count("Once upon") == 1
    assert "\n[cancelling · " in shown  # the server did not confirm the cancel
    assert "was interrupted while cancelling: it may still be running on the server." in shown
    assert "Traceback" not in shown
