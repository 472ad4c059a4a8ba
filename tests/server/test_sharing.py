"""Several notebooks on one data dir share one server: real processes, real kill -9."""

from __future__ import annotations

import json
import os
import select
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from server_support import write_cassette

from asst_magic.magics import AssistantMagics
from asst_magic.server.config import ServerConfig
from asst_magic.server.runtime import find_server, runtime_path
from asst_magic.server.sharing import connect

HELLO = {"user": "Hello", "turns": [{"text": "Hi"}]}
WEATHER = {
    "user": "Weather?",
    "turns": [
        {"tool_calls": [{"type": "function", "name": "get_weather", "arguments": "{}"}]},
        {"text": "Sunny."},
    ],
}

# A notebook's share of the server, in a process of its own: connect, report, wait, leave.
CLIENT = """
import json, sys
from pathlib import Path
from asst_magic.server.config import ServerConfig
from asst_magic.server.sharing import connect
config = ServerConfig(data_dir=Path(sys.argv[1]), code_interpreter=False,
                      cassettes=tuple(Path(p) for p in sys.argv[3:]))
handle = connect(config, idle_shutdown=float(sys.argv[2]))
print(json.dumps({"url": handle.base_url, "token": handle.token, "pid": handle.pid}), flush=True)
sys.stdin.readline()
handle.stop()
print("left", flush=True)
"""


class Notebook:
    """A second process using the data dir's server, as another notebook's kernel would."""

    def __init__(self, data_dir: Path, idle: float = 30.0, cassette: Path | None = None) -> None:
        args = [str(data_dir), str(idle), *([str(cassette)] if cassette else [])]
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CLIENT, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.info = json.loads(self.proc.stdout.readline())
        self.client = openai.OpenAI(
            base_url=self.info["url"], api_key=self.info["token"], max_retries=0
        )

    def leave(self) -> None:
        """Stop using the server, as ``%unload_ext`` does."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline() == "left\n"
        self.proc.wait(timeout=30)

    def kill(self) -> None:
        """kill -9, as a crashed kernel dies."""
        self.proc.kill()
        self.proc.wait(timeout=30)


@pytest.fixture
def notebooks(tmp_path: Path) -> Iterator[list[Notebook]]:
    """Notebooks started by a test; at teardown each leaves and any server left is ended."""
    started: list[Notebook] = []
    yield started
    for notebook in started:
        if notebook.proc.poll() is None:
            notebook.kill()
    for info in [find_server(tmp_path / "data")]:
        if info is not None:
            os.kill(info.pid, signal.SIGKILL)


def _wait_exit(pid: int, timeout: float = 30.0) -> None:
    """Wait for a process that need not be our child to end, on its pidfd."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        readable, _, _ = select.select([fd], [], [], timeout)
        assert readable, f"process {pid} is still running after {timeout} s"
    finally:
        os.close(fd)


def test_two_notebooks_share_one_server_and_see_each_others_threads(
    tmp_path: Path, notebooks: list[Notebook]
) -> None:
    data = tmp_path / "data"
    cassette = write_cassette(tmp_path / "c.jsonl", [HELLO])
    first = Notebook(data, cassette=cassette)
    notebooks.append(first)
    second = Notebook(data)  # no cassette of its own: uses the running server as it is
    notebooks.append(second)
    assert second.info == first.info
    mode = stat.S_IMODE(runtime_path(data).stat().st_mode)
    assert mode == 0o600 and stat.S_IMODE(data.stat().st_mode) == 0o700
    thread = first.client.beta.threads.create(messages=[{"role": "user", "content": "Hello"}])
    assistant = first.client.beta.assistants.create(model="replay")
    run = first.client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id
    )
    assert run.status == "completed"
    # A third notebook, a real IPython shell in this process, continues that thread.
    shell = InteractiveShell()
    magics = AssistantMagics(shell, environ={"ASST_MAGIC_DATA_DIR": str(data)})
    shell.register_magics(magics)
    magics.display = "text"
    try:
        with capture_output() as shown:
            shell.run_line_magic("asst_thread", thread.id)
            shell.run_line_magic("asst_thread", "history")
        assert f"Continuing thread {thread.id}." in shown.stdout
        assert "Hi" in shown.stdout + "".join(str(o.data) for o in shown.outputs)
    finally:
        magics.close()
    assert find_server(data) is not None  # still up: the other notebooks use it


