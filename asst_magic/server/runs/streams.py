"""The byte pipe between a run's engine task and one streaming HTTP response.

The engine ``push``es pre-encoded SSE events without awaiting; the response
drains whatever has accumulated in one write, so a fast model is not slowed to
one socket write per event. A response that goes away ``detach``es: the run
keeps going and further events are dropped, as OpenAI's runs keep going.

The run never waits for its reader: a reader that falls more than ``MAX_BEHIND``
bytes behind (a client holding the stream open without reading) is dropped, and
the run goes on at its own pace to its end, which is stored as always.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from asst_magic.server.wire import dumps
from asst_magic.sse import REASONING_EVENT, REASONING_HEADER, encode_done, encode_event

__all__ = [
    "MAX_BEHIND",
    "REASONING_EVENT",
    "REASONING_HEADER",
    "SLOT",
    "DeltaTemplate",
    "EventStream",
    "closing",
]

SLOT = object()  # marks the spliced string in a DeltaTemplate's data

MAX_BEHIND = 8 * 1024 * 1024  # bytes a reader may lag before its stream is dropped


class EventStream:
    """One response's queue of encoded events, ended by ``close()`` (which sends ``done``).

    ``reasoning`` says the reader asked for ``REASONING_EVENT``s.
    """

    def __init__(self, *, reasoning: bool = False, max_behind: int = MAX_BEHIND) -> None:
        self.reasoning = reasoning
        self._chunks: list[bytes] = []
        self._queued = 0
        self._max_behind = max_behind
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()  # the reader has written all and waits for more
        self.closed = False
        self.detached = False

    def push(self, chunk: bytes) -> None:
        """Queue one encoded event; a reader too far behind is dropped instead."""
        if self.detached or self.closed:
            return
        self._chunks.append(chunk)
        self._queued += len(chunk)
        self._idle.clear()
        self._wake.set()
        if self._queued > self._max_behind:
            self.detach()

    def close(self) -> None:
        """Queue ``event: done`` and end the stream; idempotent."""
        if not self.closed:
            self.push(encode_done())
            self.closed = True
            self._wake.set()

    def detach(self) -> None:
        """The reader is gone or too slow: drop queued and future events, end the response."""
        self.detached = True
        self._chunks.clear()
        self._queued = 0
        self._wake.set()

    async def flushed(self, timeout: float) -> None:
        """Wait, at most ``timeout`` seconds, until the reader has written what is queued."""
        if self.detached or self.closed or self._idle.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            while not self.detached:
                if not self._chunks:
                    self._idle.set()  # what was yielded before has been sent
                await self._wake.wait()
                self._wake.clear()
                chunks, self._chunks, self._queued = self._chunks, [], 0
                if chunks and not self.detached:
                    yield b"".join(chunks)
                if self.closed and not self._chunks:
                    return
        finally:
            self.detach()


class DeltaTemplate:
    """An event whose data differs only in one string: encode it once, splice the string."""

    _MARK = "\x00\x01mark\x01\x00"

    def __init__(self, event: str, data: Any) -> None:
        encoded = encode_event(event, _replace_mark(data, self._MARK))
        marker = json.dumps(self._MARK, ensure_ascii=False).encode()
        self._head, _, self._tail = encoded.partition(marker)

    def render(self, value: str) -> bytes:
        """The event with ``value`` in place of the marked string."""
        return self._head + dumps(value) + self._tail


def _replace_mark(data: Any, mark: str) -> Any:
    if data is SLOT:
        return mark
    if isinstance(data, dict):
        return {key: _replace_mark(value, mark) for key, value in data.items()}
    if isinstance(data, list):
        return [_replace_mark(value, mark) for value in data]
    return data


T = TypeVar("T")


@asynccontextmanager
async def closing(stream: AsyncIterator[T]) -> AsyncIterator[AsyncIterator[T]]:
    """Like ``contextlib.aclosing`` for any async iterator: close it if it can be closed."""
    try:
        yield stream
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()
