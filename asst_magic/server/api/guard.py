"""ASGI middleware in front of every route: Host check, bearer token, and the body-size limit.

The token comes as ``Authorization: Bearer …`` or, as Azure OpenAI clients send it,
an ``api-key`` header.

The server's own token is the admin's: it sees every object (and is the only
token of a single-user server). A user's token (``asst-magic users add``)
scopes the request to that user's objects.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from asst_magic.server.api.errors import (
    APIError,
    bad_request,
    internal_error,
    payload_too_large,
    unauthorized,
)
from asst_magic.server.store.owners import owned_by
from asst_magic.server.store.users import Users
from asst_magic.server.wire import dumps

__all__ = ["Guard", "host_name"]

log = logging.getLogger(__name__)


class Guard:
    """Rejects a foreign ``Host`` (400), a missing token (401), a body over the limit (413).

    ``hosts`` are the host names (without port) the server answers to; ``None``
    accepts any. Checking them stops DNS rebinding: a web page whose own name
    resolves to 127.0.0.1 still sends its own name as ``Host``. ``users`` looks up
    the users' tokens; without it only the server's token is accepted.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        token: str,
        max_body_bytes: int,
        hosts: frozenset[str] | None = None,
        users: Users | None = None,
    ) -> None:
        self.app = app
        self._token = token.encode()
        self._limit = max_body_bytes
        self._hosts = hosts
        self._users = users

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        problem = self._host_problem(headers.get(b"host"))
        owner: str | None = None
        if problem is None:
            problem, owner = self._authenticate(_credentials(headers))
        if problem is None and int(headers.get(b"content-length", b"0") or 0) > self._limit:
            problem = payload_too_large(self._limit)
        if problem is not None:
            await _drain(receive)  # read the body first so the client sees the response
            await _send_error(send, problem)
            return
        with owned_by(owner):  # run tasks started by this request inherit the owner
            await self._serve(scope, self._limited(receive), send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app; a bug of ours becomes one logged traceback and an OpenAI-shaped 500.

        Handled here rather than by Starlette's outermost error middleware, which
        logs the exception twice and drops the keep-alive connection.
        """
        started = False

        async def tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking)
        except Exception as exc:
            if started:  # a streaming response broke mid-way: nothing sane left to send
                raise
            log.error("internal error serving %s %s", scope["method"], scope["path"], exc_info=exc)
            await _send_error(send, internal_error(exc))

    def _host_problem(self, header: bytes | None) -> APIError | None:
        if self._hosts is None or header is None:
            return None
        host = host_name(header.decode("latin-1"))
        if host in self._hosts:
            return None
        return bad_request(
            f"This server does not answer to the host name {host[:100]!r} (it answers to "
            f"{', '.join(sorted(self._hosts))}). To reach it under another name, start it "
            "with --allowed-hosts NAME.",
            code="invalid_host",
        )

    def _authenticate(self, header: bytes | None) -> tuple[APIError | None, str | None]:
        """The problem with ``header`` (or None), and whose objects the request may see."""
        if header is None:
            return unauthorized(
                "You didn't provide an API key (no Authorization or api-key header)."
            ), None
        scheme, _, value = header.partition(b" ")
        token = value.strip()
        if scheme.lower() == b"bearer" and hmac.compare_digest(token, self._token):
            return None, None
        user = self._user(token) if scheme.lower() == b"bearer" else None
        if user is None:
            return unauthorized("Incorrect API key provided."), None
        return None, user

    def _user(self, token: bytes) -> str | None:
        if self._users is None:
            return None
        try:
            return self._users.by_token(token.decode())
        except UnicodeDecodeError:
            return None

    def _limited(self, receive: Receive) -> Receive:
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self._limit:
                raise payload_too_large(self._limit)
            return message

        return limited


def _credentials(headers: dict[bytes, bytes]) -> bytes | None:
    """The ``Authorization`` header; else Azure's ``api-key`` header, as a bearer token.

    A request that has both is judged by ``Authorization`` alone.
    """
    if b"authorization" in headers:
        return headers[b"authorization"]
    key = headers.get(b"api-key")
    return None if key is None else b"Bearer " + key


def host_name(value: str) -> str:
    """The host part of a ``Host`` header or ``host:port``, lower-cased, IPv6 unbracketed."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:].partition("]")[0]
    return value.rpartition(":")[0] if value.count(":") == 1 else value


async def _drain(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body"):
            return


async def _send_error(send: Send, error: APIError) -> None:
    body = dumps(error.body())
    headers: list[Any] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
