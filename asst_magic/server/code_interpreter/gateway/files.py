"""Keeping a gateway kernel's ``/mnt/data`` and the server's copy of it in step.

No filesystem is shared with a gateway kernel. The server keeps the thread's
working directory as with local kernels (uploads are placed there, output links
and variables are read from there) and mirrors it over the kernel channel:
before code runs, files new or changed on the server are written into the
kernel (and files the server deleted are deleted there); after it ran, files
new or changed in the kernel are read back as base64 text. A ``FileMirror``
remembers both sides as of the last sync, by size and modification time.

Example::

    await push(kernel, workdir, mirror)   # before an execution
    notes = await pull(kernel, workdir, mirror)   # after it
"""

from __future__ import annotations

import base64
import contextlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from asst_magic.server.code_interpreter.channels import KernelSetupError
from asst_magic.server.code_interpreter.gateway.remote import MIME, MODULE_NAME

__all__ = ["MAX_FILE_BYTES", "FileMirror", "pull", "push", "scan"]

CHUNK = 2 * 1024 * 1024  # raw bytes per message (base64 makes it ~2.7 MB)
MAX_FILE_BYTES = 512 * 1024**2  # OpenAI's file size limit: larger files stay in the kernel
_STEP_TIMEOUT = 120.0
Stat = tuple[int, int]  # size, mtime_ns


class Channel(Protocol):
    """The part of a kernel that file syncing uses."""

    async def run_collect(self, code: str, timeout: float = 60.0) -> list[dict[str, Any]]: ...


@dataclass
class FileMirror:
    """Both sides of ``/mnt/data`` at the last sync: relative path -> (size, mtime_ns)."""

    remote: dict[str, Stat] = field(default_factory=dict)
    local: dict[str, Stat] = field(default_factory=dict)


def scan(workdir: Path) -> dict[str, Stat]:
    """Every regular file under ``workdir`` (symlinks are not followed)."""
    found: dict[str, Stat] = {}
    for folder, folders, names in os.walk(workdir):
        folders[:] = [f for f in folders if not os.path.islink(os.path.join(folder, f))]
        for name in names:
            path = Path(folder, name)
            with contextlib.suppress(OSError):
                info = path.lstat()
                if path.is_file() and not path.is_symlink():
                    found[path.relative_to(workdir).as_posix()] = (info.st_size, info.st_mtime_ns)
    return found


async def push(kernel: Channel, workdir: Path, mirror: FileMirror) -> None:
    """Write files new or changed in ``workdir`` into the kernel; delete what was deleted."""
    local = scan(workdir) if workdir.is_dir() else {}
    for relative, stat in local.items():
        if mirror.local.get(relative) != stat or relative not in mirror.remote:
            mirror.remote[relative] = await _upload(kernel, workdir / relative, relative)
            mirror.local[relative] = stat
    gone = [r for r in mirror.local if r not in local]
    if gone:
        await _call(kernel, f"remove({gone!r})")
    for relative in gone:
        mirror.local.pop(relative, None)
        mirror.remote.pop(relative, None)


async def _upload(kernel: Channel, path: Path, relative: str) -> Stat:
    """Send one file in chunks; the kernel's (size, mtime_ns) of it afterwards."""
    with path.open("rb") as handle:
        append = False
        while True:
            data = handle.read(CHUNK)
            if data or not append:
                text = base64.b64encode(data).decode("ascii")
                await _call(kernel, f"write({relative!r}, {text!r}, {append!r})")
                append = True
            if len(data) < CHUNK:
                break
    (done,) = [p["done"] for p in await _call(kernel, f"finish({relative!r})") if "done" in p]
    return (int(done[0]), int(done[1]))


async def pull(kernel: Channel, workdir: Path, mirror: FileMirror) -> list[str]:
    """Copy files new or changed in the kernel into ``workdir``; notes about skipped ones."""
    (listing,) = [p["listing"] for p in await _call(kernel, "listing()") if "listing" in p]
    remote = {str(r): (int(s[0]), int(s[1])) for r, s in listing.items() if _safe(str(r))}
    changed = [r for r, stat in remote.items() if mirror.remote.get(r) != stat]
    notes = []
    large = [r for r in changed if remote[r][0] > MAX_FILE_BYTES]
    for relative in large:
        notes.append(
            f"[Note: /mnt/data/{relative} is larger than {MAX_FILE_BYTES // 1024**2} MiB, "
            "so it stays in the kernel and cannot be linked or downloaded]\n"
        )
        mirror.remote[relative] = remote[relative]
    wanted = [r for r in changed if r not in large]
    if wanted:
        await _receive(kernel, workdir, mirror, wanted)
    for relative in [r for r in mirror.remote if r not in remote]:
        mirror.remote.pop(relative)
        if mirror.local.pop(relative, None) is not None:
            with contextlib.suppress(OSError):
                (workdir / relative).unlink()
    return notes


async def _receive(kernel: Channel, workdir: Path, mirror: FileMirror, wanted: list[str]) -> None:
    """Fetch ``wanted`` files and write each into ``workdir`` once whole."""
    parts: dict[str, list[bytes]] = {}
    for payload in await _call(kernel, f"send({wanted!r}, {CHUNK})"):
        relative = str(payload.get("path"))
        if relative not in wanted:
            continue
        if "data" in payload:
            parts.setdefault(relative, []).append(base64.b64decode(payload["data"]))
        elif "done" in payload:
            done = payload["done"]
            target = _write(workdir, relative, b"".join(parts.pop(relative, [])))
            mirror.remote[relative] = (int(done[0]), int(done[1]))
            info = target.stat()
            mirror.local[relative] = (info.st_size, info.st_mtime_ns)


def _safe(relative: str) -> bool:
    parts = PurePosixPath(relative).parts
    return bool(parts) and not relative.startswith("/") and ".." not in parts


def _write(workdir: Path, relative: str, data: bytes) -> Path:
    """Replace ``workdir/relative`` with ``data`` (a link there is replaced, not followed)."""
    target = workdir.joinpath(*PurePosixPath(relative).parts)
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.parent.resolve().is_relative_to(workdir.resolve()):
        raise KernelSetupError(f"/mnt/data/{relative} leads out of the working directory")
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".asst-magic-")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(temporary, target)
    return target


async def _call(kernel: Channel, call: str) -> list[dict[str, Any]]:
    """Run ``_asst_magic_files.<call>`` in the kernel; the payloads it published."""
    code = f"import {MODULE_NAME} as _f\n_f.{call}\ndel _f"
    messages = await kernel.run_collect(code, _STEP_TIMEOUT)
    found = []
    for msg in messages:
        data = msg.get("content", {}).get("data", {})
        if msg.get("msg_type") == "display_data" and isinstance(data.get(MIME), dict):
            found.append(data[MIME])
    return found
