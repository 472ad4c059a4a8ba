"""A stand-in front end for the live widget: records comm messages and replays the ops.

``RecordingComm`` replaces ``comm.create_comm`` so real ipywidgets/anywidget objects
send their messages here (counted as jupyter_client packs them); ``Replica`` applies
the ops the way ``asst_magic/live/live.js`` does, minus the HTML rendering.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import comm
from comm.base_comm import BaseComm

__all__ = ["RecordingComm", "Replica", "recording_comms"]


class RecordingComm(BaseComm):  # type: ignore[misc]
    """A comm whose messages are kept (and their bytes counted) instead of sent."""

    log: ClassVar[list[dict[str, Any]]] = []

    def publish_msg(
        self,
        msg_type: str,
        data: Any = None,
        metadata: Any = None,
        buffers: Any = None,
        **keys: Any,
    ) -> None:
        message = {"msg_type": msg_type, "comm_id": self.comm_id, "data": data or {}}
        message["bytes"] = len(json.dumps(data, ensure_ascii=False, default=str).encode())
        RecordingComm.log.append(message)


@contextmanager
def recording_comms() -> Iterator[list[dict[str, Any]]]:
    """Every comm message widgets send inside the block, in order."""
    log: ClassVar[list[dict[str, Any]]] = []
    before = comm.create_comm
    RecordingComm.log = log
    comm.create_comm = lambda **kwargs: RecordingComm(**kwargs)
    try:
        yield log
    finally:
        comm.create_comm = before


def batches(log: list[dict[str, Any]]) -> list[list[Any]]:
    """The live widgets' op batches, in the order they were sent."""
    found = []
    for message in log:
        state = (message["data"] or {}).get("state") or {}
        found += [ops for key, ops in state.items() if re.fullmatch(r"b\d+", key)]
    return found


class Replica:
    """The live view's state after each batch: part texts (code as plain text) and status."""

    def __init__(self) -> None:
        self.parts: dict[str, dict[str, str]] = {}
        self.status = ""

    def apply(self, ops: list[Any]) -> None:
        for name, *args in ops:
            getattr(self, f"op_{name}")(*args)

    def op_part(self, key: str, mode: str, shell: str) -> None:
        self.parts[key] = {"mode": mode, "text": shell if mode == "html" else "", "open": ""}

    def op_shell(self, key: str, shell: str) -> None:
        """A streamed part's new summary: its content stays (as in live.js)."""
        self.parts[key]["shell"] = shell

    def op_add(self, key: str, text: str) -> None:
        self.parts[key]["text"] += text

    def op_set(self, key: str, text: str) -> None:
        self.parts[key]["text"] = text

    def op_code(self, key: str, done: str, open_html: str) -> None:
        self.parts[key]["text"] += _plain(done)
        self.parts[key]["open"] = _plain(open_html)

    def op_status(
        self, before: str, after: str, elapsed: float, running: bool, failed: bool
    ) -> None:
        self.status = " · ".join(w for w in (before, f"{elapsed:.1f} s", after) if w)

    def texts(self) -> list[str]:
        """Each part's text as shown (code with its open line), then the status line."""
        shown = [p["text"] + p["open"] for p in self.parts.values()]
        return [*shown, self.status]


def _plain(spans: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", spans))
