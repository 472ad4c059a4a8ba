"""A loopback Chat Completions endpoint that plays back scripted HTTP responses.

Tests point the real ``openai`` SDK at it. Each request pops the next scripted
``Reply`` (the last one repeats when the script runs out) and is recorded, so a
test can assert on what the model sent::

    with ChatReplayServer([Reply.sse(path.read_bytes())]) as server:
        model = ChatCompletionsModel(server.base_url, "sk-test", "gpt-4o")
        ...
        assert server.requests[0].body["messages"][0]["role"] == "system"
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = [
    "ChatReplayServer",
    "ReceivedRequest",
    "Reply",
    "chat_chunk",
    "python_call_body",
    "sse_body",
]


@dataclass(frozen=True)
class Reply:
    """One scripted HTTP response; ``pieces`` are written (and flushed) one by one."""

    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    pieces: tuple[bytes, ...] = ()

    @classmethod
    def sse(cls, body: bytes | Sequence[bytes]) -> Reply:
        """A streamed ``text/event-stream`` body (bytes, or pieces written separately)."""
        pieces = (body,) if isinstance(body, bytes) else tuple(body)
        return cls(200, (("Content-Type", "text/event-stream"),), pieces)

    @classmethod
    def error(cls, status: int, message: str, headers: Iterable[tuple[str, str]] = ()) -> Reply:
        """An OpenAI-shaped JSON error body."""
        body = {"error": {"message": message, "type": "error", "param": None, "code": None}}
        content = (("Content-Type", "application/json"), *headers)
        return cls(status, content, (json.dumps(body).encode(),))


@dataclass
class ReceivedRequest:
    path: str
    headers: dict[str, str]
    body: Any


def sse_body(chunks: Iterable[dict[str, Any]], *, done: bool = True) -> bytes:
    """Data-only SSE, as Chat Completions streams it, from chunk dicts."""
    lines = [f"data: {json.dumps(chunk)}\n\n" for chunk in chunks]
    if done:
        lines.append("data: [DONE]\n\n")
    return "".join(lines).encode()


def chat_chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    """One ``chat.completion.chunk`` with a single choice."""
    return {
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def python_call_body(code: str, pieces: int = 3, usage: dict[str, int] | None = None) -> bytes:
    """A streamed ``python`` tool call whose JSON arguments arrive in ``pieces`` fragments."""
    encoded = json.dumps({"code": code})
    size = -(-len(encoded) // pieces)
    head = {"index": 0, "id": "call_py", "type": "function"}
    deltas = [
        chat_chunk(
            {
                "role": "assistant",
                "tool_calls": [{**head, "function": {"name": "python", "arguments": ""}}],
            }
        )
    ]
    for start in range(0, len(encoded), size):
        fragment = encoded[start : start + size]
        deltas.append(
            chat_chunk({"tool_calls": [{"index": 0, "function": {"arguments": fragment}}]})
        )
    deltas.append(chat_chunk({}, "tool_calls"))
    if usage is not None:
        deltas.append({"object": "chat.completion.chunk", "choices": [], "usage": usage})
    return sse_body(deltas)


@dataclass
class _Script:
    replies: list[Reply]
    requests: list[ReceivedRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_reply(self, request: ReceivedRequest) -> Reply:
        with self.lock:
            self.requests.append(request)
            return self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        body = json.loads(raw) if raw else None
        headers = {k.lower(): v for k, v in self.headers.items()}
        reply = self.server.script.next_reply(ReceivedRequest(self.path, headers, body))
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        for name, value in reply.headers:
            self.send_header(name, value)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for piece in reply.pieces:
            if piece:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    script: _Script

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client closing its kept-alive connection is not an error worth printing."""


class ChatReplayServer:
    """A real HTTP server on 127.0.0.1 in a background thread (a context manager)."""

    def __init__(self, replies: Sequence[Reply]) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.script = _Script(list(replies))
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    @property
    def requests(self) -> list[ReceivedRequest]:
        return self._server.script.requests

    def _serve(self) -> None:
        self._server.serve_forever(poll_interval=0.05)

    def __enter__(self) -> ChatReplayServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
