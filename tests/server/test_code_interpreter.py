"""Issue 03 end to end: the real SDK, a real loopback server, replay cassettes, real kernels.

One server (and one kernel sandbox with its warm pool) serves the whole module;
each test uses its own thread, so its own kernel. The server's ``code_timeout``
is short so the infinite-loop test ends quickly.
"""

from __future__ import annotations

import io
import struct
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import psutil
import pytest
from code_support import Outcome, ask_code, code_cassette, streamed_outputs
from PIL import Image
from server_support import client_for, write_cassette

from asst_magic.server import ServerConfig, start_in_thread

CODE_TIMEOUT = 5.0
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SALES = b"region,amount\nnorth,10\nsouth,32\n"

SCRIPTS = {
    "print twice": (
        # The pause makes the two prints arrive as separate kernel outputs.
        'import time\nprint("first", flush=True)\ntime.sleep(0.7)\nprint("second")',
        "Printed.",
    ),
    "divide by zero": ("1 / 0", "That failed."),
    "plot": ("import matplotlib.pyplot as plt\nplt.plot([1, 4, 9])\nplt.show()", "The plot."),
    "set x": ("x = 41", "Set."),
    "use x": ("print(x + 1)", "Used."),
    "read the csv": (
        'import pandas as pd\nprint(pd.read_csv("sales.csv")["amount"].sum())\n'
        'print(open("/mnt/data/sales.csv").readline().strip())',
        "Read.",
    ),
    "loop forever": ("while True:\n    pass", "It timed out."),
    "still there?": ('print("still here")', "Yes."),
    "exit": ("import os\nos._exit(1)", "unused: the run fails"),
    "again": ('print("back")', "Back."),
    "print a lot": ("for i in range(1_000_000):\n    print(i)", "Lots."),
    "write a csv": (
        'import pandas as pd\npd.DataFrame({"a": [1, 2]}).to_csv("/mnt/data/out.csv", index=False)',
        "Here it is: [out.csv](sandbox:/mnt/data/out.csv).",
    ),
}


@dataclass
class Server:
    client: openai.OpenAI
    assistant_id: str
    data_dir: Path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("ci")
    config = ServerConfig(
        data_dir=root / "data",
        cassettes=(write_cassette(root / "cassette.jsonl", code_cassette(SCRIPTS)),),
        code_timeout=CODE_TIMEOUT,
    )
    with start_in_thread(config) as handle, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the SDK's Assistants API marker
        client = client_for(handle)
        assistant = client.beta.assistants.create(
            model="replay", tools=[{"type": "code_interpreter"}]
        )
        yield Server(client, assistant.id, config.data_dir)


def ask(server: Server, text: str, thread_id: str | None = None, **message: Any) -> Outcome:
    """Post ``text`` (on a new thread unless given) and stream a run to its end."""
    return ask_code(server.client, server.assistant_id, text, thread_id, **message)


def test_print_streams_as_one_logs_output(server: Server) -> None:
    result = ask(server, "print twice")
    assert result.run.status == "completed"
    assert [o.type for o in result.call.outputs] == ["logs"]
    assert result.call.outputs[0].logs == "first\nsecond\n"
    pieces = streamed_outputs(result.events)
    assert len(pieces) >= 2  # streamed as it was printed, each piece extending entry 0
    assert {p["index"] for p in pieces} == {0}
    assert "".join(p["logs"] for p in pieces) == "first\nsecond\n"
    assert result.message.content[0].text.value == "Printed."


def test_exception_gives_traceback_in_logs(server: Server) -> None:
    result = ask(server, "divide by zero")
    assert result.run.status == "completed"  # the code's error is output, not a failure
    assert result.step.status == "completed"
    assert "ZeroDivisionError: division by zero" in result.logs
    assert "----> 1 1 / 0" in result.logs
    assert "\x1b" not in result.logs


def test_plot_becomes_image_file_and_image_file_part(server: Server) -> None:
    result = ask(server, "plot")
    images = [o for o in result.call.outputs if o.type == "image"]
    assert len(images) == 1
    file_id = images[0].image.file_id
    assert server.client.files.retrieve(file_id).purpose == "assistants_output"
    png = server.client.files.content(file_id).read()
    assert png.startswith(PNG_SIGNATURE)
    assert png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    assert width > 0 and height > 0
    with Image.open(io.BytesIO(png)) as image:
        image.load()
        assert image.size == (width, height)
    assert result.message.content[0].type == "image_file"
    assert result.message.content[0].image_file.file_id == file_id
    assert result.message.content[1].text.value == "The plot."


def test_variables_persist_in_a_thread_and_not_across(server: Server) -> None:
    first = ask(server, "set x")
    second = ask(server, "use x", first.run.thread_id)
    assert second.logs == "42\n"
    other = ask(server, "use x")
    assert "NameError: name 'x' is not defined" in other.logs


def test_uploaded_csv_is_readable_by_name_and_mnt_data(server: Server) -> None:
    upload = server.client.files.create(file=("sales.csv", SALES), purpose="assistants")
    attachment = {"file_id": upload.id, "tools": [{"type": "code_interpreter"}]}
    result = ask(server, "read the csv", attachments=[attachment])
    assert result.logs == "42\nregion,amount\n"


def test_infinite_loop_times_out_and_server_stays_healthy(server: Server) -> None:
    result = ask(server, "loop forever")
    assert result.run.status == "completed"
    assert f"Execution timed out after {CODE_TIMEOUT:g} s" in result.logs
    assert "KeyboardInterrupt" in result.logs
    again = ask(server, "still there?", result.run.thread_id)
    assert again.logs == "still here\n"


def test_kernel_exit_fails_the_run_cleanly_and_the_thread_recovers(server: Server) -> None:
    result = ask(server, "exit")
    assert result.run.status == "failed"
    assert result.run.last_error.code == "server_error"
    assert "died (exit code 1)" in result.run.last_error.message
    assert "Create a new run" in result.run.last_error.message
    assert result.step.status == "failed"
    assert "variables and imports were lost" in result.logs
    assert result.events[-1][1] == "[DONE]"
    again = ask(server, "again", result.run.thread_id)
    assert again.run.status == "completed"
    assert again.logs.startswith("[Note: this thread's previous Python kernel died")
    assert again.logs.endswith("back\n")


def test_million_line_print_is_truncated_without_memory_blow_up(server: Server) -> None:
    process = psutil.Process()
    before = process.memory_info().rss
    result = ask(server, "print a lot")
    assert result.run.status == "completed"
    assert result.logs.startswith("0\n1\n2\n")
    assert "[output truncated: only the first 50,000 characters are shown" in result.logs
    assert len(result.logs) < 51_000
    assert process.memory_info().rss - before < 200 * 1024**2


def test_sandbox_link_becomes_file_path_annotation(server: Server) -> None:
    result = ask(server, "write a csv")
    text = result.message.content[0].text
    (annotation,) = text.annotations
    assert annotation.type == "file_path"
    assert text.value[annotation.start_index : annotation.end_index] == "sandbox:/mnt/data/out.csv"
    file_id = annotation.file_path.file_id
    assert server.client.files.retrieve(file_id).filename == "out.csv"
    assert server.client.files.content(file_id).read() == b"a\n1\n2\n"


def test_deleting_a_thread_removes_its_files(server: Server) -> None:
    result = ask(server, "write a csv")
    workdir = server.data_dir / "sandbox" / result.run.thread_id
    assert (workdir / "out.csv").is_file()
    server.client.beta.threads.delete(result.run.thread_id)
    assert not workdir.exists()
