"""A throwaway PostgreSQL cluster for the tests, under a temp dir, on a loopback port.

Uses Debian's ``postgresql`` binaries (``/usr/lib/postgresql/N/bin``). As root,
``initdb`` and the server run as the ``postgres`` user, which Debian's package
creates. ``ASST_MAGIC_TEST_DATABASE_URL`` points the tests at an existing server
instead (its user must be allowed to create databases).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["TEST_URL_ENV", "PostgresCluster"]

TEST_URL_ENV = "ASST_MAGIC_TEST_DATABASE_URL"
_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off", "max_connections=200")


class PostgresCluster:
    """A running PostgreSQL server that hands out a fresh database per test."""

    def __init__(self, admin_url: str, root: Path | None = None, owner: str | None = None) -> None:
        self.admin_url = admin_url
        self._root = root
        self._owner = owner
        self._names = itertools.count(1)

    @classmethod
    def start(cls) -> PostgresCluster:
        """Use ``$ASST_MAGIC_TEST_DATABASE_URL``, else initdb and start a new cluster."""
        if os.environ.get(TEST_URL_ENV):
            return cls(os.environ[TEST_URL_ENV])
        bindir = _bindir()
        owner = "postgres" if os.geteuid() == 0 else None  # initdb refuses to run as root
        root = Path(tempfile.mkdtemp(prefix="asst-pg-"))
        if owner is not None:
            shutil.chown(root, owner, owner)
        port = _free_port()
        _as(
            owner,
            [
                f"{bindir}/initdb",
                "-D",
                f"{root}/data",
                "-U",
                "asst",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        )
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} " + " ".join(
            f"-c {setting}" for setting in _SETTINGS
        )
        _as(
            owner,
            [
                f"{bindir}/pg_ctl",
                "-D",
                f"{root}/data",
                "-l",
                f"{root}/log",
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            ],
        )
        return cls(f"postgresql://asst@127.0.0.1:{port}/postgres", root, owner)

    def new_database(self) -> str:
        """The URL of a new, empty schema (a fresh database would take ~0.5 s to make)."""
        import psycopg

        name = f"t{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {name}")
        return f"{self.admin_url}?options=-c%20search_path%3D{name}"

    def stop(self) -> None:
        """Stop the server and remove its files (nothing, for an external server)."""
        if self._root is None:
            return
        with contextlib.suppress(subprocess.CalledProcessError):
            bindir = _bindir()
            _as(
                self._owner,
                [f"{bindir}/pg_ctl", "-D", f"{self._root}/data", "-m", "immediate", "-w", "stop"],
            )
        shutil.rmtree(self._root, ignore_errors=True)


def _bindir() -> str:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=_major)
    if found:
        return str(found[-1].parent)
    on_path = shutil.which("initdb")
    if on_path:
        return str(Path(on_path).parent)
    raise RuntimeError(
        "PostgreSQL's initdb was not found: install Debian's postgresql package "
        f"(apt-get install -y postgresql), or set {TEST_URL_ENV} to a server's URL."
    )


def _major(path: Path) -> int:
    return int(path.parent.parent.name) if path.parent.parent.name.isdigit() else 0


def _as(user: str | None, cmd: list[str]) -> None:
    extra: dict[str, Any] = {"user": user, "group": user, "extra_groups": []} if user else {}
    done = subprocess.run(cmd, capture_output=True, text=True, cwd="/", check=False, **extra)
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd[:1])} failed: {done.stdout}{done.stderr}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
