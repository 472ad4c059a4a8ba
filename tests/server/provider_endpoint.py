"""A loopback Chat Completions endpoint that answers as any of ten providers would.

The request's ``model`` picks the provider (``provider_shapes.PROVIDERS``). A test
scripts the model's next turns as scenes; the endpoint first checks the request
against the provider's second-turn rules (and refuses it as the provider would),
then streams the scene in the provider's shapes::

    with ProviderEndpoint() as endpoint:
        endpoint.script("mistral", [Calls(("python", {"code": "print(1)"}),), Say("One.")])
        ...  # a run whose model is "magistral-medium-latest"
        assert endpoint.requests("mistral")[1]["messages"][-1]["role"] == "tool"
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from provider_shapes import PROVIDERS, Issued, Provider, by_model

__all__ = ["THINKING", "Calls", "CutOff", "Fail", "ProviderEndpoint", "Refuse", "Say", "Stall"]

Obj = dict[str, Any]
THINKING = "The user wants this; "


@dataclass(frozen=True)
class Say:
    """A text answer (with reasoning first, where the provider streams reasoning)."""

    text: str


@dataclass(frozen=True)
class Calls:
    """One turn of tool calls: ``(name, arguments)`` pairs, optionally with text after them."""

    calls: tuple[tuple[str, Obj], ...]
    text_after: str = ""


@dataclass(frozen=True)
class CutOff:
    """Text cut off by the token limit (``finish_reason: length``)."""

    text: str


@dataclass(frozen=True)
class Fail:
    """Some text, then the provider's own mid-stream failure; the connection ends."""


@dataclass(frozen=True)
class Refuse:
    """An HTTP error status with the provider's error body."""

    status: int
    message: str


@dataclass(frozen=True)
class Stall:
    """Go silent: before the response starts, or after a first piece of text."""

    mid_answer: bool = False


Scene = Say | Calls | CutOff | Fail | Refuse | Stall


@dataclass
class _State:
    scenes: list[Scene] = field(default_factory=list)
    requests: list[Obj] = field(default_factory=list)
    issued: Issued = field(default_factory=Issued)


