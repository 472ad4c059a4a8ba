"""Several notebooks, one server per data dir: find it or start it, and stop it when unused.

>>> handle = connect(ServerConfig(data_dir=Path("data")))  # doctest: +SKIP
>>> handle.stop()  # this client lets go; the last one to go stops the server
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from asst_magic.server.api.errors import StartupError
from asst_magic.server.config import ServerConfig
from asst_magic.server.launch import ServerHandle, spawn
from asst_magic.server.runtime import (
    ClientLease,
    RuntimeInfo,
    clients_gone,
    find_server,
    start_lock,
)

__all__ = ["IDLE_SHUTDOWN", "connect", "watch_clients"]

IDLE_SHUTDOWN = 60.0  # long enough for a kernel restart to reconnect


def connect(config: ServerConfig, idle_shutdown: float = IDLE_SHUTDOWN) -> ServerHandle:
    """The data dir's running server, or a new shared one; ``stop()`` ends this client's use."""
    data_dir = config.data_dir
    with start_lock(data_dir):
        info = find_server(data_dir)
        if info is None:
            spawn(config, idle_shutdown=idle_shutdown)
            info = find_server(data_dir)
            if info is None:
                raise StartupError(f"The server started for {data_dir} published no runtime file.")
        else:
            _check_cassettes(info, config)
        lease = ClientLease(data_dir)
    return ServerHandle(info.url, info.token, lambda: _leave(data_dir, lease, info), info.pid)


def _check_cassettes(info: RuntimeInfo, config: ServerConfig) -> None:
    wanted = tuple(str(Path(c).resolve()) for c in config.cassettes)
    if wanted and wanted != info.cassettes:
        raise StartupError(
            f"The local server for {config.data_dir} (pid {info.pid}, started by another "
            f"notebook) replays {list(info.cassettes) or 'no cassette'}, not {list(wanted)}. "
            "Use the same cassette there, or give this notebook its own data dir "
            "(ASST_MAGIC_DATA_DIR)."
        )


def _leave(data_dir: Path, lease: ClientLease, info: RuntimeInfo) -> None:
    """Release this client's lease; the last client out stops a shared server at once."""
    lease.release()
    if not info.shared:
        return
    with start_lock(data_dir):  # nobody attaches while we decide
        if find_server(data_dir) != info or not clients_gone(data_dir):
            return
        try:
            os.kill(info.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        _wait_gone(data_dir, 30.0)


def _wait_gone(data_dir: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while find_server(data_dir) is not None and time.monotonic() < deadline:
        threading.Event().wait(0.05)


def watch_clients(data_dir: Path, idle: float, server: Any) -> None:
    """Stop ``server`` once no client has held a lease for ``idle`` seconds (a daemon thread)."""

    def watch() -> None:
        last_seen = time.monotonic()
        while not server.should_exit:
            threading.Event().wait(min(1.0, idle / 4))
            if not clients_gone(data_dir):
                last_seen = time.monotonic()
            elif time.monotonic() - last_seen >= idle and _retire(data_dir):
                server.should_exit = True

    threading.Thread(target=watch, name="asst-magic-idle-watch", daemon=True).start()


def _retire(data_dir: Path) -> bool:
    """Take the runtime file away under the start lock unless a client came meanwhile."""
    with start_lock(data_dir):
        if not clients_gone(data_dir):
            return False
        (data_dir / "server.json").unlink(missing_ok=True)
        return True
