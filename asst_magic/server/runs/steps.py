"""Writers for a run's steps: the assistant message being streamed, and a tool-call step.

Each writer creates its objects (committed before their ``created`` events),
streams deltas shaped as OpenAI's, and finishes its objects in one commit
before the events announcing the finish.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from asst_magic.server import objects
from asst_magic.server.ids import new_id
from asst_magic.server.runs.links import LinkBuffer, link_spans
from asst_magic.server.runs.streams import REASONING_EVENT, SLOT, DeltaTemplate, EventStream
from asst_magic.server.store import Store
from asst_magic.server.wire import encode_event_safely

__all__ = ["SAVE_EVERY", "MessageWriter", "RunContext", "ToolCall", "ToolStepWriter"]

Obj = dict[str, Any]

SAVE_EVERY = 1.0  # seconds between saves of a message's streamed text (a crash keeps it)


@dataclass
class RunContext:
    """What every writer of one run shares: the run, the store, the current response stream."""

    run: Obj
    store: Store
    stream: EventStream | None = None
    clock: Callable[[], float] = time.time

    def now(self) -> int:
        """Seconds since the epoch, as API timestamps are."""
        return int(self.clock())

    def emit(self, event: str, data: Obj) -> None:
        """Send one event to the listening response, if any."""
        if self.stream is not None:
            self.stream.push(encode_event_safely(event, data))

    def reasoning(self, text: str) -> None:
        """Send a piece of the model's reasoning, only to a response that asked for it."""
        if self.stream is not None and self.stream.reasoning:
            data = {"object": REASONING_EVENT, "run_id": self.run["id"], "delta": {"text": text}}
            self.stream.push(encode_event_safely(REASONING_EVENT, data))

    def push(self, chunk: bytes) -> None:
        """Send one pre-encoded event."""
        if self.stream is not None:
            self.stream.push(chunk)


_CODE_TOOL = {"type": "code_interpreter"}


