"""The byte pipe between a run's engine task and one streaming HTTP response.

The engine ``push``es pre-encoded SSE events without awaiting; the response
drains whatever has accumulated in one write, so a fast model is not slowed to
one socket write per event. A response that goes away ``detach``es: the run
keeps going and further events are dropped, as OpenAI's runs keep going.
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

__all__ = ["REASONING_EVENT", "REASONING_HEADER", "SLOT", "DeltaTemplate", "EventStream", "closing"]

SLOT = object()  # marks the spliced string in a DeltaTemplate's data

_HIGH_WATER = 256


class EventStream:
    """One response's queue of encoded events, ended by ``close()`` (which sends ``done``).

    ``reasoning`` says the reader asked for ``REASONING_EVENT``s.
    """

    def __init__(self, *, reasoning: bool = False) -> None:
        self.reasoning = reasoning
        self._chunks: list[bytes] = []
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._idle = asyncio.Event()  # the reader has written all and waits for more
        self.closed = False
        self.detached = False

    def push(self, chunk: bytes) -> None:
        """Queue one encoded event."""
        if self.detached or self.closed:
            return
        self._chunks.append(chunk)
        self._idle.clear()
        self._wake.set()
        if len(self._chunks) >= _HIGH_WATER:
            self._room.clear()

    def close(self) -> None:
        """Queue ``event: done`` and end the stream; idempotent."""
        if not self.closed:
            self.push(encode_done())
            self.closed = True
            self._wake.set()

    def detach(self) -> None:
        """The reader is gone: drop queued and future events, never block the writer."""
        self.detached = True
        self._chunks.clear()
        self._room.set()

    async def room(self) -> None:
        """Wait while the reader is far behind (backpressure for fast models)."""
        if not self._room.is_set():
            await self._room.wait()

    async def flushed(self, timeout: float) -> None:
        """Wait, at most ``timeout`` seconds, until the reader has written what is queued."""
        if self.detached or self.closed or self._idle.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            while True:
                if not self._chunks:
                    self._idle.set()  # what was yielded before has been sent
                await self._wake.wait()
                self._wake.clear()
                chunks, self._chunks = self._chunks, []
                self._room.set()
                if chunks:
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
