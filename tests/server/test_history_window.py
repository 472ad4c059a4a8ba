"""A run reads only the part of a long thread its model can use, newest first."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import openai
import pytest

from asst_magic.server import ServerConfig
from asst_magic.server.models import ModelRegistry, NamedModel
from asst_magic.server.models.base import TextChunk, TurnEnd, TurnRequest, UserText
from asst_magic.server.store import Store, open_store

Serve = Callable[..., openai.OpenAI]
ENTRIES = [{"user": "latest question", "turns": [{"text": ["the answer"]}]}]


class ContextModel:
    """A chat-like model with a known context size that answers with what it was shown."""

    def __init__(self, context_tokens: int) -> None:
        self.context_tokens = context_tokens
        self.seen: list[TurnRequest] = []

    async def turn(self, request: TurnRequest) -> AsyncIterator[Any]:
        self.seen.append(request)
        yield TextChunk(f"{len(request.conversation)} items")
        yield TurnEnd()


def long_thread(client: openai.OpenAI, data_dir: Path, messages: int, last: str) -> str:
    """A thread of ``messages`` earlier messages (written straight to the store), then ``last``."""
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "first"}])
    template = client.beta.threads.messages.list(thread.id).data[0].to_dict()
    store = open_store(ServerConfig(data_dir=data_dir))
    with store.transaction():
        for i in range(messages):
            role = "assistant" if i % 2 else "user"
            text = {"type": "text", "text": {"value": f"m{i}", "annotations": []}}
            store.put("message", template | {"id": f"msg_{i}", "role": role, "content": [text]})
    store.close()
    client.beta.threads.messages.create(thread.id, role="user", content=last)
    return thread.id


def answer(client: openai.OpenAI, assistant_id: str, thread_id: str, **options: Any) -> str:
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread_id, assistant_id=assistant_id, **options
    )
    assert run.status == "completed", run.last_error
    message = client.beta.threads.messages.list(thread_id, limit=1).data[0]
    return message.content[0].text.value  # type: ignore[union-attr]


def test_replay_answers_the_last_message_of_a_long_thread(serve: Serve, tmp_path: Path) -> None:
    client = serve(ENTRIES)
    assistant = client.beta.assistants.create(model="replay")
    thread_id = long_thread(client, tmp_path / "data", 3000, "latest question")
    assert answer(client, assistant.id, thread_id) == "the answer"


def test_a_chat_model_sees_its_context_window_not_the_whole_thread(
    serve: Serve, tmp_path: Path
) -> None:
    model = ContextModel(context_tokens=50)  # ~200 characters + 4 KB of slack
    client = serve(models=ModelRegistry([NamedModel("ctx", model)]))
    assistant = client.beta.assistants.create(model="ctx")
    thread_id = long_thread(client, tmp_path / "data", 3000, "now")
    answer(client, assistant.id, thread_id)
    conversation = model.seen[-1].conversation
    assert 10 < len(conversation) < 3000  # a window, read newest first...
    assert isinstance(conversation[0], UserText)  # ...that starts at a user message
    assert conversation[-1] == UserText("now")  # and ends with the newest one


@pytest.mark.parametrize("keep", [1, 4])
def test_last_messages_truncation_bounds_what_is_read(
    serve: Serve, tmp_path: Path, keep: int
) -> None:
    model = ContextModel(context_tokens=0)  # no known context: only the run's truncation
    client = serve(models=ModelRegistry([NamedModel("ctx", model)]))
    assistant = client.beta.assistants.create(model="ctx")
    thread_id = long_thread(client, tmp_path / "data", 500, "now")
    strategy: Any = {"type": "last_messages", "last_messages": keep}
    answer(client, assistant.id, thread_id, truncation_strategy=strategy)
    texts = [getattr(item, "text", "") for item in model.seen[-1].conversation]
    assert texts[-1] == "now" and len(texts) <= keep


def test_the_store_reads_a_thread_newest_first_a_page_at_a_time(tmp_path: Path) -> None:
    store = open_store(ServerConfig(data_dir=tmp_path))
    with store.transaction():
        for i in range(1000):
            store.put("message", {"id": f"m{i}", "thread_id": "t", "n": i})
            store.put("run", {"id": f"r{i}", "thread_id": "t", "status": "completed"})
    queries: list[str] = []
    store.database._db.set_trace_callback(queries.append)  # type: ignore[attr-defined]
    newest = store.newest(("message",), thread_id="t")
    assert [next(newest)["n"] for _ in range(3)] == [999, 998, 997]
    assert len([q for q in queries if q.startswith("SELECT")]) == 1  # one page, not 1,000 rows
    assert [m["n"] for m in newest][-1] == 0  # and on to the oldest when read to the end
    store.close()


def _instructions(store: Store, read: Callable[[], object]) -> int:
    """SQLite virtual-machine instructions one read executes (a count, not a time)."""
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    connection = store.database._db  # type: ignore[attr-defined]
    connection.set_progress_handler(count, 1)
    read()
    connection.set_progress_handler(None, 1)
    return steps[0]


def test_the_active_run_check_costs_the_same_after_1000_runs(tmp_path: Path) -> None:
    store = open_store(ServerConfig(data_dir=tmp_path))
    with store.transaction():
        for thread, runs in (("short", 1), ("long", 1000)):
            for i in range(runs):
                store.put("run", {"id": f"{thread}{i}", "thread_id": thread, "status": "completed"})
            store.put("run", {"id": f"{thread}-live", "thread_id": thread, "status": "in_progress"})
    active = ("queued", "in_progress", "requires_action", "cancelling")

    def check(thread: str) -> Callable[[], object]:
        return lambda: store.select("run", thread_id=thread, statuses=active)

    assert [r["id"] for r in check("long")()] == ["long-live"]
    short, long = _instructions(store, check("short")), _instructions(store, check("long"))
    assert long <= short + 20, (short, long)  # an index seek, not a walk over 1,000 runs
    store.close()
