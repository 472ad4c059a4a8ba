"""The code interpreter: each thread's code runs in its own Jupyter kernel.

Example::

    sandbox = KernelSandbox(data_dir / "sandbox", timeout=120)
    await sandbox.start()  # warm the pool
    async for output in sandbox.execute("thread_abc", "print(1)"):
        ...  # LogsOutput("1\\n")
    await sandbox.aclose()

Layout under ``root``: ``<thread_id>/`` is a thread's working directory (its
``/mnt/data``); ``.pool/`` is where warm kernels wait; ``.runtime/`` holds
connection files and kernel logs; ``.ipython/`` is the kernels' private
IPython dir, so the user's own profile is never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
from collections import deque
from collections.abc import AsyncIterator, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from asst_magic.server.code_interpreter.boot import MOUNT
from asst_magic.server.code_interpreter.execution import OUTCOMES, Execution, ending, lost_note
from asst_magic.server.code_interpreter.outputs import OutputCollector
from asst_magic.server.code_interpreter.process import (
    KernelProcess,
    KernelSetupError,
    KernelStartError,
    kernel_env,
)
from asst_magic.server.code_interpreter.sandbox import (
    ExecutionOutcome,
    LogsOutput,
    SandboxFile,
    SandboxOutput,
)

if TYPE_CHECKING:
    from asst_magic.server.config import ServerConfig

__all__ = ["DEFAULT_PRELOAD", "ExecutionOutcome", "KernelSandbox", "create_sandbox"]

DEFAULT_PRELOAD = ("numpy", "pandas", "matplotlib.pyplot")
_THREAD_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
_MOUNT_PARTS = PurePosixPath(MOUNT).parts
# IPython puts its own ``open`` (bound to the unpatched ``io.open``) into the user
# namespace, so user code's ``open("/mnt/data/x")`` would miss the path mapping:
# point it at the mapped builtin.
_USER_OPEN = (
    "import builtins as _b\n_ip = get_ipython()\n"
    "_ip.user_ns['open'] = _ip.user_ns_hidden['open'] = _b.open\ndel _b, _ip"
)


class KernelSandbox:
    """A ``Sandbox`` with one ipykernel process per thread, a warm pool and limits."""

    def __init__(
        self,
        root: Path,
        *,
        timeout: float = 120.0,
        max_output_chars: int = 50_000,
        memory_limit_bytes: int | None = 2 * 1024**3,
        idle_timeout: float = 600.0,
        pool_size: int = 1,
        max_kernels: int = 8,
        max_images: int = 25,
        preload: Sequence[str] = DEFAULT_PRELOAD,
        startup_timeout: float = 60.0,
    ) -> None:
        self.root = Path(root).resolve()
        self.timeout = timeout
        self.max_output_chars = max_output_chars
        self.memory_limit_bytes = memory_limit_bytes
        self.idle_timeout = idle_timeout
        self.pool_size = pool_size
        self.max_kernels = max_kernels
        self.max_images = max_images
        self.preload = tuple(preload)
        self.startup_timeout = startup_timeout
        self._kernels: dict[str, KernelProcess] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._lost: dict[str, str] = {}
        self._outcomes: dict[str, ExecutionOutcome] = {}
        self._idle: dict[str, asyncio.TimerHandle] = {}
        self._pool: deque[asyncio.Task[KernelProcess]] = deque()
        self._tasks: set[asyncio.Task[None]] = set()
        self._settling: dict[str, asyncio.Task[None]] = {}  # abandoned requests being stopped
        self._closed = False

    # -- public API ---------------------------------------------------------

    def workdir(self, thread_id: str) -> Path:
        """The directory the thread's code runs in (``/mnt/data`` in its paths)."""
        if not _THREAD_ID.fullmatch(thread_id):
            raise ValueError(f"invalid thread id {thread_id!r}: use letters, digits, '_' or '-'")
        return self.root / thread_id

    def resolve(self, thread_id: str, path: str) -> Path | None:
        """Map ``/mnt/data/NAME`` (or ``sandbox:/mnt/data/NAME``) to the file in the workdir.

        Returns None for paths outside ``/mnt/data`` or escaping it with ``..``.
        """
        pure = PurePosixPath(path.removeprefix("sandbox:"))
        parts = pure.parts
        if parts[: len(_MOUNT_PARTS)] != _MOUNT_PARTS or len(parts) == len(_MOUNT_PARTS):
            return None
        if ".." in parts:
            return None
        return self.workdir(thread_id).joinpath(*parts[len(_MOUNT_PARTS) :])

    def kernel_pids(self) -> list[int]:
        """Process ids of the kernels now running (threads' and warm pool's)."""
        pids = [k.pid for k in self._kernels.values()]
        pids += [t.result().pid for t in self._pool if t.done() and not t.exception()]
        return pids

    def last_outcome(self, thread_id: str) -> ExecutionOutcome | None:
        """How the thread's last finished execution ended (code errors count as completed)."""
        return self._outcomes.get(thread_id)

    async def start(self) -> None:
        """Fill the warm pool and wait until its kernels are ready (optional; idempotent)."""
        self._check_open()
        self._fill_pool()
        await asyncio.gather(*self._pool, return_exceptions=True)

    async def execute(
        self, thread_id: str, code: str, files: Sequence[SandboxFile] = ()
    ) -> AsyncIterator[SandboxOutput]:
        """Run ``code`` in the thread's kernel and stream its outputs in order."""
        workdir = self.workdir(thread_id)
        self._check_open()
        async with self._locks.setdefault(thread_id, asyncio.Lock()):
            self._disarm_idle(thread_id)
            await self._await_settled(thread_id)
            workdir.mkdir(parents=True, exist_ok=True)
            if files:
                await asyncio.to_thread(_place_files, workdir, files)
            try:
                kernel = await self._kernel_for(thread_id, workdir)
            except (KernelStartError, KernelSetupError) as exc:
                self._outcomes[thread_id] = "unavailable"
                yield LogsOutput(f"The code interpreter could not start a Python kernel: {exc}\n")
                return
            try:
                lost = self._lost.pop(thread_id, None)
                if lost:
                    yield LogsOutput(lost_note(lost))
                async for output in self._run(thread_id, kernel, code):
                    yield output
            finally:  # also when the consumer stops early
                if not self._closed:
                    self._arm_idle(thread_id)

    async def close_thread(self, thread_id: str, *, delete_files: bool = False) -> None:
        """Shut down the thread's kernel now (e.g. the thread was deleted); optionally its files."""
        workdir = self.workdir(thread_id)
        async with self._locks.setdefault(thread_id, asyncio.Lock()):
            self._disarm_idle(thread_id)
            await self._await_settled(thread_id, cancel=True)
            await self._drop(thread_id)
            self._lost.pop(thread_id, None)
            self._outcomes.pop(thread_id, None)
            if delete_files:
                await asyncio.to_thread(shutil.rmtree, workdir, True)
        self._locks.pop(thread_id, None)

    async def aclose(self) -> None:
        """Shut down every kernel, pooled ones included; idempotent."""
        if self._closed:
            return
        self._closed = True
        for handle in self._idle.values():
            handle.cancel()
        self._idle.clear()
        for thread_id in list(self._settling):
            await self._await_settled(thread_id, cancel=True)
        pooled = await asyncio.gather(*self._pool, return_exceptions=True)
        kernels = [k for k in pooled if isinstance(k, KernelProcess)]
        kernels += self._kernels.values()
        self._pool.clear()
        self._kernels.clear()
        await asyncio.gather(*(k.shutdown() for k in kernels))
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- kernels ------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the code interpreter sandbox is closed; create a new one")

    async def _new_kernel(self, cwd: Path) -> KernelProcess:
        """Start a kernel process with the sandbox's environment and limits."""
        runtime = self.root / ".runtime"
        for folder in (cwd, runtime, self.root / ".ipython"):
            folder.mkdir(parents=True, exist_ok=True)
        return await KernelProcess.start(
            cwd=cwd,
            runtime_dir=runtime,
            env=kernel_env(self.root / ".ipython"),
            memory_limit_bytes=self.memory_limit_bytes,
            startup_timeout=self.startup_timeout,
        )

    async def _pooled_kernel(self) -> KernelProcess:
        """Start a kernel in the neutral pool directory and warm its imports."""
        kernel = await self._new_kernel(self.root / ".pool")
        try:
            await kernel.preload(self.preload)
        except KernelSetupError:
            await kernel.shutdown()
            raise
        return kernel

    def _fill_pool(self) -> None:
        """Start pooled kernels in the background up to ``pool_size``."""
        while not self._closed and len(self._pool) < self.pool_size:
            self._pool.append(asyncio.create_task(self._pooled_kernel()))

    async def _take_kernel(self, workdir: Path) -> KernelProcess:
        """A kernel bound to ``workdir``: a pooled one if it starts fine, else a new one."""
        kernel = None
        if self._pool:
            task = self._pool.popleft()
            self._fill_pool()
            with contextlib.suppress(KernelStartError, KernelSetupError):
                kernel = await task
        else:
            self._fill_pool()
        if kernel is None or not await kernel.is_alive():
            if kernel is not None:
                await kernel.shutdown()
            kernel = await self._new_kernel(workdir)
        try:
            await kernel.enter_workdir(workdir, self.max_output_chars)
            await kernel.run_quiet(_USER_OPEN)
        except KernelSetupError:
            await kernel.shutdown()
            raise
        return kernel

    async def _kernel_for(self, thread_id: str, workdir: Path) -> KernelProcess:
        """The thread's live kernel, replacing one that died since its last run."""
        kernel = self._kernels.get(thread_id)
        if kernel is not None and not await kernel.is_alive():
            self._lost.setdefault(thread_id, f"died while idle ({kernel.exit_description()})")
            await self._drop(thread_id)
            kernel = None
        if kernel is None:
            await self._make_room()
            kernel = await self._take_kernel(workdir)
            if self._closed:
                await kernel.shutdown()
                self._check_open()
        # Re-inserted, so the map runs from least to most recently used.
        self._kernels.pop(thread_id, None)
        self._kernels[thread_id] = kernel
        return kernel

    async def _make_room(self) -> None:
        """Shut down least recently used idle kernels while ``max_kernels`` are running."""
        while len(self._kernels) >= self.max_kernels:
            idle = (t for t in self._kernels if not self._busy(t))
            victim = next(idle, None)
            if victim is None:  # every kernel is running code: exceed the limit, don't wait
                return
            self._disarm_idle(victim)
            self._lost[victim] = (
                f"was shut down to make room for another thread's kernel (at most "
                f"{self.max_kernels} run at once)"
            )
            await self._drop(victim)

    def _busy(self, thread_id: str) -> bool:
        lock = self._locks.get(thread_id)
        return bool(lock and lock.locked()) or thread_id in self._settling

    async def _drop(self, thread_id: str) -> None:
        """Shut down the thread's kernel, if any."""
        kernel = self._kernels.pop(thread_id, None)
        if kernel is not None:
            await kernel.shutdown()

    # -- one execution --------------------------------------------------------

    async def _run(
        self, thread_id: str, kernel: KernelProcess, code: str
    ) -> AsyncIterator[SandboxOutput]:
        """Execute, stream outputs, enforce the timeout; then report how it ended."""
        collector = OutputCollector(self.max_output_chars, self.max_images)
        execution = Execution(kernel, code, self.timeout, collector)
        try:
            async with contextlib.aclosing(execution.states()) as states:
                async for _ in states:
                    for output in collector.take():
                        yield output
        finally:
            if execution.outcome == "running":  # cancelled, or the consumer stopped early
                self._settle_later(thread_id, execution)
        for output in await self._conclude(thread_id, kernel, execution.outcome, collector):
            yield output

    def _settle_later(self, thread_id: str, execution: Execution) -> None:
        """Stop the abandoned code in the background; the thread's next execution waits."""
        task = asyncio.get_running_loop().create_task(self._settle(thread_id, execution))
        self._settling[thread_id] = task

    async def _settle(self, thread_id: str, execution: Execution) -> None:
        try:
            settled = await execution.settle()
        except Exception:  # the kernel went away meanwhile (idle shutdown, thread closed)
            settled = False
        if settled or self._kernels.get(thread_id) is not execution.kernel:
            return
        self._lost[thread_id] = "did not stop when its run was cancelled and was restarted"
        await self._drop(thread_id)

    async def _await_settled(self, thread_id: str, *, cancel: bool = False) -> None:
        task = self._settling.pop(thread_id, None)
        if task is not None:
            if cancel:
                task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _conclude(
        self, thread_id: str, kernel: KernelProcess, outcome: str, collector: OutputCollector
    ) -> list[SandboxOutput]:
        """Add the truncation marker and the timeout / lost-kernel message."""
        note = collector.truncation_note()
        if note:
            collector.add_note(note)
        message, lost = ending(outcome, kernel, self.timeout)
        if message:
            collector.add_note(message)
        if lost:
            self._lost[thread_id] = lost
            await self._drop(thread_id)
        self._outcomes[thread_id] = OUTCOMES[outcome]
        return collector.take()

    # -- idle shutdown ------------------------------------------------------

    def _arm_idle(self, thread_id: str) -> None:
        """Schedule the thread's kernel to stop after ``idle_timeout`` without use."""
        self._disarm_idle(thread_id)
        loop = asyncio.get_running_loop()
        self._idle[thread_id] = loop.call_later(self.idle_timeout, self._on_idle, thread_id)

    def _disarm_idle(self, thread_id: str) -> None:
        handle = self._idle.pop(thread_id, None)
        if handle is not None:
            handle.cancel()

    def _on_idle(self, thread_id: str) -> None:
        """Retire an idle kernel (not one that is running code right now)."""
        self._idle.pop(thread_id, None)
        if self._closed or thread_id not in self._kernels or self._busy(thread_id):
            return
        self._lost[thread_id] = f"was shut down after {self.idle_timeout:g} s without use"
        # Taken out of the map now, so an execution starting meanwhile gets a new one.
        task = asyncio.create_task(self._kernels.pop(thread_id).shutdown())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def create_sandbox(config: ServerConfig) -> KernelSandbox:
    """The server's code interpreter, under ``data_dir/sandbox``, with ``config``'s limits."""
    return KernelSandbox(
        config.data_dir / "sandbox",
        timeout=config.code_timeout,
        max_output_chars=config.code_max_output_chars,
        memory_limit_bytes=config.code_memory_limit_bytes,
        idle_timeout=config.code_idle_timeout,
        pool_size=config.code_pool_size,
        max_kernels=config.code_max_kernels,
    )


def _place_files(workdir: Path, files: Sequence[SandboxFile]) -> None:
    """Copy ``files`` into ``workdir`` under their names (unless the copy there is newer)."""
    for file in files:
        name = PurePosixPath(file.name.replace("\\", "/")).name
        if name in ("", ".", ".."):
            continue
        target = workdir / name
        if target.exists() and target.stat().st_mtime_ns >= file.path.stat().st_mtime_ns:
            continue  # already placed; keep what the code may have changed since
        shutil.copyfile(file.path, target)
