"""Turn records: what a model turn needs remembered that no Assistants object shows.

A record ties one model turn's messages and tool step together and keeps the
provider's echo (its tool-call ids, ``reasoning_content``, ``extra_content`` ...),
so later turns and later runs of the thread send them back. Records are stored
under their own kind, so no API route lists or returns them, and they go with
their thread when it is deleted::

    turns_of(store, window)  # the records of the turns that made these objects, by id
"""

from __future__ import annotations

from typing import Any

from asst_magic.server.models.base import TurnEcho
from asst_magic.server.store import Store

__all__ = ["TURN_KIND", "save_turn", "turn_key", "turns_of"]

TURN_KIND = "model_turn"
Obj = dict[str, Any]


def turn_key(anchor_id: str) -> str:
    """The record id of the turn whose tool step (else first message) is ``anchor_id``."""
    return f"turn:{anchor_id}"


def turns_of(store: Store, objs: list[Obj]) -> dict[str, Obj]:
    """The records of the turns that wrote these messages and steps, by id, in one query.

    >>> turns_of(store, window)  # {"msg_…": {"echo": …}, "step_…": {…}}
    """
    anchors = [
        obj["id"]
        for obj in objs  # user messages and message-creation steps never anchor a turn
        if obj.get("role") != "user" and obj.get("type") != "message_creation"
    ]
    records = store.get_many(TURN_KIND, map(turn_key, anchors))
    return {a: records[turn_key(a)] for a in anchors if turn_key(a) in records}


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
