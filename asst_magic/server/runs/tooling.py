"""What a run needs around the model: the conversation it sees, and the code interpreter."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from asst_magic.server.code_interpreter.changes import Listing, changed, listing
from asst_magic.server.code_interpreter.compact import compact_logs
from asst_magic.server.code_interpreter.sandbox import ImageOutput, LogsOutput, Sandbox, SandboxFile
from asst_magic.server.models.base import (
    AssistantText,
    ConversationItem,
    ToolCallRecord,
    TurnRequest,
    UserText,
)
from asst_magic.server.runs.steps import RunContext, ToolCall, ToolStepWriter
from asst_magic.server.runs.streams import closing
from asst_magic.server.runs.turns import turns_of

__all__ = [
    "CodeRunner",
    "ToolFailure",
    "build_request",
    "history_window",
    "message_text",
    "run_options",
]

Obj = dict[str, Any]

_MAX_MADE = 20  # files one execution may offer the user
_MAX_MADE_BYTES = 50 * 1024 * 1024

# Outcomes where the interpreter itself failed (not the code): the step fails.
_BROKEN = ("kernel_died", "unavailable")

UNAVAILABLE = (
    "The code interpreter is unavailable on this server (it was started without a sandbox). "
    "Start the server with the code interpreter enabled, or remove the code_interpreter tool "
    "from the assistant."
)


class ToolFailure(Exception):
    """A tool could not run; the step and the run fail with this message."""


def build_request(ctx: RunContext, turn_index: int, model: object = None) -> TurnRequest:
    """The model's view of the run: thread conversation, instructions, tools.

    Only the part of the thread ``model`` can use is read (see ``history_window``),
    newest first, so a run on a long thread costs what the model needs, not the thread.
    """
    run = ctx.run
    return TurnRequest(
        model=run["model"],
        instructions=run["instructions"],
        conversation=tuple(_conversation(ctx, history_window(run, model))),
        tools=tuple(run["tools"]),
        thread_id=run["thread_id"],
        run_id=run["id"],
        turn_index=turn_index,
        temperature=run["temperature"],
        max_completion_tokens=run["max_completion_tokens"],
        options=run_options(run),
    )


def run_options(run: Obj) -> dict[str, Any]:
    """The run's other settings a model may honour; API defaults are left out."""
    options: dict[str, Any] = {"truncation": run.get("truncation_strategy")}
    if run.get("max_prompt_tokens"):
        options["max_prompt_tokens"] = run["max_prompt_tokens"]
    if run.get("tool_choice") not in (None, "auto"):
        options["tool_choice"] = run["tool_choice"]
    if run.get("top_p") not in (None, 1.0):
        options["top_p"] = run["top_p"]
    if run.get("parallel_tool_calls") is False:
        options["parallel_tool_calls"] = False
    if isinstance(run.get("response_format"), dict):
        options["response_format"] = run["response_format"]
    return options


def message_text(message: Obj) -> str:
    """A message's text parts, joined by newlines."""
    parts = [c["text"]["value"] for c in message["content"] if c["type"] == "text"]
    return "\n".join(parts)


def history_window(run: Obj, model: object = None) -> tuple[int | None, int | None]:
    """How much of the thread a turn needs: ``(messages, characters)``; ``None`` is no limit.

    The run's ``last_messages`` truncation bounds the messages. A model says what it
    uses: ``history_messages`` (the replay model matches the last user message), or
    ``context_tokens`` (a chat model's context; its own truncation then picks from a
    window of about 4 characters a token, plus the run's ``max_prompt_tokens`` cap).
    """
    strategy = run.get("truncation_strategy") or {}
    messages = strategy.get("last_messages") if strategy.get("type") == "last_messages" else None
    wanted = getattr(model, "history_messages", None)
    if isinstance(wanted, int):
        messages = min(messages or wanted, wanted)
    tokens = (getattr(model, "context_tokens", None), run.get("max_prompt_tokens"))
    known = [t for t in tokens if isinstance(t, int) and t > 0]
    chars = 4 * min(known) + 4096 if known and wanted is None else None
    return messages, chars


