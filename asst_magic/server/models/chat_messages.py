"""Turn a run's conversation into Chat Completions ``messages`` and ``tools``.

The code interpreter becomes a function tool named ``python`` with one ``code``
argument; user functions are passed as themselves. Earlier tool calls become an
assistant message with ``tool_calls`` followed by one ``tool`` message per call.
When a context budget applies, the oldest turns are dropped first; the system
message, the latest user message and everything after it are always kept, and a
tool call is never separated from its output.

Each assistant turn goes back as the provider sent it when the provider that
answered is the one asked now (``source``): its own tool-call ids and the extra
fields it needs back (``reasoning_content``, ``extra_content`` ...), kept in the
turn record. Calls without a provider id get a 9-letter id derived from the
``call_…`` id, which every provider accepts (Mistral insists on exactly that).
"""

from __future__ import annotations

import hashlib
import json
import re
import string
from collections.abc import Sequence
from typing import Any

from asst_magic.server.models.base import (
    AssistantText,
    ConversationItem,
    ToolCallRecord,
    TurnRequest,
    UserText,
)

__all__ = [
    "CODE_TOOL_NAME",
    "build_messages",
    "build_tools",
    "estimate_tokens",
    "offers_code_interpreter",
    "short_call_id",
]

CODE_TOOL_NAME = "python"
WORKDIR = "/mnt/data"
_NO_OUTPUT = "(no output)"
_SHORT_ID = re.compile(r"[A-Za-z0-9]{9}")
_ALPHABET = string.ascii_letters + string.digits

CODE_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": CODE_TOOL_NAME,
        "description": (
            "Run Python code in a stateful Jupyter kernel (variables persist between calls). "
            f"Files the user attached, and files you write, are in {WORKDIR}. "
            "Use print() to see values; show plots with plt.show(). "
            "Returns what the code printed, or the error traceback."
        ),
        "parameters": {
            "type": "object",
            "properties": {"code": {"type": "string", "description": "The Python code to run."}},
            "required": ["code"],
        },
    },
}

Message = dict[str, Any]


def offers_code_interpreter(request: TurnRequest) -> bool:
    """Whether the run's tools include the code interpreter."""
    return any(tool.get("type") == "code_interpreter" for tool in request.tools)


def build_tools(request: TurnRequest) -> list[dict[str, Any]]:
    """OpenAI tool objects for the request: ``python`` for the code interpreter, functions as is."""
    tools: list[dict[str, Any]] = []
    for tool in request.tools:
        if tool.get("type") == "code_interpreter":
            tools.append(CODE_TOOL)
        elif tool.get("type") == "function":
            tools.append(tool)
    return tools


def build_messages(
    request: TurnRequest, context_tokens: int | None = None, source: str | None = None
) -> list[Message]:
    """The ``messages`` for one turn, truncated to the run's budget when one applies.

    ``source`` names the endpoint asked (``ChatCompletionsModel.source``): turns it
    answered itself go back with its ids and fields.
    """
    groups = _Grouper(request.conversation, source).groups()
    groups = _keep_last_messages(groups, _last_messages_option(request))
    system = [{"role": "system", "content": request.instructions}] if request.instructions else []
    if context_tokens is not None:
        reserve = estimate_tokens(system) + estimate_tokens(build_tools(request))
        reserve += request.max_completion_tokens or 0
        groups = _fit_budget(groups, context_tokens - reserve)
    return system + [message for group in groups for message in group]


def estimate_tokens(value: Any) -> int:
    """A rough token count: characters of the JSON text / 4."""
    return len(json.dumps(value, ensure_ascii=False)) // 4


# ── Grouping: each group is one unit that truncation keeps or drops whole ─────


