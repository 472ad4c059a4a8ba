"""The REST side of a Jupyter Enterprise Gateway: kernelspecs, start, interrupt, delete.

The token goes in an ``Authorization: token ...`` header and nowhere else: not in
URLs, reprs, logs or error messages.

Example::

    client = GatewayClient("http://127.0.0.1:8888", token="...")
    kernel_id = await client.start_kernel("python3")
    socket = await client.connect(kernel_id)
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import quote, urlsplit

from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

from asst_magic.server.config import GATEWAY_TOKEN_ENV as TOKEN_ENV
from asst_magic.server.config import GATEWAY_URL_ENV as URL_ENV

__all__ = ["GatewayClient", "GatewayError"]

# File chunks travel as ~2.7 MB messages; leave room above that.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
PING_SECONDS = 20.0


class GatewayError(RuntimeError):
    """The gateway could not be reached or refused a request; the message names the fix."""


class GatewayClient:
    """Talks to one gateway at ``url`` (``http(s)://host:port[/prefix]``) with ``token``."""

    def __init__(self, url: str, token: str | None = None, *, timeout: float = 60.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(
                f"the kernel gateway URL must look like http://host:port, not {url!r} "
                f"(--kernel-gateway or ${URL_ENV})"
            )
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._token = token

    def __repr__(self) -> str:
        return f"GatewayClient({self.url!r})"

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self._token:
            headers["Authorization"] = f"token {self._token}"
        return headers

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """``method path`` on the gateway: (status, decoded JSON body or None)."""
        request = HTTPRequest(
            self.url + path,
            method=method,
            headers=self._headers(),
            body=None if body is None and method != "POST" else json.dumps(body or {}),
            request_timeout=self.timeout,
            connect_timeout=min(self.timeout, 10.0),
        )
        try:
            response = await AsyncHTTPClient().fetch(request, raise_error=False)
        except Exception as exc:  # refused, unresolvable, timed out
            raise GatewayError(
                f"no Jupyter Enterprise Gateway answers at {self.url} ({_reason(exc)}); check "
                f"--kernel-gateway (or ${URL_ENV}) and that the gateway runs"
            ) from None
        try:
            data = json.loads(response.body) if response.body else None
        except ValueError:
            data = None
        if response.code in (401, 403):
            raise GatewayError(
                f"the gateway at {self.url} refused the request (HTTP {response.code}"
                f"{_said(data)}); check --kernel-gateway-token (or ${TOKEN_ENV})"
            )
        return response.code, data

    async def kernelspec_names(self) -> list[str]:
        """The kernelspecs the gateway offers."""
        status, data = await self.request("GET", "/api/kernelspecs")
        if status != 200 or not isinstance(data, dict):
            raise GatewayError(f"the gateway at {self.url} did not list its kernelspecs ({status})")
        return sorted((data.get("kernelspecs") or {}).keys())

    async def start_kernel(self, name: str, env: dict[str, str] | None = None) -> str:
        """Start a kernel of kernelspec ``name``; its id."""
        status, data = await self.request("POST", "/api/kernels", {"name": name, "env": env or {}})
        if status in (200, 201) and isinstance(data, dict) and data.get("id"):
            return str(data["id"])
        if status == 404 or "No such kernel" in _said(data):
            names = ", ".join(await self.kernelspec_names()) or "none"
            raise GatewayError(
                f"the gateway at {self.url} has no kernelspec {name!r} (it has: {names}); "
                "choose one with --kernel-gateway-kernelspec"
            )
        raise GatewayError(
            f"the gateway at {self.url} could not start a {name!r} kernel "
            f"(HTTP {status}{_said(data)})"
        )

    async def kernel_state(self, kernel_id: str) -> str | None:
        """The kernel's ``execution_state``; None when the gateway no longer has it."""
        status, data = await self.request("GET", f"/api/kernels/{quote(kernel_id)}")
        if status == 404:
            return None
        return str(data.get("execution_state", "unknown")) if isinstance(data, dict) else "unknown"

    async def interrupt(self, kernel_id: str) -> None:
        """Ask the gateway to interrupt the kernel (SIGINT or an interrupt message)."""
        await self.request("POST", f"/api/kernels/{quote(kernel_id)}/interrupt")

    async def delete(self, kernel_id: str, attempts: int = 5) -> bool:
        """Stop the kernel on the gateway; whether it is gone.

        A kernel the gateway is restarting (it died) may survive a delete request:
        it is asked again, a little later each time, until the gateway no longer has it.
        """
        for attempt in range(attempts):
            await self.request("DELETE", f"/api/kernels/{quote(kernel_id)}")
            if await self.kernel_state(kernel_id) is None:
                return True
            await asyncio.sleep(0.5 * (attempt + 1))
        return False

    async def connect(self, kernel_id: str) -> WebSocketClientConnection:
        """Open the kernel's channels websocket (Jupyter messages as JSON text)."""
        scheme = "wss" if self.url.startswith("https") else "ws"
        url = f"{scheme}{self.url[self.url.index(':') :]}/api/kernels/{quote(kernel_id)}/channels"
        request = HTTPRequest(url, headers=self._headers(), connect_timeout=min(self.timeout, 10.0))
        try:
            # Pings keep proxies and load balancers from closing an idle channel.
            return await websocket_connect(
                request, max_message_size=MAX_MESSAGE_BYTES, ping_interval=PING_SECONDS
            )
        except Exception as exc:
            raise GatewayError(
                f"could not open the kernel's channels on the gateway at {self.url} "
                f"({_reason(exc)})"
            ) from None


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _said(data: Any) -> str:
    """What the gateway said about a refusal, e.g. ``: User 'root' is not authorized ...``."""
    if isinstance(data, dict):
        reason = data.get("reason") or data.get("message")
        if reason:
            return f": {str(reason)[:300]}"
    return ""