def _conversation(ctx: RunContext, window: tuple[int | None, int | None]) -> list[ConversationItem]:
    """The window of the thread, read newest first, in conversation order."""
    limit, budget = window
    newest: list[Obj] = []
    messages = chars = 0
    cut = False
    for obj in ctx.store.newest(("message", "step"), thread_id=ctx.run["thread_id"]):
        newest.append(obj)
        is_message = obj["object"] == "thread.message"
        messages += is_message
        if budget is not None:  # a count-only window (replay) never sizes what it reads
            chars += len(message_text(obj) if is_message else json.dumps(obj["step_details"]))
        cut = (limit is not None and messages >= limit) or (budget is not None and chars > budget)
        if cut:
            break
    turns = turns_of(ctx.store, newest)
    items: list[ConversationItem] = []
    for obj in reversed(newest):
        turn = turns.get(obj["id"])
        if obj["object"] == "thread.message":
            items.append(_message_item(ctx, obj, turn))
        elif obj["type"] == "tool_calls" and obj["status"] == "completed":
            calls = obj["step_details"]["tool_calls"]
            items.extend(_call_record(c, obj["id"], turn) for c in calls)
    if cut:  # the window starts at a user message, never in the middle of a tool round
        first_user = next((i for i, it in enumerate(items) if isinstance(it, UserText)), 0)
        items = items[first_user:]
    return items


def _message_item(ctx: RunContext, message: Obj, turn: Obj | None) -> ConversationItem:
    text = message_text(message)
    if message["role"] == "assistant":
        return AssistantText(text, message["id"], turn)
    names = []
    for attachment in message["attachments"]:
        file = ctx.store.get("file", attachment["file_id"])
        if file is not None:
            names.append(file["filename"])
    return UserText(text, tuple(names))


def _call_record(call: Obj, step_id: str, turn: Obj | None) -> ToolCallRecord:
    if call["type"] == "function":
        fn = call["function"]
        output = fn["output"] or ""
        return ToolCallRecord(
            call["id"], "function", fn["name"], fn["arguments"], output, step_id, turn
        )
    code = call["code_interpreter"]
    logs = "".join(o.get("logs", "") for o in code["outputs"])
    # The model reads a compact traceback; the step (and the notebook) keep the whole one.
    logs = compact_logs(logs)
    return ToolCallRecord(call["id"], "code_interpreter", None, code["input"], logs, step_id, turn)


