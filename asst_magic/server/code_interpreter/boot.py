"""Start-up code of a sandbox kernel process: memory limit and ``/mnt/data`` paths.

The sandbox launches each kernel as ``python kernel_boot.py --memory-limit N
--max-processes M -f CONNECTION_FILE``: this script sets those limits, registers
itself as the module ``_asst_magic_sandbox`` and hands over to ipykernel. The
sandbox later runs ``import _asst_magic_sandbox as s; s.enter_workdir(PATH)``
in the kernel to bind it to a thread's working directory.

``/mnt/data`` is where OpenAI's sandbox keeps files, so model-written code uses
such paths. A real ``/mnt/data`` would be shared by all threads, so instead the
path functions Python code opens files through (``open``, ``io.open``, the
``os`` functions behind ``os.path`` / ``pathlib`` / ``glob`` / ``shutil``) map
``/mnt/data[/...]`` onto the working directory. Code that opens paths in C
(``sqlite3``, ``h5py``, a subprocess) does not see the mapping; the working
directory is the current directory, so plain relative names work everywhere.

Only the standard library is used here: this file runs before the kernel's
``sys.path`` is settled and must not import ``asst_magic``.
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import io
import os
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["MOUNT", "enter_workdir", "main", "map_path", "preload"]

MOUNT = "/mnt/data"
MODULE_NAME = "_asst_magic_sandbox"

# One path argument (name -> keyword it may be passed as).
_ONE_PATH = {
    "stat": "path",
    "lstat": "path",
    "open": "path",
    "listdir": "path",
    "scandir": "path",
    "mkdir": "path",
    "rmdir": "path",
    "remove": "path",
    "unlink": "path",
    "access": "path",
    "chmod": "path",
    "utime": "path",
    "chdir": "path",
    "truncate": "path",
    "readlink": "path",
}
# Two path arguments (source and destination).
_TWO_PATHS = {"rename": ("src", "dst"), "replace": ("src", "dst"), "link": ("src", "dst")}

_root: str | None = None
_installed = False


def map_path(path: Any) -> Any:
    """Return ``path`` with a leading ``/mnt/data`` replaced by the working directory."""
    if _root is None or isinstance(path, int):
        return path
    try:
        text = os.fspath(path)
    except TypeError:
        return path
    if isinstance(text, bytes):
        mount, root = MOUNT.encode(), os.fsencode(_root)
        if text == mount or text.startswith(mount + b"/"):
            return root + text[len(mount) :]
        return path
    if text == MOUNT or text.startswith(MOUNT + "/"):
        return _root + text[len(MOUNT) :]
    return path


def _wrap(fn: Callable[..., Any], positions: int, keywords: tuple[str, ...]) -> Callable[..., Any]:
    """Wrap ``fn`` so its first ``positions`` arguments (or ``keywords``) are mapped."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if args:
            args = tuple(map_path(a) if i < positions else a for i, a in enumerate(args))
        for key in keywords:
            if key in kwargs:
                kwargs[key] = map_path(kwargs[key])
        return fn(*args, **kwargs)

    return wrapper


def _patch_os(name: str, positions: int, keywords: tuple[str, ...]) -> None:
    """Replace ``os.<name>`` with a mapping wrapper, keeping ``os.supports_*`` truthful."""
    original = getattr(os, name, None)
    if original is None:
        return
    wrapper = _wrap(original, positions, keywords)
    for capability in (
        os.supports_dir_fd,
        os.supports_fd,
        os.supports_follow_symlinks,
        os.supports_effective_ids,
    ):
        if original in capability:
            capability.add(wrapper)
    setattr(os, name, wrapper)


def _install() -> None:
    """Patch the path-taking functions once per process."""
    global _installed
    if _installed:
        return
    _installed = True
    opener = _wrap(io.open, 1, ("file",))
    builtins.open = opener
    io.open = opener
    for name, keyword in _ONE_PATH.items():
        _patch_os(name, 1, (keyword,))
    for name, keywords in _TWO_PATHS.items():
        _patch_os(name, 2, keywords)


def enter_workdir(path: str, max_output_chars: int | None = None) -> None:
    """Make ``path`` the current directory and the target of ``/mnt/data`` paths."""
    global _root
    _install()
    _root = os.path.abspath(path)
    os.chdir(_root)
    if max_output_chars is not None:
        _limit_output(max_output_chars)


_output = {"limit": -1, "used": 0}


def _capped(write: Callable[[str], Any]) -> Callable[[str], Any]:
    """Wrap a stream's ``write`` to drop text beyond the per-execution budget."""

    def capped_write(text: str) -> Any:
        room = _output["limit"] - _output["used"]
        if _output["limit"] >= 0 and len(text) > room:
            text = text[: max(room, 0)]
        _output["used"] += len(text)
        return write(text) if text else 0

    return capped_write


def _limit_output(max_chars: int) -> None:
    """Stop printed text a little past ``max_chars`` per execution, inside the kernel.

    The sandbox truncates at ``max_chars`` anyway; dropping the rest here keeps
    a ``print("x" * 10**8)`` from ever travelling to the server. One character
    more than the limit gets through, so the sandbox sees that it must truncate.
    """
    from IPython import get_ipython

    first = _output["limit"] < 0
    _output["limit"] = max_chars + 1
    if first:
        get_ipython().events.register("pre_execute", _cap_streams)


def _cap_streams() -> None:
    """Wrap ``sys.stdout``/``sys.stderr`` writes for one execution.

    IPython swaps in its own ``write`` around each cell and restores the plain
    one afterwards, so the cap is put on top anew at the start of every cell.
    """
    _output["used"] = 0
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError):  # a user's file object
            stream.write = _capped(stream.write)  # type: ignore[method-assign]


def preload(modules: list[str]) -> None:
    """Import what model code usually needs, so a pooled kernel's first run is quick."""
    import importlib

    for name in modules:
        with contextlib.suppress(Exception):  # a missing optional package is fine
            importlib.import_module(name)


def _set_limit(name: str, limit: int) -> None:
    """Cap ``resource.RLIMIT_<name>`` (address space: a failed allocation is a ``MemoryError``)."""
    try:
        import resource
    except ImportError:  # Windows: no rlimits
        return
    with contextlib.suppress(ValueError, OSError, AttributeError):  # macOS refuses RLIMIT_AS
        resource.setrlimit(getattr(resource, f"RLIMIT_{name}"), (limit, limit))


_LIMITS = {"--memory-limit": "AS", "--max-processes": "NPROC"}


def main(argv: list[str]) -> None:
    """Apply the limits given first (0 for none), register this module and run ipykernel."""
    while argv[:1] and argv[0] in _LIMITS:
        limit = int(argv[1])
        if limit > 0:
            _set_limit(_LIMITS[argv[0]], limit)
        del argv[:2]
    sys.modules[MODULE_NAME] = sys.modules[__name__]
    # Running a script puts its folder first on sys.path; user code must not
    # import asst_magic's server modules by accident. IPython adds '' back.
    del sys.path[0]
    sys.argv = [sys.argv[0], *argv]
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()


if __name__ == "__main__":
    main(sys.argv[1:])
