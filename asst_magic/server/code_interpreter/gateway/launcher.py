"""Starting, pooling and stopping code-interpreter kernels on a Jupyter Enterprise Gateway.

The same warm pool as ``pool.KernelLauncher`` (``warm.WarmPool``): ``pool_size``
kernels are started, booted and preloaded ahead of need, one after another, and
refilled after each take; retired kernels are stopped on the gateway in the background. Isolation
(containers, users, network) is the gateway's kernel images' job.

Example::

    launcher = GatewayLauncher(GatewayClient(url, token), max_output_chars=50_000)
    kernel = await launcher.take(root / "thread_abc")
    launcher.retire(kernel)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from asst_magic.server.code_interpreter.channels import KernelSetupError
from asst_magic.server.code_interpreter.gateway.client import GatewayClient
from asst_magic.server.code_interpreter.gateway.kernel import GatewayKernel
from asst_magic.server.code_interpreter.pool import USER_OPEN, KernelLimits
from asst_magic.server.code_interpreter.warm import WarmPool

__all__ = ["GatewayLauncher"]

log = logging.getLogger(__name__)


class GatewayLauncher(WarmPool[GatewayKernel]):
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
        super().__init__(pool_size=pool_size, preload=preload)
        self.client = client
        self.kernelspec = kernelspec
        self.limits = limits or KernelLimits()
        self.startup_timeout = startup_timeout

    def __repr__(self) -> str:
        return f"GatewayLauncher({self.client.url!r}, kernelspec={self.kernelspec!r})"

    def pids(self) -> list[int]:
        """None: the kernels' processes run on the gateway's side."""
        return []

    async def wait_pool(self) -> None:
        """Fill the pool and wait for it; say in the log when the gateway does not serve."""
        done = await self._filled()
        problems = {str(e) for e in done if isinstance(e, Exception)}
        for problem in problems:
            log.warning("code interpreter: could not start a gateway kernel: %s", problem)

    async def take(self, workdir: Path) -> GatewayKernel:
        """A ready kernel (a pooled one if it started fine); ``workdir`` is mirrored into it."""
        return await self._take_pooled() or await self._new_pooled()

    async def shutdown(self, kernel: GatewayKernel) -> None:
        """Stop ``kernel`` on the gateway now."""
        await kernel.shutdown()

    async def aclose(self) -> None:
        """Stop pooled kernels and wait for every retirement; idempotent."""
        await self._close_pool()

    async def _new_pooled(self) -> GatewayKernel:
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