class CodeRunner:
    """Runs code_interpreter calls in the sandbox and turns what comes back into outputs."""

    def __init__(self, ctx: RunContext, sandbox: Sandbox | None) -> None:
        self.ctx = ctx
        self.sandbox = sandbox
        self._made: dict[str, str] = {}  # /mnt/data path -> file id, until a message takes them
        self._inputs: list[SandboxFile] | None = None  # read once a run: no message comes mid-run

    async def execute(self, tools: ToolStepWriter, call: ToolCall) -> list[str]:
        """Run ``call``'s code, streaming its outputs; returns the ids of image files made.

        Raises ``ToolFailure`` when the interpreter itself failed (its kernel died
        or could not start): the step keeps the logs saying so, and the run fails.
        """
        if self.sandbox is None:
            raise ToolFailure(UNAVAILABLE)
        thread_id = self.ctx.run["thread_id"]
        images: list[str] = []
        if self._inputs is None:
            self._inputs = self._files()
        inputs = self._inputs
        before = listing(self.sandbox.workdir(thread_id))
        outputs = self.sandbox.execute(thread_id, call.text, inputs)
        try:
            async with closing(outputs) as stream:
                async for output in stream:
                    images += self._output(tools, call, output)
        except ToolFailure:
            raise
        except Exception as exc:
            raise ToolFailure(f"The code interpreter failed: {exc!r}") from exc
        outcome = self.sandbox.last_outcome(thread_id)
        if outcome in _BROKEN:
            raise ToolFailure(_failure(outcome, call))
        self._collect(thread_id, before, {f.name for f in inputs})
        return images

    def _collect(self, thread_id: str, before: Listing, inputs: set[str]) -> None:
        """Store each file the code created or changed in /mnt/data (not the user's inputs)."""
        assert self.sandbox is not None
        root = self.sandbox.workdir(thread_id)
        after = listing(root)
        made = [  # the user's inputs and huge files are skipped first, then the cap applies
            path
            for path in changed(before, after)
            if path not in inputs and after[path][1] <= _MAX_MADE_BYTES
        ]
        for path in made[:_MAX_MADE]:
            file = root / path
            stored = self.ctx.store.add_file(
                file.read_bytes(), file.name, "assistants_output", self.ctx.now()
            )
            self._made[path] = str(stored["id"])

    def take_files(self) -> list[str]:
        """Ids of the files made since the last call: the next message attaches them."""
        made, self._made = list(self._made.values()), {}
        return made

    @property
    def has_files(self) -> bool:
        """Whether files wait for a message to attach them."""
        return bool(self._made)

    def _output(self, tools: ToolStepWriter, call: ToolCall, output: object) -> list[str]:
        if isinstance(output, LogsOutput):
            tools.output(call, {"type": "logs", "logs": output.text}, extend_logs=True)
            return []
        if isinstance(output, ImageOutput):
            name = f"code_interpreter_image_{len(call.outputs)}.png"
            file = self.ctx.store.add_file(output.png, name, "assistants_output", self.ctx.now())
            tools.output(
                call, {"type": "image", "image": {"file_id": file["id"]}}, extend_logs=False
            )
            return [file["id"]]
        raise ToolFailure(f"The code interpreter sent an unknown output {output!r}")

    def linked_file_finder(self) -> Callable[[str], str | None] | None:
        """What turns a ``sandbox:/mnt/data/NAME`` link into a file id; None without a sandbox.

        Each linked file is stored once per message, however often it is linked.
        """
        if self.sandbox is None:
            return None
        uploaded: dict[str, str | None] = {}

        def linked_file(link: str) -> str | None:
            name = unquote(link)
            if name not in uploaded:
                uploaded[name] = self._upload(name)
            return uploaded[name]

        return linked_file

    def _upload(self, link: str) -> str | None:
        """Store the file a ``sandbox:`` link names as an ``assistants_output`` file."""
        assert self.sandbox is not None
        thread_id = self.ctx.run["thread_id"]
        path = self.sandbox.resolve(thread_id, link)
        if path is None:
            return None
        path = path.resolve()  # a symlink must not lead out of the working directory
        if not path.is_relative_to(self.sandbox.workdir(thread_id).resolve()):
            return None
        if not path.is_file():
            return None
        file = self.ctx.store.add_file(
            path.read_bytes(), path.name, "assistants_output", self.ctx.now()
        )
        return str(file["id"])

    def _files(self) -> list[SandboxFile]:
        ids: list[str] = []
        assistant = self.ctx.store.get("assistant", self.ctx.run["assistant_id"]) or {}
        thread = self.ctx.store.get("thread", self.ctx.run["thread_id"]) or {}
        for owner in (assistant, thread):
            resources = owner.get("tool_resources") or {}
            ids += (resources.get("code_interpreter") or {}).get("file_ids", [])
        for message in self.ctx.store.select("message", thread_id=self.ctx.run["thread_id"]):
            if message["role"] != "user":
                continue  # an answer's attachments are files its code made: already there
            for attachment in message["attachments"]:
                kinds = {t.get("type") for t in attachment.get("tools", [])}
                if "code_interpreter" in kinds:
                    ids.append(attachment["file_id"])
        return self._sandbox_files(dict.fromkeys(ids))

    def _sandbox_files(self, ids: dict[str, None]) -> list[SandboxFile]:
        store = self.ctx.store
        found = store.get_many("file", ids)  # one query, not one per attached file
        return [SandboxFile(found[i]["filename"], store.file_path(i)) for i in ids if i in found]


def _failure(outcome: str, call: ToolCall) -> str:
    """The run's ``last_error`` message: the sandbox's own account, and what to do next."""
    logs = "".join(o.get("logs", "") for o in call.outputs)
    lines = [line for line in logs.splitlines() if line.strip()]
    if outcome == "kernel_died":  # the sandbox's note on the death comes last
        detail = lines[-1] if lines else "The Python kernel running this code died."
        return f"{detail} Create a new run to continue."
    detail = lines[0] if lines else "The code interpreter could not start a Python kernel."
    return f"{detail} See the server's log; a new run will try to start a kernel again."
