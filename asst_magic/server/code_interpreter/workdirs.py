"""A thread's working directory: files placed in it, a pooled kernel's folder adopted as it.

Example::

    place_files(root / "thread_abc", [SandboxFile("sales.csv", stored_path)])
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from asst_magic.server.code_interpreter.sandbox import SandboxFile

__all__ = ["adopt", "place_files"]


def place_files(workdir: Path, files: Sequence[SandboxFile]) -> None:
    """Copy ``files`` into ``workdir`` under their names (unless the copy there is newer)."""
    for file in files:
        name = PurePosixPath(file.name.replace("\\", "/")).name
        if name in ("", ".", ".."):
            continue
        target = workdir / name
        if target.exists() and target.stat().st_mtime_ns >= file.path.stat().st_mtime_ns:
            continue  # already placed; keep what the code may have changed since
        shutil.copyfile(file.path, target)


def adopt(home: Path, workdir: Path) -> None:
    """Make the pooled kernel's folder ``home`` the thread's ``workdir``, keeping its files."""
    if workdir.exists():
        for entry in workdir.iterdir():
            entry.rename(home / entry.name)
        workdir.rmdir()
    home.rename(workdir)
