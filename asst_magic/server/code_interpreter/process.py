"""One sandbox kernel: an ipykernel process driven through ``jupyter_client``."""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
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
from asst_magic.server.code_interpreter.boot import MOUNT
from asst_magic.server.code_interpreter.bubblewrap import Bubblewrap
from asst_magic.server.code_interpreter.channels import KernelSetupError, SetupCode

__all__ = ["KernelProcess", "KernelSetupError", "KernelStartError", "kernel_env"]

KERNEL_NAME = "asst-magic-sandbox"
BOOT_INSIDE = "/run/asst-magic/boot.py"  # where a confined kernel sees the boot script
_BOOT_SCRIPT = Path(kernel_boot.__file__).resolve()
# The only variables a kernel inherits (plus LC_*): nothing that can hold a secret.
_PASSED = frozenset({"LANG", "LANGUAGE", "TZ", "TERM", "MALLOC_ARENA_MAX", "OPENBLAS_NUM_THREADS"})
_PASSED_UNCONFINED = ("PATH", "HOME", "USER", "LOGNAME", "TMPDIR", "SYSTEMROOT")
_SYSTEM_PATH = ("/usr/local/bin", "/usr/bin", "/bin")


class KernelStartError(RuntimeError):
    """A sandbox kernel process did not start or did not answer."""


class _SandboxKernelSpecs(KernelSpecManager):
    """Serves the one kernel spec the sandbox launches: ipykernel via ``kernel_boot``."""

    def __init__(self, argv: Sequence[str], interrupt_mode: str) -> None:
        super().__init__()
        self._argv = list(argv)
        self._interrupt_mode = interrupt_mode

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        """Return the sandbox spec whatever the name."""
        return KernelSpec(
            argv=list(self._argv),
            display_name="asst-magic code interpreter",
            language="python",
            interrupt_mode=self._interrupt_mode,
        )


def kernel_env(
    ipython_dir: Path | str, base: Mapping[str, str] | None = None, *, confined: bool = False
) -> dict[str, str]:
    """The kernel's environment, built from an allow list (never "all but the secrets").

    Confined kernels get ``HOME=/mnt/data`` and caches in their private ``/tmp``;
    an unconfined one keeps the user's ``HOME``, ``PATH`` and ``TMPDIR``.
    """
    source = os.environ if base is None else base
    env = {k: v for k, v in source.items() if k in _PASSED or k.startswith("LC_")}
    if confined:
        bindir = str(Path(sys.executable).parent)
        env.update(PATH=os.pathsep.join([bindir, *_SYSTEM_PATH]), HOME=MOUNT, TMPDIR="/tmp")
        # Caches go to the private /tmp, not into the thread's files.
        env.update(MPLCONFIGDIR="/tmp/matplotlib", XDG_CACHE_HOME="/tmp/.cache")
    else:
        env.update({k: source[k] for k in _PASSED_UNCONFINED if k in source})
    env.update(
        IPYTHONDIR=str(ipython_dir),
        MPLBACKEND="module://matplotlib_inline.backend_inline",
        PYDEVD_DISABLE_FILE_VALIDATION="1",
        PYTHONDONTWRITEBYTECODE="1",
    )
    # glibc reserves 64 MiB of address space per malloc arena and OpenBLAS a
    # buffer per thread; both count against RLIMIT_AS without using memory.
    env.setdefault("MALLOC_ARENA_MAX", "2")
    env.setdefault("OPENBLAS_NUM_THREADS", str(min(4, os.cpu_count() or 1)))
    return env


def _manager(
    name: str,
    channels: Path,
    memory_limit_bytes: int | None,
    max_processes: int | None,
    confine: Bubblewrap | None,
    workdir: Path,
) -> AsyncKernelManager:
    """A kernel manager for one boot-script kernel, confined or not."""
    limits = ["--memory-limit", str(memory_limit_bytes or 0)]
    limits += ["--max-processes", str(max_processes or 0)]
    tail = [*limits, "-f", "{connection_file}", "--HistoryManager.enabled=False"]
    if confine is None:
        argv = [sys.executable, str(_BOOT_SCRIPT), *tail]
        specs = _SandboxKernelSpecs(argv, interrupt_mode="signal")
        options: dict[str, Any] = {}
    else:
        # Signals sent to bwrap do not reach the kernel inside: interrupt by message.
        # ZeroMQ ipc sockets in ``channels`` cross the network namespace boundary.
        # The kernel's parent inside is bwrap's pid 1, which ipykernel's parent poller
        # takes for "orphaned": bwrap's --die-with-parent does that job instead.
        boot = confine.with_file(_BOOT_SCRIPT, BOOT_INSIDE)
        tail.append("--IPKernelApp.parent_handle=1")
        argv = boot.wrap([sys.executable, BOOT_INSIDE, *tail], workdir=workdir, channels=channels)
        specs = _SandboxKernelSpecs(argv, interrupt_mode="message")
        options = {"transport": "ipc", "ip": str(channels / "s")}
    return AsyncKernelManager(
        kernel_name=KERNEL_NAME,
        kernel_spec_manager=specs,
        connection_file=str(channels / "connection.json"),
        **options,
    )


@dataclass(eq=False)
class KernelProcess(SetupCode):
    """A started kernel and its client; the sandbox's unit of isolation."""

    manager: AsyncKernelManager
    client: Any  # AsyncKernelClient (untyped in jupyter_client)
    log_path: Path
    _log: IO[bytes]
    channels: Path  # connection file, sockets (confined) and log: removed at shutdown

    @classmethod
    async def start(
        cls,
        *,
        name: str | None = None,
        cwd: Path,
        runtime_dir: Path,
        env: Mapping[str, str],
        memory_limit_bytes: int | None,
        max_processes: int | None = None,
        startup_timeout: float = 60.0,
        confine: Bubblewrap | None = None,
    ) -> KernelProcess:
        """Launch a kernel in ``cwd`` (inside ``confine``'s sandbox if given); wait until ready."""
        name = name or f"kernel-{uuid.uuid4().hex[:12]}"
        channels = runtime_dir / name
        channels.mkdir(mode=0o700)
        manager = _manager(name, channels, memory_limit_bytes, max_processes, confine, cwd)
        log_path = channels / "kernel.log"
        log = log_path.open("wb")
        try:
            await manager.start_kernel(cwd=str(cwd), env=dict(env), stdout=log, stderr=log)
        except Exception as exc:
            log.close()
            shutil.rmtree(channels, ignore_errors=True)
            raise KernelStartError(f"could not launch a Python kernel: {exc}") from exc
        kernel = cls(manager, manager.client(), log_path, log, channels)
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
        shutil.rmtree(self.channels, ignore_errors=True)
