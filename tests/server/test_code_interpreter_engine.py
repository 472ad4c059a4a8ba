"""How the engine uses the code interpreter: streamed outputs, images as files, links as files.

The sandbox is the real kernel-backed one; what is checked is what the client
sees through the real SDK and wire. One fake remains, for a fault the real
sandbox cannot produce (see ``BrokenSandbox``).
"""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import openai
import psutil
from PIL import Image
from server_support import client_for, sse_events
from test_conformance import assert_conforms, recorded

from asst_magic.server import ServerHandle
from asst_magic.server.code_interpreter.kernels import KernelSandbox
from asst_magic.server.code_interpreter.sandbox import ExecutionOutcome, SandboxFile, SandboxOutput

Start = Callable[..., ServerHandle]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_bytes() -> bytes:
    """A small real PNG, to upload as the file the answer links to."""
    buffer = io.BytesIO()
    Image.new("RGB", (4, 3), "red").save(buffer, format="PNG")
    return buffer.getvalue()


class BrokenSandbox:
    """A sandbox whose ``execute`` raises: a bug in an implementation, which the real
    ``KernelSandbox`` never shows by design (it reports every failure as logs), so
    only a fake can check that the engine contains it."""

    async def start(self) -> None:
        pass

    async def execute(
        self, thread_id: str, code: str, files: Sequence[SandboxFile] = ()
    ) -> AsyncIterator[SandboxOutput]:
        raise OSError("sandbox disk is gone")
        yield  # pragma: no cover - makes this an async generator

    def workdir(self, thread_id: str) -> Path:
        return Path("/nonexistent") / thread_id

    def resolve(self, thread_id: str, path: str) -> Path | None:
        return None

    def last_outcome(self, thread_id: str) -> ExecutionOutcome | None:
        return None

    async def close_thread(self, thread_id: str, *, delete_files: bool = False) -> None:
        pass

    async def aclose(self) -> None:
        pass


def scenario() -> dict[str, object]:
    theirs = recorded("synthetic-code-interpreter-image.sse")
    code = [
        d["delta"]["step_details"]["tool_calls"][0]["code_interpreter"]["input"]
        for name, d in theirs
        if name == "thread.run.step.delta"
        and "input" in d["delta"]["step_details"]["tool_calls"][0]["code_interpreter"]
        and "id" not in d["delta"]["step_details"]["tool_calls"][0]
    ]
    text = [
        d["delta"]["content"][0]["text"]["value"]
        for name, d in theirs
        if name == "thread.message.delta" and "value" in d["delta"]["content"][0].get("text", {})
    ]
    turns = [{"tool_calls": [{"type": "code_interpreter", "input": code}]}, {"text": text}]
    return {"user": "Plot it", "turns": turns}


