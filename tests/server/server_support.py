"""Helpers shared by the server tests: cassettes, SDK clients, SSE decoding."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai

from asst_magic.server import ServerHandle
from asst_magic.sse import SSEDecoder

__all__ = ["VECTORS", "Entry", "client_for", "sse_events", "write_cassette"]

Entry = dict[str, Any]
VECTORS = Path(__file__).parent.parent / "vectors" / "assistants"


def write_cassette(path: Path, entries: list[Entry]) -> Path:
    """A JSONL cassette file with ``entries``."""
    path.write_text("".join(json.dumps(e) + "\n" for e in entries), encoding="utf-8")
    return path


def client_for(handle: ServerHandle) -> openai.OpenAI:
    """The real SDK pointed at ``handle`` (no retries, so errors show at once)."""
    return openai.OpenAI(base_url=handle.base_url, api_key=handle.token, max_retries=0)


def sse_events(chunks: Iterator[bytes]) -> list[tuple[str, Any]]:
    """Decode a raw SSE body into (event, data) with JSON data parsed (``[DONE]`` kept)."""
    decoder, events = SSEDecoder(), []
    for chunk in chunks:
        events += decoder.feed(chunk)
    events += decoder.flush()
    return [(name, data if data == "[DONE]" else json.loads(data)) for name, data in events]
