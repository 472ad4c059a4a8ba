"""Provider failures as ``ModelError`` messages a user can act on, and retry timing.

Messages name the endpoint by its URL (without credentials or query) and never
contain the API key, even when a provider echoes it back.
"""

from __future__ import annotations

import email.utils
import json
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

from asst_magic.server.models.base import ModelError

__all__ = [
    "connection_error",
    "display_url",
    "ended_early",
    "idle_timeout_error",
    "is_retryable",
    "provider_message",
    "retry_after",
    "scrub",
    "sentence",
    "status_error",
]

_RETRYABLE = frozenset({408, 409, 429})


def display_url(url: str) -> str:
    """``url`` without user info, query or fragment: safe to show."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}" if parts.scheme else host


def scrub(text: str, secret: str | None) -> str:
    """``text`` with every occurrence of ``secret`` masked."""
    return text.replace(secret, "***") if secret else text


def is_retryable(status: int) -> bool:
    """Rate limits, timeouts, conflicts and server errors are worth another try."""
    return status in _RETRYABLE or status >= 500


def retry_after(headers: Mapping[str, str], clock: Callable[[], float]) -> float | None:
    """Seconds the server asked us to wait (``Retry-After``: seconds or an HTTP date)."""
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(float(millis) / 1000, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - clock(), 0.0)


def provider_message(body: object, secret: str | None) -> str:
    """The provider's own words from an error body of any JSON shape, key masked.

    >>> provider_message([{"error": {"code": 400, "message": "Bad key."}}], None)
    'Bad key.'
    >>> provider_message({"detail": [{"msg": "field required", "loc": ["body", "model"]}]}, None)
    'field required (body.model)'
    """
    text = _message_in(body)
    if text is None:
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else _as_text(body)
    text = " ".join(text.split())
    return scrub(text[:500], secret) or "no details given"


def _message_in(body: object, depth: int = 0) -> str | None:
    """The human message inside ``body``: ``error``/``message``/``detail``/``msg`` fields, lists."""
    if depth > 6:
        return None
    if isinstance(body, str):
        return body or None
    if isinstance(body, list):
        found = [m for m in (_message_in(item, depth + 1) for item in body) if m]
        return "; ".join(dict.fromkeys(found)) or None
    if not isinstance(body, dict):
        return None
    for key in ("error", "message", "detail", "msg", "error_message", "errors"):
        inner = _message_in(body.get(key), depth + 1)
        if inner:
            return _with_location(inner, body.get("loc"))
    return None


def _with_location(message: str, loc: object) -> str:
    if isinstance(loc, list) and loc:
        return f"{message} ({'.'.join(str(part) for part in loc)})"
    return message


def _as_text(body: object) -> str:
    if body is None:
        return ""
    try:
        return json.dumps(body, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(body)


def sentence(text: str) -> str:
    """``text`` ending in exactly one full stop (or its own ``?``/``!``).

    >>> sentence("Invalid key.. ")
    'Invalid key.'
    """
    text = text.rstrip().rstrip(".").rstrip()
    return text if text.endswith(("?", "!")) else f"{text}."


def status_error(status: int, message: str, url: str, model: str, attempts: int) -> ModelError:
    """The ``ModelError`` for an HTTP error status that we gave up on."""
    where = f"The model endpoint {display_url(url)}"
    tries = f", {attempts} attempts" if attempts > 1 else ""
    if status == 429:
        text = (
            f"{sentence(f'{where} is rate limiting requests (HTTP 429{tries}): {message}')} "
            "Wait a minute and run again, or use a model with a higher rate limit."
        )
        return ModelError(text, "rate_limit_exceeded")
    if status >= 500:
        return ModelError(
            f"{sentence(f'{where} failed (HTTP {status}{tries}): {message}')} "
            "Try again later, or check the model server's logs."
        )
    return ModelError(
        f"{sentence(f'{where} refused the request (HTTP {status}): {message}')} "
        f"{_hint(status, model)}"
    )


def connection_error(url: str, refused: bool, detail: str) -> ModelError:
    """The ``ModelError`` for an endpoint that cannot be reached."""
    shown = display_url(url)
    if refused:
        return ModelError(
            f"No model server at {shown} (connection refused). Start it (e.g. `ollama serve`), "
            "or point --model-url / ASST_MAGIC_MODEL_URL at a running one."
        )
    return ModelError(
        f"Could not talk to the model server at {shown} ({detail}). "
        "Check that it is running and reachable, then run again."
    )


def ended_early(url: str, produced: bool) -> ModelError:
    """The ``ModelError`` for a stream that stopped before the provider said it finished."""
    what = "after part of the answer" if produced else "before any answer"
    return ModelError(
        f"The model stream ended early: {display_url(url)} closed it {what}, without a finish "
        "reason (the model server may have crashed or dropped the connection). Run again; if "
        "it keeps happening, check the model server's logs."
    )


def idle_timeout_error(url: str, seconds: float, *, started: bool) -> ModelError:
    """The ``ModelError`` for an endpoint that went silent for ``seconds``."""
    when = "in the middle of its answer" if started else "before starting its answer"
    return ModelError(
        f"The model server at {display_url(url)} sent nothing for {seconds:g} s {when}, so the "
        "run was stopped. Check that the model server is healthy, or allow longer pauses with "
        "--model-idle-timeout (ASST_MAGIC_MODEL_IDLE_TIMEOUT)."
    )


def _hint(status: int, model: str) -> str:
    if status in (401, 403):
        return "Check the API key (--model-api-key or ASST_MAGIC_MODEL_API_KEY)."
    if status == 404:
        return (
            f"Check the model name ({model!r}) and the URL (OpenAI-compatible URLs "
            "usually end in /v1)."
        )
    return "Check the model name and the assistant's tools and settings."
