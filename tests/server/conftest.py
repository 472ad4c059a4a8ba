"""Fixtures for server tests: a real server on a loopback socket, driven by the real openai SDK."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from asst_magic.server import ServerConfig, ServerHandle, start_in_thread
from asst_magic.sse import SSEDecoder

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


@pytest.fixture(autouse=True)
def _quiet_deprecations() -> Iterator[None]:
    # The SDK marks the whole Assistants API deprecated; that is the API this server serves.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., ServerHandle]]:
    """Start servers over cassettes; every one is stopped at teardown."""
    handles: list[ServerHandle] = []

    def start(
        entries: list[Entry] | None = None,
        *,
        sandbox: Any = None,
        models: Any = None,
        **options: Any,
    ) -> ServerHandle:
        cassettes = options.pop("cassettes", ())
        if entries is not None:
            cassettes = (write_cassette(tmp_path / f"c{len(handles)}.jsonl", entries),)
        options.setdefault("data_dir", tmp_path / "data")
        options.setdefault("code_interpreter", False)
        config = ServerConfig(cassettes=tuple(cassettes), **options)
        handle = start_in_thread(config, sandbox=sandbox, models=models)
        handles.append(handle)
        return handle

    yield start
    for handle in handles:
        handle.stop()


@pytest.fixture
def serve(start_server: Callable[..., ServerHandle]) -> Callable[..., openai.OpenAI]:
    """Start a server over cassette entries and return an SDK client for it."""

    def make(entries: list[Entry] | None = None, **options: Any) -> openai.OpenAI:
        return client_for(start_server(entries, **options))

    return make