def test_code_interpreter_run_streams_outputs_image_and_file_link(start_server: Start) -> None:
    handle = start_server([scenario()], code_interpreter=True)
    client = client_for(handle)
    linked = png_bytes()
    upload = client.files.create(file=("plot.png", linked), purpose="assistants")
    assistant = client.beta.assistants.create(
        model="replay",
        tools=[{"type": "code_interpreter"}],
        tool_resources={"code_interpreter": {"file_ids": [upload.id]}},
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Plot it"}])
    with client.beta.threads.runs.with_streaming_response.create(
        thread_id=thread.id, assistant_id=assistant.id, stream=True
    ) as response:
        ours = sse_events(response.iter_bytes())
    allowed = frozenset(
        {
            "reasoning_effort",
            "code_interpreter",
            "prompt_token_details",
            "completion_tokens_details",
        }
    )
    assert_conforms(ours, recorded("synthetic-code-interpreter-image.sse"), allowed)

    run_id = ours[1][1]["id"]
    steps = client.beta.threads.runs.steps.list(run_id, thread_id=thread.id, order="asc").data
    call = steps[0].step_details.tool_calls[0].code_interpreter  # type: ignore[union-attr]
    assert call.input == (
        "import matplotlib.pyplot as plt\nprint(sum(range(10)))\nplt.plot([1,2,3]); plt.show()"
    )
    outputs = call.outputs
    assert outputs[0].logs == "45\n"  # type: ignore[union-attr]
    image_id = outputs[1].image.file_id  # type: ignore[union-attr]
    assert client.files.retrieve(image_id).purpose == "assistants_output"
    assert client.files.content(image_id).read().startswith(PNG_SIGNATURE)

    message = client.beta.threads.messages.list(thread_id=thread.id, limit=1).data[0]
    assert message.content[0].image_file.file_id == image_id  # type: ignore[union-attr]
    text = message.content[1].text  # type: ignore[union-attr]
    annotation = text.annotations[0]
    assert annotation.type == "file_path"
    assert text.value[annotation.start_index : annotation.end_index] == "sandbox:/mnt/data/plot.png"
    assert client.files.content(annotation.file_path.file_id).read() == linked  # type: ignore[union-attr]


def test_sdk_stream_helpers_see_code_and_streamed_logs(start_server: Start) -> None:
    client: openai.OpenAI = client_for(start_server([scenario()], code_interpreter=True))
    assistant = client.beta.assistants.create(model="replay", tools=[{"type": "code_interpreter"}])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Plot it"}])
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
        stream.until_done()
        steps = stream.get_final_run_steps()
    code = steps[0].step_details.tool_calls[0].code_interpreter  # type: ignore[union-attr]
    assert code.input.startswith("import matplotlib")
    assert [o.type for o in code.outputs] == ["logs", "image"]
    assert code.outputs[0].logs == "45\n"  # type: ignore[union-attr]


def wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> bool:
    """Check ``condition`` until it holds or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_server_warms_the_pool_at_start_and_closes_the_sandbox_on_stop(
    start_server: Start, tmp_path: Path
) -> None:
    sandbox = KernelSandbox(tmp_path / "sandbox", preload=())
    handle = start_server(sandbox=sandbox)
    assert wait_for(lambda: len(sandbox.kernel_pids()) == 1)  # started by the server
    (pid,) = sandbox.kernel_pids()
    handle.stop()
    assert sandbox.kernel_pids() == []
    with contextlib.suppress(psutil.NoSuchProcess):
        assert psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def code_run(client: openai.OpenAI) -> tuple[openai.types.beta.threads.Run, list[str]]:
    """Run the scenario; returns the run and its steps' statuses."""
    assistant = client.beta.assistants.create(model="replay", tools=[{"type": "code_interpreter"}])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Plot it"}])
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
        stream.until_done()
        run = stream.get_final_run()
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data
    return run, [s.status for s in steps]


def test_a_kernel_that_cannot_start_fails_the_run_cleanly(
    start_server: Start, tmp_path: Path
) -> None:
    # A real kernel that dies at start-up under a 30 MiB memory limit: "unavailable".
    sandbox = KernelSandbox(
        tmp_path / "sandbox", pool_size=0, preload=(), memory_limit_bytes=30 * 1024**2
    )
    run, statuses = code_run(client_for(start_server([scenario()], sandbox=sandbox)))
    assert run.status == "failed"
    assert run.last_error is not None
    assert run.last_error.message.startswith("The code interpreter could not start a Python kernel")
    assert statuses == ["failed"]


def test_a_sandbox_that_raises_fails_the_run_with_the_error(start_server: Start) -> None:
    run, statuses = code_run(client_for(start_server([scenario()], sandbox=BrokenSandbox())))
    assert run.status == "failed"
    assert run.last_error is not None
    assert "The code interpreter failed: OSError('sandbox disk is gone')" in run.last_error.message
    assert statuses == ["failed"]


class TextDeltas(openai.AssistantEventHandler):
    """What an SDK user's ``on_text_delta`` receives."""

    def __init__(self) -> None:
        super().__init__()
        self.deltas: list[openai.types.beta.threads.TextDelta] = []

    def on_text_delta(self, delta: openai.types.beta.threads.TextDelta, snapshot: object) -> None:
        self.deltas.append(delta)


def test_on_text_delta_gets_text_with_the_annotation_of_a_link_split_across_chunks(
    start_server: Start,
) -> None:
    save = {
        "tool_calls": [
            {
                "type": "code_interpreter",
                "input": "open('/mnt/data/out.csv', 'w').write('a,b\\n1,2\\n')",
            }
        ]
    }
    answer = {"text": ["Saved ", "[the table](sandbox:/mnt", "/data/out.csv", ") for you."]}
    client = client_for(
        start_server([{"user": "Save it", "turns": [save, answer]}], code_interpreter=True)
    )
    assistant = client.beta.assistants.create(model="replay", tools=[{"type": "code_interpreter"}])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Save it"}])
    handler = TextDeltas()
    with client.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant.id, event_handler=handler
    ) as stream:
        stream.until_done()

    values = [d.value for d in handler.deltas]
    assert None not in values  # a user printing delta.value never prints "None"
    assert "".join(values) == "Saved [the table](sandbox:/mnt/data/out.csv) for you."  # type: ignore[arg-type]
    (linked,) = [d for d in handler.deltas if d.annotations]
    (annotation,) = linked.annotations  # type: ignore[misc]
    assert annotation.text in linked.value  # type: ignore[operator]
    assert annotation.text == "sandbox:/mnt/data/out.csv"
    assert annotation.start_index == len("Saved [the table](")
    assert client.files.content(annotation.file_path.file_id).read() == b"a,b\n1,2\n"  # type: ignore[union-attr]


