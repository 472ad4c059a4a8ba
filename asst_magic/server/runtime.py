"""One server per data dir: its lock, its runtime file, and the leases of its clients.

A serving process holds ``server.lock`` (an exclusive ``flock``) for its whole life
and publishes ``server.json`` (mode 0600: URL, token, pid) beside the data, the
way Jupyter publishes running servers. Clients find it there; a runtime file
whose lock nobody holds is stale (its server was killed) and is replaced. Each
client holds a shared lock on ``clients.lock`` while it uses the server, so the
server can tell, even after a client was killed, when its last client has gone.
The kernel releases ``flock`` locks of a dead process, so kill -9 leaves nothing held.

>>> with start_lock(data_dir):  # doctest: +SKIP
...     found = find_server(data_dir)
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from asst_magic.server.api.errors import StartupError

__all__ = [
    "ClientLease",
    "RuntimeInfo",
    "ServerLock",
    "clients_gone",
    "find_server",
    "runtime_path",
    "start_lock",
]

RUNTIME = "server.json"
_OWNER, _START, _CLIENTS = "server.lock", "server-start.lock", "clients.lock"


@dataclass(frozen=True)
class RuntimeInfo:
    """What ``server.json`` holds about the running server."""

    url: str
    token: str
    pid: int
    shared: bool = False  # started for notebooks: stops when its last client has gone
    cassettes: tuple[str, ...] = ()


def runtime_path(data_dir: Path) -> Path:
    """Where the runtime file of ``data_dir``'s server is."""
    return data_dir / RUNTIME


def _open_lock(path: Path) -> IO[bytes]:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    return os.fdopen(fd, "r+b")


def _try_lock(handle: IO[bytes], kind: int) -> bool:
    try:
        fcntl.flock(handle, kind | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _wait_lock(handle: IO[bytes], kind: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not _try_lock(handle, kind):
        if time.monotonic() >= deadline:
            return False
        threading.Event().wait(0.05)  # flock has no timeout of its own
    return True


@contextlib.contextmanager
def start_lock(data_dir: Path, timeout: float = 120.0) -> Iterator[None]:
    """Held while finding or starting the server, so two clients never start two."""
    handle = _open_lock(data_dir / _START)
    try:
        if not _wait_lock(handle, fcntl.LOCK_EX, timeout):
            raise StartupError(
                f"Another process has been starting the server for {data_dir} for over "
                f"{timeout:.0f} s; check for a hung `asst-magic serve` and end it."
            )
        yield
    finally:
        handle.close()


class ServerLock:
    """The serving process's claim on a data dir; a second server cannot take it."""

    def __init__(self, data_dir: Path, wait: float = 15.0) -> None:
        self.data_dir = data_dir
        self._handle: IO[bytes] | None = _open_lock(data_dir / _OWNER)
        # A retiring server (its runtime file already gone) holds the lock a moment longer.
        patience = 0.0 if runtime_path(data_dir).exists() else wait
        if not _wait_lock(self._handle, fcntl.LOCK_EX, patience):
            self._handle.close()
            self._handle = None
            raise StartupError(_busy(data_dir))

    def publish(self, info: RuntimeInfo) -> None:
        """Write ``server.json`` (0600, atomically)."""
        path = runtime_path(self.data_dir)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(asdict(info), out)
        os.replace(partial, path)

    def release(self) -> None:
        """Remove the runtime file and let another server start; idempotent."""
        handle, self._handle = self._handle, None
        if handle is None:
            return
        runtime_path(self.data_dir).unlink(missing_ok=True)
        handle.close()


def _busy(data_dir: Path) -> str:
    info = _read(data_dir)
    where = f" at {info.url} (pid {info.pid})" if info is not None else ""
    return (
        f"Another asst-magic server is already serving {data_dir}{where}. Use that one "
        "(notebooks find it by themselves), stop it, or pass another --data-dir."
    )


def _read(data_dir: Path) -> RuntimeInfo | None:
    try:
        raw = json.loads(runtime_path(data_dir).read_text(encoding="utf-8"))
        raw["cassettes"] = tuple(raw.get("cassettes", ()))
        return RuntimeInfo(**raw)
    except (OSError, ValueError, TypeError):
        return None


def find_server(data_dir: Path) -> RuntimeInfo | None:
    """The live server of ``data_dir``, or ``None``; a stale runtime file is removed."""
    if not runtime_path(data_dir).exists():
        return None
    probe = _open_lock(data_dir / _OWNER)
    try:
        if _try_lock(probe, fcntl.LOCK_EX):  # nobody serves: the file outlived its server
            runtime_path(data_dir).unlink(missing_ok=True)
            return None
        return _read(data_dir)
    finally:
        probe.close()


def clients_gone(data_dir: Path) -> bool:
    """Whether no client holds a lease now (checked without blocking anyone for long)."""
    probe = _open_lock(data_dir / _CLIENTS)
    try:
        return _try_lock(probe, fcntl.LOCK_EX)
    finally:
        probe.close()


class ClientLease:
    """A client's hold on the shared server; the server stops once no lease is held."""

    def __init__(self, data_dir: Path) -> None:
        self._handle: IO[bytes] | None = _open_lock(data_dir / _CLIENTS)
        # Blocks only while the server checks for clients (an instant).
        if not _wait_lock(self._handle, fcntl.LOCK_SH, 30.0):
            self.release()
            raise StartupError(f"Could not register with the server of {data_dir} in 30 s.")

    def release(self) -> None:
        """Let go of the server; idempotent."""
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.close()
