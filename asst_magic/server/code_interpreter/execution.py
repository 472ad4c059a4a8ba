"""One execute request in a sandbox kernel: its outputs, its timeout, and how it ended."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

from asst_magic.server.code_interpreter.channels import Kernel
from asst_magic.server.code_interpreter.outputs import OutputCollector
from asst_magic.server.code_interpreter.sandbox import ExecutionOutcome

__all__ = ["INTERRUPT_GRACE", "KEPT", "OUTCOMES", "Execution", "ending", "is_idle", "lost_note"]

_POLL = 0.5  # seconds between liveness/deadline checks while a run is silent
INTERRUPT_GRACE = 5.0  # how long an interrupted execution may take to stop
KEPT = "files in /mnt/data are kept"
OUTCOMES: dict[str, ExecutionOutcome] = {  # an execution's end state -> what the sandbox reports
    "completed": "completed",
    "timed_out": "timed_out",
    "unresponsive": "timed_out",
    "kernel_died": "kernel_died",
}


class Execution:
    """Sends ``code`` to ``kernel`` and feeds the request's IOPub messages to ``collector``."""

    def __init__(
        self, kernel: Kernel, code: str, timeout: float, collector: OutputCollector
    ) -> None:
        self.kernel = kernel
        self.timeout = timeout
        self.collector = collector
        self.msg_id = kernel.execute(code)
        self.outcome = "running"
        self.started = False  # whether the kernel has begun this request

    async def _receive(self, wait: float) -> list[dict[str, Any]]:
        """This request's next messages; notes when the kernel has begun it."""
        batch = await self.kernel.messages(self.msg_id, wait)
        # ipykernel publishes execute_input (or anything but a status) only after it
        # has installed its SIGINT handler for the request.
        self.started = self.started or any(msg.get("msg_type") != "status" for msg in batch)
        return batch

    async def states(self) -> AsyncGenerator[str, None]:
        """Yields "running" per batch of outputs, then the end state; sets ``outcome``."""
        async for state in self._pump():
            self.outcome = state
            yield state

    async def _pump(self) -> AsyncGenerator[str, None]:
        clock = asyncio.get_running_loop().time
        deadline = clock() + self.timeout
        interrupted = False
        while True:
            wait = min(_POLL, max(deadline - clock(), 0.0))
            batch = await self._receive(wait)
            for msg in batch:
                self.collector.add(msg)
            if any(is_idle(msg) for msg in batch):
                yield "timed_out" if interrupted else "completed"
                return
            if batch:
                yield "running"
            elif not await self.kernel.is_alive():
                yield "kernel_died"
                return
            if clock() >= deadline:
                if interrupted:
                    yield "unresponsive"
                    return
                await self.kernel.interrupt()
                interrupted, deadline = True, clock() + INTERRUPT_GRACE

    async def settle(self, grace: float = INTERRUPT_GRACE) -> bool:
        """Interrupt the abandoned request and drain its messages up to its ``idle``.

        Returns False when the kernel did not get there in ``grace`` seconds (or
        died): it must then be replaced. The next request's outputs can only be
        told apart once this one's are all consumed.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        interrupted = False
        while loop.time() < deadline:
            if self.started and not interrupted:
                # Not before: between requests ipykernel ignores SIGINT, so an
                # interrupt sent before the request began would be lost.
                await self.kernel.interrupt()
                interrupted = True
            batch = await self._receive(min(_POLL, deadline - loop.time()))
            if any(is_idle(msg) for msg in batch):
                return True
            if not batch and not await self.kernel.is_alive():
                return False
        return False


def ending(outcome: str, kernel: Kernel, timeout: float) -> tuple[str | None, str | None]:
    """The closing log line for ``outcome``, and why the kernel is lost (None if kept)."""
    limit = f"Execution timed out after {timeout:g} s"
    if outcome == "timed_out":
        return f"{limit}; it was interrupted and this thread's variables are kept.\n", None
    if outcome == "kernel_died":
        lost = f"died ({kernel.exit_description()})"
        message = f"The Python kernel running this code {lost}"
    elif outcome == "unresponsive":
        lost = "did not stop when interrupted after a timeout and was restarted"
        message = f"{limit} and did not stop when interrupted; the kernel was killed"
    else:
        return None, None
    return (
        f"{message}: this thread's variables and imports were lost ({KEPT}). "
        "The next execution starts a fresh kernel.\n"
    ), lost


def lost_note(reason: str) -> str:
    """The line a thread's next execution starts with after its kernel went away."""
    return (
        f"[Note: this thread's previous Python kernel {reason}, so variables, imports and "
        f"functions from earlier code are gone ({KEPT}); re-run what this code depends on.]\n"
    )


def is_idle(msg: dict[str, Any]) -> bool:
    """Whether ``msg`` says the kernel finished the request."""
    content = msg.get("content")
    return (
        msg.get("msg_type") == "status"
        and isinstance(content, dict)
        and content.get("execution_state") == "idle"
    )