def test_files_the_code_writes_are_attached_to_the_answer(start_server: Start) -> None:
    code = (
        "import os\n"
        "open('/mnt/data/summary.csv', 'w').write('year,total\\n2024,691990\\n')\n"
        "os.makedirs('/mnt/data/out', exist_ok=True)\n"
        "open('/mnt/data/out/report.txt', 'w').write('ok')\n"
        "open('/mnt/data/sales.csv').read()\n"
    )
    entry = {
        "user": "Summarise",
        "turns": [{"tool_calls": [{"type": "code_interpreter", "input": code}]}, {"text": "Done."}],
    }
    client = client_for(start_server([entry], code_interpreter=True))
    upload = client.files.create(file=("sales.csv", b"month,revenue\n"), purpose="assistants")
    assistant = client.beta.assistants.create(model="replay", tools=[{"type": "code_interpreter"}])
    attach: Any = [{"file_id": upload.id, "tools": [{"type": "code_interpreter"}]}]
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "Summarise", "attachments": attach}]
    )
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed"
    answer = client.beta.threads.messages.list(thread_id=thread.id, limit=1).data[0]
    made = {client.files.retrieve(a.file_id).filename: a for a in answer.attachments or ()}
    assert sorted(made) == ["report.txt", "summary.csv"]  # the input sales.csv is not offered
    summary = made["summary.csv"].file_id or ""
    assert client.files.content(summary).read() == b"year,total\n2024,691990\n"
    assert client.files.retrieve(summary).purpose == "assistants_output"


def test_a_file_the_code_writes_is_offered_however_many_inputs_the_thread_has(
    start_server: Start,
) -> None:
    code = "open('/mnt/data/result.csv', 'w').write('n\\n1\\n')\n"
    entry = {
        "user": "Combine",
        "turns": [{"tool_calls": [{"type": "code_interpreter", "input": code}]}, {"text": "Done."}],
    }
    client = client_for(start_server([entry], code_interpreter=True))
    attach: Any = []
    for i in range(25):  # more inputs than the 20 files one execution may offer
        upload = client.files.create(file=(f"part{i:02}.csv", b"n\n"), purpose="assistants")
        attach.append({"file_id": upload.id, "tools": [{"type": "code_interpreter"}]})
    assistant = client.beta.assistants.create(model="replay", tools=[{"type": "code_interpreter"}])
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "Combine", "attachments": attach}]
    )
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed"
    answer = client.beta.threads.messages.list(thread_id=thread.id, limit=1).data[0]
    names = [client.files.retrieve(a.file_id).filename for a in answer.attachments or ()]
    assert names == ["result.csv"]
