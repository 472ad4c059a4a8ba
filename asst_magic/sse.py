"""Server-sent events, both directions, shared by the client and the local server.

The wire format is the one OpenAI's Assistants API uses::

    event: thread.message.delta
    data: {"id": "msg_...", ...}

    event: done
    data: [DONE]

>>> decoder = SSEDecoder()
>>> decoder.feed(b'event: done\\ndata: [DONE]\\n\\n')
[('done', '[DONE]')]
"""

from __future__ import annotations

import json
from typing import Any

__all__ = [
    "DONE",
    "REASONING_EVENT",
    "REASONING_HEADER",
    "SSEDecoder",
    "encode_done",
    "encode_error",
    "encode_event",
]

DONE = "[DONE]"
# The model's reasoning is not part of the Assistants API: the local server streams it as
# this extra event only to a run request that carried the header (SDKs never send it).
REASONING_HEADER = "x-asst-magic-reasoning"
REASONING_EVENT = "asst_magic.reasoning.delta"


def encode_event(event: str, data: Any) -> bytes:
    """One event as bytes: an ``event:`` line, a one-line JSON ``data:`` line, a blank line.

    NaN and Infinity raise ``ValueError`` (JavaScript's ``JSON.parse`` refuses them).
    """
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return f"event: {event}\ndata: {payload}\n\n".encode()


def encode_done() -> bytes:
    """The stream terminator: ``event: done`` with the literal, unquoted ``[DONE]``."""
    return b"event: done\ndata: [DONE]\n\n"


def encode_error(message: str, *, type: str = "server_error", code: str | None = None) -> bytes:
    """An in-stream error, shaped as OpenAI sends it: ``{"error": {...}}``."""
    error = {"message": message, "type": type, "param": None, "code": code}
    return encode_event("error", {"error": error})


class SSEDecoder:
    """Incremental decoder: feed raw bytes as they arrive, get whole events back.

    Returns ``(event, data)`` pairs with ``data`` still a string, so the caller
    decides whether to parse it (``[DONE]`` is not JSON). Handles CRLF, comments,
    multi-line ``data:`` fields and chunks split anywhere, even inside a UTF-8
    character. With ``error_field=True`` a non-standard ``error: {...}`` line (as
    llama.cpp's server sends a failure) becomes an ``error`` event.
    """

    def __init__(self, *, error_field: bool = False) -> None:
        self._error_field = error_field
        self._buffer = b""
        self._event = ""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[tuple[str, str]]:
        """Consume ``chunk`` and return the events it completed, in order."""
        buffer = self._buffer + chunk
        end = buffer.rfind(b"\n")
        if end < 0:
            self._buffer = buffer
            return []
        self._buffer = buffer[end + 1 :]
        events: list[tuple[str, str]] = []
        for raw in buffer[:end].decode("utf-8").split("\n"):
            self._line(raw.removesuffix("\r"), events)
        return events

    def flush(self) -> list[tuple[str, str]]:
        """End of stream: return an event left without its closing blank line."""
        events: list[tuple[str, str]] = []
        if self._buffer:
            self._line(self._buffer.decode("utf-8").removesuffix("\r"), events)
            self._buffer = b""
        self._line("", events)
        return events

    def _line(self, line: str, events: list[tuple[str, str]]) -> None:
        if not line:
            if self._data or self._event:
                events.append((self._event or "message", "\n".join(self._data)))
            self._event, self._data = "", []
            return
        if line[0] == ":":
            return  # a comment / keep-alive
        field, _, value = line.partition(":")
        if value[:1] == " ":
            value = value[1:]
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value
        elif field == "error" and self._error_field:
            self._event = "error"
            self._data.append(value)
