"""The code interpreter: each thread's code runs in its own Jupyter kernel.

Example::

    sandbox = KernelSandbox(data_dir / "sandbox", timeout=120)
    await sandbox.start()  # warm the pool
    async for output in sandbox.execute("thread_abc", "print(1)"):
        ...  # LogsOutput("1\\n")
    await sandbox.aclose()

Layout under ``root``: ``<thread_id>/`` is a thread's working directory (its
``/mnt/data``); ``.pool/`` is where warm kernels wait; ``.runtime/<server>/``
holds each kernel's connection file, sockets and log (see ``runtime``);
``.ipython/`` is unconfined kernels' private IPython dir, so the user's own
profile is never touched. Kernels run in the bubblewrap sandbox unless the
``code_sandbox`` setting says otherwise (see ``confinement``).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
from collections.abc import AsyncIterator, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from asst_magic.server.code_interpreter.boot import MOUNT
from asst_magic.server.code_interpreter.channels import Kernel, KernelSetupError, Launcher
from asst_magic.server.code_interpreter.confinement import Confinement, choose_confinement
from asst_magic.server.code_interpreter.execution import OUTCOMES, Execution, ending, lost_note
from asst_magic.server.code_interpreter.outputs import OutputCollector
from asst_magic.server.code_interpreter.pool import KernelLauncher, KernelLimits
from asst_magic.server.code_interpreter.process import KernelStartError
from asst_magic.server.code_interpreter.sandbox import (
    ExecutionOutcome,
    LogsOutput,
    SandboxFile,
    SandboxOutput,
)
from asst_magic.server.code_interpreter.workdirs import place_files

if TYPE_CHECKING:
    from asst_magic.server.config import ServerConfig

__all__ = [
    "DEFAULT_PRELOAD",
    "NETWORK_NOTE",
    "ExecutionOutcome",
    "KernelSandbox",
    "create_sandbox",
]

DEFAULT_PRELOAD = ("numpy", "pandas", "matplotlib.pyplot")
_THREAD_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
_MOUNT_PARTS = PurePosixPath(MOUNT).parts
NETWORK_NOTE = "the code sandbox has network access (code_network is on)"


class KernelSandbox:
    """A ``Sandbox`` with one ipykernel process per thread, a warm pool and limits.

    ``sandbox`` is the ``code_sandbox`` setting (``auto``, ``required``, ``off``)
    and ``network`` lets confined kernels reach the network; see ``confinement``.
    """

    def __init__(
        self,
        root: Path,
        *,
        timeout: float = 120.0,
        max_output_chars: int = 50_000,
        memory_limit_bytes: int | None = 2 * 1024**3,
        max_processes: int | None = 256,
        idle_timeout: float = 600.0,
        pool_size: int = 2,
        max_kernels: int = 8,
        max_images: int = 25,
        preload: Sequence[str] = DEFAULT_PRELOAD,
        startup_timeout: float = 60.0,
        sandbox: str = "auto",
        network: bool = False,
        confinement: Confinement | None = None,
        launcher: Launcher[Any] | None = None,
    ) -> None:
        self.root = Path(root).resolve()
        self.timeout = timeout
        self.max_output_chars = max_output_chars
        self.idle_timeout = idle_timeout
        self.max_kernels = max_kernels
        self.max_images = max_images
        if launcher is None:
            self.confinement = confinement or choose_confinement(
                sandbox, network=network, hidden=(self.root.parent,)
            )
            limits = KernelLimits(memory_limit_bytes, max_processes, max_output_chars)
            launcher = KernelLauncher(
                self.root,
                self.confinement,
                limits=limits,
                pool_size=pool_size,
                preload=preload,
                startup_timeout=startup_timeout,
            )
        else:  # kernels elsewhere (a gateway): isolating them is their host's job
            self.confinement = confinement or Confinement(None)
        self.launcher: Launcher[Any] = launcher
        self._kernels: dict[str, Kernel] = {}
        self._starting: set[str] = set()  # threads whose kernel is being started: they count
        self._freed = asyncio.Event()  # set (and replaced) whenever a kernel may be free
        self._locks: dict[str, asyncio.Lock] = {}
        self._lost: dict[str, str] = {}
        self._outcomes: dict[str, ExecutionOutcome] = {}
        self._idle: dict[str, asyncio.TimerHandle] = {}
        self._settling: dict[str, asyncio.Task[None]] = {}  # abandoned requests being stopped
        self._warned = False
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
        pids = [k.pid for k in self._kernels.values()] + self.launcher.pids()
        return [pid for pid in pids if pid]

    def last_outcome(self, thread_id: str) -> ExecutionOutcome | None:
        """How the thread's last finished execution ended (code errors count as completed)."""
        return self._outcomes.get(thread_id)

    async def start(self) -> None:
        """Fill the warm pool and wait until its kernels are ready (optional; idempotent)."""
        self._check_open()
        if self.confinement.refusal is None:
            await self.launcher.wait_pool()

    async def execute(
        self, thread_id: str, code: str, files: Sequence[SandboxFile] = ()
    ) -> AsyncIterator[SandboxOutput]:
        """Run ``code`` in the thread's kernel and stream its outputs in order."""
        async for output in self._execute(thread_id, code, files, notes=True):
            yield output

    async def run_code(self, thread_id: str, code: str) -> str:
        """Run ``code`` in the thread's kernel and return everything it printed, as text.

        For the server's own use (moving variables in and out of a thread's kernel):
        images are dropped, and the notes a run starts with (a lost kernel, the
        no-sandbox warning) are kept for the thread's next ``execute``.
        """
        outputs = self._execute(thread_id, code, (), notes=False)
        return "".join([o.text async for o in outputs if isinstance(o, LogsOutput)])

    async def _execute(
        self, thread_id: str, code: str, files: Sequence[SandboxFile], *, notes: bool
    ) -> AsyncIterator[SandboxOutput]:
        workdir = self.workdir(thread_id)
        self._check_open()
        if self.confinement.refusal is not None:
            self._outcomes[thread_id] = "unavailable"
            yield LogsOutput(self.confinement.refusal + "\n")
            return
        async with self._locks.setdefault(thread_id, asyncio.Lock()):
            self._disarm_idle(thread_id)
            await self._await_settled(thread_id)
            workdir.mkdir(parents=True, exist_ok=True)
            if files:
                await asyncio.to_thread(place_files, workdir, files)
            try:
                kernel = await self._kernel_for(thread_id, workdir)
                await kernel.push_files(workdir)
            except (KernelStartError, KernelSetupError) as exc:
                self._outcomes[thread_id] = "unavailable"
                yield LogsOutput(f"The code interpreter could not start a Python kernel: {exc}\n")
                return
            try:
                for note in self._notes(thread_id) if notes else ():
                    yield LogsOutput(note)
                async for output in self._run(thread_id, kernel, code):
                    yield output
            finally:  # also when the consumer stops early
                if not self._closed:
                    self._arm_idle(thread_id)
                self._signal_freed()

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
        self._signal_freed()
        for handle in self._idle.values():
            handle.cancel()
        self._idle.clear()
        for thread_id in list(self._settling):
            await self._await_settled(thread_id, cancel=True)
        for kernel in self._kernels.values():
            self.launcher.retire(kernel)
        self._kernels.clear()
        await self.launcher.aclose()

    # -- kernels ------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the code interpreter sandbox is closed; create a new one")

    def _notes(self, thread_id: str) -> list[str]:
        """Lines a run starts with: the one-time no-sandbox warning, a lost kernel."""
        notes = []
        if self.confinement.warning and not self._warned:
            self._warned = True
            notes.append(f"[Warning: {self.confinement.warning}]\n")
        elif self.confinement.bubblewrap and self.confinement.network and not self._warned:
            self._warned = True
            notes.append(f"[Note: {NETWORK_NOTE}]\n")
        lost = self._lost.pop(thread_id, None)
        if lost:
            notes.append(lost_note(lost))
        return notes

    async def _kernel_for(self, thread_id: str, workdir: Path) -> Kernel:
        """The thread's live kernel, replacing one that died since its last run."""
        kernel = self._kernels.get(thread_id)
        if kernel is not None and not await kernel.is_alive():
            self._lost.setdefault(thread_id, f"died while idle ({kernel.exit_description()})")
            await self._drop(thread_id)
            kernel = None
        if kernel is None:
            await self._reserve(thread_id)
            try:
                kernel = await self.launcher.take(workdir)
            finally:
                self._starting.discard(thread_id)
            if self._closed:
                self.launcher.retire(kernel)
                self._check_open()
        # Re-inserted, so the map runs from least to most recently used.
        self._kernels.pop(thread_id, None)
        self._kernels[thread_id] = kernel
        return kernel

    async def _reserve(self, thread_id: str) -> None:
        """Wait for room under ``max_kernels`` (kernels starting count), evicting idle ones.

        The least recently used idle kernel is shut down (in the background) to make
        room; when every kernel is running code, wait for one to finish.
        """
        while True:
            self._check_open()
            if len(self._kernels) + len(self._starting) < self.max_kernels:
                self._starting.add(thread_id)
                return
            victim = next((t for t in self._kernels if not self._busy(t)), None)
            if victim is None:
                await self._freed.wait()
                continue
            self._disarm_idle(victim)
            self._lost[victim] = (
                f"was shut down to make room for another thread's kernel (at most "
                f"{self.max_kernels} run at once)"
            )
            self.launcher.retire(self._kernels.pop(victim))

    def _signal_freed(self) -> None:
        self._freed.set()
        self._freed = asyncio.Event()

    def _busy(self, thread_id: str) -> bool:
        lock = self._locks.get(thread_id)
        return bool(lock and lock.locked()) or thread_id in self._settling

    async def _drop(self, thread_id: str) -> None:
        """Shut down the thread's kernel, if any, and wait until it is gone."""
        kernel = self._kernels.pop(thread_id, None)
        if kernel is not None:
            await self.launcher.shutdown(kernel)
            self._signal_freed()

    # -- one execution --------------------------------------------------------

    async def _run(self, thread_id: str, kernel: Kernel, code: str) -> AsyncIterator[SandboxOutput]:
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
        if execution.outcome in ("completed", "timed_out"):
            await self._pull(thread_id, kernel, collector)
        for output in await self._conclude(thread_id, kernel, execution.outcome, collector):
            yield output

    async def _pull(self, thread_id: str, kernel: Kernel, collector: OutputCollector) -> None:
        """Copy what the code wrote back into the working directory (a remote kernel's)."""
        try:
            notes = await kernel.pull_files(self.workdir(thread_id))
        except KernelSetupError as exc:
            notes = [f"[Note: files this code wrote could not be copied back: {exc}]\n"]
        for note in notes:
            collector.add_note(note)

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
        self, thread_id: str, kernel: Kernel, outcome: str, collector: OutputCollector
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
        self.launcher.retire(self._kernels.pop(thread_id))
        self._signal_freed()


