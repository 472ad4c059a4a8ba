"""Starting and stopping the server: thread, subprocess, CLI, restart on the same data."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import openai
import pytest
from server_support import BOTH_STORES, client_for, write_cassette

from asst_magic.server import ServerConfig, spawn, start_in_thread
from asst_magic.server.api.errors import StartupError

# The restart and crash tests (those taking ``database_url``) run on both stores.
STORES = BOTH_STORES
HELLO = {"user": "Hello", "turns": [{"text": ["Hi", "!"]}]}
CODE: Any = {"type": "code_interpreter"}


def wait_exit(pid: int, timeout: float = 20.0) -> bool:
    """Wait (on a pidfd, no polling) until process ``pid`` is gone."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)


def test_start_in_thread_stop_leaves_no_thread(tmp_path: Path) -> None:
    before = set(threading.enumerate())
    handle = start_in_thread(ServerConfig(data_dir=tmp_path, code_interpreter=False))
    assert handle.base_url.startswith("http://127.0.0.1:") and handle.base_url.endswith("/v1")
    assert client_for(handle).beta.assistants.list().data == []
    handle.stop()
    handle.stop()  # idempotent
    assert set(threading.enumerate()) <= before


def test_restart_on_same_data_dir_keeps_everything(
    tmp_path: Path, database_url: str | None
) -> None:
    config = ServerConfig(
        data_dir=tmp_path / "data",
        database_url=database_url,
        cassettes=(write_cassette(tmp_path / "c.jsonl", [HELLO]),),
        code_interpreter=False,
    )
    with start_in_thread(config) as handle:
        client = client_for(handle)
        assistant = client.beta.assistants.create(model="replay", name="Keeper")
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "Hello"}])
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id
        )
        upload = client.files.create(file=("a.txt", b"abc"), purpose="assistants")
    with start_in_thread(config) as handle:
        client = client_for(handle)
        assert client.beta.assistants.retrieve(assistant.id).name == "Keeper"
        assert client.beta.threads.retrieve(thread.id).id == thread.id
        texts = [
            m.content[0].text.value
            for m in client.beta.threads.messages.list(thread_id=thread.id, order="asc")
        ]  # type: ignore[union-attr]
        assert texts == ["Hello", "Hi!"]
        again = client.beta.threads.runs.retrieve(run.id, thread_id=thread.id)
        assert again.status == "completed" and again.usage == run.usage
        assert (
            client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data[0].status
            == "completed"
        )
        assert client.files.content(upload.id).read() == b"abc"


def test_spawn_serves_and_stop_ends_the_child(tmp_path: Path) -> None:
    config = ServerConfig(
        data_dir=tmp_path / "data",
        cassettes=(write_cassette(tmp_path / "c.jsonl", [HELLO]),),
        code_interpreter=False,
    )
    handle = spawn(config)
    assert handle.pid is not None
    client = client_for(handle)
    assistant = client.beta.assistants.create(model="replay")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Hello"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed"
    handle.stop()
    assert wait_exit(handle.pid)
    try:
        client.beta.assistants.list()
    except openai.APIConnectionError:
        pass
    else:
        raise AssertionError("server still answering after stop()")


def test_killed_server_run_is_marked_failed_on_restart(
    tmp_path: Path, database_url: str | None
) -> None:
    slow = {"user": "Hello", "delay": 0.05, "turns": [{"text": ["tick "] * 2000}]}
    config = ServerConfig(
        data_dir=tmp_path / "data",
        database_url=database_url,
        cassettes=(write_cassette(tmp_path / "c.jsonl", [slow]),),
        code_interpreter=False,
        replica_lease_seconds=2.0,
    )
    handle = spawn(config)
    client = client_for(handle)
    assistant = client.beta.assistants.create(model="replay")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Hello"}])
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
        for event in stream:
            if event.event == "thread.message.delta":
                run_id = stream.current_run.id  # type: ignore[union-attr]
                assert handle.pid is not None
                os.kill(handle.pid, signal.SIGKILL)
                break
    assert handle.pid is not None and wait_exit(handle.pid)
    handle.stop()
    with start_in_thread(config) as restarted:
        client = client_for(restarted)
        # SQLite's one server fails it at start; a PostgreSQL replica once the lease lapses.
        run = client.beta.threads.runs.poll(run_id, thread_id=thread.id, poll_interval_ms=50)
        assert run.status == "failed" and run.last_error is not None
        assert "stopped while this run was in_progress" in run.last_error.message
        message = client.beta.threads.messages.list(thread_id=thread.id, limit=1).data[0]
        assert message.status == "incomplete"
        # The thread is usable again.
        client.beta.threads.messages.create(thread_id=thread.id, role="user", content="Hello")


