"""Helpers shared by the server tests: cassettes, SDK clients, SSE decoding."""

from __future__ import annotations

import http.client
import itertools
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2
import openai

from asst_magic.server import ServerHandle
from asst_magic.sse import SSEDecoder

__all__ = [
    "BOTH_STORES",
    "VECTORS",
    "Alternating",
    "Entry",
    "ReplicaSet",
    "SlowRequest",
    "azure_client",
    "azure_endpoint",
    "client_for",
    "sse_events",
    "write_cassette",
]

Entry = dict[str, Any]
VECTORS = Path(__file__).parent.parent / "vectors" / "assistants"
# ``STORES = BOTH_STORES`` in a test module runs its server tests on both stores.
BOTH_STORES = ("sqlite", "postgresql")


def write_cassette(path: Path, entries: list[Entry]) -> Path:
    """A JSONL cassette file with ``entries``."""
    path.write_text("".join(json.dumps(e) + "\n" for e in entries), encoding="utf-8")
    return path


class ReplicaSet(ServerHandle):
    """Replicas on one database, as one handle: ``base_url`` is the first one's.

    ``client_for`` gives an SDK client that sends each request to the next replica.
    """

    def __init__(self, handles: list[ServerHandle]) -> None:
        super().__init__(handles[0].base_url, handles[0].token, self._stop_all)
        self.handles = handles

    def _stop_all(self) -> None:
        for handle in self.handles:
            handle.stop()


class Alternating(httpx2.BaseTransport):
    """Sends each request to the next of ``ports`` on the same host, in turn."""

    def __init__(self, ports: list[int]) -> None:
        self._inner = httpx2.HTTPTransport()
        self._ports = itertools.cycle(ports)
        self.sent: list[int] = []

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        port = next(self._ports)
        self.sent.append(port)
        request.url = request.url.copy_with(port=port)
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


def azure_endpoint(handle: ServerHandle) -> str:
    """What a user sets ``AZURE_OPENAI_ENDPOINT`` to: the server's root, without ``/v1``."""
    return handle.base_url.removesuffix("/v1")


def azure_client(
    handle: ServerHandle, key: str | None = None, version: str = "2024-05-01-preview"
) -> openai.OpenAI:
    """The SDK's ``AzureOpenAI`` pointed at ``handle``: ``/openai`` paths, ``api-key`` header."""
    return openai.AzureOpenAI(
        azure_endpoint=azure_endpoint(handle),
        api_key=key or handle.token,
        api_version=version,
        max_retries=0,
    )


def client_for(handle: ServerHandle) -> openai.OpenAI:
    """The real SDK pointed at ``handle`` (no retries, so errors show at once).

    For a ``ReplicaSet`` the client alternates replicas request by request.
    """
    if not isinstance(handle, ReplicaSet):
        return openai.OpenAI(base_url=handle.base_url, api_key=handle.token, max_retries=0)
    ports = [urlsplit(h.base_url).port or 80 for h in handle.handles]
    http = httpx2.Client(transport=Alternating(ports))
    return openai.OpenAI(
        base_url=handle.base_url, api_key=handle.token, max_retries=0, http_client=http
    )


def sse_events(chunks: Iterator[bytes]) -> list[tuple[str, Any]]:
    """Decode a raw SSE body into (event, data) with JSON data parsed (``[DONE]`` kept)."""
    decoder, events = SSEDecoder(), []
    for chunk in chunks:
        events += decoder.feed(chunk)
    events += decoder.flush()
    return [(name, data if data == "[DONE]" else json.loads(data)) for name, data in events]


class SlowRequest:
    """A POST over a raw loopback socket whose JSON body arrives in two parts, when told.

    ``start()`` sends the headers and all but the last byte of the body, so the
    server is inside the handler, waiting for the body; ``finish()`` sends the rest.
    """

    def __init__(self, handle: ServerHandle, path: str, body: Any) -> None:
        url = urlsplit(handle.base_url)
        self._body = json.dumps(body).encode()
        self._head = (
            f"POST {url.path}{path} HTTP/1.1\r\nHost: {url.netloc}\r\n"
            f"Authorization: Bearer {handle.token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(self._body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        self._sock = socket.create_connection((url.hostname or "", url.port or 80), timeout=30)

    def start(self) -> SlowRequest:
        """Send the headers and all of the body but its last byte."""
        self._sock.sendall(self._head + self._body[:-1])
        return self

    def finish(self) -> None:
        """Send the body's last byte."""
        self._sock.sendall(self._body[-1:])

    def response(self) -> tuple[int, bytes]:
        """Read the whole response: its status and (de-chunked) body."""
        response = http.client.HTTPResponse(self._sock)
        try:
            response.begin()
            return response.status, response.read()
        finally:
            self._sock.close()