def create_sandbox(config: ServerConfig) -> KernelSandbox:
    """The server's code interpreter, under ``data_dir/sandbox``, with ``config``'s limits.

    With ``kernel_gateway_url`` its kernels run on that Jupyter Enterprise Gateway.
    """
    launcher = None
    if config.kernel_gateway_url:
        from asst_magic.server.code_interpreter.gateway import GatewayClient, GatewayLauncher

        client = GatewayClient(config.kernel_gateway_url, config.kernel_gateway_token)
        launcher = GatewayLauncher(
            client,
            kernelspec=config.kernel_gateway_kernelspec,
            limits=KernelLimits(config.code_memory_limit_bytes, None, config.code_max_output_chars),
            pool_size=config.code_pool_size,
            preload=DEFAULT_PRELOAD,
        )
    return KernelSandbox(
        config.data_dir / "sandbox",
        timeout=config.code_timeout,
        max_output_chars=config.code_max_output_chars,
        memory_limit_bytes=config.code_memory_limit_bytes,
        idle_timeout=config.code_idle_timeout,
        pool_size=config.code_pool_size,
        max_kernels=config.code_max_kernels,
        max_processes=config.code_max_processes,
        sandbox=config.code_sandbox,
        network=config.code_network,
        launcher=launcher,
    )
