"""The run engine: starts runs as background tasks, resumes, cancels and expires them.

A run's task is independent of the HTTP response that asked for it: when a
streaming client goes away the run keeps going to its end, as OpenAI's do.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from asst_magic.server.api.errors import not_accepting_outputs
from asst_magic.server.code_interpreter.sandbox import Sandbox
from asst_magic.server.config import ServerConfig
from asst_magic.server.models import ModelRegistry
from asst_magic.server.objects import ACTIVE_RUN_STATUSES
from asst_magic.server.runs.driver import RunDriver
from asst_magic.server.runs.steps import RunContext
from asst_magic.server.runs.streams import EventStream
from asst_magic.server.store import Store

__all__ = ["RunEngine", "recover_interrupted_runs"]

Obj = dict[str, Any]


class RunEngine:
    """Owns every active run of one server."""

    def __init__(
        self,
        store: Store,
        models: ModelRegistry,
        sandbox: Sandbox | None,
        config: ServerConfig,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.models = models
        self.sandbox = sandbox
        self.config = config
        self.clock = clock
        self._drivers: dict[str, RunDriver] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def start(self, run: Obj, stream: EventStream | None, thread: Obj | None = None) -> None:
        """Announce a committed, queued run (and its new thread) and start driving it."""
        ctx = RunContext(run, self.store, stream, self.clock)
        driver = RunDriver(ctx, self.models, self.sandbox)
        self._drivers[run["id"]] = driver
        if thread is not None:
            ctx.emit("thread.created", thread)
        ctx.emit("thread.run.created", run)
        ctx.emit("thread.run.queued", run)
        self._arm_expiry(run)
        self._launch(driver)

    def pending_calls(self, run_id: str) -> list[str]:
        """The tool call ids ``run_id`` waits for; OpenAI's 400 when it waits for none."""
        driver = self._drivers.get(run_id)
        if driver is None or driver.pending is None:
            status = driver.run["status"] if driver is not None else None
            raise not_accepting_outputs(run_id, status or self._stored_status(run_id))
        return [c.id for c in driver.pending.calls if c.type == "function"]

    def submit(self, run_id: str, outputs: dict[str, str], stream: EventStream | None) -> Obj:
        """Continue a run waiting for tool outputs; returns the (queued) run.

        Checks and claims the pending step before touching the stream, so of two
        concurrent submits exactly one continues the run and the other gets a 400.
        """
        self.pending_calls(run_id)
        driver = self._drivers[run_id]
        driver.attach(stream)
        driver.resume(outputs)
        snapshot = dict(driver.run)
        self._launch(driver)
        return snapshot

    def update_metadata(self, run: Obj, metadata: Obj) -> Obj:
        """Set a run's metadata on the copy its driver holds (if active), then commit it."""
        driver = self._drivers.get(run["id"])
        current = driver.run if driver is not None else run
        current["metadata"] = metadata
        self.store.put("run", current)
        return dict(current)

    def update_message_metadata(self, message: Obj, metadata: Obj) -> Obj:
        """Set a message's metadata, on the copy its run is still writing if there is one."""
        driver = self._drivers.get(message.get("run_id") or "")
        live = driver.live_message(message["id"]) if driver is not None else None
        current = live if live is not None else message
        current["metadata"] = metadata
        self.store.put("message", current)
        return dict(current)

    def cancel(self, run_id: str) -> Obj:
        """Cancel an active run: ``cancelling`` now, ``cancelled`` once its task stops."""
        driver = self._drivers[run_id]
        self._cancel_timer(run_id)
        if driver.task is None:  # waiting for tool outputs: nothing is running
            driver.end_now("cancelled", cancelled_at=driver.ctx.now())
            self._drivers.pop(run_id, None)
            return dict(driver.run)
        driver.cancel_requested = True
        driver.set_status("cancelling")  # a streaming client sees thread.run.cancelling
        if driver.started:
            driver.task.cancel()
        return dict(driver.run)

    def end_superseded(self) -> int:
        """Stop driving the runs the database shows ended elsewhere; returns how many.

        A replica paused past its lease finds its runs failed by another one; left
        alone, their drivers would write on and bring a failed run's message back.
        """
        ended = []
        for run_id in list(self._drivers):
            stored = self.store.get("run", run_id)
            if stored is not None and stored["status"] not in ACTIVE_RUN_STATUSES:
                ended.append(stored)
        for stored in ended:
            self._cancel_timer(stored["id"])
            self._drivers.pop(stored["id"]).end_elsewhere(stored)
        return len(ended)

    def _stored_status(self, run_id: str) -> str:
        run = self.store.get("run", run_id)
        return str(run["status"]) if run is not None else "unknown"

    def has(self, run_id: str) -> bool:
        """Whether ``run_id`` is active in this process."""
        return run_id in self._drivers

    async def aclose(self) -> None:
        """Stop every task (their runs are recovered as interrupted at the next start)."""
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        tasks = [d.task for d in self._drivers.values() if d.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._drivers.clear()

    def _launch(self, driver: RunDriver) -> None:
        driver.task = asyncio.get_running_loop().create_task(self._drive(driver))

    async def _drive(self, driver: RunDriver) -> None:
        try:
            await driver.drive()
        finally:
            driver.task = None
            run_id = driver.run["id"]
            if driver.run["status"] != "requires_action":
                self._drivers.pop(run_id, None)
                self._cancel_timer(run_id)

    def _arm_expiry(self, run: Obj) -> None:
        """End the run as ``expired`` at its ``expires_at``, whatever it is doing then."""
        delay = max(0.0, run["expires_at"] - self.clock())
        loop = asyncio.get_running_loop()
        self._timers[run["id"]] = loop.call_later(delay, self._expire, run["id"])

    def _expire(self, run_id: str) -> None:
        self._timers.pop(run_id, None)
        driver = self._drivers.get(run_id)
        if driver is None:
            return
        if driver.task is None:  # waiting for tool outputs: nothing runs, end it here
            self._drivers.pop(run_id, None)
            driver.end_now("expired")
            return
        driver.expire_requested = True  # the task ends the run at its next await
        if driver.started:
            driver.task.cancel()

    def _cancel_timer(self, run_id: str) -> None:
        handle = self._timers.pop(run_id, None)
        if handle is not None:
            handle.cancel()


def recover_interrupted_runs(
    store: Store,
    now: int,
    *,
    live: frozenset[str] = frozenset(),
    reason: Callable[[str | None, str], str] | None = None,
) -> int:
    """Fail (or expire) the active runs of servers that died; returns how many.

    A run made by a replica in ``live`` is left alone; ``reason(replica, status)``
    words the ``last_error`` (default: the local server stopped).
    """
    runs = [
        run
        for run in store.select("run", statuses=ACTIVE_RUN_STATUSES)
        if store.replica_of(run["id"]) not in live
    ]
    words = reason or _stopped
    with store.transaction():
        for run in runs:
            _end_interrupted(store, run, now, words(store.replica_of(run["id"]), run["status"]))
        ended = {run["id"]: run["last_error"] for run in runs}
        for step in store.select("step", statuses=("in_progress",)):
            if step["run_id"] in ended:
                step.update(status="failed", failed_at=now, last_error=ended[step["run_id"]])
                store.put("step", step)
        for message in store.select("message", statuses=("in_progress",)):
            if message.get("run_id") in ended:
                message.update(
                    status="incomplete",
                    incomplete_at=now,
                    incomplete_details={"reason": "run_failed"},
                )
                store.put("message", message)
    return len(runs)


def _end_interrupted(store: Store, run: Obj, now: int, message: str) -> None:
    waiting = run["status"] == "requires_action"
    run.update(
        status="expired" if waiting else "failed",
        last_error={"code": "server_error", "message": message},
        required_action=None,
    )
    if not waiting:
        run["failed_at"] = now
    store.put("run", run)


def _stopped(replica: str | None, status: str) -> str:
    return (
        f"The local server stopped while this run was {status}, so it cannot "
        "continue. Create a new run on the thread."
    )
