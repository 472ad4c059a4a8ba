"""The local Assistants API v2 server (HTTP app, run engine, models, store)."""

from __future__ import annotations

from asst_magic.server.api.errors import StartupError
from asst_magic.server.config import ServerConfig
from asst_magic.server.launch import ServerHandle, spawn, start_in_thread

__all__ = ["ServerConfig", "ServerHandle", "StartupError", "spawn", "start_in_thread"]
