"""The ■ button in a real kernel (jupyter_client) while a registered function runs."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager, start_new_kernel

CASSETTE = Path(__file__).parent / "cassettes" / "functions.jsonl"
TIMEOUT = 60.0

SETUP = '''
import threading
import asst_magic

@asst_magic.function
def block_forever() -> str:
    """Waits until interrupted."""
    threading.Event().wait()
    return "too late"

@asst_magic.function
def get_weather(city: str) -> str:
    """Weather in a city."""
    return f"sunny in {city}"
'''


@pytest.fixture
def kernel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[KernelManager, BlockingKernelClient]]:
    """A real kernel with the extension loaded, on a local server replaying the cassette."""
    monkeypatch.setenv("ASST_MAGIC_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ASST_MAGIC_CASSETTE", str(CASSETTE))
    # The kernel (and the server it starts) import asst_magic: installed, or from the repo.
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parents[1]))
    km, kc = start_new_kernel(kernel_name="python3", cwd=str(tmp_path))
    try:
        reply, _ = execute(kc, "%load_ext asst_magic\n" + SETUP)
        assert reply["content"]["status"] == "ok"
        yield km, kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def execute(
    kc: BlockingKernelClient, code: str, until: Callable[[dict[str, Any]], bool] | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run ``code``; return its reply and iopub messages. ``until`` returns early (no reply)."""
    msg_id = kc.execute(code)
    messages: list[dict[str, Any]] = []
    while True:
        msg = kc.get_iopub_msg(timeout=TIMEOUT)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        messages.append(msg)
        if until is not None and until(msg):
            return {}, messages
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return reply_to(kc, msg_id), messages


def reply_to(kc: BlockingKernelClient, msg_id: str) -> dict[str, Any]:
    """The shell reply to ``msg_id``, skipping earlier ones (an interrupted cell's, say)."""
    while True:
        reply = kc.get_shell_msg(timeout=TIMEOUT)
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply


def shows_running(msg: dict[str, Any]) -> bool:
    """A widget update that shows the function call as running (what the user sees)."""
    text = json.dumps(msg["content"], ensure_ascii=False)
    return msg["msg_type"] == "comm_msg" and "block_forever" in text and "· running" in text


def printed(messages: list[dict[str, Any]]) -> str:
    return "".join(m["content"]["text"] for m in messages if m["msg_type"] == "stream")


def test_interrupt_while_a_function_runs_cancels_the_run(
    kernel: tuple[KernelManager, BlockingKernelClient], tmp_path: Path
) -> None:
    km, kc = kernel
    _, shown = execute(kc, "%%assistant -o stopped\nfn blocks", until=shows_running)
    km.interrupt_kernel()  # the ■ button, pressed while block_forever runs
    rest: list[dict[str, Any]] = []
    while not any(
        m["msg_type"] == "status" and m["content"]["execution_state"] == "idle" for m in rest
    ):
        msg = kc.get_iopub_msg(timeout=TIMEOUT)
        if msg["parent_header"].get("msg_id") == shown[0]["parent_header"]["msg_id"]:
            rest.append(msg)
    (error,) = [m["content"] for m in rest if m["msg_type"] == "error"]
    assert error["ename"] == "RunInterrupted"
    (line,) = error["traceback"]  # one line, not a traceback
    assert line.endswith(
        "was cancelled (interrupted). The thread is kept: the next cell continues it."
    )
    finals = [m["content"]["data"] for m in rest if m["msg_type"] == "display_data"]
    assert finals[0]["text/plain"] == "ƒ block_forever({}) · error\n→ interrupted"
    assert finals[-1]["text/plain"].startswith("cancelled")

    reply, messages = execute(kc, "print(stopped.thread_id, stopped.run_id)")
    thread_id, run_id = printed(messages).split()
    reply, messages = execute(kc, "%%assistant\nfn one call")
    assert reply["content"]["status"] == "ok"
    finals = [m["content"]["data"] for m in messages if m["msg_type"] == "display_data"]
    texts = [data["text/plain"] for data in finals if "text/plain" in data]
    assert texts[-2] == "It is sunny in Paris." and texts[-1].startswith("completed")
    execute(kc, "%unload_ext asst_magic")  # stops the kernel's server
    assert server_run_status(tmp_path / "data", thread_id, run_id) == "cancelled"


def server_run_status(data_dir: Path, thread_id: str, run_id: str) -> str:
    """Read the run back from a new server on the kernel's data dir."""
    from asst_magic.server.config import ServerConfig
    from asst_magic.server.launch import spawn

    with spawn(ServerConfig(data_dir=data_dir)) as handle:
        client = openai.OpenAI(base_url=handle.base_url, api_key=handle.token)
        return client.beta.threads.runs.retrieve(run_id, thread_id=thread_id).status
