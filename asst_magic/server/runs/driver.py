"""One run's life: turns of the model, tool calls, and the run's status changes.

Every status change is committed to the store before the event announcing it
is pushed to the listening response (if any).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from asst_magic.server import objects
from asst_magic.server.code_interpreter.sandbox import Sandbox
from asst_magic.server.models import ModelRegistry
from asst_magic.server.models.base import (
    ModelError,
    ReasoningChunk,
    TextChunk,
    ToolCallChunk,
    ToolCallStart,
    TurnEnd,
    Usage,
)
from asst_magic.server.runs.steps import MessageWriter, RunContext, ToolCall, ToolStepWriter
from asst_magic.server.runs.streams import EventStream, closing
from asst_magic.server.runs.tooling import CodeRunner, ToolFailure, build_request
from asst_magic.server.runs.turns import save_turn
from asst_magic.sse import encode_error

__all__ = ["RunDriver"]

log = logging.getLogger(__name__)
Obj = dict[str, Any]

_YIELD_EVERY = 64  # chunks between yields to the event loop, so other requests get served
_FIRST_FLUSH = 0.1  # seconds a run waits at most for its first events to reach the client


class RunDriver:
    """Drives one run from queued to requires_action or a terminal status."""

    def __init__(self, ctx: RunContext, models: ModelRegistry, sandbox: Sandbox | None) -> None:
        self.ctx = ctx
        self.models = models
        self.code = CodeRunner(ctx, sandbox)
        self.turn_index = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.task: asyncio.Task[None] | None = None
        self.cancel_requested = False
        self.expire_requested = False  # past expires_at: end as expired, not cancelled
        self.superseded = False  # another replica ended the run: write nothing more
        self.started = False
        self.pending: ToolStepWriter | None = None  # the step waiting for tool outputs
        self._message: MessageWriter | None = None
        self._tools: ToolStepWriter | None = None
        self._images: list[str] = []
        self._turn_messages: list[str] = []  # ids of the messages the current turn wrote

    @property
    def run(self) -> Obj:
        """The run object as last committed."""
        return self.ctx.run

    def live_message(self, message_id: str) -> Obj | None:
        """The message this run is writing, if it is ``message_id`` (the copy it commits)."""
        writer = self._message
        return writer.message if writer is not None and writer.message["id"] == message_id else None

    def attach(self, stream: EventStream | None) -> None:
        """Send this run's events to ``stream`` from now on."""
        self.ctx.stream = stream

    def set_status(self, status: str, event: bool = True, **fields: Any) -> None:
        """Commit a new run status (and fields), then announce it."""
        self.run.update(status=status, **fields)
        self.ctx.store.put("run", self.run)
        if event:
            self.ctx.emit(f"thread.run.{status}", self.run)

    async def drive(self) -> None:
        """The task body: turns until the run pauses or ends; never raises for run errors."""
        self.started = True
        try:
            if self.superseded:
                return
            if self.expire_requested or self.cancel_requested:
                self._stopped()
                return
            self.set_status("in_progress", started_at=self.ctx.now())
            # The client sees the run start before the thread's history is read.
            if self.ctx.stream is not None:
                await self.ctx.stream.flushed(_FIRST_FLUSH)
            while await self._turn():
                self.turn_index += 1
        except asyncio.CancelledError:
            if self.superseded:
                return
            if not (self.cancel_requested or self.expire_requested):
                raise
            self._stopped()
        except ModelError as exc:
            self._fail(exc.code, str(exc))
        except ToolFailure as exc:
            self._fail("server_error", str(exc))
        except Exception as exc:  # a bug of ours: record it, tell the client, keep serving
            log.exception("run %s crashed", self.run["id"])
            self._fail("server_error", f"The local server hit an internal error: {exc!r}")
            self.ctx.push(encode_error(f"internal error in run {self.run['id']}: {exc!r}"))
        finally:
            self._close_stream()

    def _stopped(self) -> None:
        """End a run whose task was stopped: expired wins over a cancel asked meanwhile."""
        if self.expire_requested:
            self._end("expired")
        else:
            self._end("cancelled", cancelled_at=self.ctx.now())

    async def _turn(self) -> bool:
        """One model turn; True when another turn should follow."""
        model = self.models.resolve(self.run["model"])
        request = build_request(self.ctx, self.turn_index, model)
        end = TurnEnd()
        self._tools = None
        self._turn_messages = []
        async with closing(model.turn(request)) as chunks:
            count = 0
            async for chunk in chunks:
                end = self._take(chunk) or end
                count += 1
                if count % _YIELD_EVERY == 0:
                    await self._breathe()
        return await self._after_turn(end)

    def _take(self, chunk: object) -> TurnEnd | None:
        match chunk:
            case TextChunk(text=text):
                self._open_message().append(text)
            case ReasoningChunk(text=text):
                self.ctx.reasoning(text)
            case ToolCallStart(index=index, type=kind, name=name):
                self._close_message_early()
                self._open_tools().start(index, kind, name)
            case ToolCallChunk(index=index, text=text):
                self._open_tools().append(index, text)
            case TurnEnd():
                return chunk
            case _:
                raise TypeError(f"model yielded {chunk!r}")
        return None

    async def _breathe(self) -> None:
        await asyncio.sleep(0)  # never waits for a reader: a slow one is dropped instead

    async def _after_turn(self, end: TurnEnd) -> bool:
        usage = self._count(end.usage)
        tools = self._tools
        self._remember(end, tools)
        if end.finish in ("length", "other"):
            self._stop_incomplete(end, usage)
            return False
        if tools is None or not tools.calls:
            self._finish_message("completed", usage)
            self._end("completed", completed_at=self.ctx.now())
            return False
        self._close_message_early()  # text the model wrote after its calls, in the same turn
        tools.usage = usage
        await self._run_code(tools)
        functions = [c for c in tools.calls if c.type == "function"]
        if functions:
            self._require_action(tools, functions)
            return False
        tools.finish("completed")
        return True

    def _remember(self, end: TurnEnd, tools: ToolStepWriter | None) -> None:
        """Store the turn's record (its messages, and what the provider needs echoed)."""
        calls = tools.calls if tools is not None else []
        anchor = tools.step["id"] if tools is not None and calls else None
        if anchor is None and (end.echo is None or not self._turn_messages):
            return
        call_ids = {call.index: call.id for call in calls}
        anchor = anchor or self._turn_messages[0]
        save_turn(self.ctx.store, self.run, anchor, self._turn_messages, end.echo, call_ids)

    def _stop_incomplete(self, end: TurnEnd, usage: Obj) -> None:
        """The provider stopped short (token limit, filter, a reason of its own)."""
        if end.finish == "length":
            reason, message_reason = "max_completion_tokens", "max_tokens"
        else:
            reason = message_reason = end.reason or "unknown"
        self._finish_message("incomplete", usage, reason=message_reason)
        tools, self._tools = self._tools, None
        if tools is not None:
            why = "hit its token limit" if end.finish == "length" else f"stopped ({reason})"
            error = {
                "code": "server_error",
                "message": f"The model {why} before finishing its tool calls, so none was run.",
            }
            tools.finish("failed", error)
        self._end("incomplete", incomplete_details={"reason": reason})

    async def _run_code(self, tools: ToolStepWriter) -> None:
        for call in tools.calls:
            if call.type == "code_interpreter":
                try:
                    self._images += await self.code.execute(tools, call)
                except ToolFailure as exc:
                    tools.finish("failed", {"code": "server_error", "message": str(exc)})
                    self._tools = None
                    raise

    def _require_action(self, tools: ToolStepWriter, functions: list[ToolCall]) -> None:
        tools.sync()
        self.pending = tools
        self._tools = None
        action = {"tool_calls": [c.required() for c in functions]}
        with self.ctx.store.transaction():
            self.ctx.store.put("step", tools.step)
            self.set_status(
                "requires_action",
                event=False,
                required_action={"type": "submit_tool_outputs", "submit_tool_outputs": action},
            )
        self.ctx.emit("thread.run.requires_action", self.run)

    def resume(self, outputs: dict[str, str]) -> None:
        """Record submitted tool outputs, complete their step, and queue the run again."""
        tools = self.pending
        assert tools is not None
        self.pending = None
        for call in tools.calls:
            if call.id in outputs:
                call.output = outputs[call.id]
        tools.finish("completed")
        self.set_status("queued", required_action=None)
        self.turn_index += 1

    def _open_message(self) -> MessageWriter:
        if self._message is None:
            self._message = MessageWriter(
                self.ctx, self._images, self.code.linked_file_finder(), self.code.take_files()
            )
            self._images = []
            self._message.open()
            self._turn_messages.append(self._message.message["id"])
        return self._message

    def _close_message_early(self) -> None:
        if self._message is not None:
            self._finish_message("completed", objects.usage_object(0, 0))

    def _finish_message(self, status: str, usage: Obj | None, reason: str = "max_tokens") -> None:
        made = self._images or self.code.has_files
        if self._message is None and made and status == "completed":
            self._open_message()
        writer, self._message = self._message, None
        if writer is None:
            return
        writer.finish(status, usage, reason=reason)

    def _open_tools(self) -> ToolStepWriter:
        if self._tools is None:
            self._tools = ToolStepWriter(self.ctx)
            self._tools.open()
        return self._tools

    def _count(self, usage: Usage | None) -> Obj:
        usage = usage or Usage()
        self.prompt_tokens += usage.prompt_tokens
        self.completion_tokens += usage.completion_tokens
        return objects.usage_object(usage.prompt_tokens, usage.completion_tokens)

    def _fail(self, code: str, message: str) -> None:
        error = {"code": code, "message": message}
        self.run["last_error"] = error
        self._end("failed", failed_at=self.ctx.now(), last_error=error)

    def _end(self, status: str, **fields: Any) -> None:
        """Close whatever is open, then commit and announce the run's final status."""
        if status in ("failed", "cancelled", "expired"):
            self._abandon(status, fields.get("last_error"))
        usage = objects.usage_object(self.prompt_tokens, self.completion_tokens)
        if status == "completed":
            fields["expires_at"] = None
        self.set_status(status, usage=usage, required_action=None, **fields)

    def _abandon(self, status: str, last_error: Obj | None) -> None:
        """Mark the open message incomplete and open steps as ``status``."""
        step_status = {"failed": "failed", "cancelled": "cancelled"}.get(status, "expired")
        reason = {"failed": "run_failed", "cancelled": "run_cancelled"}.get(status, "run_expired")
        writer, self._message = self._message, None
        if writer is not None:
            writer.finish("incomplete", None, step_status=step_status, reason=reason)
        for tools in (self._tools, self.pending):
            if tools is not None and tools.step["status"] == "in_progress":
                tools.finish(step_status, last_error)
        self._tools = self.pending = None

    def _close_stream(self) -> None:
        if self.ctx.stream is not None:
            self.ctx.stream.close()
            self.ctx.stream = None

    def end_elsewhere(self, stored: Obj) -> None:
        """Stop a run that another replica ended (``stored``): it is not written again.

        The open message and steps are closed as ``stored`` ended, the task stops
        without a write, and a listening client sees the run's end.
        """
        self.superseded = True
        self.run.clear()
        self.run.update(stored)
        self._abandon(stored["status"], stored.get("last_error"))
        self.ctx.emit(f"thread.run.{stored['status']}", stored)
        if self.task is None:
            self._close_stream()
        elif self.started:
            self.task.cancel()  # drive() returns at once, closing the stream

    def end_now(self, status: str, **fields: Any) -> None:
        """End a run that has no task (waiting for tool outputs): cancel or expire it."""
        self._end(status, **fields)
