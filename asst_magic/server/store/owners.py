"""Whose objects a request (and the runs it starts) may see: the owner scope.

The API guard opens the scope of the authenticated user around each request.
Run tasks are started inside a request, and asyncio copies the context into a
new task, so a run's messages, steps and files belong to the run's owner too.
Outside any scope (the single-user token, the admin token, start-up recovery)
nothing is filtered and new objects have no owner.

>>> with owned_by("ada"):  # doctest: +SKIP
...     store.get("thread", thread_id)  # None unless ada owns it
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["current_owner", "owned_by"]

_OWNER: ContextVar[str | None] = ContextVar("asst_magic_owner", default=None)


def current_owner() -> str | None:
    """The user whose objects this code may see; ``None`` for all of them."""
    return _OWNER.get()


@contextmanager
def owned_by(owner: str | None) -> Iterator[None]:
    """See and create only ``owner``'s objects inside the block (``None``: everything)."""
    token = _OWNER.set(owner)
    try:
        yield
    finally:
        _OWNER.reset(token)
