"""Translate Chat Completions stream chunks (parsed JSON dicts) into model chunks.

Liberal in what it accepts, because local servers differ: ``tool_calls`` sent
whole in one chunk, calls without ``index`` (matched by ``id``), arguments sent
as an object instead of text, ``finish_reason: stop`` next to tool calls, no
``usage``, a plain (non-streamed) completion.

>>> translator = StreamTranslator(code_tool="python")
>>> translator.feed({"choices": [{"delta": {"content": "Hi"}, "finish_reason": "stop"}]})
[TextChunk(text='Hi')]
>>> translator.finish()
[TurnEnd(finish='stop', usage=None)]
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from asst_magic.server.models.base import (
    Chunk,
    TextChunk,
    ToolCallChunk,
    ToolCallStart,
    TurnEnd,
    Usage,
)
from asst_magic.server.models.partial_json import StringFieldDecoder

__all__ = ["StreamTranslator", "completion_as_chunk"]

Finish = Literal["stop", "tool_calls", "length"]
_FINISH: dict[str, Finish] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    # Cut short by the provider's filter: the answer is incomplete, as with length.
    "content_filter": "length",
}


@dataclass
class _Call:
    """One tool call being streamed, under the index the engine sees."""

    index: int
    id: str = ""
    name: str = ""
    pending: list[str] = field(default_factory=list)  # arguments that arrived before the name
    code: StringFieldDecoder | None = None

    @property
    def started(self) -> bool:
        return bool(self.name)

    def start(self, name: str, code_tool: str | None) -> list[Chunk]:
        self.name = name
        if name == code_tool:
            self.code = StringFieldDecoder("code")
            head: Chunk = ToolCallStart(self.index, "code_interpreter")
        else:
            head = ToolCallStart(self.index, "function", name)
        pending, self.pending = self.pending, []
        return [head, *(chunk for text in pending for chunk in self.arguments(text))]

    def arguments(self, text: str) -> list[Chunk]:
        if self.code is not None:
            text = self.code.feed(text)
        return [ToolCallChunk(self.index, text)] if text else []

    def close(self, code_tool: str | None) -> list[Chunk]:
        if not self.started:
            if not self.pending:
                return []
            # A call whose name never came: pass it on so the run shows the model's mistake.
            return self.start("", code_tool)
        rest = self.code.finish() if self.code is not None else ""
        return [ToolCallChunk(self.index, rest)] if rest else []


class StreamTranslator:
    """Feed parsed stream chunks in order; ``finish`` returns the closing chunks."""

    def __init__(self, code_tool: str | None) -> None:
        self._code_tool = code_tool  # the function name that means "code interpreter"
        self._calls: list[_Call] = []
        self._by_key: dict[object, _Call] = {}
        self._finish_reason: str | None = None
        self._usage: Usage | None = None

    def feed(self, chunk: dict[str, Any]) -> list[Chunk]:
        """The model chunks carried by one stream chunk."""
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self._usage = _usage(usage)
        out: list[Chunk] = []
        for choice in chunk.get("choices") or ():
            if isinstance(choice, dict) and choice.get("index", 0) == 0:
                self._on_choice(choice, out)
        return out

    def finish(self) -> list[Chunk]:
        """Flush the calls' last decoded pieces, then the ``TurnEnd``."""
        out = [chunk for call in self._calls for chunk in call.close(self._code_tool)]
        return [*out, TurnEnd(self._finish(), self._usage)]

    def _on_choice(self, choice: dict[str, Any], out: list[Chunk]) -> None:
        delta = choice.get("delta") or choice.get("message") or {}
        for key in ("content", "refusal"):
            text = delta.get(key)
            if isinstance(text, str) and text:
                out.append(TextChunk(text))
        for call in delta.get("tool_calls") or ():
            if isinstance(call, dict):
                self._on_tool_call(call, out)
        if choice.get("finish_reason"):
            self._finish_reason = str(choice["finish_reason"])

    def _on_tool_call(self, delta: dict[str, Any], out: list[Chunk]) -> None:
        call = self._call_for(delta)
        function = delta.get("function") or {}
        name = function.get("name")
        if isinstance(name, str) and name and not call.started:
            out.extend(call.start(name, self._code_tool))
        arguments = function.get("arguments")
        if arguments is not None and not isinstance(arguments, str):
            arguments = json.dumps(arguments)  # some servers send the parsed object
        if not arguments:
            return
        if call.started:
            out.extend(call.arguments(arguments))
        else:
            call.pending.append(arguments)

    def _call_for(self, delta: dict[str, Any]) -> _Call:
        """The call a delta continues, or a new one (by ``index``, else ``id``, else the last)."""
        call_id = delta.get("id") or ""
        index = delta.get("index")
        key: object = ("index", index) if isinstance(index, int) else ("id", call_id)
        known = self._by_key.get(key)
        if key == ("id", ""):
            # Neither index nor id: a name starts a new call, anything else continues the last.
            known = self._calls[-1] if self._calls and not _has_name(delta) else None
        if known is not None and not (call_id and known.id and call_id != known.id):
            return known
        call = _Call(len(self._calls), id=call_id)
        self._calls.append(call)
        self._by_key[key] = call
        return call

    def _finish(self) -> Finish:
        reason = _FINISH.get(self._finish_reason or "", "stop")
        if reason == "length":
            return "length"
        return "tool_calls" if self._calls else "stop"


def completion_as_chunk(completion: dict[str, Any]) -> dict[str, Any]:
    """A whole (non-streamed) completion as one stream chunk, for servers that ignore ``stream``."""
    choices = [
        {
            "index": c.get("index", 0),
            "delta": c.get("message") or {},
            "finish_reason": c.get("finish_reason"),
        }
        for c in completion.get("choices") or ()
        if isinstance(c, dict)
    ]
    return {"choices": choices, "usage": completion.get("usage")}


def _has_name(delta: dict[str, Any]) -> bool:
    return bool((delta.get("function") or {}).get("name"))


def _usage(usage: dict[str, Any]) -> Usage:
    return Usage(
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
    )
