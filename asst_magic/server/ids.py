"""Object ids shaped like OpenAI's (``asst_``, ``thread_``, ``msg_``, ``run_``, ``file-`` ...)."""

from __future__ import annotations

import secrets
import string

__all__ = ["new_id", "new_token"]

_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str) -> str:
    """A fresh id: ``prefix`` then random letters and digits (22 after ``file-``, else 24)."""
    size = 22 if prefix == "file-" else 24
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(size))


def new_token() -> str:
    """A random bearer token for one server start."""
    return "sk-local-" + secrets.token_urlsafe(24)
