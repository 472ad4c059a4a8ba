"""Fixtures for the magic's tests: a notebook-like display, replay servers, a local server."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from magic_support import CASSETTE, VECTORS, ReplayServer, notebook_shell


@pytest.fixture(autouse=True)
def _ctrl_c_raises() -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt in every test, as in Python and in a kernel.

    Something an earlier test ran may leave its own SIGINT handler installed (one that
    only sets a flag); a simulated ■ press would then be swallowed and the test hang.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture(scope="session")
def local_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One real local server (a child process) with the test cassette, for the whole session."""
    from asst_magic.server.config import ServerConfig
    from asst_magic.server.launch import spawn

    data_dir = tmp_path_factory.mktemp("server-data")
    with spawn(ServerConfig(data_dir=data_dir, cassettes=(CASSETTE,))) as handle:
        yield handle


@pytest.fixture
def shell(local_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A fresh in-process shell with the magics on the shared local server, widget display."""
    monkeypatch.chdir(tmp_path)
    ip, magics = notebook_shell(local_server, {"ASST_MAGIC_DATA_DIR": str(tmp_path / "data")})
    magics.cassette = str(CASSETTE)
    yield ip
    magics.close()


@pytest.fixture
def replay() -> Iterator[Callable[..., ReplayServer]]:
    """Start replay servers serving the given vector files; all are closed after the test."""
    servers: list[ReplayServer] = []

    def start(*names: str) -> ReplayServer:
        server = ReplayServer([(VECTORS / name).read_bytes() for name in names])
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()
