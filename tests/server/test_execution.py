"""Execution: an abandoned request is interrupted and drained, whenever it is abandoned."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from asst_magic.server.code_interpreter.execution import Execution
from asst_magic.server.code_interpreter.outputs import OutputCollector
from asst_magic.server.code_interpreter.process import KernelProcess, kernel_env

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def kernel(tmp_path: Path) -> AsyncIterator[KernelProcess]:
    process = await KernelProcess.start(
        cwd=tmp_path,
        runtime_dir=tmp_path,
        env=kernel_env(tmp_path / "ipython"),
        memory_limit_bytes=None,
    )
    yield process
    await process.shutdown()


async def finish(kernel: KernelProcess, code: str) -> str:
    """Run ``code`` to its end; its printed text."""
    collector = OutputCollector(10_000, 10)
    execution = Execution(kernel, code, 30.0, collector)
    async for _ in execution.states():
        pass
    assert execution.outcome == "completed"
    return "".join(getattr(o, "text", "") for o in collector.take())


async def test_request_abandoned_before_it_began_is_stopped(kernel: KernelProcess) -> None:
    # Settled at once, before the kernel has picked the request up: ipykernel ignores
    # SIGINT between requests, so an interrupt sent this early used to be lost and
    # the loop ran on until the kernel was killed, taking the thread's state with it.
    await finish(kernel, "x = 42")
    abandoned = Execution(kernel, "while True:\n    pass", 30.0, OutputCollector(10_000, 10))
    assert await abandoned.settle()
    assert await finish(kernel, "print(x + 1)") == "43\n"
