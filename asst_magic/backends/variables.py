"""The local server's variables API (``/asst_magic/v1``), next to the Assistants API it serves.

>>> api = VariablesAPI("http://127.0.0.1:8765/v1", "token")  # doctest: +SKIP
>>> api.get("thread_abc", "summary", max_bytes=10_000_000).format  # doctest: +SKIP
'parquet'
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from asst_magic.backends.base import BackendError, ThreadNotFound

__all__ = ["Fetched", "VariablesAPI"]

_TIMEOUT = 300.0  # loading a large value runs in the kernel, under its own time limit


@dataclass(frozen=True)
class Fetched:
    """A variable as the thread's kernel wrote it (untrusted bytes: decode with care)."""

    format: str
    kind: str
    type: str
    data: bytes


class VariablesAPI:
    """PUT and GET a thread's kernel variables over HTTP, with the server's bearer token."""

    def __init__(self, base_url: str, token: str) -> None:
        root = base_url.rstrip("/")
        self.root = root.removesuffix("/v1")
        self.url = self.root + "/asst_magic/v1"
        self._headers = {"Authorization": f"Bearer {token}"}
        self._client: Any = None

    def put(self, thread_id: str, name: str, fmt: str, kind: str, data: bytes) -> None:
        """Define ``name`` in the thread's kernel from encoded ``data``."""
        params = {"format": fmt, "kind": kind}
        self._send("PUT", thread_id, name, params=params, content=data)

    def get(self, thread_id: str, name: str, *, max_bytes: int) -> Fetched:
        """The bytes of ``name`` from the thread's kernel, as Parquet, npy, JSON or PNG."""
        response = self._send("GET", thread_id, name, params={"max_bytes": str(max_bytes)})
        header = response.headers.get
        return Fetched(
            header("x-asst-magic-format", ""),
            header("x-asst-magic-kind", ""),
            header("x-asst-magic-type", ""),
            response.content,
        )

    def close(self) -> None:
        """Close the connection pool."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def _send(self, method: str, thread_id: str, name: str, **options: Any) -> Any:
        import httpx2

        if self._client is None:
            self._client = httpx2.Client(timeout=_TIMEOUT, headers=self._headers)
        url = f"{self.url}/threads/{thread_id}/variables/{name}"
        try:
            response = self._client.request(method, url, **options)
        except httpx2.TransportError as exc:
            raise BackendError(f"No assistant server at {self.root} ({exc}).") from None
        if response.status_code >= 400:
            raise self._problem(response, thread_id, name)
        return response

    def _problem(self, response: Any, thread_id: str, name: str) -> BackendError:
        error = _error_of(response)
        if response.status_code == 404 and error.get("code") == "variable_not_found":
            return BackendError(
                f"no variable {name} in thread {thread_id}. The assistant's code must define "
                "it first (ask for it by name), or check the thread with `%asst_thread`."
            )
        message = str(error.get("message") or response.text[:300])
        if response.status_code == 404 and message.startswith("No thread found"):
            return ThreadNotFound(thread_id)
        if response.status_code in (404, 405) and not error.get("code"):
            return BackendError(
                f"The server at {self.root} has no variables API (it is not an asst-magic "
                "server). Ask the assistant to save the value to a file and link it instead."
            )
        if str(error.get("code") or "").startswith(("variable_", "unsupported_variable")):
            return BackendError(message)  # the server's own words name the problem and the fix
        return BackendError(f"The assistant server answered {response.status_code}: {message}")


def _error_of(response: Any) -> dict[str, Any]:
    try:
        body = json.loads(response.content)
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}
