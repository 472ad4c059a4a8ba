"""Read a streaming HTTP response on a helper thread, so the cell's thread can wake on a timer.

Only raw bytes cross threads: decoding, functions and the view all stay on the
cell's thread, where an interrupt lands. The cell's thread waits on a queue with
a timeout, so it can repaint (a *tick*) while the server is silent, e.g. while
code runs for seconds.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["ChunkReader"]

_END = object()
_JOIN_TIMEOUT = 5.0


class ChunkReader:
    """Read one streaming response's bytes into a queue on a daemon thread."""

    def __init__(self, response: Any, *, name: str = "asst-magic-reader") -> None:
        self._response = response
        self._queue: queue.Queue[Any] = queue.Queue()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._read, name=name, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for chunk in self._response.iter_bytes():
                self._queue.put(chunk)
                if self._closed.is_set():
                    return
        except BaseException as exc:  # re-raised on the cell's thread
            self._queue.put(exc)
        finally:
            self._queue.put(_END)

    def chunks(self, tick: float | Callable[[], float] | None) -> Iterator[bytes | None]:
        """The response's bytes, and ``None`` each time ``tick`` seconds pass without any.

        ``tick`` may be a function, asked before each wait: the view's trailing timer
        (how long until held-back text is due), so a token that arrived just after a
        repaint is shown one throttle interval later, not after the next silence.
        """
        try:
            while True:
                try:
                    # Queue.get with a timeout is interruptible: Ctrl-C lands here at once.
                    item = self._queue.get(timeout=tick() if callable(tick) else tick)
                except queue.Empty:
                    yield None
                    continue
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.close()

    def close(self) -> None:
        """Stop reading and wait for the thread: a read blocked on the socket is woken up."""
        self._closed.set()
        if self._thread.is_alive():
            _shutdown(self._response)
        self._thread.join(_JOIN_TIMEOUT)


def _shutdown(response: Any) -> None:
    """Shut the response's socket down; closing it alone does not wake a blocked ``recv``."""
    raw = getattr(response, "http_response", response)  # the SDK's wrapper, or httpx's own
    stream = (getattr(raw, "extensions", None) or {}).get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
