"""A thread's past as ``*.completed`` events, in the order a transcript shows them.

Read with the ``openai`` client (messages, then each run's steps); files the past
shows are fetched as they come, like a live run's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from asst_magic.backends.base import RunEvent, file_refs, kept_refs

if TYPE_CHECKING:
    import openai

__all__ = ["HistoryReader"]

FetchFile = Callable[..., RunEvent]


class HistoryReader:
    """One thread's history over ``client``; ``fetch_file(file_id, keep=...)`` downloads.

    Example: ``HistoryReader(client, backend.fetch_file).events("thread_1")``.
    """

    def __init__(self, client: openai.OpenAI, fetch_file: FetchFile) -> None:
        self.client = client
        self.fetch_file = fetch_file

    def events(self, thread_id: str) -> Iterator[RunEvent]:
        """Past messages in order; an assistant message comes with its run's code steps."""
        messages = [m.to_dict() for m in self._list_messages(thread_id)]
        by_id = {m["id"]: m for m in messages}
        shown: set[str] = set()
        for message in messages:
            if message["id"] in shown:
                continue
            if message.get("run_id"):
                yield from self._run_history(thread_id, message["run_id"], by_id, shown)
            if message["id"] not in shown:
                shown.add(message["id"])
                yield from self._completed("thread.message.completed", message)

    def _list_messages(self, thread_id: str) -> Iterator[Any]:
        return iter(self.client.beta.threads.messages.list(thread_id, order="asc", limit=100))

    def _run_history(
        self, thread_id: str, run_id: str, by_id: dict[str, Any], shown: set[str]
    ) -> Iterator[RunEvent]:
        steps = self.client.beta.threads.runs.steps.list(run_id, thread_id=thread_id, order="asc")
        for step_obj in steps:
            step: dict[str, Any] = step_obj.to_dict()
            details = step.get("step_details") or {}
            if details.get("type") == "tool_calls":
                yield from self._completed("thread.run.step.completed", step)
            message_id = (details.get("message_creation") or {}).get("message_id")
            if message_id in by_id and message_id not in shown:
                shown.add(message_id)
                yield from self._completed("thread.message.completed", by_id[message_id])

    def _completed(self, name: str, obj: dict[str, Any]) -> Iterator[RunEvent]:
        yield RunEvent(name, obj)
        kept = kept_refs(obj)
        for file_id in dict.fromkeys(file_refs(obj)):
            yield self.fetch_file(file_id, keep=file_id in kept)
