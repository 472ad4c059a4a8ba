"""Fixtures for server tests: a real server on a loopback socket, driven by the real openai SDK."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from server_support import Entry, client_for, write_cassette

from asst_magic.server import ServerConfig, ServerHandle, start_in_thread


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
        models: Any = None,
        **options: Any,
    ) -> ServerHandle:
        """Pass ``sandbox=`` to use one; else ``code_interpreter=True`` uses the real one."""
        cassettes = options.pop("cassettes", ())
        sandbox = {"sandbox": options.pop("sandbox")} if "sandbox" in options else {}
        if entries is not None:
            cassettes = (write_cassette(tmp_path / f"c{len(handles)}.jsonl", entries),)
        options.setdefault("data_dir", tmp_path / "data")
        options.setdefault("code_interpreter", False)
        config = ServerConfig(cassettes=tuple(cassettes), **options)
        handle = start_in_thread(config, models=models, **sandbox)
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
