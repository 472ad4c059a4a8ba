"""What every route handler shares: config, store, run engine, and lookups that 404."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from asst_magic.server.api.errors import conflict_active_run, not_found
from asst_magic.server.config import ServerConfig
from asst_magic.server.objects import ACTIVE_RUN_STATUSES
from asst_magic.server.runs.engine import RunEngine
from asst_magic.server.runs.streams import EventStream
from asst_magic.server.store import Store
from asst_magic.server.wire import SafeJSONResponse

__all__ = ["SSE_HEADERS", "ServerState", "state_of"]

Obj = dict[str, Any]

SSE_HEADERS = {"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache"}

_KIND_NAMES = {"step": "run step"}


@dataclass
class ServerState:
    """The server's parts, reachable from a request as ``state_of(request)``."""

    config: ServerConfig
    store: Store
    engine: RunEngine
    token: str

    @staticmethod
    def now() -> int:
        """Seconds since the epoch."""
        return int(time.time())

    def require(self, kind: str, object_id: str, thread_id: str | None = None) -> Obj:
        """The object, or OpenAI's 404 (also when it belongs to another thread)."""
        obj = self.store.get(kind, object_id)
        if obj is None or (thread_id is not None and obj.get("thread_id") != thread_id):
            raise not_found(_KIND_NAMES.get(kind, kind), object_id)
        return obj

    def ensure_idle(self, thread_id: str) -> None:
        """OpenAI's 400 when the thread already has an active run."""
        active = self.store.select("run", thread_id=thread_id, statuses=ACTIVE_RUN_STATUSES)
        if active:
            raise conflict_active_run(thread_id, active[-1]["id"])

    def run_response(
        self, run: Obj, stream: bool, thread: Obj | None = None, *, reasoning: bool = False
    ) -> Response:
        """Start a committed run; stream its events, or return it (still queued)."""
        if not stream:
            response = self.json(run, poll=True)
            self.engine.start(run, None, thread)
            return response
        events = EventStream(reasoning=reasoning)
        self.engine.start(run, events, thread)
        return StreamingResponse(events, headers=SSE_HEADERS)

    def json(self, obj: Obj, *, poll: bool = False) -> SafeJSONResponse:
        """A JSON response; ``poll`` adds ``openai-poll-after-ms`` for the SDK's poll helpers."""
        headers = {"openai-poll-after-ms": str(self.config.poll_after_ms)} if poll else None
        return SafeJSONResponse(obj, headers=headers)


def state_of(request: Request) -> ServerState:
    """The ``ServerState`` of the app serving ``request``."""
    state: ServerState = request.app.state.server
    return state