class MessageWriter:
    """A ``message_creation`` step and its assistant message, streamed as text arrives.

    With ``linked_file`` (the code interpreter's ``sandbox:/mnt/data/NAME`` -> file id,
    or None), the delta holding such a link carries its ``file_path`` annotation, as
    OpenAI's servers send an annotation with the text it covers. ``made``: ids of the
    files the code wrote, attached to the message.
    """

    def __init__(
        self,
        ctx: RunContext,
        image_file_ids: list[str],
        linked_file: Callable[[str], str | None] | None = None,
        made: list[str] | None = None,
    ) -> None:
        self.ctx = ctx
        self._linked_file = linked_file
        self._links = LinkBuffer() if linked_file is not None else None
        self.annotations: list[Obj] = []
        self._length = 0  # characters of text sent so far
        run, now = ctx.run, ctx.now()
        message_id = new_id("msg_")
        self.step = objects.step_object(
            new_id("step_"),
            run,
            now,
            "message_creation",
            {"message_creation": {"message_id": message_id}},
        )
        self.message = objects.message_object(
            message_id,
            run["thread_id"],
            now,
            role="assistant",
            content=[],
            status="in_progress",
            assistant_id=run["assistant_id"],
            run_id=run["id"],
            # Files the code wrote to /mnt/data, as OpenAI's code interpreter attaches them.
            attachments=[{"file_id": f, "tools": [_CODE_TOOL]} for f in made or ()],
        )
        self.images = [{"type": "image_file", "image_file": {"file_id": f}} for f in image_file_ids]
        self.text_index = len(self.images)
        self.parts: list[str] = []
        self._later = DeltaTemplate("thread.message.delta", self._delta({"value": SLOT}))
        self._saved_at = ctx.clock()

    def open(self) -> None:
        """Commit the step and message, then announce them (and any images)."""
        with self.ctx.store.transaction():
            self.ctx.store.put("step", self.step)
            self.ctx.store.put("message", self.message)
        for event in ("thread.run.step.created", "thread.run.step.in_progress"):
            self.ctx.emit(event, self.step)
        for event in ("thread.message.created", "thread.message.in_progress"):
            self.ctx.emit(event, self.message)
        for index, image in enumerate(self.images):
            self.ctx.emit("thread.message.delta", self._delta_at(index, image))

    def append(self, text: str) -> None:
        """Stream one piece of text (the first piece carries ``annotations: []``)."""
        if self._links is None:
            self._send(text)
        else:
            self._send_linked(self._links.feed(text), annotate=True)

    def _send(self, text: str, annotations: list[Obj] | None = None) -> None:
        if self.parts and not annotations:
            self.ctx.push(self._later.render(text))
        else:
            fields = {"value": text, "annotations": annotations or []}
            self.ctx.emit("thread.message.delta", self._delta(fields))
        self.parts.append(text)
        self._length += len(text)
        if self.ctx.clock() - self._saved_at >= SAVE_EVERY:
            self._save_progress()

    def _save_progress(self) -> None:
        """Store the text so far (still ``in_progress``): at most one write per ``SAVE_EVERY``."""
        self._saved_at = self.ctx.clock()
        progress = {**self.message, "content": [*self.images, objects.text_block(self.text)]}
        self.ctx.store.put("message", progress)

    def _send_linked(self, text: str, *, annotate: bool) -> None:
        """Send ``text`` with the ``file_path`` annotations of the files it links."""
        if text:
            self._send(text, self._annotations_in(text) if annotate else None)

    def _annotations_in(self, text: str) -> list[Obj]:
        """Annotations (with their ``index``) for links in ``text`` to files that exist."""
        assert self._linked_file is not None
        found = []
        for start, end in link_spans(text):
            file_id = self._linked_file(text[start:end])
            if file_id is None:
                continue
            annotation = {
                "type": "file_path",
                "text": text[start:end],
                "start_index": self._length + start,
                "end_index": self._length + end,
                "file_path": {"file_id": file_id},
            }
            found.append({"index": len(self.annotations), **annotation})
            self.annotations.append(annotation)
        return found

    @property
    def text(self) -> str:
        """The text so far."""
        return "".join(self.parts)

    def finish(
        self,
        status: str,
        usage: Obj | None,
        *,
        step_status: str = "completed",
        reason: str = "max_tokens",
    ) -> None:
        """Send any text held back, commit the final message and step, then announce them."""
        if self._links is not None:
            # A link cut off by a length limit or a cancel is not annotated.
            self._send_linked(self._links.flush(), annotate=status == "completed")
        now = self.ctx.now()
        content = list(self.images)
        if self.parts or not content:
            content.append(objects.text_block(self.text, self.annotations))
        self.message.update(content=content, status=status)
        if status == "completed":
            self.message["completed_at"] = now
        else:
            self.message.update(incomplete_at=now, incomplete_details={"reason": reason})
        finish_step(self.step, step_status, now, usage, self.ctx.run.get("last_error"))
        with self.ctx.store.transaction():
            self.ctx.store.put("message", self.message)
            self.ctx.store.put("step", self.step)
        self.ctx.emit(f"thread.message.{status}", self.message)
        self.ctx.emit(f"thread.run.step.{step_status}", self.step)

    def _delta(self, text: Obj) -> Obj:
        return self._delta_at(self.text_index, {"type": "text", "text": text})

    def _delta_at(self, index: int, part: Obj) -> Obj:
        return {
            "id": self.message["id"],
            "object": "thread.message.delta",
            "delta": {"content": [{"index": index, **part}]},
        }


