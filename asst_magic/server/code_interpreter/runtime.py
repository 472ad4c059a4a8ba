"""Kernel runtime files (connection files, sockets, logs) and cleaning up after a crash.

Each server's sandbox claims its own folder, ``<base>/<pid>-<start time>/``, with
one sub-folder per kernel. A server killed with ``kill -9`` leaves its folder
behind; the next start removes every folder whose owner is gone, and ends the
processes its unconfined kernels started: each such kernel runs with
``ASST_MAGIC_KERNEL=<folder>/<kernel>`` in its environment, which children
inherit even when they leave the kernel's process group (``setsid``).
Confined kernels need none of this: their PID namespace dies with the server.

Example::

    folder = claim_runtime(runtime_base(root))   # also cleans a crashed server's leftovers
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import tempfile
from pathlib import Path

__all__ = ["TAG_VARIABLE", "claim_runtime", "end_tagged", "runtime_base"]

TAG_VARIABLE = "ASST_MAGIC_KERNEL"
# ZeroMQ ipc socket paths must fit in sockaddr_un (108 bytes) with room for
# "/<instance>/kernel-<12 hex>/s-<port>".
_MAX_BASE = 60


def runtime_base(root: Path) -> Path:
    """``root/.runtime``, or a short per-root folder in the temp dir when that is too long."""
    base = root / ".runtime"
    if len(str(base)) <= _MAX_BASE:
        return base
    digest = hashlib.sha256(str(root).encode()).hexdigest()[:12]
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(tempfile.gettempdir()) / f"asst-magic-{uid}" / digest


def _start_time(pid: int) -> str | None:
    """The process's start time (clock ticks since boot), or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None if not _exists(pid) else "?"
    return stat.rsplit(")", 1)[1].split()[19]


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def claim_runtime(base: Path) -> Path:
    """A fresh runtime folder for this process; clears folders of servers that are gone."""
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    for folder in base.iterdir():
        pid, _, started = folder.name.partition("-")
        if not (pid.isdigit() and folder.is_dir()):
            continue
        if _start_time(int(pid)) not in (started, "?"):
            end_tagged(f"{folder.name}/")
            shutil.rmtree(folder, ignore_errors=True)
    mine = base / f"{os.getpid()}-{_start_time(os.getpid())}"
    mine.mkdir(mode=0o700, parents=True, exist_ok=True)
    return mine


def end_tagged(tag: str) -> int:
    """SIGKILL every process whose ``ASST_MAGIC_KERNEL`` starts with ``tag``; how many."""
    proc = Path("/proc")
    if not proc.is_dir():
        return 0
    needle = f"{TAG_VARIABLE}={tag}".encode()
    ended = 0
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            variables = (entry / "environ").read_bytes().split(b"\0")
            if any(v.startswith(needle) for v in variables):
                os.kill(int(entry.name), signal.SIGKILL)
                ended += 1
    return ended
