"""The contract between the run engine and a model.

The engine asks a model for one *turn* at a time. A turn is an async stream of
chunks: text pieces for the assistant's message, and tool-call pieces (code for
the code interpreter, JSON argument text for a function). When a turn ends with
tool calls, the engine runs them (or asks the client to, for functions) and then
asks for the next turn with the outputs appended to the conversation.

A model never sees storage or HTTP: it gets a ``TurnRequest`` and yields chunks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

__all__ = [
    "AssistantText",
    "Chunk",
    "ConversationItem",
    "Model",
    "ModelError",
    "ReasoningChunk",
    "TextChunk",
    "ToolCallChunk",
    "ToolCallRecord",
    "ToolCallStart",
    "TurnEcho",
    "TurnEnd",
    "TurnRequest",
    "Usage",
    "UserText",
]


# ── What the model yields ─────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class TextChunk:
    """A piece of the assistant's message text."""

    text: str


@dataclass(frozen=True, slots=True)
class ReasoningChunk:
    """A piece of the model's visible reasoning (``reasoning_content``): shown, never answered."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolCallStart:
    """A new tool call begins. ``index`` orders calls within the turn (0, 1, ...).

    ``type`` is ``"code_interpreter"`` (its pieces are Python source) or
    ``"function"`` (its pieces are JSON argument text and ``name`` is set).
    """

    index: int
    type: Literal["code_interpreter", "function"]
    name: str | None = None


@dataclass(frozen=True, slots=True)
class ToolCallChunk:
    """A piece of the call at ``index``: code, or function-argument JSON text."""

    index: int
    text: str


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class TurnEcho:
    """What the provider said that its next request must carry back, exactly.

    ``fields`` are the assistant message's own extra keys (``reasoning_content``,
    ``reasoning``, unknown ones); ``calls`` maps a call's index in the turn to its
    provider id and extra keys (``extra_content``). ``source`` names the endpoint:
    an echo is only sent back to the endpoint that sent it.

    >>> TurnEcho("http://x/v1", {"reasoning": "Hm."}, {0: {"id": "a1B2c3D4e"}}).as_json()["calls"]
    {'0': {'id': 'a1B2c3D4e'}}
    """

    source: str
    fields: dict[str, Any] = field(default_factory=dict)
    calls: dict[int, dict[str, Any]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """A JSON-safe dict (call indexes as strings), as stored."""
        calls = {str(index): call for index, call in self.calls.items()}
        return {"source": self.source, "fields": self.fields, "calls": calls}


@dataclass(frozen=True, slots=True)
class TurnEnd:
    """The last chunk of a turn.

    ``finish`` is ``"stop"`` (the answer is complete), ``"tool_calls"`` (run the
    calls, then ask for the next turn), ``"length"`` (cut off by the token limit:
    the run ends ``incomplete``) or ``"other"`` (the provider stopped for a reason
    of its own, named in ``reason``: the run ends ``incomplete`` with that reason).
    """

    finish: Literal["stop", "tool_calls", "length", "other"] = "stop"
    usage: Usage | None = None
    reason: str | None = None
    echo: TurnEcho | None = None


Chunk = TextChunk | ReasoningChunk | ToolCallStart | ToolCallChunk | TurnEnd


class ModelError(Exception):
    """A model failed in a way the run should report as ``last_error``.

    ``code`` follows OpenAI's run ``last_error.code`` values:
    ``server_error``, ``rate_limit_exceeded`` or ``invalid_prompt``.
    """

    def __init__(self, message: str, code: str = "server_error") -> None:
        super().__init__(message)
        self.code = code


# ── What the model is given ───────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class UserText:
    """A user message (text parts joined), with the names of attached files."""

    text: str
    file_names: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AssistantText:
    """An assistant message; ``id`` is its message id, ``turn`` its turn record."""

    text: str
    id: str = ""
    turn: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class ToolCallRecord:
    """A finished tool call and what came back (logs text, or the function's output)."""

    id: str
    type: Literal["code_interpreter", "function"]
    name: str | None
    arguments: str  # the code, for code_interpreter
    output: str
    step_id: str = ""  # calls of one step were one model turn
    turn: dict[str, Any] | None = None  # the turn record (message ids, provider echo)


ConversationItem = UserText | AssistantText | ToolCallRecord


@dataclass(frozen=True, slots=True)
class TurnRequest:
    """Everything a model needs to produce the next turn of a run."""

    model: str
    instructions: str | None
    conversation: tuple[ConversationItem, ...]
    tools: tuple[dict[str, Any], ...]  # OpenAI tool objects: {"type": "function", ...}
    thread_id: str
    run_id: str
    turn_index: int  # 0 for the first turn of the run, +1 after every tool round
    temperature: float | None = None
    max_completion_tokens: int | None = None
    options: dict[str, Any] = field(default_factory=dict)


class Model(Protocol):
    """A source of assistant turns."""

    def turn(self, request: TurnRequest) -> AsyncIterator[Chunk]:
        """Stream one turn. Ends with exactly one ``TurnEnd``; raises ``ModelError``."""
        ...
