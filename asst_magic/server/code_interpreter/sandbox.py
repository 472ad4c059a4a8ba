"""The contract between the run engine and the code interpreter.

The engine hands a thread's code to a ``Sandbox`` and streams what comes back
into the ``code_interpreter`` tool call's ``outputs``. The real implementation
runs each thread's code in its own Jupyter kernel (``asst_magic.server.code_interpreter.kernels``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

__all__ = [
    "ExecutionOutcome",
    "ImageOutput",
    "LogsOutput",
    "Sandbox",
    "SandboxFile",
    "SandboxOutput",
]

# How an execution ended: the code's own errors count as "completed" (their
# traceback is in the logs); "kernel_died" and "unavailable" mean the
# interpreter itself failed, and the engine fails the step.
ExecutionOutcome = Literal["completed", "timed_out", "kernel_died", "unavailable"]


@dataclass(frozen=True, slots=True)
class LogsOutput:
    """Text the code printed (stdout, stderr, a traceback), ANSI codes stripped."""

    text: str


@dataclass(frozen=True, slots=True)
class ImageOutput:
    """A PNG the code displayed (``plt.show()``, an inline figure, ``display(img)``)."""

    png: bytes


SandboxOutput = LogsOutput | ImageOutput


@dataclass(frozen=True, slots=True)
class SandboxFile:
    """A stored file to place in the thread's working directory as ``name``."""

    name: str
    path: Path


class Sandbox(Protocol):
    """Runs code for threads, one isolated interpreter state per thread."""

    async def start(self) -> None:
        """Warm up (e.g. fill a pool of interpreters); optional before ``execute``."""
        ...

    def execute(
        self, thread_id: str, code: str, files: Sequence[SandboxFile] = ()
    ) -> AsyncIterator[SandboxOutput]:
        """Run ``code`` in the thread's interpreter and stream its outputs in order.

        ``files`` are copied into the working directory first. Never raises for
        a failure of the code itself (that is a ``LogsOutput`` with the
        traceback); a lost kernel, a timeout or truncation are reported as logs too.
        """
        ...

    async def run_code(self, thread_id: str, code: str) -> str:
        """Run ``code`` in the thread's interpreter (as ``execute``) and return its printed text.

        For the server's own use, e.g. moving a variable in or out of a thread's
        kernel: ``await sandbox.run_code("thread_abc", "print(len(df))")``.
        """
        ...

    def workdir(self, thread_id: str) -> Path:
        """The directory the thread's code runs in (``/mnt/data`` in its paths)."""
        ...

    def resolve(self, thread_id: str, path: str) -> Path | None:
        """The file ``/mnt/data/NAME`` (or ``sandbox:/mnt/data/NAME``) names; None if outside."""
        ...

    def last_outcome(self, thread_id: str) -> ExecutionOutcome | None:
        """How the thread's last finished execution ended; None before any."""
        ...

    async def close_thread(self, thread_id: str, *, delete_files: bool = False) -> None:
        """Drop the thread's interpreter now (the thread was deleted); optionally its files."""
        ...

    async def aclose(self) -> None:
        """Shut down every interpreter; idempotent."""
        ...
