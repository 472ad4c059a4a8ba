"""Issue 14: code-interpreter kernels on a real Jupyter Enterprise Gateway on loopback.

One gateway (from its own virtualenv, see ``gateway_support``) and one server with
``kernel_gateway_url`` serve the module; the real SDK streams replayed runs whose
code runs in kernels the gateway started. Nothing is shared with those kernels but
the gateway's REST API and websocket: their ``/mnt/data`` is a folder of their own.
"""

from __future__ import annotations

import io
import json
import socket
import urllib.request
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import openai
import psutil
import pytest
from code_support import Outcome, ask_code, code_cassette, streamed_outputs
from gateway_support import CuttableProxy, Gateway, start_gateway
from PIL import Image
from server_support import client_for, write_cassette

from asst_magic.server import ServerConfig, ServerHandle, spawn, start_in_thread

CODE_TIMEOUT = 4.0
SALES = b"region,amount\nnorth,10\nsouth,32\n"

SCRIPTS = {
    "plot": (
        "import os, sys\n"
        'print("drawing", flush=True)\n'
        'print("kernel", os.getpid(), sys.prefix, os.getcwd(), flush=True)\n'
        "import matplotlib.pyplot as plt\n"
        "plt.plot([1, 4, 9])\n"
        "plt.show()\n"
        'print("drawn")',
        "The plot.",
    ),
    "loop": ("x = 41\nwhile True:\n    pass", "It timed out."),
    "set x": ("x = 41", "Set."),
    "cancel me": ('print("looping", flush=True)\nwhile True:\n    pass', "unused"),
    "use x": ("print(x + 1)", "Used."),
    "files": (
        "import csv\n"
        'rows = list(csv.DictReader(open("/mnt/data/sales.csv")))\n'
        'total = sum(int(r["amount"]) for r in rows)\n'
        "print(total)\n"
        'with open("/mnt/data/out.csv", "w") as f:\n'
        '    f.write(f"total\\n{total}\\n")',
        "Here: [out.csv](sandbox:/mnt/data/out.csv).",
    ),
    "list": ("import os\nprint(sorted(os.listdir('/mnt/data')))", "Listed."),
    "exit": ("import os\nos._exit(1)", "unused: the run fails"),
    "again": ('print("back")', "Back."),
}


@dataclass
class Served:
    client: openai.OpenAI
    assistant_id: str
    data_dir: Path
    gateway: Gateway
    handle: ServerHandle


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("gateway")
    with start_gateway(root / "gateway-home") as gateway:
        config = ServerConfig(
            data_dir=root / "data",
            cassettes=(write_cassette(root / "cassette.jsonl", code_cassette(SCRIPTS)),),
            code_timeout=CODE_TIMEOUT,
            code_pool_size=1,
            kernel_gateway_url=gateway.url,
            kernel_gateway_token=gateway.token,
        )
        with start_in_thread(config) as handle, warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # the SDK's Assistants marker
            client = client_for(handle)
            assistant = client.beta.assistants.create(
                model="replay", tools=[{"type": "code_interpreter"}]
            )
            yield Served(client, assistant.id, config.data_dir, gateway, handle)
        # The server stopped every kernel it started on the gateway.
        assert gateway_kernels(gateway) == []


