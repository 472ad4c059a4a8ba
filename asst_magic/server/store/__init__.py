"""The server's durable state: API objects and uploaded file bytes."""

from __future__ import annotations

from asst_magic.server.store.base import Store

__all__ = ["Store"]
