"""ASGI middleware in front of every route: bearer-token check and the body-size limit."""

from __future__ import annotations

import hmac
import logging
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from asst_magic.server.api.errors import APIError, internal_error, payload_too_large, unauthorized
from asst_magic.server.wire import dumps

__all__ = ["Guard"]

log = logging.getLogger(__name__)


class Guard:
    """Rejects requests without the server's token (401) or over the size limit (413)."""

    def __init__(self, app: ASGIApp, *, token: str, max_body_bytes: int) -> None:
        self.app = app
        self._token = token.encode()
        self._limit = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        problem = self._auth_problem(headers.get(b"authorization"))
        if problem is None and int(headers.get(b"content-length", b"0") or 0) > self._limit:
            problem = payload_too_large(self._limit)
        if problem is not None:
            await _drain(receive)  # read the body first so the client sees the response
            await _send_error(send, problem)
            return
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

    def _auth_problem(self, header: bytes | None) -> APIError | None:
        if header is None:
            return unauthorized("You didn't provide an API key (no Authorization header).")
        scheme, _, value = header.partition(b" ")
        if scheme.lower() != b"bearer" or not hmac.compare_digest(value.strip(), self._token):
            return unauthorized("Incorrect API key provided.")
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
