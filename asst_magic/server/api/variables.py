"""Routes that move variables in and out of a thread's code interpreter.

They live under ``/asst_magic/v1``, apart from the Assistants API surface under
``/v1``, behind the same bearer token::

    PUT /asst_magic/v1/threads/{thread_id}/variables/{name}?format=parquet&kind=dataframe
    GET /asst_magic/v1/threads/{thread_id}/variables/{name}?max_bytes=N

A PUT body is the encoded value; a GET answers the bytes the kernel wrote, with
``x-asst-magic-format`` / ``-kind`` / ``-type`` headers. Errors are OpenAI-shaped.
"""

from __future__ import annotations

import keyword

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from asst_magic.server.api.errors import APIError, bad_request
from asst_magic.server.code_interpreter.sandbox import Sandbox
from asst_magic.server.state import ServerState, state_of
from asst_magic.server.variables.snippets import FORMATS
from asst_magic.server.variables.transfer import VariableProblem, get_variable, put_variable

__all__ = ["PREFIX", "routes"]

PREFIX = "/asst_magic/v1"
_MEDIA = {
    "parquet": "application/vnd.apache.parquet",
    "npy": "application/octet-stream",
    "json": "application/json",
    "png": "image/png",
}


async def put(request: Request) -> Response:
    state, thread_id, name = _target(request)
    fmt = request.query_params.get("format", "")
    kind = request.query_params.get("kind", "")
    if fmt not in FORMATS or fmt == "png" or kind not in FORMATS[fmt]:
        raise bad_request(
            f"Unsupported format/kind {fmt!r}/{kind!r}: send parquet (dataframe or series), "
            "npy (ndarray) or json (json).",
            param="format",
        )
    sandbox = _sandbox(state)
    data = await request.body()
    try:
        await put_variable(sandbox, thread_id, name, fmt, kind, data)
    except VariableProblem as exc:
        raise APIError(exc.status, exc.message, code=exc.code) from None
    body = {"object": "thread.variable", "thread_id": thread_id, "name": name, "kind": kind}
    return state.json(body | {"bytes": len(data)})


async def get(request: Request) -> Response:
    state, thread_id, name = _target(request)
    limit = state.config.max_body_bytes
    asked = request.query_params.get("max_bytes")
    if asked is not None:
        if not asked.isdigit():
            raise bad_request(f"max_bytes must be a whole number, not {asked!r}.", "max_bytes")
        limit = min(limit, int(asked))
    try:
        fetched = await get_variable(_sandbox(state), thread_id, name, limit)
    except VariableProblem as exc:
        raise APIError(exc.status, exc.message, code=exc.code) from None
    headers = {
        "x-asst-magic-format": fetched.format,
        "x-asst-magic-kind": fetched.kind,
        "x-asst-magic-type": fetched.type,
    }
    media = _MEDIA.get(fetched.format, "application/octet-stream")
    return Response(fetched.data, media_type=media, headers=headers)


def _target(request: Request) -> tuple[ServerState, str, str]:
    """The state, an existing idle thread and a valid variable name, or a 4xx."""
    state = state_of(request)
    name = request.path_params["name"]
    if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_"):
        raise bad_request(
            f"{name!r} is not a variable name: use a Python identifier not starting with '_'.",
            param="name",
        )
    thread_id = state.require("thread", request.path_params["thread_id"])["id"]
    state.ensure_idle(thread_id)  # the run's own code must not interleave with ours
    return state, thread_id, name


def _sandbox(state: ServerState) -> Sandbox:
    sandbox = state.engine.sandbox
    if sandbox is None:
        raise bad_request(
            "This server runs without a code interpreter (--no-code-interpreter), so it has "
            "no kernel to hold variables.",
        )
    return sandbox


routes = [
    Route("/threads/{thread_id}/variables/{name}", put, methods=["PUT"]),
    Route("/threads/{thread_id}/variables/{name}", get, methods=["GET"]),
]
