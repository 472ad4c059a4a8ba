"""The ``code_sandbox`` setting: off (the old, unconfined behaviour), auto and required
without bubblewrap; each through the real SDK against a real server subprocess."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from server_support import client_for, write_cassette

from asst_magic.server import ServerConfig
from asst_magic.server.code_interpreter.confinement import choose_confinement
from asst_magic.server.launch import spawn

CODE = (
    "import os\nprint(open(os.path.expanduser('~/secret.txt')).read())\n"
    "print(os.getcwd().endswith('/mnt/data'))"
)


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., tuple[openai.OpenAI, str]]]:
    """Spawn a server with ``code_sandbox`` and ``PATH``; return its client and an assistant."""
    handles = []
    home = tmp_path / "home"
    home.mkdir()
    (home / "secret.txt").write_text("home secret")
    entries = [
        {
            "user": f"try {n}",
            "turns": [
                {"tool_calls": [{"type": "code_interpreter", "input": CODE}]},
                {"text": "Done."},
            ],
        }
        for n in range(2)
    ]
    cassette = write_cassette(tmp_path / "cassette.jsonl", entries)

    def make(mode: str, path: str | None = None) -> tuple[openai.OpenAI, str]:
        config = ServerConfig(
            data_dir=tmp_path / "data", cassettes=(cassette,), code_sandbox=mode, code_pool_size=0
        )
        saved = dict(os.environ)
        os.environ.update(HOME=str(home), PATH=path or os.environ["PATH"])
        try:
            handles.append(spawn(config))
        finally:
            os.environ.clear()
            os.environ.update(saved)
        client = client_for(handles[-1])
        assistant = client.beta.assistants.create(
            model="replay", tools=[{"type": "code_interpreter"}]
        )
        return client, assistant.id

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield make
    for handle in handles:
        handle.stop()


def ask(client: openai.OpenAI, assistant_id: str, text: str) -> tuple[Any, str]:
    thread = client.beta.threads.create(messages=[{"role": "user", "content": text}])
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant_id, poll_interval_ms=50
    )
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data
    outputs = steps[-1].step_details.tool_calls[0].code_interpreter.outputs
    return run, "".join(o.logs for o in outputs if o.type == "logs")


def no_bwrap_path(tmp_path: Path) -> str:
    """A PATH without bwrap on it (the kernel is started by absolute path)."""
    empty = tmp_path / "bin"
    empty.mkdir(exist_ok=True)
    return str(empty)


def test_off_runs_unconfined_as_before_and_warns_once(start: Callable[..., Any]) -> None:
    client, assistant = start("off")
    run, logs = ask(client, assistant, "try 0")
    assert run.status == "completed"
    first, *rest = logs.splitlines()
    assert first.startswith("[Warning: Code interpreter: code_sandbox is off, so model-written")
    assert "Set code_sandbox = auto to sandbox it" in first
    assert rest == ["home secret", "False"]  # the old behaviour: home readable, real cwd
    run, logs = ask(client, assistant, "try 1")
    assert logs == "home secret\nFalse\n"  # the warning comes once per server


def test_auto_without_bwrap_runs_unconfined_and_says_how_to_fix(
    start: Callable[..., Any], tmp_path: Path
) -> None:
    client, assistant = start("auto", no_bwrap_path(tmp_path))
    run, logs = ask(client, assistant, "try 0")
    assert run.status == "completed"
    first = logs.splitlines()[0]
    assert "no sandbox" in first and "`bwrap` (bubblewrap) is not installed" in first
    assert "apt-get install bubblewrap" in first and "code_sandbox = required" in first
    assert logs.splitlines()[1:] == ["home secret", "False"]


def test_required_without_bwrap_refuses_with_a_clear_message(
    start: Callable[..., Any], tmp_path: Path
) -> None:
    client, assistant = start("required", no_bwrap_path(tmp_path))
    run, logs = ask(client, assistant, "try 0")
    assert run.status == "failed"
    assert "home secret" not in logs
    message = run.last_error.message
    assert message.startswith("The code sandbox is required (code_sandbox = required)")
    assert "`bwrap` (bubblewrap) is not installed" in message
    assert "or set code_sandbox = auto" in message


def test_server_log_names_what_is_missing(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", no_bwrap_path(tmp_path))
    with caplog.at_level(logging.WARNING):
        confinement = choose_confinement("auto")
    assert confinement.bubblewrap is None
    assert "`bwrap` (bubblewrap) is not installed" in caplog.text
    with pytest.raises(ValueError, match="code_sandbox must be one of auto, required, off"):
        choose_confinement("sometimes")
