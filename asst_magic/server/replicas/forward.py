"""Requests that change another replica's active run are sent to that replica.

A run executes on the replica that created it; its driver (and any paused tool
call) lives in that process. So ``cancel``, ``submit_tool_outputs`` and run
updates that arrive elsewhere are forwarded there, and the answer (a stream
included) is relayed back byte for byte, in order.

>>> Middleware(Forwarder, lease=lease, store=store)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import re
from typing import Any

import httpx2
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from asst_magic.server.api.errors import APIError
from asst_magic.server.objects import ACTIVE_RUN_STATUSES
from asst_magic.server.replicas.leases import ReplicaLease
from asst_magic.server.store import Store

__all__ = ["FORWARDED_HEADER", "Forwarder", "new_client"]

log = logging.getLogger(__name__)

FORWARDED_HEADER = b"x-asst-magic-forwarded"
# Under /v1, or /openai (Azure's layout, with its api-key header).
_RUN_PATH = re.compile(
    r"/(v1|openai)/threads/[^/]+/runs/(?P<run>[^/]+)(/cancel|/submit_tool_outputs)?"
)
_PASSED_HEADERS = {b"authorization", b"api-key", b"content-type", b"accept", b"openai-beta"}
_RELAYED_HEADERS = {"content-type", "cache-control", "openai-poll-after-ms"}


class Forwarder:
    """ASGI middleware (inside the guard): relays run changes to the run's replica."""

    def __init__(
        self, app: ASGIApp, *, lease: ReplicaLease, store: Store, client: httpx2.AsyncClient
    ) -> None:
        self.app = app
        self._lease = lease
        self._store = store
        self._client = client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            target = self._target(scope) if scope["type"] == "http" else None
        except APIError as exc:
            await _read_body(receive)  # read first so the client sees the response
            await _send_error(exc, scope, receive, send)
            return
        if target is None:
            await self.app(scope, receive, send)
        else:
            await self._forward(target, scope, receive, send)

    def _target(self, scope: Scope) -> str | None:
        """The URL of the live replica running the addressed run, when that is not us."""
        match = _RUN_PATH.fullmatch(scope["path"])
        if scope["method"] != "POST" or match is None:
            return None
        if any(name == FORWARDED_HEADER for name, _ in scope["headers"]):
            return None  # forwarded once already: serve it here, whatever we hold
        run_id = match["run"]
        run = self._store.get("run", run_id)
        replica = self._store.replica_of(run_id)
        if run is None or run["status"] not in ACTIVE_RUN_STATUSES:
            return None
        if replica is None or replica == self._lease.id:
            return None
        url = self._lease.url_of(replica)
        if url is None:
            raise _unreachable(run_id, "whose lease has lapsed", self._lease.lease_ms)
        return url

    async def _forward(self, base: str, scope: Scope, receive: Receive, send: Send) -> None:
        body = await _read_body(receive)
        headers = [(k, v) for k, v in scope["headers"] if k in _PASSED_HEADERS]
        headers.append((FORWARDED_HEADER, b"1"))
        query = f"?{scope['query_string'].decode()}" if scope["query_string"] else ""
        request = self._client.build_request(
            "POST", base.rstrip("/") + scope["path"] + query, content=body, headers=headers
        )
        try:
            response = await self._client.send(request, stream=True)
        except httpx2.HTTPError as exc:
            log.warning("could not forward %s to %s: %r", scope["path"], base, exc)
            error = _unreachable(scope["path"], f"at {base}, which cannot be reached", 0)
            await _send_error(error, scope, receive, send)
            return
        try:
            await _relay(response, send)
        finally:
            await response.aclose()


def new_client() -> httpx2.AsyncClient:
    """The HTTP client a replica forwards with (no read timeout: streams last)."""
    return httpx2.AsyncClient(timeout=httpx2.Timeout(30.0, read=None))


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message: Message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _relay(response: Any, send: Send) -> None:
    headers = [
        (k.encode(), v.encode()) for k, v in response.headers.items() if k in _RELAYED_HEADERS
    ]
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    async for chunk in response.aiter_raw():
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def _send_error(error: APIError, scope: Scope, receive: Receive, send: Send) -> None:
    await JSONResponse(error.body(), status_code=error.status)(scope, receive, send)


def _unreachable(what: str, where: str, lease_ms: int) -> APIError:
    later = f" within {lease_ms / 1000 * 1.2:g} s" if lease_ms else " once its lease lapses"
    return APIError(
        503,
        f"The run ({what}) executes on another server replica {where}. If that replica "
        f"stopped, its runs are failed{later}; then create a new run on the thread.",
        type="server_error",
        code="replica_unavailable",
    )
