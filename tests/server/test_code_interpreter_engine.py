"""How the engine uses a sandbox: streamed outputs, images as files, sandbox: links as files.

The sandbox here is a small scripted implementation of the ``Sandbox`` protocol
(the kernel-backed one is tested in its own module); what is checked is what the
client sees through the real SDK and wire.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import openai
from conftest import client_for, sse_events
from test_conformance import assert_conforms, recorded

from asst_magic.server import ServerHandle
from asst_magic.server.sandbox import ImageOutput, LogsOutput, SandboxFile, SandboxOutput

Start = Callable[..., ServerHandle]
PNG = b"\x89PNG\r\n\x1a\nfake-image"


class ScriptedSandbox:
    """Prints ``logs`` piece by piece, shows one image, and writes ``plot.png`` to the workdir."""

    def __init__(self, root: Path, logs: Sequence[str] = ("45\n",)) -> None:
        self.root = root
        self.logs = logs
        self.calls: list[tuple[str, str, list[str]]] = []
        self.closed = False

    async def execute(
        self, thread_id: str, code: str, files: Sequence[SandboxFile] = ()
    ) -> AsyncIterator[SandboxOutput]:
        self.calls.append((thread_id, code, [f.name for f in files]))
        self.workdir(thread_id).mkdir(parents=True, exist_ok=True)
        (self.workdir(thread_id) / "plot.png").write_bytes(PNG)
        for piece in self.logs:
            yield LogsOutput(piece)
        yield ImageOutput(PNG)

    def workdir(self, thread_id: str) -> Path:
        return self.root / thread_id

    async def aclose(self) -> None:
        self.closed = True


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


def test_code_interpreter_run_streams_outputs_image_and_file_link(
    start_server: Start, tmp_path: Path
) -> None:
    sandbox = ScriptedSandbox(tmp_path / "sandbox")
    handle = start_server([scenario()], sandbox=sandbox)
    client = client_for(handle)
    upload = client.files.create(file=("data.csv", b"x\n1\n"), purpose="assistants")
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
    assert sandbox.calls == [
        (
            thread.id,
            "import matplotlib.pyplot as plt\nprint(sum(range(10)))\nplt.plot([1,2,3]); plt.show()",
            ["data.csv"],
        )
    ]

    run_id = ours[1][1]["id"]
    steps = client.beta.threads.runs.steps.list(run_id, thread_id=thread.id, order="asc").data
    outputs = steps[0].step_details.tool_calls[0].code_interpreter.outputs  # type: ignore[union-attr]
    assert outputs[0].logs == "45\n"  # type: ignore[union-attr]
    image_id = outputs[1].image.file_id  # type: ignore[union-attr]
    assert client.files.retrieve(image_id).purpose == "assistants_output"
    assert client.files.content(image_id).read() == PNG

    message = client.beta.threads.messages.list(thread_id=thread.id, limit=1).data[0]
    assert message.content[0].image_file.file_id == image_id  # type: ignore[union-attr]
    text = message.content[1].text  # type: ignore[union-attr]
    annotation = text.annotations[0]
    assert annotation.type == "file_path"
    assert text.value[annotation.start_index : annotation.end_index] == "sandbox:/mnt/data/plot.png"
    assert client.files.content(annotation.file_path.file_id).read() == PNG  # type: ignore[union-attr]


def test_sdk_stream_helpers_see_code_and_streamed_logs(start_server: Start, tmp_path: Path) -> None:
    sandbox = ScriptedSandbox(tmp_path, logs=("4", "5\n"))
    client: openai.OpenAI = client_for(start_server([scenario()], sandbox=sandbox))
    assistant = client.beta.assistants.create(model="replay", tools=[{"type": "code_interpreter"}])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Plot it"}])
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
        stream.until_done()
        steps = stream.get_final_run_steps()
    code = steps[0].step_details.tool_calls[0].code_interpreter  # type: ignore[union-attr]
    assert code.input.startswith("import matplotlib")
    assert [o.type for o in code.outputs] == ["logs", "image"]
    assert code.outputs[0].logs == "45\n"  # type: ignore[union-attr]


def test_server_closes_its_sandbox_on_stop(start_server: Start, tmp_path: Path) -> None:
    sandbox = ScriptedSandbox(tmp_path)
    start_server(sandbox=sandbox).stop()
    assert sandbox.closed
