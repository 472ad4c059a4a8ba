"""Backends: where a run happens (the local server, or a remote Assistants endpoint)."""

from __future__ import annotations

from asst_magic.backends.base import Backend, BackendError, RunEvent, RunRequest, ThreadNotFound

__all__ = ["Backend", "BackendError", "RunEvent", "RunRequest", "ThreadNotFound"]