@dataclass
class ToolCall:
    """One call being streamed: code for the interpreter, or a function's arguments."""

    index: int
    type: str
    name: str | None
    id: str = field(default_factory=lambda: new_id("call_"))
    pieces: list[str] = field(default_factory=list)
    outputs: list[Obj] = field(default_factory=list)
    output: str | None = None

    @property
    def text(self) -> str:
        """The code, or the arguments JSON."""
        return "".join(self.pieces)

    def as_object(self) -> Obj:
        """The call as a step's ``tool_calls`` entry."""
        if self.type == "function":
            function = {"name": self.name, "arguments": self.text, "output": self.output}
            return {"id": self.id, "type": "function", "function": function}
        interpreter = {"input": self.text, "outputs": self.outputs}
        return {"id": self.id, "type": "code_interpreter", "code_interpreter": interpreter}

    def required(self) -> Obj:
        """The call as ``required_action.submit_tool_outputs.tool_calls`` lists it."""
        function = {"name": self.name, "arguments": self.text}
        return {"id": self.id, "type": "function", "function": function}


class ToolStepWriter:
    """A ``tool_calls`` step whose calls stream in as step deltas."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.step = objects.step_object(
            new_id("step_"), ctx.run, ctx.now(), "tool_calls", {"tool_calls": []}
        )
        self.calls: list[ToolCall] = []
        self.usage: Obj | None = None

    def open(self) -> None:
        """Commit the step, then announce it."""
        self.ctx.store.put("step", self.step)
        for event in ("thread.run.step.created", "thread.run.step.in_progress"):
            self.ctx.emit(event, self.step)

    def start(self, index: int, kind: str, name: str | None) -> ToolCall:
        """A new call: its first delta carries the id and empty fields."""
        call = ToolCall(index, kind, name)
        self.calls.append(call)
        if kind == "function":
            body: Obj = {"function": {"name": name, "arguments": "", "output": None}}
        else:
            body = {"code_interpreter": {"input": "", "outputs": []}}
        self._delta({"index": index, "id": call.id, "type": kind, **body})
        return call

    def append(self, index: int, text: str) -> None:
        """Stream a piece of code or arguments."""
        call = self.call(index)
        call.pieces.append(text)
        key, field_name = (
            ("function", "arguments") if call.type == "function" else ("code_interpreter", "input")
        )
        self._delta({"index": index, "type": call.type, key: {field_name: text}})

    def output(self, call: ToolCall, entry: Obj, *, extend_logs: bool) -> None:
        """Stream one code-interpreter output (logs extend the previous logs entry)."""
        if extend_logs and call.outputs and call.outputs[-1]["type"] == "logs":
            call.outputs[-1]["logs"] += entry["logs"]
        else:
            call.outputs.append(dict(entry))
        index = len(call.outputs) - 1
        body = {"outputs": [{"index": index, **entry}]}
        self._delta({"index": call.index, "type": "code_interpreter", "code_interpreter": body})

    def call(self, index: int) -> ToolCall:
        """The call at ``index``."""
        for call in self.calls:
            if call.index == index:
                return call
        raise KeyError(index)

    def sync(self) -> None:
        """Put the calls as they are now into the step object (not yet committed)."""
        self.step["step_details"]["tool_calls"] = [c.as_object() for c in self.calls]

    def finish(self, status: str, last_error: Obj | None = None) -> None:
        """Commit the finished step, then announce it."""
        self.sync()
        finish_step(self.step, status, self.ctx.now(), self.usage, last_error)
        self.ctx.store.put("step", self.step)
        self.ctx.emit(f"thread.run.step.{status}", self.step)

    def _delta(self, call: Obj) -> None:
        delta = {"step_details": {"type": "tool_calls", "tool_calls": [call]}}
        data = {"id": self.step["id"], "object": "thread.run.step.delta", "delta": delta}
        self.ctx.emit("thread.run.step.delta", data)


def finish_step(
    step: Obj, status: str, now: int, usage: Obj | None, last_error: Obj | None = None
) -> None:
    """Set a step's final status and the matching timestamp."""
    step["status"] = status
    stamp = {"completed": "completed_at", "cancelled": "cancelled_at", "failed": "failed_at"}
    if status in stamp:
        step[stamp[status]] = now
    if status in ("failed", "expired"):
        step["last_error"] = last_error
    if status == "completed":
        step["usage"] = usage