class ProviderEndpoint:
    """The endpoint on 127.0.0.1 (a context manager); ``base_url`` ends in ``/v1``."""

    def __init__(self) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.states = {p.name: _State() for p in PROVIDERS}
        self._server.lock = threading.Lock()
        self._server.release = threading.Event()
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,))

    @property
    def root(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def base_url(self) -> str:
        return f"{self.root}/v1"

    def script(self, provider: str, scenes: list[Scene]) -> None:
        """The provider's next turns, in order (replacing what was left)."""
        with self._server.lock:
            state = self._server.states[provider]
            state.scenes = list(scenes)
            state.requests = []

    def requests(self, provider: str) -> list[Obj]:
        """The request bodies the provider got since its last ``script``."""
        return list(self._server.states[provider].requests)

    def left(self, provider: str) -> list[Scene]:
        return list(self._server.states[provider].scenes)

    def __enter__(self) -> ProviderEndpoint:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    states: dict[str, _State]
    lock: threading.Lock
    release: threading.Event

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (a timeout under test) is expected."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        provider = by_model(body["model"])
        with self.server.lock:
            state = self.server.states[provider.name]
            state.requests.append(body)
            scene = state.scenes.pop(0) if state.scenes else Refuse(500, "no scene scripted")
            checks = (rule(body["messages"], state.issued) for rule in provider.rules)
            broken = next(filter(None, checks), None)
        if broken:
            self._json(provider.reject_status, provider.error_body(provider.reject_status, broken))
        elif isinstance(scene, Refuse):
            self._json(scene.status, provider.error_body(scene.status, scene.message))
        elif isinstance(scene, Stall) and not scene.mid_answer:
            self.server.release.wait(30)
        else:
            self._stream(Renderer(provider, state.issued).pieces(scene), isinstance(scene, Stall))

    def _json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Retry-After", "0")
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, pieces: Iterator[bytes], stall: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for piece in filter(None, pieces):  # an empty chunk would end the body
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.flush()
        if stall:
            self.server.release.wait(30)
            return
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


class Renderer:
    """One scene as the provider streams it (SSE pieces, written one by one)."""

    def __init__(self, provider: Provider, issued: Issued) -> None:
        self.p = provider
        self.issued = issued

    def pieces(self, scene: Scene) -> Iterator[bytes]:
        yield self.p.prelude
        yield self._data(self._chunk({"role": "assistant", "content": ""}))
        if isinstance(scene, Stall):
            yield from self._text("Let me")
            return
        kind = self.p.reasoning if isinstance(scene, Say | Calls) else None
        for piece in (THINKING[:9], THINKING[9:]) if kind else ():
            yield self._data(self._chunk(self._thought(kind, piece)))
        if isinstance(scene, Say):
            yield from self._text(scene.text)
            yield from self._end("stop")
        elif isinstance(scene, Calls):
            # What must come back with these calls, by the provider's rules.
            thinking = {
                "reasoning": THINKING if kind == "reasoning_content" else None,
                "details": [self._detail(THINKING)] if kind == "openrouter" else None,
            }
            yield from self._calls(scene, thinking)
            yield from self._text(scene.text_after)
            yield from self._end("tool_calls")
        elif isinstance(scene, CutOff):
            yield from self._text(scene.text)
            yield from self._end("length")
        elif isinstance(scene, Fail):
            yield from self._text("Partial answer")
            yield self.p.midstream()

    def _thought(self, kind: str | None, piece: str) -> Obj:
        if kind == "magistral":
            return {
                "content": [{"type": "thinking", "thinking": [{"type": "text", "text": piece}]}]
            }
        if kind == "openrouter":
            return {"content": "", "reasoning": piece, "reasoning_details": [self._detail(piece)]}
        if kind == "reasoning_content":
            return {"content": None, "reasoning_content": piece}
        return {"content": "", "reasoning": piece}

    @staticmethod
    def _detail(text: str) -> Obj:
        return {"type": "reasoning.text", "text": text, "format": "anthropic-claude-v1", "index": 0}

    def _text(self, text: str) -> Iterator[bytes]:
        half = len(text) // 2
        for piece in (text[:half], text[half:]):
            if piece:
                content: Any = [{"type": "text", "text": piece}] if self.p.list_content else piece
                yield self._data(self._chunk({"content": content}))

    def _calls(self, scene: Calls, thinking: Obj) -> Iterator[bytes]:
        heads, pieces = [], []
        for index, (name, arguments) in enumerate(scene.calls):
            call_id = self.p.new_id(index)
            head: Obj = {"index": index} if self.p.call_index else {}
            head.update(id=call_id, type="function")
            text = json.dumps(arguments)
            sent: Obj = dict(thinking)
            if self.p.signature and index == 0:
                sent["signature"] = f"Cs0BAXLI2nw{call_id[-6:]}=="
                head["extra_content"] = {"google": {"thought_signature": sent["signature"]}}
            self.issued.calls[call_id] = sent
            if self.p.whole_calls:
                heads.append({**head, "function": {"name": name, "arguments": text}})
                continue
            heads.append({**head, "function": {"name": name, "arguments": ""}})
            cut = len(text) // 2
            index_key = {"index": index} if self.p.call_index else {"id": call_id}
            pieces += [
                {**index_key, "function": {"arguments": part}} for part in (text[:cut], text[cut:])
            ]
        if self.p.whole_calls:
            yield self._data(self._chunk({"tool_calls": heads}))
            return
        for head in heads:
            yield self._data(self._chunk({"tool_calls": [head]}))
        for piece in pieces:
            yield self._data(self._chunk({"tool_calls": [piece]}))

    def _end(self, finish: str) -> Iterator[bytes]:
        usage = {"prompt_tokens": 20, "completion_tokens": 7, "total_tokens": 27}
        last = self._chunk({}, finish)
        if self.p.usage_in == "x_groq":
            last["x_groq"] = {**last.get("x_groq", {}), "usage": usage}
            yield self._data(last)
        elif self.p.usage_in == "every":
            yield self._data({**last, "usage": usage})
        else:
            yield self._data(last)
            yield self._data({**self.p.envelope, "id": "chatcmpl-1", "choices": [], "usage": usage})
        yield b"data: [DONE]\n\n"

    def _chunk(self, delta: Obj, finish: str | None = None) -> Obj:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, **self.p.choice_extra}
        return {
            "id": "chatcmpl-1",
            "created": 1764600000,
            "model": self.p.model,
            **self.p.envelope,
            "choices": [choice],
        }

    @staticmethod
    def _data(chunk: Obj) -> bytes:
        return b"data: " + json.dumps(chunk).encode() + b"\n\n"