def gateway_kernels(gateway: Gateway) -> list[dict[str, Any]]:
    request = urllib.request.Request(
        f"{gateway.url}/api/kernels", headers={"Authorization": f"token {gateway.token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        kernels: list[dict[str, Any]] = json.load(response)
    return kernels


def ask(served: Served, text: str, thread_id: str | None = None, **message: Any) -> Outcome:
    """Post ``text`` and stream a run to its end over the real SDK."""
    return ask_code(served.client, served.assistant_id, text, thread_id, **message)


def test_run_on_a_gateway_kernel_streams_its_logs_and_a_plot(served: Served) -> None:
    result = ask(served, "plot")
    assert result.run.status == "completed"
    streamed = streamed_outputs(result.events)
    logs = "".join(o.get("logs", "") for o in streamed if o["type"] == "logs")
    assert logs.startswith("drawing\nkernel ")
    assert logs.endswith("drawn\n")
    images = [o for o in streamed if o["type"] == "image"]
    assert len(images) == 1
    png = served.client.files.content(images[0]["image"]["file_id"]).read()
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG" and image.size[0] > 100
    # The code ran in a process the gateway started, with the gateway's Python,
    # in a folder of its own rather than the server's working directory.
    _, pid, prefix, cwd = logs.splitlines()[1].split(" ")
    assert psutil.Process(int(pid)) in psutil.Process(served.gateway.process.pid).children(
        recursive=True
    )
    assert Path(prefix) == served.gateway.python.parent.parent
    assert Path(cwd) != served.data_dir / "sandbox" / result.run.thread_id
    assert result.message.content[0].image_file.file_id == images[0]["image"]["file_id"]


def test_long_running_cell_is_interrupted_and_the_kernel_kept(served: Served) -> None:
    result = ask(served, "loop")
    assert result.run.status == "completed"
    assert f"Execution timed out after {CODE_TIMEOUT:g} s" in result.logs
    assert "KeyboardInterrupt" in result.logs
    again = ask(served, "use x", result.run.thread_id)
    assert again.logs == "42\n"  # interrupted, not restarted: x survived


def test_cancelling_a_run_interrupts_its_code_and_keeps_the_kernel(served: Served) -> None:
    client = served.client
    thread_id = ask(served, "set x").run.thread_id
    client.beta.threads.messages.create(thread_id, role="user", content="cancel me")
    with client.beta.threads.runs.stream(
        thread_id=thread_id, assistant_id=served.assistant_id
    ) as stream:
        for event in stream:
            # Once the code has printed (not when its text streams in): it runs now.
            if event.event == "thread.run.step.delta" and '"logs":"looping' in (
                event.model_dump_json()
            ):
                run_id = stream.current_run.id  # type: ignore[union-attr]
                client.beta.threads.runs.cancel(run_id, thread_id=thread_id)
                break
        stream.until_done()
        assert stream.get_final_run().status == "cancelled"
    again = ask(served, "use x", thread_id)
    assert again.logs == "42\n"  # the loop was interrupted on the gateway, x kept


def test_a_channel_dropped_by_a_proxy_is_reopened_and_the_kernel_kept(
    served: Served, tmp_path: Path
) -> None:
    proxy = CuttableProxy(served.gateway.url)  # e.g. a load balancer's idle timeout
    config = ServerConfig(
        tmp_path / "data",
        cassettes=(write_cassette(tmp_path / "cassette.jsonl", code_cassette(SCRIPTS)),),
        code_pool_size=0,
        code_timeout=20,
        kernel_gateway_url=proxy.url,
        kernel_gateway_token=served.gateway.token,
    )
    try:
        with start_in_thread(config) as handle:
            client = client_for(handle)
            assistant_id = client.beta.assistants.create(
                model="replay", tools=[{"type": "code_interpreter"}]
            ).id
            first = ask_code(client, assistant_id, "set x")
            proxy.cut()
            again = ask_code(client, assistant_id, "use x", first.run.thread_id)
    finally:
        proxy.close()
    assert again.run.status == "completed"
    assert again.logs == "42\n"


def test_files_travel_to_the_gateway_kernel_and_back(served: Served) -> None:
    upload = served.client.files.create(file=("sales.csv", SALES), purpose="assistants")
    attachment = {"file_id": upload.id, "tools": [{"type": "code_interpreter"}]}
    result = ask(served, "files", attachments=[attachment])
    assert result.logs == "42\n"
    text = result.message.content[0].text
    (annotation,) = text.annotations
    assert text.value[annotation.start_index : annotation.end_index] == "sandbox:/mnt/data/out.csv"
    file_id = annotation.file_path.file_id
    assert served.client.files.retrieve(file_id).filename == "out.csv"
    assert served.client.files.content(file_id).read() == b"total\n42\n"


def test_a_variable_goes_into_a_gateway_kernel_and_comes_back(served: Served) -> None:
    thread_id = served.client.beta.threads.create().id
    url = f"{served.handle.base_url.removesuffix('/v1')}/asst_magic/v1/threads/{thread_id}"
    headers = {"Authorization": f"Bearer {served.handle.token}"}
    with httpx2.Client(headers=headers, timeout=60) as http:
        put = http.put(
            f"{url}/variables/cfg", params={"format": "json", "kind": "json"}, content=b"[1, 2]"
        )
        assert put.status_code == 200, put.text
        got = http.get(f"{url}/variables/cfg")
    assert got.status_code == 200 and got.content == b"[1, 2]"
    assert got.headers["x-asst-magic-type"] == "list"
    # The transfer files are gone on both sides once the value has moved.
    assert list((served.data_dir / "sandbox" / thread_id).iterdir()) == []
    assert ask(served, "list", thread_id).logs == "[]\n"


def test_kernel_death_fails_the_run_and_the_thread_gets_a_new_kernel(served: Served) -> None:
    result = ask(served, "exit")
    assert result.run.status == "failed"
    assert "Create a new run" in result.run.last_error.message
    assert "variables and imports were lost" in result.logs
    again = ask(served, "again", result.run.thread_id)
    assert again.run.status == "completed"
    assert again.logs.startswith("[Note: this thread's previous Python kernel")
    assert again.logs.endswith("back\n")


def test_a_spawned_server_gets_the_gateway_token_through_its_environment(
    served: Served, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    gateway = served.gateway
    config = ServerConfig(
        tmp_path / "data",
        cassettes=(write_cassette(tmp_path / "cassette.jsonl", code_cassette(SCRIPTS)),),
        code_pool_size=0,
        kernel_gateway_url=gateway.url,
        kernel_gateway_token=gateway.token,
    )
    assert gateway.token not in repr(config)
    with spawn(config) as handle:
        assert handle.pid is not None
        argv = Path(f"/proc/{handle.pid}/cmdline").read_bytes().decode()
        client = client_for(handle)
        assistant = client.beta.assistants.create(
            model="replay", tools=[{"type": "code_interpreter"}]
        )
        result = ask_code(client, assistant.id, "again")
    assert result.logs == "back\n"  # the gateway took the token
    assert gateway.url in argv and gateway.token not in argv
    out, err = capfd.readouterr()
    assert gateway.token not in out + err


def test_an_unreachable_gateway_fails_the_run_with_the_fix(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a loopback port where nothing listens
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    config = ServerConfig(
        tmp_path / "data",
        cassettes=(write_cassette(tmp_path / "cassette.jsonl", code_cassette(SCRIPTS)),),
        code_pool_size=0,
        kernel_gateway_url=url,
        kernel_gateway_token="not-shown",
    )
    with start_in_thread(config) as handle:
        client = client_for(handle)
        assistant = client.beta.assistants.create(
            model="replay", tools=[{"type": "code_interpreter"}]
        )
        result = ask_code(client, assistant.id, "again")
    assert result.run.status == "failed"
    message = result.run.last_error.message
    assert f"no Jupyter Enterprise Gateway answers at {url}" in message
    assert "--kernel-gateway" in message and "not-shown" not in message