def test_spawned_child_exits_when_its_parent_dies(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        from pathlib import Path
        from asst_magic.server import ServerConfig, spawn
        handle = spawn(ServerConfig(data_dir=Path({str(tmp_path)!r}), code_interpreter=False))
        print(handle.pid, flush=True)
        import threading; threading.Event().wait()
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child_pid = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    parent.stdout.close()
    assert wait_exit(child_pid)


def test_cli_prints_base_url_then_token_first(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "ASST_MAGIC_TOKEN"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "asst_magic.server",
            "serve",
            "--port",
            "0",
            "--data-dir",
            str(tmp_path),
            "--no-code-interpreter",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        token = proc.stdout.readline().strip().removeprefix("token: ")
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        client = openai.OpenAI(base_url=url, api_key=token, max_retries=0)
        assert client.beta.assistants.list().data == []
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        if proc.stdout is not None:
            proc.stdout.close()
    # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status reports it.
    assert proc.returncode in (0, -signal.SIGTERM)


def serve_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``asst-magic serve ARGS`` expecting it to exit by itself."""
    cmd = [sys.executable, "-m", "asst_magic.server", "serve", "--no-code-interpreter", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def test_cli_port_in_use_says_what_to_do_without_traceback(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = serve_cli("--port", str(port), "--data-dir", str(tmp_path))
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == (
        f"asst-magic serve: error: Port {port} is in use on 127.0.0.1: pass another --port, "
        "or --port 0 for a free one.\n"
    )


def test_cli_unusable_data_dir_names_it_without_traceback(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    done = serve_cli("--port", "0", "--data-dir", str(blocker / "data"))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith(
        f"asst-magic serve: error: Cannot use the data directory {blocker / 'data'}: "
    )
    assert "Pass a writable --data-dir" in done.stderr


def test_start_in_thread_failure_closes_its_socket(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = ServerConfig(data_dir=blocker / "data", port=port, code_interpreter=False)
    with pytest.raises(StartupError, match="Cannot use the data directory") as info:
        start_in_thread(config)
    # ``info`` keeps the failed frame alive, so a leaked socket would still hold the port.
    assert isinstance(info.value, StartupError)
    with socket.socket() as again:
        again.bind(("127.0.0.1", port))  # no SO_REUSEADDR: fails while any socket holds it


def test_spawn_passes_code_interpreter_settings_to_the_child(tmp_path: Path) -> None:
    loop = {
        "user": "Spin",
        "turns": [
            {"tool_calls": [{"type": "code_interpreter", "input": "while True: pass"}]},
            {"text": "Stopped."},
        ],
    }
    config = ServerConfig(
        data_dir=tmp_path / "data",
        cassettes=(write_cassette(tmp_path / "c.jsonl", [loop]),),
        code_timeout=1.5,
        code_pool_size=0,
        code_max_kernels=3,
        code_memory_limit_bytes=512 * 1024**2,
    )
    with spawn(config) as handle:
        cmdline = Path(f"/proc/{handle.pid}/cmdline").read_bytes().split(b"\0")
        assert cmdline[cmdline.index(b"--code-pool-size") :][:2] == [b"--code-pool-size", b"0"]
        assert cmdline[cmdline.index(b"--code-max-kernels") + 1] == b"3"
        assert cmdline[cmdline.index(b"--code-memory-limit-mb") + 1] == b"512"
        client = client_for(handle)
        assistant = client.beta.assistants.create(model="replay", tools=[CODE])
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "Spin"}])
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id
        )
        assert run.status == "completed"
        steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc")
        logs = steps.data[0].step_details.tool_calls[0].code_interpreter.outputs[0].logs  # type: ignore[union-attr]
        assert "Execution timed out after 1.5 s" in logs


def test_text_streamed_before_a_kill_is_kept_in_the_incomplete_message(tmp_path: Path) -> None:
    slow = {"user": "Hello", "delay": 0.05, "turns": [{"text": ["tick "] * 2000}]}
    config = ServerConfig(
        data_dir=tmp_path / "data",
        cassettes=(write_cassette(tmp_path / "c.jsonl", [slow]),),
        code_interpreter=False,
    )
    handle = spawn(config)
    client = client_for(handle)
    assistant = client.beta.assistants.create(model="replay")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Hello"}])
    streamed, started = "", time.monotonic()
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
        for event in stream:
            if event.event == "thread.message.delta":
                streamed += "".join(
                    part.text.value or "" for part in event.data.delta.content or []
                    if part.type == "text" and part.text is not None
                )  # fmt: skip
                # Kill once text has streamed for well over SAVE_EVERY (1 s).
                if time.monotonic() - started > 2.5:
                    assert handle.pid is not None
                    os.kill(handle.pid, signal.SIGKILL)
                    break
    assert handle.pid is not None and wait_exit(handle.pid)
    handle.stop()
    with start_in_thread(config) as restarted:
        message = client_for(restarted).beta.threads.messages.list(thread.id, limit=1).data[0]
    assert message.status == "incomplete"
    assert message.incomplete_details is not None
    assert message.incomplete_details.reason == "run_failed"
    kept = message.content[0].text.value  # type: ignore[union-attr]
    assert kept.startswith("tick tick ") and streamed.startswith(kept)
