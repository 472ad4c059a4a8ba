"""Confining a kernel process with bubblewrap (``bwrap``) on Linux.

Each sandboxed kernel gets its own PID, IPC, UTS, user and (unless the network
is allowed) network namespace, a root made of read-only system and Python
directories, a private ``/tmp``, and exactly one writable directory, mounted at
``/mnt/data`` and used as its working directory. The user's home, the data dir,
its database and other threads' folders are simply not there.

Example::

    probe = probe_bubblewrap()           # None when bwrap works here
    argv = Bubblewrap(network=False).wrap(
        ["python", "boot.py"], workdir=Path("/data/t1"), channels=Path("/run/k1")
    )
"""

from __future__ import annotations

import functools
import os
import shutil
import site
import subprocess
import sys
import sysconfig
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from asst_magic.server.code_interpreter.boot import MOUNT

__all__ = [
    "INSTALL_HINT",
    "Bubblewrap",
    "probe_bubblewrap",
    "python_roots",
]

INSTALL_HINT = (
    "install bubblewrap (Debian/Ubuntu: `sudo apt-get install bubblewrap`; Fedora: "
    "`sudo dnf install bubblewrap`) and make sure unprivileged user namespaces are enabled "
    "(`unshare -Ur true` must succeed)"
)
# System directories a Python process needs, mounted read-only when they exist.
_SYSTEM = ("/usr", "/etc", "/opt", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# What in /etc may name the host's secrets or users' files: not mounted.
_HIDDEN_ETC = ("shadow", "gshadow", "sudoers", "ssh", "ssl/private")


def probe_bubblewrap() -> str | None:
    """None when ``bwrap`` (on ``PATH``) can build a sandbox here; else what is missing."""
    if not sys.platform.startswith("linux"):
        return f"the code sandbox uses Linux namespaces and this is {sys.platform}"
    return _probe(shutil.which("bwrap"))


@functools.cache
def _probe(exe: str | None) -> str | None:
    if exe is None:
        return "`bwrap` (bubblewrap) is not installed"
    argv = [exe, *_namespaces(network=False), "--ro-bind", "/", "/", "--", "/bin/true"]
    try:
        done = subprocess.run(argv, capture_output=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"`bwrap` could not run ({exc})"
    if done.returncode != 0:
        reason = done.stderr.decode(errors="replace").strip() or f"exit code {done.returncode}"
        return f"`bwrap` cannot create namespaces here ({reason})"
    return None


def _namespaces(*, network: bool) -> list[str]:
    argv = ["--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts"]
    argv += ["--unshare-cgroup-try", "--die-with-parent", "--new-session"]
    return argv if network else [*argv, "--unshare-net"]


def python_roots() -> list[Path]:
    """Directories the kernel's Python reads: its prefixes and site-packages folders.

    Not every ``sys.path`` entry: an editable install's project folder (with its
    ``.env`` files, say) stays out; the kernel does not import the server.
    """
    found = [Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix)]
    found += [Path(p) for p in sysconfig.get_paths().values()]
    found += [Path(p) for p in site.getsitepackages()]
    if site.ENABLE_USER_SITE:
        found.append(Path(site.getusersitepackages()))
    found.append(Path(sys.executable).resolve().parent)
    return _outermost(p.resolve() for p in found if p.exists())


def _outermost(paths: Iterable[Path]) -> list[Path]:
    """The paths not inside another one of them, sorted."""
    kept: list[Path] = []
    for path in sorted(set(paths), key=lambda p: len(p.parts)):
        if not any(path.is_relative_to(k) for k in kept):
            kept.append(path)
    return sorted(kept)


@dataclass(frozen=True)
class Bubblewrap:
    """Builds the ``bwrap`` command line for one kernel.

    ``readable`` are extra host paths mounted read-only at the same place (the
    Python environment; never the data dir). ``hidden`` host paths are left out
    even when inside a readable one (the data dir when it lives in a venv, say).
    """

    network: bool = False
    readable: tuple[Path, ...] = ()
    hidden: tuple[Path, ...] = ()
    files: tuple[tuple[Path, str], ...] = ()  # (host file, path inside), read-only

    def with_file(self, host: Path, inside: str) -> Bubblewrap:
        """A copy that also mounts the file ``host`` read-only at ``inside``."""
        return replace(self, files=(*self.files, (host, inside)))

    def wrap(self, argv: Sequence[str], *, workdir: Path, channels: Path) -> list[str]:
        """``argv`` run inside the sandbox, ``workdir`` as ``/mnt/data`` and cwd.

        ``channels`` (the kernel's connection file and ZeroMQ ``ipc`` sockets)
        is mounted writable at its own path, so both sides name the sockets alike.
        """
        exe = shutil.which("bwrap") or "bwrap"
        cmd = [exe, *_namespaces(network=self.network), *self._root(), *self._fresh()]
        cmd += ["--bind", str(workdir), MOUNT, "--bind", str(channels), str(channels)]
        # The root itself (a tmpfs holding the mount points) is made read-only last.
        cmd += ["--remount-ro", "/", "--chdir", MOUNT, "--", *argv]
        return cmd

    def _root(self) -> list[str]:
        """Read-only system and Python directories."""
        mounts: list[str] = []
        for name in _SYSTEM:
            if os.path.islink(name):
                mounts += ["--symlink", os.readlink(name), name]
            elif os.path.isdir(name):
                mounts += ["--ro-bind", name, name]
        for path in self.readable:
            mounts += ["--ro-bind", str(path), str(path)]
        return mounts + self._hide()

    def _hide(self) -> list[str]:
        """Cover secrets in /etc, and ``hidden`` paths that fall inside a readable one."""
        shown = [Path(p) for p in _SYSTEM] + list(self.readable)
        mounts: list[str] = []
        for path in (*(Path("/etc", p) for p in _HIDDEN_ETC), *self.hidden):
            if not any(path.is_relative_to(root) for root in shown):
                continue
            if path.is_dir():  # an empty, private tmpfs in its place
                mounts += ["--tmpfs", str(path)]
            elif path.exists():
                mounts += ["--ro-bind", "/dev/null", str(path)]
        return mounts

    def _fresh(self) -> list[str]:
        """New /proc, /dev, /tmp and /run; the read-only files under /run."""
        mounts: list[str] = []
        mounts += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", "/run"]
        # A Python environment living there (a virtualenv under /tmp, say) goes back on
        # top of the fresh tmpfs, its hidden paths covered again.
        again = [p for p in self.readable if p.is_relative_to("/tmp") or p.is_relative_to("/run")]
        for path in again:
            mounts += ["--ro-bind", str(path), str(path)]
        if again:
            mounts += self._hide()
        for host, inside in self.files:
            mounts += ["--ro-bind", str(host), inside]
        return [*mounts, "--dir", MOUNT]
