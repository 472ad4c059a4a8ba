"""Translate Chat Completions stream chunks (parsed JSON dicts) into model chunks.

Liberal in what it accepts, because providers differ: ``tool_calls`` sent whole
in one chunk, calls without ``index`` (matched by ``id``), arguments sent as an
object instead of text, ``finish_reason: stop`` next to tool calls, no
``usage``, content as a string or a list of parts, reasoning as
``reasoning_content`` or ``reasoning``, a plain (non-streamed) completion.
Strict in one thing: a turn ends only when the provider named a finish reason.

Whatever the provider said that the next request must carry back (its tool-call
ids, ``reasoning_content``, ``extra_content``, unknown keys) is collected into
the turn's ``TurnEcho``.

>>> translator = StreamTranslator(code_tool="python")
>>> translator.feed({"choices": [{"delta": {"content": "Hi"}, "finish_reason": "stop"}]})
[TextChunk(text='Hi')]
>>> translator.finish("http://127.0.0.1:11434/v1#llama3.1").finish
'stop'
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from asst_magic.server.models.base import (
    Chunk,
    ReasoningChunk,
    TextChunk,
    ToolCallChunk,
    ToolCallStart,
    TurnEcho,
    TurnEnd,
    Usage,
)
from asst_magic.server.models.partial_json import StringFieldDecoder

__all__ = ["StreamTranslator", "completion_as_chunk", "merge_delta"]

Finish = Literal["stop", "tool_calls", "length", "other"]
_FINISH: dict[str, Finish] = {
    "stop": "stop",
    "eos": "stop",  # some local servers
    "end_turn": "stop",
    "length": "length",
    "max_tokens": "length",
    "model_length": "length",  # Mistral: the context window is full
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "tool_use": "tool_calls",
}
# Delta keys the bridge understands itself; every other key is the provider's, echoed back.
_OWN_KEYS = frozenset({"role", "content", "refusal", "tool_calls", "function_call", "annotations"})
_CALL_KEYS = frozenset({"index", "id", "type", "function"})
_REASONING_KEYS = ("reasoning_content", "reasoning")
# Keys that name a thing rather than carry streamed text: a repeat replaces, never appends.
_NAME_KEYS = frozenset({"index", "id", "type", "format", "name", "role", "object", "status"})


def merge_delta(into: dict[str, Any], delta: dict[str, Any]) -> None:
    """Accumulate a streamed delta: text appends, dicts merge, lists merge by ``index``.

    >>> seen = {}
    >>> merge_delta(seen, {"reasoning": "Let"}); merge_delta(seen, {"reasoning": " me"})
    >>> seen
    {'reasoning': 'Let me'}
    """
    for key, value in delta.items():
        if value is None:
            continue
        old = into.get(key)
        if isinstance(old, str) and isinstance(value, str) and key not in _NAME_KEYS:
            into[key] = old + value
        elif isinstance(old, dict) and isinstance(value, dict):
            merge_delta(old, value)
        elif isinstance(old, list) and isinstance(value, list):
            _merge_list(old, value)
        else:
            into[key] = json.loads(json.dumps(value))  # a copy: later merges must not alias


def _merge_list(old: list[Any], items: list[Any]) -> None:
    for item in items:
        index = item.get("index") if isinstance(item, dict) else None
        same = [o for o in old if isinstance(o, dict) and o.get("index") == index]
        match = same[0] if same and index is not None else None
        if match is None:
            old.append(json.loads(json.dumps(item)))
        else:
            merge_delta(match, item)


@dataclass
class _Call:
    """One tool call being streamed, under the index the engine sees."""

    index: int
    id: str = ""
    name: str = ""
    pending: list[str] = field(default_factory=list)  # arguments that arrived before the name
    code: StringFieldDecoder | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # provider keys (extra_content, ...)

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

    def echo(self) -> dict[str, Any]:
        """The provider's id and extra keys, as the next request must carry them."""
        return {"id": self.id, **self.extra} if self.id else dict(self.extra)


