"""Run a coroutine to completion from synchronous code, even inside a running loop.

A Jupyter kernel runs cells inside its own event loop, so ``asyncio.run`` fails
there; ``run_coroutine`` then runs the coroutine on a fresh loop in a worker
thread while the caller waits, interruptibly.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["run_coroutine"]

T = TypeVar("T")


def run_coroutine(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion, even from inside a running event loop (as in a kernel)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    # The kernel's own loop is busy running this cell; a fresh loop on a worker thread
    # runs the coroutine while this thread waits (interruptibly) for it.
    worker = _LoopThread(coro)
    try:  # an interrupt may land in start() as well as in join()
        worker.start()
        worker.join()
    except BaseException:
        worker.cancel()
        raise
    return worker.outcome()


class _LoopThread(threading.Thread):
    """A worker thread running one coroutine on its own new event loop."""

    def __init__(self, coro: Coroutine[Any, Any, Any]) -> None:
        super().__init__(name="asst-magic-functions", daemon=True)
        self._loop = asyncio.new_event_loop()
        self._task = self._loop.create_task(coro)
        self._result: Any = None
        self._error: BaseException | None = None

    def run(self) -> None:
        try:
            self._result = self._loop.run_until_complete(self._task)
        except BaseException as exc:
            self._error = exc
        finally:
            self._shut_down()

    def _shut_down(self) -> None:
        """Cancel what is left and close the loop, as ``asyncio.run`` does on the way out."""
        loop = self._loop
        # After a KeyboardInterrupt, a dying task may raise it again here; it is recorded.
        with contextlib.suppress(BaseException):
            leftovers = asyncio.all_tasks(loop)
            for task in leftovers:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    def cancel(self) -> None:
        """Cancel the coroutine (from another thread); the loop then winds down."""
        with contextlib.suppress(RuntimeError):  # the loop already finished and closed
            self._loop.call_soon_threadsafe(self._task.cancel)

    def outcome(self) -> Any:
        """The coroutine's result, or re-raise what it raised."""
        if self._error is not None:
            raise self._error
        return self._result
