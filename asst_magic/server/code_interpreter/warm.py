"""A warm pool of kernels: started ahead of need, one after another, refilled after each take.

Shared by the local launcher (``pool.KernelLauncher``) and the gateway's
(``gateway.launcher.GatewayLauncher``). Each says how to start one pooled kernel
(``_new_pooled``) and how to stop one (``shutdown``); the pool does the rest:
keeping ``pool_size`` kernels starting or ready, handing out a live one, and
retiring kernels in the background.

Example::

    class Launcher(WarmPool[KernelProcess]):
        async def _new_pooled(self) -> KernelProcess: ...
        async def shutdown(self, kernel: KernelProcess) -> None: ...
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Sequence
from typing import Generic, Protocol, TypeVar

from asst_magic.server.code_interpreter.channels import KernelSetupError
from asst_magic.server.code_interpreter.process import KernelStartError

__all__ = ["PoolableKernel", "WarmPool"]


class PoolableKernel(Protocol):
    """What the pool needs of a kernel: whether it still runs, and warming it up."""

    async def is_alive(self) -> bool:
        """Whether the kernel still runs."""
        ...

    async def preload(self, modules: Sequence[str]) -> None:
        """Import ``modules`` ahead of need."""
        ...


KernelT = TypeVar("KernelT", bound=PoolableKernel)


class WarmPool(Generic[KernelT]):
    """``pool_size`` kernels started and preloaded ahead; retirements off the hot path."""

    def __init__(self, *, pool_size: int, preload: Sequence[str]) -> None:
        self.pool_size = pool_size
        self.preload = tuple(preload)
        self._pool: deque[asyncio.Task[KernelT]] = deque()
        self._retiring: set[asyncio.Task[None]] = set()
        self._closed = False

    def fill(self) -> None:
        """Start pooled kernels in the background up to ``pool_size``, one after another.

        One at a time: kernels starting together share the CPU, so the first one a
        run is waiting for would be ready later.
        """
        while not self._closed and len(self._pool) < self.pool_size:
            before = self._pool[-1] if self._pool else None
            self._pool.append(asyncio.create_task(self._pooled(before)))

    def ready(self) -> list[KernelT]:
        """The pooled kernels that have started fine."""
        return [t.result() for t in self._pool if t.done() and not t.exception()]

    def retire(self, kernel: KernelT) -> None:
        """Shut ``kernel`` down in the background."""
        task = asyncio.get_running_loop().create_task(self.shutdown(kernel))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def shutdown(self, kernel: KernelT) -> None:
        """Shut ``kernel`` down now."""
        raise NotImplementedError

    async def _new_pooled(self) -> KernelT:
        """Start one kernel for the pool (preloading is the pool's part)."""
        raise NotImplementedError

    async def _filled(self) -> list[KernelT | BaseException]:
        """Fill the pool and wait for it: each pooled kernel, or why it did not start."""
        self.fill()
        return await asyncio.gather(*self._pool, return_exceptions=True)

    async def _take_pooled(self) -> KernelT | None:
        """A pooled kernel that started fine and still runs, or None; the pool refills."""
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
        return kernel

    async def _close_pool(self) -> None:
        """Stop filling, retire the pooled kernels and wait for every retirement."""
        self._closed = True
        pooled = await asyncio.gather(*self._pool, return_exceptions=True)
        self._pool.clear()
        for kernel in pooled:
            if not isinstance(kernel, BaseException):
                self.retire(kernel)
        await asyncio.gather(*self._retiring, return_exceptions=True)

    async def _pooled(self, before: asyncio.Task[KernelT] | None) -> KernelT:
        """A kernel with the usual imports done, started once ``before`` is ready."""
        if before is not None:
            await asyncio.wait([before])
        kernel = await self._new_pooled()
        try:
            await kernel.preload(self.preload)
        except KernelSetupError:
            self.retire(kernel)
            raise
        return kernel
