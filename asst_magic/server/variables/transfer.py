"""Define or fetch a variable in a thread's kernel, through the ``Sandbox`` API only.

A value travels as a file in the thread's working directory (its ``/mnt/data``):
the server writes it and runs ``load_code``, or runs ``dump_code`` and reads what
the kernel wrote. The server never parses the bytes; the notebook side decodes
them, without unpickling, and checks them again.

>>> await put_variable(sandbox, "thread_x", "df", "parquet", "dataframe", data)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from asst_magic.server.code_interpreter.sandbox import Sandbox
from asst_magic.server.variables.snippets import dump_code, load_code

__all__ = ["Fetched", "VariableProblem", "get_variable", "put_variable"]

_MOUNT = "/mnt/data"


class VariableProblem(Exception):
    """The variable could not be moved; ``status`` and ``code`` say how the API answers."""

    def __init__(self, status: int, message: str, code: str) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


@dataclass(frozen=True)
class Fetched:
    """A variable as the kernel wrote it: wire format, kind, Python type name and bytes."""

    format: str
    kind: str
    type: str
    data: bytes


async def put_variable(
    sandbox: Sandbox, thread_id: str, name: str, fmt: str, kind: str, data: bytes
) -> None:
    """Bind ``name`` in the thread's kernel to the value ``data`` encodes."""
    file_name = f".asst_magic_var_{secrets.token_hex(8)}"
    workdir = sandbox.workdir(thread_id)
    workdir.mkdir(parents=True, exist_ok=True)
    _write_new(workdir / file_name, data)
    try:
        nonce = _nonce()
        code = load_code(name, f"{_MOUNT}/{file_name}", fmt, kind, nonce)
        status = await _run(sandbox, thread_id, code, nonce)
    finally:
        with contextlib.suppress(OSError):  # the kernel normally removed it already
            (workdir / file_name).unlink()
    if status.get("status") != "ok":
        raise VariableProblem(
            400,
            f"The code interpreter could not load {name}: {status.get('message', status)}",
            "variable_not_loaded",
        )


async def get_variable(sandbox: Sandbox, thread_id: str, name: str, limit: int) -> Fetched:
    """The value of ``name`` in the thread's kernel, as the kernel wrote it (at most ``limit``)."""
    file_name = f".asst_magic_get_{secrets.token_hex(8)}"
    path = sandbox.workdir(thread_id) / file_name
    try:
        nonce = _nonce()
        code = dump_code(name, f"{_MOUNT}/{file_name}", nonce)
        status = await _run(sandbox, thread_id, code, nonce)
        _check_status(status, name, thread_id)
        data = _read_regular(path, limit, name)
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
    return Fetched(
        str(status.get("format")), str(status.get("kind")), str(status.get("type")), data
    )


def _check_status(status: dict[str, object], name: str, thread_id: str) -> None:
    outcome = status.get("status")
    if outcome == "missing":
        raise VariableProblem(
            404, f"No variable {name} in thread {thread_id}.", "variable_not_found"
        )
    if outcome == "unsupported":
        raise VariableProblem(
            400,
            f"{name} is a {status.get('type')}, which cannot be sent back safely. Supported: "
            "pandas DataFrame or Series (Parquet), numpy array (.npy), JSON-able values "
            "(dict, list, str, number, bool, None) and matplotlib figures (PNG). Ask the "
            "assistant to convert it to one of these.",
            "unsupported_variable_type",
        )
    if outcome != "ok":
        raise VariableProblem(
            400,
            f"The code interpreter could not write {name} ({status.get('type', 'value')}): "
            f"{status.get('message', 'no status')}",
            "variable_not_written",
        )


def _nonce() -> str:
    return f"asst-magic-{secrets.token_hex(8)}"


async def _run(sandbox: Sandbox, thread_id: str, code: str, nonce: str) -> dict[str, object]:
    """Run ``code``; the JSON status it printed after ``nonce`` (or the logs as a message)."""
    # run_code keeps the notes meant for the user (a lost kernel) for the thread's next run.
    text = await sandbox.run_code(thread_id, code)
    for line in reversed(text.splitlines()):
        if line.startswith(nonce + " "):
            with contextlib.suppress(ValueError):
                found = json.loads(line[len(nonce) + 1 :])
                if isinstance(found, dict):
                    return found
    tail = text.strip()[-500:] or "no output"
    return {"status": "error", "message": f"the kernel did not report back ({tail})"}


def _write_new(path: Path, data: bytes) -> None:
    """Create ``path`` (never through a link the code may have planted) and write ``data``."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _read_regular(path: Path, limit: int, name: str) -> bytes:
    """The bytes of ``path`` if it is a plain file of at most ``limit`` bytes (no symlinks)."""
    try:
        # O_NONBLOCK: a FIFO planted under the name must not hang the server.
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        fd = os.open(path, flags)
    except OSError as exc:
        raise VariableProblem(
            400,
            f"The code interpreter wrote no readable file for {name} ({exc.strerror}).",
            "variable_not_written",
        ) from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise VariableProblem(
                400,
                f"The code interpreter's file for {name} is not a regular file.",
                "variable_not_written",
            )
        data = handle.read(limit + 1)
        size = max(info.st_size, len(data))
        if size > limit:
            raise VariableProblem(
                413,
                f"{name} is {size:,} bytes once written, over the limit of {limit:,} "
                "bytes. Ask the assistant for a smaller result (a summary, a sample), or raise "
                "`%config AssistantMagics.max_var_bytes` (and the server's --max-body-bytes).",
                "variable_too_large",
            )
        return data
