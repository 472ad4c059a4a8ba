"""Helpers shared by the magic's tests: a notebook-like display publisher, loopback servers."""

from __future__ import annotations

import _thread
import io
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from IPython.core.displaypub import DisplayPublisher
from IPython.core.interactiveshell import InteractiveShell

from asst_magic.magics import AssistantMagics

__all__ = [
    "CASSETTE",
    "PNG",
    "TESTS",
    "VECTORS",
    "InterruptingStdout",
    "NotebookPublisher",
    "ReplayServer",
    "SharedServer",
    "Truncated",
    "notebook_shell",
]

TESTS = Path(__file__).parent
VECTORS = TESTS / "vectors" / "assistants"
CASSETTE = TESTS / "cassettes" / "magic.jsonl"
# The smallest valid PNG (1×1, transparent): what the replay server serves as image content.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63f8ffff3f0005fe02fea7d605e30000000049454e44ae426082"
)


class NotebookPublisher(DisplayPublisher):
    """Keeps outputs as a notebook front end does: ``display_id`` updates replace in place."""

    def __init__(self, on_publish: Callable[[], None] | None = None) -> None:
        super().__init__()
        self.outputs: list[dict[str, Any]] = []
        self.on_publish = on_publish

    def publish(  # type: ignore[override]
        self, data, metadata=None, source=None, *, transient=None, update=False, **kwargs
    ) -> None:
        output = {"output_type": "display_data", "data": data, "metadata": metadata or {}}
        display_id = (transient or {}).get("display_id")
        if update:
            self.outputs = [
                output | {"id": display_id} if o.get("id") == display_id else o
                for o in self.outputs
            ]
        else:
            self.outputs.append(output | {"id": display_id})
        if self.on_publish is not None:
            self.on_publish()

    def clear_output(self, wait: bool = False) -> None:
        self.outputs.clear()

    @property
    def saved(self) -> list[dict[str, Any]]:
        """The outputs as a saved .ipynb would hold them (no display ids)."""
        return [{k: v for k, v in o.items() if k != "id"} for o in self.outputs]


class Truncated(bytes):
    """A streamed body the replay server cuts off: the connection closes before its end."""


class SharedServer:
    """A launch handle whose ``stop`` leaves the shared server running for other tests."""

    def __init__(self, handle: Any) -> None:
        self.base_url, self.token, self._handle = handle.base_url, handle.token, handle

    def stop(self) -> None:
        return None


class ReplayServer:
    """A loopback HTTP server that answers streamed POSTs with recorded SSE bodies, in order.

    Everything else gets a small JSON object (or PNG bytes for ``/files/*/content``), so the
    real ``openai`` client and the real backend run unchanged against recordings.
    """

    def __init__(self, bodies: list[bytes]) -> None:
        self.bodies = list(bodies)
        self.requests: list[tuple[str, str, Any]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        replay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return None

            def do_GET(self) -> None:
                replay.requests.append(("GET", self.path, None))
                if self.path.endswith("/content"):
                    self._send(200, "image/png", PNG)
                else:
                    obj = {
                        "id": self.path.rsplit("/", 1)[-1],
                        "object": "file",
                        "filename": "plot.png",
                        "tools": [],
                    }
                    self._send(200, "application/json", json.dumps(obj).encode())

            def do_POST(self) -> None:
                size = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(size) or b"{}")
                replay.requests.append(("POST", self.path, body))
                if body.get("stream"):
                    self._send(200, "text/event-stream", replay.bodies.pop(0))
                else:
                    obj = {"id": "msg_x", "object": "thread.message", "content": []}
                    self._send(200, "application/json", json.dumps(obj).encode())

            def _send(self, status: int, kind: str, body: bytes) -> None:
                cut = isinstance(body, Truncated)
                self.send_response(status)
                self.send_header("content-type", kind)
                self.send_header("content-length", str(len(body) + cut))
                self.end_headers()
                self.wfile.write(body)
                self.close_connection = cut

        return Handler


class InterruptingStdout(io.StringIO):
    """stdout that presses the kernel's ■ button once the given text has been shown."""

    def __init__(self, trigger: str) -> None:
        super().__init__()
        self.trigger, self.fired = trigger, False

    def write(self, text: str) -> int:
        written = super().write(text)
        if not self.fired and self.trigger in self.getvalue():
            self.fired = True
            _thread.interrupt_main()  # what the ■ button does: SIGINT on the cell's thread
        return written


def notebook_shell(handle: Any, environ: dict[str, str]) -> tuple[Any, AssistantMagics]:
    """A fresh in-process shell whose magics use ``handle``'s server and a widget display."""
    ip = InteractiveShell()
    ip.display_pub = NotebookPublisher()
    magics = AssistantMagics(ip, environ=environ, launcher=lambda config: SharedServer(handle))
    ip.register_magics(magics)
    magics.display = "widget"
    return ip, magics
