"""Starting, pooling and stopping code-interpreter kernels on a Jupyter Enterprise Gateway.

The same shape as ``pool.KernelLauncher``: ``pool_size`` kernels are started,
booted and preloaded ahead of need, one after another, and refilled after each
take; retired kernels are stopped on the gateway in the background. Isolation
(containers, users, network) is the gateway's kernel images' job.

Example::

    launcher = GatewayLauncher(GatewayClient(url, token), max_output_chars=50_000)
    kernel = await launcher.take(root / "thread_abc")
    launcher.retire(kernel)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Sequence
from pathlib import Path

from asst_magic.server.code_interpreter.channels import KernelSetupError
from asst_magic.server.code_interpreter.gateway.client import GatewayClient
from asst_magic.server.code_interpreter.gateway.kernel import GatewayKernel
from asst_magic.server.code_interpreter.pool import USER_OPEN, KernelLimits
from asst_magic.server.code_interpreter.process import KernelStartError

__all__ = ["GatewayLauncher"]

log = logging.getLogger(__name__)


class GatewayLauncher:
    """Starts kernels of ``kernelspec`` through ``client``; keeps a warm pool of them."""

    def __init__(
        self,
        client: GatewayClient,
        *,
        kernelspec: str = "python3",
        limits: KernelLimits | None = None,
        pool_size: int = 2,
        preload: Sequence[str] = (),
        startup_timeout: float = 60.0,
    ) -> None:
        self.client = client
        self.kernelspec = kernelspec
        self.limits = limits or KernelLimits()
        self.pool_size = pool_size
        self.preload = tuple(preload)
        self.startup_timeout = startup_timeout
        self._pool: deque[asyncio.Task[GatewayKernel]] = deque()
        self._retiring: set[asyncio.Task[None]] = set()
        self._closed = False

    def __repr__(self) -> str:
        return f"GatewayLauncher({self.client.url!r}, kernelspec={self.kernelspec!r})"

    def pids(self) -> list[int]:
        """None: the kernels' processes run on the gateway's side."""
        return []

    def fill(self) -> None:
        """Start pooled kernels in the background up to ``pool_size``, one after another."""
        while not self._closed and len(self._pool) < self.pool_size:
            before = self._pool[-1] if self._pool else None
            self._pool.append(asyncio.create_task(self._pooled(before)))

    async def wait_pool(self) -> None:
        """Fill the pool and wait for it; say in the log when the gateway does not serve."""
        self.fill()
        done = await asyncio.gather(*self._pool, return_exceptions=True)
        problems = {str(e) for e in done if isinstance(e, Exception)}
        for problem in problems:
            log.warning("code interpreter: could not start a gateway kernel: %s", problem)

    async def take(self, workdir: Path) -> GatewayKernel:
        """A ready kernel (a pooled one if it started fine); ``workdir`` is mirrored into it."""
        kernel = None
        if self._pool:
            task = self._pool.popleft()
            self.fill()
            with contextlib.suppress(KernelStartError, KernelSetupError):
                kernel = await task
        else:
            self.fill()
        if kernel is not None and not await kernel.is_alive():
            self.retire(kernel)
            kernel = None
        return kernel or await self._started()

    def retire(self, kernel: GatewayKernel) -> None:
        """Stop ``kernel`` on the gateway in the background."""
        task = asyncio.get_running_loop().create_task(self.shutdown(kernel))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def shutdown(self, kernel: GatewayKernel) -> None:
        """Stop ``kernel`` on the gateway now."""
        await kernel.shutdown()

    async def aclose(self) -> None:
        """Stop pooled kernels and wait for every retirement; idempotent."""
        self._closed = True
        pooled = await asyncio.gather(*self._pool, return_exceptions=True)
        self._pool.clear()
        for kernel in pooled:
            if isinstance(kernel, GatewayKernel):
                self.retire(kernel)
        await asyncio.gather(*self._retiring, return_exceptions=True)

    async def _pooled(self, before: asyncio.Task[GatewayKernel] | None) -> GatewayKernel:
        """A booted kernel with the usual imports done, once ``before`` is ready."""
        if before is not None:
            await asyncio.wait([before])
        kernel = await self._started()
        try:
            await kernel.preload(self.preload)
        except KernelSetupError:
            self.retire(kernel)
            raise
        return kernel

    async def _started(self) -> GatewayKernel:
        """A new kernel on the gateway, booted as local kernels are.

        The process limit is left out: RLIMIT_NPROC counts every process of the
        gateway's kernel user on that host, not this kernel's.
        """
        kernel = await GatewayKernel.start(
            self.client, self.kernelspec, startup_timeout=self.startup_timeout
        )
        try:
            await kernel.boot(
                max_output_chars=self.limits.output_chars,
                memory_limit_bytes=self.limits.memory_bytes,
            )
            await kernel.run_quiet(USER_OPEN)
        except KernelSetupError:
            self.retire(kernel)
            raise
        return kernel
