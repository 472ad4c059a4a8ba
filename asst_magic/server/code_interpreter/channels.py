"""What the sandbox needs of a kernel and of what starts kernels, wherever they run.

A ``Kernel`` is driven over the Jupyter message protocol only (execute requests,
IOPub messages, interrupt, shutdown), so a local ipykernel process
(``process.KernelProcess``) and one started through a Jupyter Enterprise Gateway
(``gateway.kernel.GatewayKernel``) look the same to the sandbox. ``SetupCode``
holds the set-up steps both run over those channels.

Example::

    kernel = await launcher.take(root / "thread_abc")
    msg_id = kernel.execute("print(1)")
    messages = await kernel.messages(msg_id, wait=1.0)
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

from asst_magic.server.code_interpreter import boot as kernel_boot

__all__ = ["Kernel", "KernelSetupError", "Launcher", "SetupCode"]

KernelT = TypeVar("KernelT")


class KernelSetupError(RuntimeError):
    """The sandbox's own set-up code failed inside a kernel."""


class Kernel(Protocol):
    """One started kernel as the sandbox drives it."""

    @property
    def pid(self) -> int:
        """The local process id, 0 when the kernel runs elsewhere."""
        ...

    def execute(self, code: str, *, silent: bool = False) -> str:
        """Send an execute request; returns its message id."""
        ...

    async def messages(self, msg_id: str, wait: float) -> list[dict[str, Any]]:
        """IOPub messages of ``msg_id``: wait up to ``wait`` s for one, then all that are ready."""
        ...

    async def is_alive(self) -> bool:
        """Whether the kernel still runs."""
        ...

    def exit_description(self) -> str:
        """How the kernel ended, e.g. ``exit code 1``."""
        ...

    async def interrupt(self) -> None:
        """Interrupt the running code (a ``KeyboardInterrupt`` in it)."""
        ...

    async def run_quiet(self, code: str, timeout: float = 60.0) -> None:
        """Run set-up code without history; raise ``KernelSetupError`` if it fails."""
        ...

    async def push_files(self, workdir: Path) -> None:
        """Bring the kernel's ``/mnt/data`` up to date with ``workdir`` (before code runs)."""
        ...

    async def pull_files(self, workdir: Path) -> list[str]:
        """Bring ``workdir`` up to date with the kernel's ``/mnt/data``; notes for the logs."""
        ...

    async def shutdown(self) -> None:
        """Stop the kernel and what it started."""
        ...


class Launcher(Protocol[KernelT]):
    """Starts kernels bound to threads' working directories, with a warm pool."""

    def pids(self) -> list[int]:
        """Local process ids of the warm pool's ready kernels."""
        ...

    async def wait_pool(self) -> None:
        """Fill the warm pool and wait until its kernels are ready."""
        ...

    async def take(self, workdir: Path) -> KernelT:
        """A ready kernel bound to ``workdir`` (its ``/mnt/data``)."""
        ...

    def retire(self, kernel: KernelT) -> None:
        """Shut ``kernel`` down in the background."""
        ...

    async def shutdown(self, kernel: KernelT) -> None:
        """Shut ``kernel`` down now."""
        ...

    async def aclose(self) -> None:
        """Shut down pooled kernels and wait for every retirement; idempotent."""
        ...


class SetupCode:
    """Set-up steps over a kernel's channels: quiet code, ``/mnt/data`` binding, preloads.

    Mixed into a kernel class that has ``execute``, ``messages``, ``is_alive`` and
    ``exit_description``.
    """

    def execute(self, code: str, *, silent: bool = False) -> str:
        raise NotImplementedError

    async def messages(self, msg_id: str, wait: float) -> list[dict[str, Any]]:
        raise NotImplementedError

    async def is_alive(self) -> bool:
        raise NotImplementedError

    def exit_description(self) -> str:
        raise NotImplementedError

    async def run_quiet(self, code: str, timeout: float = 60.0) -> None:
        """Run set-up code without history; raise ``KernelSetupError`` if it fails."""
        await self.run_collect(code, timeout)

    async def run_collect(self, code: str, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Run set-up code without history; its IOPub messages (``KernelSetupError`` on error)."""
        msg_id = self.execute(code, silent=True)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        found: list[dict[str, Any]] = []
        while loop.time() < deadline:
            for msg in await self.messages(msg_id, min(1.0, deadline - loop.time())):
                if msg["msg_type"] == "error":
                    raise KernelSetupError("\n".join(msg["content"].get("traceback", [])))
                if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                    return found
                found.append(msg)
            if not await self.is_alive():
                raise KernelSetupError(f"the kernel died during set-up ({self.exit_description()})")
        raise KernelSetupError(f"set-up code did not finish within {timeout:g} s")

    async def enter_workdir(self, workdir: Path, max_output_chars: int) -> None:
        """Bind the kernel to ``workdir`` (cwd and ``/mnt/data``) and cap its printing."""
        call = f"enter_workdir({str(workdir)!r}, {max_output_chars!r})"
        await self.run_quiet(f"import {kernel_boot.MODULE_NAME} as _s\n_s.{call}\ndel _s")

    async def preload(self, modules: Sequence[str]) -> None:
        """Import ``modules`` (those that exist) without binding names, to warm a pooled kernel."""
        if modules:
            await self.run_quiet(
                f"import {kernel_boot.MODULE_NAME} as _s\n_s.preload({list(modules)!r})\ndel _s"
            )

    async def push_files(self, workdir: Path) -> None:
        """Nothing to do when the kernel shares the server's filesystem."""

    async def pull_files(self, workdir: Path) -> list[str]:
        """Nothing to do when the kernel shares the server's filesystem."""
        return []