class _Grouper:
    """Messages grouped by turn: a user message, an answer, or one model turn of tool calls."""

    def __init__(self, conversation: Sequence[ConversationItem], source: str | None) -> None:
        self.items = conversation
        self.source = source
        self.texts = {i.id: i.text for i in conversation if isinstance(i, AssistantText) and i.id}
        # Messages written in a turn that also called tools go back inside that turn's message.
        self.absorbed = {
            message_id
            for item in conversation
            if isinstance(item, ToolCallRecord) and item.turn
            for message_id in item.turn.get("message_ids", ())
        }

    def groups(self) -> list[list[Message]]:
        groups: list[list[Message]] = []
        index = 0
        while index < len(self.items):
            item = self.items[index]
            if isinstance(item, ToolCallRecord):
                end = self._round_end(index)
                groups.append(self._round(index, end, None))
                index = end
            elif isinstance(item, AssistantText) and item.id in self.absorbed:
                index += 1
            elif isinstance(item, AssistantText) and self._is_record(index + 1):
                # Text the model wrote before calling tools in the same turn.
                end = self._round_end(index + 1)
                groups.append(self._round(index + 1, end, item.text))
                index = end
            else:
                groups.append([self._plain(item)])
                index += 1
        return groups

    def _is_record(self, index: int) -> bool:
        return index < len(self.items) and isinstance(self.items[index], ToolCallRecord)

    def _round_end(self, start: int) -> int:
        """The end of the run of records from ``start`` that belong to one step."""
        first = self.items[start]
        assert isinstance(first, ToolCallRecord)
        end = start
        while self._is_record(end):
            record = self.items[end]
            assert isinstance(record, ToolCallRecord)
            if record.step_id != first.step_id:
                break
            end += 1
        return end

    def _round(self, start: int, end: int, text: str | None) -> list[Message]:
        records = [r for r in self.items[start:end] if isinstance(r, ToolCallRecord)]
        turn = records[0].turn or {}
        known = [self.texts[i] for i in turn.get("message_ids", ()) if i in self.texts]
        if known:
            text = "".join(known)
        echo = self._echo(turn)
        calls = [_tool_call(r, echo) for r in records]
        outputs = [
            {"role": "tool", "tool_call_id": _call_id(r, echo), "content": r.output or _NO_OUTPUT}
            for r in records
        ]
        message = {"role": "assistant", "content": text or None, "tool_calls": calls}
        return [{**message, **echo.get("fields", {})}, *outputs]

    def _plain(self, item: ConversationItem) -> Message:
        if isinstance(item, UserText):
            return {"role": "user", "content": _user_content(item)}
        assert isinstance(item, AssistantText)
        fields = self._echo(item.turn or {}).get("fields", {})
        return {"role": "assistant", "content": item.text, **fields}

    def _echo(self, turn: dict[str, Any]) -> dict[str, Any]:
        """The turn's provider echo, when the endpoint asked now is the one that sent it."""
        echo = turn.get("echo")
        if isinstance(echo, dict) and self.source is not None and echo.get("source") == self.source:
            return echo
        return {}


def _user_content(item: UserText) -> str:
    if not item.file_names:
        return item.text
    paths = ", ".join(f"{WORKDIR}/{name}" for name in item.file_names)
    return f"{item.text}\n\n(Attached files, in the code interpreter's working directory: {paths})"


def _tool_call(record: ToolCallRecord, echo: dict[str, Any]) -> dict[str, Any]:
    if record.type == "code_interpreter":
        name, arguments = CODE_TOOL_NAME, json.dumps({"code": record.arguments})
    else:
        name, arguments = record.name or "", record.arguments
    extra = dict(echo.get("calls", {}).get(record.id, {}))
    extra.pop("id", None)
    function = {"name": name, "arguments": arguments}
    return {"id": _call_id(record, echo), "type": "function", "function": function, **extra}


def _call_id(record: ToolCallRecord, echo: dict[str, Any]) -> str:
    """The provider's own id for the call, else a 9-letter id made from ours."""
    provided = echo.get("calls", {}).get(record.id, {}).get("id")
    if isinstance(provided, str) and provided:
        return provided
    return short_call_id(record.id)


def short_call_id(call_id: str) -> str:
    """A stable 9-character ``[A-Za-z0-9]`` id for ``call_id`` (Mistral's required shape).

    >>> short_call_id("call_abcdefghijklmnopqrstuvwx")
    'pqrstuvwx'
    """
    tail = call_id[-9:]
    if _SHORT_ID.fullmatch(tail):
        return tail
    number = int.from_bytes(hashlib.sha256(call_id.encode()).digest()[:8], "big")
    letters = []
    for _ in range(9):
        number, digit = divmod(number, len(_ALPHABET))
        letters.append(_ALPHABET[digit])
    return "".join(letters)


# ── Truncation ───────────────────────────────────────────────────────────────


def _last_messages_option(request: TurnRequest) -> int | None:
    strategy = request.options.get("truncation")
    if isinstance(strategy, dict) and strategy.get("type") == "last_messages":
        count = strategy.get("last_messages")
        return count if isinstance(count, int) and count >= 0 else None
    return None


def _protected_start(groups: list[list[Message]]) -> int:
    """Index of the group holding the latest user message (kept with all that follows)."""
    for index in range(len(groups) - 1, -1, -1):
        if groups[index][0]["role"] == "user":
            return index
    return len(groups)


def _keep_last_messages(groups: list[list[Message]], count: int | None) -> list[list[Message]]:
    """Keep the last ``count`` thread messages (user/assistant text); tool rounds ride along."""
    if count is None:
        return groups
    start, seen = len(groups), 0
    while start > 0 and seen < count:
        start -= 1
        seen += groups[start][0].get("content") is not None  # a bare tool round is no message
    return groups[min(start, _protected_start(groups)) :]


def _fit_budget(groups: list[list[Message]], budget: int) -> list[list[Message]]:
    """Drop the oldest groups until the estimate fits ``budget`` (or only protected ones remain)."""
    protected = _protected_start(groups)
    sizes = [estimate_tokens(group) for group in groups]
    total, start = sum(sizes), 0
    while total > budget and start < protected:
        total -= sizes[start]
        start += 1
    return groups[start:]
