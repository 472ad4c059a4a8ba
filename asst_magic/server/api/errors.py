"""OpenAI-shaped API errors: ``{"error": {"message", "type", "param", "code"}}`` and a 4xx."""

from __future__ import annotations

from typing import Any

__all__ = [
    "APIError",
    "StartupError",
    "bad_request",
    "conflict_active_run",
    "error_body",
    "internal_error",
    "not_accepting_outputs",
    "not_found",
    "payload_too_large",
    "unauthorized",
]


class APIError(Exception):
    """An error the client sees as OpenAI's error JSON with ``status``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code

    def body(self) -> dict[str, Any]:
        """The JSON body sent to the client."""
        return error_body(self.message, type=self.type, param=self.param, code=self.code)


def error_body(
    message: str,
    *,
    type: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
) -> dict[str, Any]:
    """OpenAI's error envelope."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def bad_request(message: str, param: str | None = None, code: str | None = None) -> APIError:
    """A 400 ``invalid_request_error``."""
    return APIError(400, message, param=param, code=code)


def not_found(kind: str, object_id: str) -> APIError:
    """A 404 worded as OpenAI words it: ``No thread found with id 'thread_x'.``"""
    return APIError(404, f"No {kind} found with id '{object_id}'.", code=None)


def conflict_active_run(thread_id: str, run_id: str) -> APIError:
    """OpenAI's 400 for a second run on a busy thread."""
    return bad_request(
        f"Thread {thread_id} already has an active run {run_id}.",
    )


def not_accepting_outputs(run_id: str, status: str) -> APIError:
    """OpenAI's 400 for tool outputs sent to a run that is not waiting for them."""
    if status == "requires_action":  # waiting, but in a server that has since restarted
        return bad_request(
            f"Run {run_id} is not waiting for tool outputs on this server (it was started "
            "before the server restarted). Create a new run on the thread."
        )
    return bad_request(f'Runs in status "{status}" do not accept tool outputs.')


def unauthorized(reason: str) -> APIError:
    """A 401 that says how to authenticate, without echoing the key that was sent."""
    return APIError(
        401,
        f"{reason} Pass the server's token as the API key "
        "(openai.OpenAI(base_url=..., api_key=TOKEN)); `asst-magic serve` prints it at start.",
        code="invalid_api_key",
    )


def payload_too_large(limit: int) -> APIError:
    """A 413 for a body or upload over the configured limit."""
    return APIError(
        413,
        f"Request body is larger than this server's limit of {limit} bytes; "
        "send a smaller file or start the server with a larger max_body_bytes.",
        code="payload_too_large",
    )


def internal_error(exc: BaseException) -> APIError:
    """A 500 for a bug of ours, in OpenAI's shape."""
    return APIError(500, f"The local server hit an internal error: {exc!r}", type="server_error")


class StartupError(RuntimeError):
    """The server cannot start for a reason the user can fix (the message says how)."""
