"""Turn a run's conversation into Chat Completions ``messages`` and ``tools``.

The code interpreter becomes a function tool named ``python`` with one ``code``
argument; user functions are passed as themselves. Earlier tool calls become an
assistant message with ``tool_calls`` followed by one ``tool`` message per call.
When a context budget applies, the oldest turns are dropped first; the system
message, the latest user message and everything after it are always kept, and a
tool call is never separated from its output.
"""

from __future__ import annotations

import json
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
]

CODE_TOOL_NAME = "python"
WORKDIR = "/mnt/data"
_NO_OUTPUT = "(no output)"

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


def build_messages(request: TurnRequest, context_tokens: int | None = None) -> list[Message]:
    """The ``messages`` for one turn, truncated to the run's budget when one applies."""
    groups = _group(request.conversation)
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


def _group(conversation: Sequence[ConversationItem]) -> list[list[Message]]:
    """Messages grouped by turn: a user message, an answer, or one round of tool calls."""
    groups: list[list[Message]] = []
    index = 0
    while index < len(conversation):
        item = conversation[index]
        if isinstance(item, ToolCallRecord):
            end = _round_end(conversation, index)
            records = [r for r in conversation[index:end] if isinstance(r, ToolCallRecord)]
            groups.append(_tool_round(records, None))
            index = end
        elif isinstance(item, AssistantText) and _is_record(conversation, index + 1):
            # Text the model wrote before calling tools in the same turn.
            end = _round_end(conversation, index + 1)
            records = [r for r in conversation[index + 1 : end] if isinstance(r, ToolCallRecord)]
            groups.append(_tool_round(records, item.text))
            index = end
        else:
            groups.append([_plain_message(item)])
            index += 1
    return groups


def _is_record(conversation: Sequence[ConversationItem], index: int) -> bool:
    return index < len(conversation) and isinstance(conversation[index], ToolCallRecord)


def _round_end(conversation: Sequence[ConversationItem], start: int) -> int:
    end = start
    while _is_record(conversation, end):
        end += 1
    return end


def _plain_message(item: UserText | AssistantText | ToolCallRecord) -> Message:
    if isinstance(item, UserText):
        return {"role": "user", "content": _user_content(item)}
    assert isinstance(item, AssistantText)
    return {"role": "assistant", "content": item.text}


def _user_content(item: UserText) -> str:
    if not item.file_names:
        return item.text
    paths = ", ".join(f"{WORKDIR}/{name}" for name in item.file_names)
    return f"{item.text}\n\n(Attached files, in the code interpreter's working directory: {paths})"


def _tool_round(records: list[ToolCallRecord], text: str | None) -> list[Message]:
    calls = [_tool_call(record) for record in records]
    outputs = [
        {"role": "tool", "tool_call_id": r.id, "content": r.output or _NO_OUTPUT} for r in records
    ]
    return [{"role": "assistant", "content": text, "tool_calls": calls}, *outputs]


def _tool_call(record: ToolCallRecord) -> dict[str, Any]:
    if record.type == "code_interpreter":
        name, arguments = CODE_TOOL_NAME, json.dumps({"code": record.arguments})
    else:
        name, arguments = record.name or "", record.arguments
    return {"id": record.id, "type": "function", "function": {"name": name, "arguments": arguments}}


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