class StreamTranslator:
    """Feed parsed stream chunks in order; ``finish`` returns the closing ``TurnEnd``."""

    def __init__(self, code_tool: str | None) -> None:
        self._code_tool = code_tool  # the function name that means "code interpreter"
        self._calls: list[_Call] = []
        self._by_key: dict[object, _Call] = {}
        self._fields: dict[str, Any] = {}
        self.finish_reason: str | None = None
        self.produced = False  # any text or call arrived
        self._usage: Usage | None = None

    def feed(self, chunk: dict[str, Any]) -> list[Chunk]:
        """The model chunks carried by one stream chunk."""
        usage = chunk.get("usage")
        groq = chunk.get("x_groq")
        if not isinstance(usage, dict) and isinstance(groq, dict):
            usage = groq.get("usage")  # Groq's last chunk carries usage here
        if isinstance(usage, dict):
            self._usage = _usage(usage)
        out: list[Chunk] = []
        for choice in chunk.get("choices") or ():
            if isinstance(choice, dict) and choice.get("index", 0) == 0:
                self._on_choice(choice, out)
        self.produced = self.produced or any(not isinstance(c, ReasoningChunk) for c in out)
        return out

    def closing_chunks(self) -> list[Chunk]:
        """The calls' last decoded pieces."""
        return [chunk for call in self._calls for chunk in call.close(self._code_tool)]

    def finish(self, source: str) -> TurnEnd:
        """The ``TurnEnd``: how the provider finished, usage, and what to echo to ``source``."""
        reason = self.finish_reason or ""
        finish: Finish = _FINISH.get(reason, "other")
        if finish in ("stop", "tool_calls"):
            finish = "tool_calls" if self._calls else "stop"
        calls = {c.index: c.echo() for c in self._calls if c.echo()}
        echo = TurnEcho(source, self._fields, calls) if self._fields or calls else None
        return TurnEnd(finish, self._usage, reason if finish == "other" else None, echo)

    def _on_choice(self, choice: dict[str, Any], out: list[Chunk]) -> None:
        delta = choice.get("delta") or choice.get("message") or {}
        if not isinstance(delta, dict):
            delta = {}
        for key in ("content", "refusal"):
            self._on_content(delta.get(key), out)
        for key in _REASONING_KEYS:
            text = delta.get(key)
            if isinstance(text, str) and text:
                out.append(ReasoningChunk(text))
        merge_delta(self._fields, {k: v for k, v in delta.items() if k not in _OWN_KEYS})
        for call in delta.get("tool_calls") or ():
            if isinstance(call, dict):
                self._on_tool_call(call, out)
        if choice.get("finish_reason"):
            self.finish_reason = str(choice["finish_reason"])

    def _on_content(self, content: Any, out: list[Chunk]) -> None:
        """Text from a string, or from a list of parts (text, refusal, Magistral's thinking)."""
        if isinstance(content, str):
            if content:
                out.append(TextChunk(content))
            return
        if not isinstance(content, list):
            return
        for part in content:
            if isinstance(part, str):
                self._on_content(part, out)
            elif isinstance(part, dict) and part.get("type") == "thinking":
                thought = _parts_text(part.get("thinking"))
                if thought:
                    out.append(ReasoningChunk(thought))
            elif isinstance(part, dict):
                self._on_content(part.get("text") or part.get("refusal"), out)

    def _on_tool_call(self, delta: dict[str, Any], out: list[Chunk]) -> None:
        call = self._call_for(delta)
        merge_delta(call.extra, {k: v for k, v in delta.items() if k not in _CALL_KEYS})
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
            if call_id and not known.id:
                known.id = call_id
            return known
        call = _Call(len(self._calls), id=call_id)
        self._calls.append(call)
        self._by_key[key] = call
        return call


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


def _parts_text(parts: Any) -> str:
    if isinstance(parts, str):
        return parts
    if isinstance(parts, list):
        return "".join(_parts_text(p.get("text") if isinstance(p, dict) else p) for p in parts)
    return ""


def _has_name(delta: dict[str, Any]) -> bool:
    return bool((delta.get("function") or {}).get("name"))


def _usage(usage: dict[str, Any]) -> Usage:
    return Usage(
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
    )
