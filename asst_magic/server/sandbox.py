"""The contract between the run engine and the code interpreter.

The engine hands a thread's code to a ``Sandbox`` and streams what comes back
into the ``code_interpreter`` tool call's ``outputs``. The real implementation
runs each thread's code in its own Jupyter kernel (``asst_magic.server.kernels``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

__all__ = ["ImageOutput", "LogsOutput", "Sandbox", "SandboxFile", "SandboxOutput"]


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

    def execute(
        self, thread_id: str, code: str, files: Sequence[SandboxFile] = ()
    ) -> AsyncIterator[SandboxOutput]:
        """Run ``code`` in the thread's interpreter and stream its outputs in order.

        ``files`` are copied into the working directory first. Never raises for
        a failure of the code itself (that is a ``LogsOutput`` with the
        traceback); a lost kernel, a timeout or truncation are reported as logs too.
        """
        ...

    def workdir(self, thread_id: str) -> Path:
        """The directory the thread's code runs in (``/mnt/data`` in its paths)."""
        ...

    async def aclose(self) -> None:
        """Shut down every interpreter; idempotent."""
        ...
