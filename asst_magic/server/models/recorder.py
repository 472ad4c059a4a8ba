"""Record a live model's turns into a replay cassette, so a notebook can be re-run offline.

>>> recorder = CassetteRecorder(Path("answers.jsonl"))        # doctest: +SKIP
>>> model = RecordingModel(ChatCompletionsModel(...), recorder)  # doctest: +SKIP

Each run becomes one cassette entry keyed by the run's last user message; every
turn of the run extends that entry's ``turns``. The file is rewritten through a
temporary file and ``os.replace`` after each turn, so a crash mid-run leaves a
valid cassette. Failed or abandoned turns are not recorded: a transient provider
error should not be replayed forever.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

from asst_magic.server.models.base import (
    Chunk,
    Model,
    TextChunk,
    ToolCallChunk,
    ToolCallStart,
    TurnEnd,
    TurnRequest,
    UserText,
)

__all__ = ["CassetteRecorder", "RecordingModel", "turn_from_chunks"]

_HEADER = "# replay cassette recorded by asst-magic: one entry per user message"


def turn_from_chunks(chunks: Iterable[Chunk]) -> dict[str, Any]:
    """One model turn as a cassette TURN object (see DESIGN.md, replay cassettes)."""
    text: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    turn: dict[str, Any] = {}
    for chunk in chunks:
        if isinstance(chunk, TextChunk):
            text.append(chunk.text)
        elif isinstance(chunk, ToolCallStart):
            calls[chunk.index] = _call(chunk)
        elif isinstance(chunk, ToolCallChunk):
            call = calls.setdefault(chunk.index, {"type": "function", "name": "", "arguments": []})
            call["input" if call["type"] == "code_interpreter" else "arguments"].append(chunk.text)
        elif isinstance(chunk, TurnEnd):
            turn.update(_ending(chunk, bool(calls)))
    if text:
        turn["text"] = text
    if calls:
        turn["tool_calls"] = [calls[index] for index in sorted(calls)]
    return {key: turn[key] for key in ("text", "tool_calls", "finish", "usage") if key in turn}


def _call(start: ToolCallStart) -> dict[str, Any]:
    if start.type == "code_interpreter":
        return {"type": "code_interpreter", "input": []}
    return {"type": "function", "name": start.name or "", "arguments": []}


def _ending(end: TurnEnd, has_calls: bool) -> dict[str, Any]:
    ending: dict[str, Any] = {}
    if end.finish != ("tool_calls" if has_calls else "stop"):
        ending["finish"] = end.finish
    if end.usage is not None:
        ending["usage"] = {
            "prompt_tokens": end.usage.prompt_tokens,
            "completion_tokens": end.usage.completion_tokens,
        }
    return ending


class CassetteRecorder:
    """Appends runs to a JSONL cassette; existing entries in the file are kept."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._lines = self._read_lines()
        self._line_of_run: dict[str, int] = {}
        self._entry_of_run: dict[str, dict[str, Any]] = {}

    def record(self, request: TurnRequest, chunks: Iterable[Chunk]) -> None:
        """Add one finished turn of ``request``'s run and rewrite the file."""
        turn = turn_from_chunks(chunks)
        with self._lock:
            entry = self._entry_for(request)
            del entry["turns"][request.turn_index :]
            entry["turns"].append(turn)
            self._lines[self._line_of_run[request.run_id]] = json.dumps(entry, ensure_ascii=False)
            self._write()

    def _entry_for(self, request: TurnRequest) -> dict[str, Any]:
        entry = self._entry_of_run.get(request.run_id)
        if entry is None or (request.turn_index == 0 and entry["turns"]):
            entry = {"user": _last_user_text(request), "turns": []}
            self._entry_of_run[request.run_id] = entry
            self._line_of_run[request.run_id] = len(self._lines)
            self._lines.append("")
        return entry

    def _read_lines(self) -> list[str]:
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return [_HEADER]
        return [line for line in lines if line.strip()]

    def _write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                file.write("\n".join(self._lines) + "\n")
                file.flush()
                os.fsync(file.fileno())
            os.replace(temp, self.path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise


class RecordingModel:
    """A ``Model`` that passes ``inner``'s chunks through and records each finished turn."""

    def __init__(self, inner: Model, recorder: CassetteRecorder) -> None:
        self.inner = inner
        self.recorder = recorder

    def __repr__(self) -> str:
        return f"RecordingModel({self.inner!r}, cassette={str(self.recorder.path)!r})"

    def describe(self) -> str:
        """The inner model's description, and where it records."""
        describe = getattr(self.inner, "describe", None)
        inner = describe() if describe else repr(self.inner)
        return f"{inner}, recording to {self.recorder.path.name}"

    async def turn(self, request: TurnRequest) -> AsyncIterator[Chunk]:
        """Stream ``inner``'s turn; the turn is written before its ``TurnEnd`` is passed on."""
        seen: list[Chunk] = []
        async for chunk in self.inner.turn(request):
            seen.append(chunk)
            if isinstance(chunk, TurnEnd):
                self.recorder.record(request, seen)
            yield chunk

    async def aclose(self) -> None:
        """Close the inner model, if it holds resources."""
        close = getattr(self.inner, "aclose", None)
        if close is not None:
            await close()


def _last_user_text(request: TurnRequest) -> str:
    users = [item.text for item in request.conversation if isinstance(item, UserText)]
    return users[-1].strip() if users else ""
