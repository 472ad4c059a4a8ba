"""Runs inside a gateway kernel: lists, reads and writes its ``/mnt/data`` files.

The server sends this file's source over the kernel channel and registers it
as the module ``_asst_magic_files`` (see ``gateway.files``). Every answer is a
``display_data`` with the ``MIME`` type holding JSON: names, sizes and base64
text, never pickles. Only the standard library is used, as in ``boot``.
"""

from __future__ import annotations

import base64
import contextlib
import os
import stat
from typing import Any

__all__ = ["MIME", "MODULE_NAME", "finish", "listing", "remove", "send", "write"]

MIME = "application/x-asst-magic-files+json"
MODULE_NAME = "_asst_magic_files"


def _root() -> str:
    """The kernel's working directory (what ``/mnt/data`` maps to), set by ``enter_workdir``."""
    import _asst_magic_sandbox

    root: str = _asst_magic_sandbox._root
    return root


def _publish(payload: dict[str, Any]) -> None:
    from IPython.display import display

    display({MIME: payload}, raw=True)


def _inside(relative: str) -> str:
    """The real path of ``relative`` under the root; refuses anything leading out."""
    root = os.path.realpath(_root())
    path = os.path.realpath(os.path.join(root, relative))
    if not path.startswith(root + os.sep):
        raise ValueError(f"{relative!r} is outside /mnt/data")
    return path


def _stat(path: str) -> list[int]:
    info = os.stat(path)
    return [info.st_size, info.st_mtime_ns]


def listing() -> None:
    """Publish ``{"listing": {relative path: [size, mtime_ns]}}`` of every regular file."""
    root = os.path.realpath(_root())
    found = {}
    for folder, folders, names in os.walk(root):
        folders[:] = [f for f in folders if not os.path.islink(os.path.join(folder, f))]
        for name in names:
            path = os.path.join(folder, name)
            info = os.lstat(path)
            if stat.S_ISREG(info.st_mode):
                relative = os.path.relpath(path, root).replace(os.sep, "/")
                found[relative] = [info.st_size, info.st_mtime_ns]
    _publish({"listing": found})


def send(relatives: list[str], chunk: int) -> None:
    """Publish each file as base64 chunks, then ``{"path", "done": [size, mtime_ns]}``."""
    for relative in relatives:
        path = _inside(relative)
        with open(path, "rb") as handle:
            while True:
                data = handle.read(chunk)
                if data:
                    _publish({"path": relative, "data": base64.b64encode(data).decode("ascii")})
                if len(data) < chunk:
                    break
        _publish({"path": relative, "done": _stat(path)})


def write(relative: str, data: str, append: bool) -> None:
    """Write (or append) base64 ``data`` to the file ``relative``, making its folders."""
    path = _inside(relative)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "ab" if append else "wb") as handle:
        handle.write(base64.b64decode(data))


def finish(relative: str) -> None:
    """Publish ``{"path", "done": [size, mtime_ns]}`` of a file just written."""
    _publish({"path": relative, "done": _stat(_inside(relative))})


def remove(relatives: list[str]) -> None:
    """Delete files the server deleted from its copy of ``/mnt/data``."""
    for relative in relatives:
        with contextlib.suppress(FileNotFoundError, ValueError):
            os.unlink(_inside(relative))