def test_the_server_stops_when_its_last_notebook_leaves(
    tmp_path: Path, notebooks: list[Notebook]
) -> None:
    data = tmp_path / "data"
    first, second = Notebook(data), Notebook(data)
    notebooks += [first, second]
    pid = first.info["pid"]
    first.leave()
    assert find_server(data) is not None
    second.client.beta.threads.create()  # the other notebook is not disturbed
    second.leave()
    _wait_exit(pid)
    assert not runtime_path(data).exists()


def test_a_killed_notebook_lets_the_server_stop_after_the_idle_time(
    tmp_path: Path, notebooks: list[Notebook]
) -> None:
    data = tmp_path / "data"
    notebook = Notebook(data, idle=0.5)
    notebooks.append(notebook)
    pid = notebook.info["pid"]
    notebook.kill()  # no goodbye: only its lease's lock goes, with the process
    _wait_exit(pid)
    assert find_server(data) is None


def test_stale_runtime_file_is_replaced_and_only_the_dead_servers_runs_are_recovered(
    tmp_path: Path, notebooks: list[Notebook]
) -> None:
    data = tmp_path / "data"
    cassette = write_cassette(tmp_path / "c.jsonl", [WEATHER, WEATHER])
    first = Notebook(data, cassette=cassette)
    notebooks.append(first)
    client = first.client
    assistant = client.beta.assistants.create(model="replay")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Weather?"}])
    waiting = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id
    )
    assert waiting.status == "requires_action"
    # A second server on the same data dir is refused, and touches no run.
    refused = _serve_cli(data)
    assert refused.returncode == 2
    assert f"already serving {data} at {first.info['url']}" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert client.beta.threads.runs.retrieve(waiting.id, thread_id=thread.id).status == (
        "requires_action"
    )
    os.kill(first.info["pid"], signal.SIGKILL)  # the server dies; its runtime file stays
    _wait_exit(first.info["pid"])
    assert runtime_path(data).exists()
    first.kill()
    second = Notebook(data, cassette=cassette)
    notebooks.append(second)
    assert second.info["pid"] != first.info["pid"]
    run = second.client.beta.threads.runs.retrieve(waiting.id, thread_id=thread.id)
    assert run.status == "expired" and run.last_error is not None


def _serve_cli(data: Path) -> Any:
    command = [sys.executable, "-m", "asst_magic.server", "serve", "--no-code-interpreter"]
    return subprocess.run(
        [*command, "--port", "0", "--data-dir", str(data)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_notebook_with_another_cassette_is_told_what_to_do(
    tmp_path: Path, notebooks: list[Notebook]
) -> None:
    data = tmp_path / "data"
    notebooks.append(Notebook(data, cassette=write_cassette(tmp_path / "a.jsonl", [HELLO])))
    other = write_cassette(tmp_path / "b.jsonl", [HELLO])
    config = ServerConfig(data_dir=data, code_interpreter=False, cassettes=(other,))
    with pytest.raises(Exception, match="give this notebook its own data dir"):
        connect(config)


def test_an_existing_world_readable_data_dir_is_made_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "files").mkdir(parents=True)
    (data / "files" / "file-old").write_bytes(b"secret")
    old = data / "files" / "file-old"
    for path, mode in ((data, 0o755), (data / "files", 0o755), (old, 0o644)):
        path.chmod(mode)
    notebook = Notebook(data, idle=30)
    try:
        upload = notebook.client.files.create(file=("new.txt", b"x"), purpose="assistants")
        modes = {
            p.relative_to(data).as_posix(): stat.S_IMODE(p.stat().st_mode)
            for p in [data, *data.rglob("*")]
        }
        assert modes["."] == 0o700 and modes["files"] == 0o700
        assert modes["files/file-old"] == 0o600
        assert modes[f"files/{upload.id}"] == 0o600
        assert modes["asst.sqlite3"] == 0o600
    finally:
        notebook.leave()
