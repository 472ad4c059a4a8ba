"""The replay model: assistant turns read from JSONL cassette files, deterministically.

One entry per line (blank lines and ``#`` comments are skipped)::

    {"user": "Say hi", "turns": [{"text": ["Hello", " world"]}], "delay": 0.0}

The run's last user message picks the entry (the n-th occurrence of a text in a
thread uses the n-th entry with that text); the run's k-th turn is ``turns[k]``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from asst_magic.server.models.base import (
    Chunk,
    ModelError,
    TextChunk,
    ToolCallChunk,
    ToolCallStart,
    TurnEnd,
    TurnRequest,
    Usage,
    UserText,
)

__all__ = ["CassetteEntry", "ReplayModel", "load_cassette"]

Obj = dict[str, Any]
Finish = Literal["stop", "tool_calls", "length"]


@dataclass(frozen=True, slots=True)
class CassetteEntry:
    """One recorded exchange: the user text it answers and the assistant's turns."""

    user: str
    turns: tuple[Obj, ...]
    delay: float = 0.0


class ReplayModel:
    """Plays cassette entries back as model turns; re-reads a cassette when it changes.

    It answers the last user message (the nth time a text was asked in the thread
    picks the nth entry for it), so a turn reads only the newest ``history_messages``
    of a thread: a repeat further back than that counts as asked once.
    """

    history_messages = 64

    def __init__(self, cassettes: Sequence[Path]) -> None:
        self._paths = tuple(Path(p) for p in cassettes)
        self._cache: dict[Path, tuple[int, list[CassetteEntry]]] = {}

    def describe(self) -> str:
        """``replay (cassettes: a.jsonl, b.jsonl)``."""
        return f"replay (cassettes: {self._names()})"

    async def turn(self, request: TurnRequest) -> AsyncIterator[Chunk]:
        """Stream the cassette's turn for ``request``."""
        entry = self._entry_for(request)
        if request.turn_index >= len(entry.turns):
            raise ModelError(
                f"replay cassette entry for the user message {_quote(entry.user)} has "
                f"{len(entry.turns)} turn(s) but the run needs turn {request.turn_index + 1} "
                f"(cassettes: {self._names()}); add a turn that answers the tool output",
                code="invalid_prompt",
            )
        turn = entry.turns[request.turn_index]
        error = turn.get("error")
        if error:
            raise ModelError(
                str(error.get("message", "replay error")), error.get("code", "server_error")
            )
        async for chunk in _play(turn, entry.delay, request):
            yield chunk

    def _entry_for(self, request: TurnRequest) -> CassetteEntry:
        users = [item.text.strip() for item in request.conversation if isinstance(item, UserText)]
        text = users[-1] if users else ""
        if not self._paths:
            raise ModelError(
                "the replay model has no cassette to answer from: give one "
                "(`%config AssistantMagics.cassette = 'FILE.jsonl'`, $ASST_MAGIC_CASSETTE or "
                "`asst-magic serve --cassette FILE`), or configure a live model "
                "($ASST_MAGIC_MODEL_URL and $ASST_MAGIC_MODEL, or $OPENAI_API_KEY)",
                code="invalid_prompt",
            )
        matches = [e for e in self._entries() if e.user == text]
        if not matches:
            raise ModelError(
                f"replay cassette has no entry for the user message {_quote(text)} "
                f"(cassettes: {self._names()}); add one or use a live model",
                code="invalid_prompt",
            )
        nth = users.count(text)
        return matches[min(nth, len(matches)) - 1]

    def _entries(self) -> list[CassetteEntry]:
        entries: list[CassetteEntry] = []
        for path in self._paths:
            entries.extend(self._load(path))
        return entries

    def _load(self, path: Path) -> list[CassetteEntry]:
        try:
            mtime = path.stat().st_mtime_ns
        except OSError as exc:
            raise ModelError(
                f"replay cassette {path} cannot be read ({exc.strerror}); fix the path "
                "given with --cassette",
                code="invalid_prompt",
            ) from exc
        cached = self._cache.get(path)
        if cached is None or cached[0] != mtime:
            cached = (mtime, load_cassette(path))
            self._cache[path] = cached
        return cached[1]

    def _names(self) -> str:
        return ", ".join(p.name for p in self._paths) or "none configured"


def load_cassette(path: Path) -> list[CassetteEntry]:
    """Parse one JSONL cassette; ``ModelError`` naming the file and line when malformed."""
    entries = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            raw = json.loads(line)
            entry = CassetteEntry(
                str(raw["user"]).strip(), tuple(raw["turns"]), float(raw.get("delay", 0.0))
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelError(
                f"replay cassette {path.name} line {number} is not a valid entry ({exc}); "
                'expected {"user": "...", "turns": [...]}',
                code="invalid_prompt",
            ) from exc
        entries.append(entry)
    return entries


async def _play(turn: Obj, delay: float, request: TurnRequest) -> AsyncIterator[Chunk]:
    written: list[str] = []
    for piece in _pieces(turn.get("text")):
        if delay:
            await asyncio.sleep(delay)
        written.append(piece)
        yield TextChunk(piece)
    calls = turn.get("tool_calls") or []
    for index, call in enumerate(calls):
        kind = call.get("type", "function")
        yield ToolCallStart(index, kind, call.get("name") if kind == "function" else None)
        for piece in _pieces(
            call.get("input") if kind == "code_interpreter" else call.get("arguments")
        ):
            if delay:
                await asyncio.sleep(delay)
            written.append(piece)
            yield ToolCallChunk(index, piece)
    finish: Finish = turn.get("finish") or ("tool_calls" if calls else "stop")
    if finish not in ("stop", "tool_calls", "length"):
        raise ModelError(
            f"replay cassette turn has finish {finish!r}; use 'stop', 'tool_calls' or 'length'",
            code="invalid_prompt",
        )
    yield TurnEnd(finish, _usage(turn.get("usage"), request, written))


def _pieces(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _usage(given: Obj | None, request: TurnRequest, written: list[str]) -> Usage:
    if given:
        return Usage(int(given.get("prompt_tokens", 0)), int(given.get("completion_tokens", 0)))
    prompt = sum(
        len(getattr(item, "text", "") or getattr(item, "output", ""))
        for item in request.conversation
    )
    return Usage(prompt // 4 + 1, sum(map(len, written)) // 4 + 1)


def _quote(text: str) -> str:
    short = text if len(text) <= 80 else text[:80] + "..."
    return f"'{short}'"
