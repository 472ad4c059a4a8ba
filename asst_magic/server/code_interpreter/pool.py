"""Starting, pooling and retiring kernel processes, confined or not.

A ``KernelLauncher`` keeps ``pool_size`` kernels started and preloaded ahead
of need, refilled in the background after each take, and hands out kernels
bound to a thread's working directory. A confined (bubblewrap) kernel's
``/mnt/data`` is fixed when it starts, so a pooled one starts on a folder of its
own under ``.pool/``, and taking it renames that folder into the thread's place
(moving in what the thread already had): a bind mount follows the folder.

Example::

    launcher = KernelLauncher(root, confinement, pool_size=2)
    kernel = await launcher.take(root / "thread_abc")
    launcher.retire(kernel)   # shut down in the background
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from asst_magic.server.code_interpreter.boot import MOUNT
from asst_magic.server.code_interpreter.confinement import Confinement
from asst_magic.server.code_interpreter.process import (
    KernelProcess,
    KernelSetupError,
    kernel_env,
)
from asst_magic.server.code_interpreter.runtime import (
    TAG_VARIABLE,
    claim_runtime,
    end_tagged,
    runtime_base,
)
from asst_magic.server.code_interpreter.warm import WarmPool
from asst_magic.server.code_interpreter.workdirs import adopt

__all__ = ["USER_OPEN", "KernelLauncher", "KernelLimits"]

# IPython puts its own ``open`` (bound to the unpatched ``io.open``) into the user
# namespace, so user code's ``open("/mnt/data/x")`` would miss the path mapping:
# point it at the mapped builtin.
USER_OPEN = (
    "import builtins as _b\n_ip = get_ipython()\n"
    "_ip.user_ns['open'] = _ip.user_ns_hidden['open'] = _b.open\ndel _b, _ip"
)


@dataclass(frozen=True)
class KernelLimits:
    """Per-kernel limits: address space (bytes), processes, printed characters per run."""

    memory_bytes: int | None = 2 * 1024**3
    processes: int | None = 256
    output_chars: int = 50_000


class KernelLauncher(WarmPool[KernelProcess]):
    """Starts kernels for a sandbox root; keeps a warm pool; retires kernels off the hot path."""

    def __init__(
        self,
        root: Path,
        confinement: Confinement,
        *,
        limits: KernelLimits = KernelLimits(),
        pool_size: int = 2,
        preload: Sequence[str] = (),
        startup_timeout: float = 60.0,
    ) -> None:
        super().__init__(pool_size=pool_size, preload=preload)
        self.root = root
        self.confinement = confinement
        self.limits = limits
        self.startup_timeout = startup_timeout
        self._runtime: Path | None = None
        self._homes: dict[KernelProcess, Path] = {}  # pooled confined kernel -> its folder

    @property
    def confined(self) -> bool:
        """Whether kernels run inside the bubblewrap sandbox."""
        return self.confinement.bubblewrap is not None

    def pids(self) -> list[int]:
        """Process ids of the warm pool's ready kernels."""
        return [kernel.pid for kernel in self.ready()]

    async def wait_pool(self) -> None:
        """Clean up after a crashed server, fill the pool and wait until its kernels are ready."""
        await self._claim()
        await self._filled()

    async def take(self, workdir: Path) -> KernelProcess:
        """A kernel bound to ``workdir``: a pooled one if it started fine, else a new one."""
        kernel = await self._take_pooled()
        if kernel is None:
            kernel = await self._start(workdir)
        elif kernel in self._homes:
            await asyncio.to_thread(adopt, self._homes.pop(kernel), workdir)
        try:
            inside = MOUNT if self.confined else str(workdir)
            await kernel.enter_workdir(Path(inside), self.limits.output_chars)
            await kernel.run_quiet(USER_OPEN)
        except KernelSetupError:
            self.retire(kernel)
            raise
        return kernel

    async def aclose(self) -> None:
        """Shut down pooled kernels and wait for every retirement; idempotent."""
        await self._close_pool()
        if self._runtime is not None:
            shutil.rmtree(self._runtime, ignore_errors=True)
            with contextlib.suppress(OSError):  # the base too, unless another server uses it
                self._runtime.parent.rmdir()

    async def _new_pooled(self) -> KernelProcess:
        """A kernel on a neutral folder (a confined one's own: its mount is fixed at start)."""
        home = self.root / ".pool"
        if self.confined:
            home = home / uuid.uuid4().hex[:12]
        kernel = await self._start(home)
        if self.confined:
            self._homes[kernel] = home
        return kernel

    async def _start(self, cwd: Path) -> KernelProcess:
        """Start a kernel process with ``cwd`` as its folder, environment and limits."""
        runtime = await self._claim()
        name = f"kernel-{uuid.uuid4().hex[:12]}"
        cwd.mkdir(parents=True, exist_ok=True)
        if self.confined:
            env = kernel_env("/tmp/ipython", confined=True)
        else:
            (self.root / ".ipython").mkdir(parents=True, exist_ok=True)
            env = kernel_env(self.root / ".ipython")
            env[TAG_VARIABLE] = f"{runtime.name}/{name}"
        return await KernelProcess.start(
            name=name,
            cwd=cwd,
            runtime_dir=runtime,
            env=env,
            memory_limit_bytes=self.limits.memory_bytes,
            max_processes=self.limits.processes,
            startup_timeout=self.startup_timeout,
            confine=self.confinement.bubblewrap,
        )

    async def _claim(self) -> Path:
        """This server's runtime folder (made on first use, clearing a dead server's)."""
        if self._runtime is None:
            self._runtime = await asyncio.to_thread(claim_runtime, runtime_base(self.root))
        return self._runtime

    async def shutdown(self, kernel: KernelProcess) -> None:
        """Shut ``kernel`` down now, with its pool folder and (unconfined) escaped children."""
        await kernel.shutdown()
        home = self._homes.pop(kernel, None)
        if home is not None:
            await asyncio.to_thread(shutil.rmtree, home, True)
        if not self.confined and self._runtime is not None:
            # Children that left the kernel's process group (setsid) still carry its tag.
            await asyncio.to_thread(end_tagged, f"{self._runtime.name}/{kernel.channels.name}")
