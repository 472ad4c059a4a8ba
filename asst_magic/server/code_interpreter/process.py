"""One sandbox kernel: an ipykernel process driven through ``jupyter_client``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import re
import signal
import sys
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import AsyncKernelManager

from asst_magic.server.code_interpreter import boot as kernel_boot

__all__ = ["KernelProcess", "KernelSetupError", "KernelStartError", "kernel_env"]

KERNEL_NAME = "asst-magic-sandbox"
_BOOT_SCRIPT = Path(kernel_boot.__file__).resolve()
# Environment variables the model-written code must not read (API keys, tokens).
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSW|CREDENTIAL|^OPENAI_|^AZURE_|^ASST_MAGIC_", re.I)


class KernelStartError(RuntimeError):
    """A sandbox kernel process did not start or did not answer."""


class KernelSetupError(RuntimeError):
    """The sandbox's own set-up code failed inside a kernel."""


class _SandboxKernelSpecs(KernelSpecManager):
    """Serves the one kernel spec the sandbox launches: ipykernel via ``kernel_boot``."""

    def __init__(self, argv: Sequence[str]) -> None:
        super().__init__()
        self._argv = list(argv)

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        """Return the sandbox spec whatever the name."""
        return KernelSpec(
            argv=list(self._argv),
            display_name="asst-magic code interpreter",
            language="python",
            interrupt_mode="signal",
        )


def kernel_env(ipython_dir: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The kernel's environment: no secrets, a private IPython dir, inline matplotlib."""
    env = {k: v for k, v in (os.environ if base is None else base).items()}
    env = {k: v for k, v in env.items() if not _SECRET_NAME.search(k)}
    for name in ("JPY_PARENT_PID", "JPY_SESSION_NAME", "PYTHONSTARTUP"):
        env.pop(name, None)
    env.update(
        IPYTHONDIR=str(ipython_dir),
        MPLBACKEND="module://matplotlib_inline.backend_inline",
        PYDEVD_DISABLE_FILE_VALIDATION="1",
    )
    # glibc reserves 64 MiB of address space per malloc arena and OpenBLAS a
    # buffer per thread; both count against RLIMIT_AS without using memory.
    env.setdefault("MALLOC_ARENA_MAX", "2")
    env.setdefault("OPENBLAS_NUM_THREADS", str(min(4, os.cpu_count() or 1)))
    return env


@dataclass(eq=False)
class KernelProcess:
    """A started kernel and its client; the sandbox's unit of isolation."""

    manager: AsyncKernelManager
    client: Any  # AsyncKernelClient (untyped in jupyter_client)
    log_path: Path
    _log: IO[bytes]

    @classmethod
    async def start(
        cls,
        *,
        cwd: Path,
        runtime_dir: Path,
        env: Mapping[str, str],
        memory_limit_bytes: int | None,
        startup_timeout: float = 60.0,
    ) -> KernelProcess:
        """Launch a kernel in ``cwd`` and wait until it answers."""
        name = f"kernel-{uuid.uuid4().hex[:12]}"
        argv = [sys.executable, str(_BOOT_SCRIPT), "--memory-limit", str(memory_limit_bytes or 0)]
        argv += ["-f", "{connection_file}", "--HistoryManager.enabled=False"]
        manager = AsyncKernelManager(
            kernel_name=KERNEL_NAME,
            kernel_spec_manager=_SandboxKernelSpecs(argv),
            connection_file=str(runtime_dir / f"{name}.json"),
        )
        log_path = runtime_dir / f"{name}.log"
        log = log_path.open("wb")
        try:
            await manager.start_kernel(cwd=str(cwd), env=dict(env), stdout=log, stderr=log)
        except Exception as exc:
            log.close()
            raise KernelStartError(f"could not launch a Python kernel: {exc}") from exc
        kernel = cls(manager, manager.client(), log_path, log)
        await kernel._wait_ready(startup_timeout)
        return kernel

    async def _wait_ready(self, timeout: float) -> None:
        """Open the channels; shut the process down if it never answers."""
        self.client.start_channels()
        try:
            await self.client.wait_for_ready(timeout=timeout)
        except (RuntimeError, TimeoutError) as exc:
            tail = self.log_tail()
            await self.shutdown()
            raise KernelStartError(f"the Python kernel did not start: {exc}\n{tail}") from exc

    @property
    def pid(self) -> int:
        """The kernel process id."""
        return int(getattr(self.manager.provisioner, "pid", 0) or 0)

    def log_tail(self, limit: int = 2000) -> str:
        """The end of what the kernel process wrote to its stdout/stderr."""
        try:
            return self.log_path.read_text(errors="replace")[-limit:]
        except OSError:
            return ""

    async def is_alive(self) -> bool:
        """Whether the process still runs."""
        return bool(await self.manager.is_alive())

    def exit_description(self) -> str:
        """How the process ended, e.g. ``exit code 1`` or ``signal SIGSEGV``."""
        process = getattr(self.manager.provisioner, "process", None)
        code = process.poll() if process is not None else None
        if code is None:
            return "unknown exit status"
        if code < 0:
            with contextlib.suppress(ValueError):
                return f"killed by signal {signal.Signals(-code).name}"
            return f"killed by signal {-code}"
        return f"exit code {code}"

    def execute(self, code: str, *, silent: bool = False) -> str:
        """Send an execute request; returns its message id."""
        # stop_on_error=False: an error (or an interrupt) in this request must never
        # make the kernel abort the thread's next request, queued behind it.
        msg_id: str = self.client.execute(
            code, silent=silent, store_history=not silent, allow_stdin=False, stop_on_error=False
        )
        return msg_id

    async def messages(self, msg_id: str, wait: float) -> list[dict[str, Any]]:
        """IOPub messages of ``msg_id``: wait up to ``wait`` s for one, then all that are ready."""
        found: list[dict[str, Any]] = []
        timeout: float | None = max(wait, 0.0)
        while True:
            try:
                msg = await self.client.get_iopub_msg(timeout=timeout)
            except queue.Empty:
                return found
            if msg.get("parent_header", {}).get("msg_id") == msg_id:
                found.append(msg)
            if found:
                timeout = 0  # only what is already here: coalesce without waiting

    async def run_quiet(self, code: str, timeout: float = 60.0) -> None:
        """Run set-up code without history; raise ``KernelSetupError`` if it fails."""
        msg_id = self.execute(code, silent=True)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            for msg in await self.messages(msg_id, min(1.0, deadline - loop.time())):
                if msg["msg_type"] == "error":
                    raise KernelSetupError("\n".join(msg["content"].get("traceback", [])))
                if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                    return
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

    async def interrupt(self) -> None:
        """Send SIGINT (a ``KeyboardInterrupt`` in the running code)."""
        with contextlib.suppress(Exception):
            await self.manager.interrupt_kernel()

    async def shutdown(self) -> None:
        """Kill the process group (the kernel and anything it spawned), remove its files."""
        with contextlib.suppress(Exception):
            self.client.stop_channels()
        # now=True: SIGKILL to the whole process group, so subprocesses the
        # code started go too; a graceful request would leave them behind.
        with contextlib.suppress(Exception):
            await self.manager.shutdown_kernel(now=True)
        self._log.close()
        with contextlib.suppress(OSError):
            self.log_path.unlink()
