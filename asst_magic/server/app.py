"""The Starlette app: Assistants API v2 routes under ``/v1``.

>>> app = create_app(ServerConfig(data_dir=Path("data"), token="t"))  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount

from asst_magic.server.api import assistants, runs, threads, variables
from asst_magic.server.api.errors import APIError, error_body
from asst_magic.server.api.guard import Guard
from asst_magic.server.code_interpreter.sandbox import Sandbox
from asst_magic.server.config import ServerConfig
from asst_magic.server.ids import new_token
from asst_magic.server.models import ModelRegistry, default_registry
from asst_magic.server.replicas.forward import Forwarder, new_client
from asst_magic.server.replicas.leases import ReplicaLease
from asst_magic.server.runs.engine import RunEngine, recover_interrupted_runs
from asst_magic.server.runtime import ServerLock
from asst_magic.server.state import ServerState
from asst_magic.server.store import Store, open_store
from asst_magic.server.store.users import Users
from asst_magic.server.wire import SafeJSONResponse

__all__ = ["create_app"]

log = logging.getLogger(__name__)


def create_app(
    config: ServerConfig,
    *,
    sandbox: Sandbox | None = None,
    models: ModelRegistry | None = None,
    owner: ServerLock | None = None,
    hosts: frozenset[str] | None = None,
) -> Starlette:
    """The server app over ``config.data_dir``; it closes ``sandbox`` and ``models`` on shutdown.

    ``owner`` is this process's claim on the data dir, released last at shutdown;
    ``hosts`` the ``Host`` names it answers to (``None``: any).

    ``sandbox=None`` serves without a code interpreter (its calls fail their
    run); ``models`` defaults to ``default_registry(config)``.
    """
    store = open_store(config)
    lease = _recover(store, config)
    registry = models or default_registry(config)
    engine = RunEngine(store, registry, sandbox, config)
    if lease is not None:
        lease.on_lost = engine.end_superseded
    state = ServerState(config, store, engine, config.token or new_token())

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Warming the sandbox takes seconds; the server listens meanwhile.
        warming = asyncio.create_task(_warm(sandbox)) if sandbox is not None else None
        if lease is not None:
            lease.start()
        try:
            yield
        finally:
            await engine.aclose()
            if lease is not None:
                await lease.aclose()
            await forwarding.aclose()
            await registry.aclose()
            if sandbox is not None:
                await sandbox.aclose()
            if warming is not None:
                await asyncio.gather(warming, return_exceptions=True)
            store.close()
            if owner is not None:
                owner.release()

    routes = runs.routes + threads.routes + assistants.routes
    guard = Middleware(
        Guard,
        token=state.token,
        max_body_bytes=config.max_body_bytes,
        hosts=hosts,
        users=Users(store.database),
    )
    forwarding = new_client()
    relay = [Middleware(Forwarder, lease=lease, store=store, client=forwarding)] if lease else []
    app = Starlette(
        routes=[
            Mount("/v1", routes=routes),
            # Azure OpenAI's layout, `{endpoint}/openai/...?api-version=`, as the Azure samples
            # and AzureOpenAI clients send it: the same API (the api-version is not checked).
            Mount("/openai", routes=routes),
            # Not part of the Assistants API: kept under its own prefix.
            Mount(variables.PREFIX, routes=variables.routes),
        ],
        middleware=[guard, *relay],
        exception_handlers={
            APIError: _api_error,
            HTTPException: _http_error,
        },
        lifespan=lifespan,
    )
    app.state.server = state
    return app


def _recover(store: Store, config: ServerConfig) -> ReplicaLease | None:
    """Fail the runs that a stopped server left active; on PostgreSQL, take a replica lease.

    SQLite has one server, so every active run at start is an orphan. Replicas
    on PostgreSQL fail only the runs of replicas whose lease lapsed.
    """
    if store.database.dialect != "postgresql":
        recovered = recover_interrupted_runs(store, ServerState.now())
        if recovered:
            log.warning("marked %d run(s) interrupted by the last shutdown as failed", recovered)
        return None
    lease = ReplicaLease(store, config.replica_url or "", seconds=config.replica_lease_seconds)
    lease.register()
    lease.reap()
    return lease


async def _warm(sandbox: Sandbox) -> None:
    """Start the sandbox's warm pool; a failure only costs the first run its latency."""
    try:
        await sandbox.start()
    except Exception as exc:  # the first execution retries and reports a real problem
        log.warning("could not warm up the code interpreter: %r", exc)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, APIError)
    return SafeJSONResponse(exc.body(), status_code=exc.status)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code in (404, 405):
        message = f"Invalid URL ({request.method} {request.url.path})"
    else:
        message = str(exc.detail)
    return SafeJSONResponse(error_body(message), status_code=exc.status_code)
