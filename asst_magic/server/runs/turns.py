"""Turn records: what a model turn needs remembered that no Assistants object shows.

A record ties one model turn's messages and tool step together and keeps the
provider's echo (its tool-call ids, ``reasoning_content``, ``extra_content`` ...),
so later turns and later runs of the thread send them back. Records are stored
under their own kind, so no API route lists or returns them, and they go with
their thread when it is deleted::

    turn_of(store, step)   # the record of the turn that made ``step``, or None
"""

from __future__ import annotations

from typing import Any

from asst_magic.server.models.base import TurnEcho
from asst_magic.server.store import Store

__all__ = ["TURN_KIND", "save_turn", "turn_key", "turn_of"]

TURN_KIND = "model_turn"
Obj = dict[str, Any]


def turn_key(anchor_id: str) -> str:
    """The record id of the turn whose tool step (else first message) is ``anchor_id``."""
    return f"turn:{anchor_id}"


def turn_of(store: Store, obj: Obj) -> Obj | None:
    """The record of the turn that wrote ``obj`` (an assistant message or a tool step)."""
    if obj.get("role") == "user" or obj.get("type") == "message_creation":
        return None  # never an anchor: skip the lookup
    return store.get(TURN_KIND, turn_key(obj["id"]))


def save_turn(
    store: Store,
    run: Obj,
    anchor_id: str,
    message_ids: list[str],
    echo: TurnEcho | None,
    call_ids: dict[int, str],
) -> None:
    """Store one turn's record; ``call_ids`` maps the turn's call indexes to our ``call_…`` ids."""
    stored: Obj | None = None
    if echo is not None:
        calls = {call_ids[i]: data for i, data in echo.calls.items() if i in call_ids}
        stored = {"source": echo.source, "fields": echo.fields, "calls": calls}
    record = {
        "id": turn_key(anchor_id),
        "thread_id": run["thread_id"],
        "run_id": run["id"],
        "message_ids": list(message_ids),
        "echo": stored,
    }
    store.put(TURN_KIND, record)
