"""Users kept apart: another user's ids answer 404 everywhere; lists show one's own objects."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest
from server_support import BOTH_STORES, client_for, write_cassette

from asst_magic.server import ServerConfig, ServerHandle, start_in_thread
from asst_magic.server.store import open_store
from asst_magic.server.store.users import Users

STORES = BOTH_STORES

Start = Callable[..., ServerHandle]
HELLO = {"user": "Hello", "turns": [{"text": ["Hi", "!"]}]}
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}},
}
WEATHER = {
    "user": "Weather?",
    "turns": [{"tool_calls": [{"type": "function", "name": "get_weather", "arguments": "{}"}]}],
}


def add_users(handle_config: ServerConfig, *names: str) -> list[str]:
    """Tokens for new users of the store ``handle_config`` names."""
    store = open_store(handle_config)
    try:
        return [Users(store.database).add(name) for name in names]
    finally:
        store.close()


def as_user(handle: ServerHandle, token: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=handle.base_url, api_key=token, max_retries=0)


@pytest.fixture
def team(tmp_path: Path, database_url: str | None) -> Any:
    """A server with users ada and bob, and bob's assistant, file, thread and waiting run."""
    config = ServerConfig(
        data_dir=tmp_path / "data",
        database_url=database_url,
        cassettes=(write_cassette(tmp_path / "c.jsonl", [HELLO, WEATHER]),),
        code_interpreter=False,
    )
    with start_in_thread(config) as handle:
        ada_token, bob_token = add_users(config, "ada", "bob")
        ada, bob = as_user(handle, ada_token), as_user(handle, bob_token)
        objects = bob_objects(bob)
        yield handle, ada, bob, objects


def bob_objects(bob: openai.OpenAI) -> dict[str, str]:
    assistant = bob.beta.assistants.create(model="replay", tools=[WEATHER_TOOL])
    upload = bob.files.create(file=("b.txt", b"bob's"), purpose="assistants")
    thread = bob.beta.threads.create(messages=[{"role": "user", "content": "Weather?"}])
    run = bob.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "requires_action"
    message = bob.beta.threads.messages.list(thread_id=thread.id).data[0]
    step = bob.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data[0]
    return {
        "assistant": assistant.id,
        "file": upload.id,
        "thread": thread.id,
        "run": run.id,
        "message": message.id,
        "step": step.id,
    }


def endpoints(ada: openai.OpenAI, b: dict[str, str], own: dict[str, str]) -> dict[str, Any]:
    """Every endpoint, called by ada with one of bob's ids (``own``: ada's objects)."""
    threads, runs = ada.beta.threads, ada.beta.threads.runs
    t, r = b["thread"], b["run"]
    attach = [{"file_id": b["file"], "tools": [{"type": "code_interpreter"}]}]
    bob_files = {"code_interpreter": {"file_ids": [b["file"]]}}
    return {
        "retrieve assistant": lambda: ada.beta.assistants.retrieve(b["assistant"]),
        "update assistant": lambda: ada.beta.assistants.update(b["assistant"], name="x"),
        "delete assistant": lambda: ada.beta.assistants.delete(b["assistant"]),
        "retrieve file": lambda: ada.files.retrieve(b["file"]),
        "file content": lambda: ada.files.content(b["file"]),
        "delete file": lambda: ada.files.delete(b["file"]),
        "retrieve thread": lambda: threads.retrieve(t),
        "update thread": lambda: threads.update(t, metadata={"k": "v"}),
        "delete thread": lambda: threads.delete(t),
        "create message": lambda: threads.messages.create(t, role="user", content="hi"),
        "list messages": lambda: threads.messages.list(t),
        "retrieve message": lambda: threads.messages.retrieve(b["message"], thread_id=t),
        "update message": lambda: threads.messages.update(
            b["message"], thread_id=t, metadata={"k": "v"}
        ),
        "delete message": lambda: threads.messages.delete(b["message"], thread_id=t),
        "create run": lambda: runs.create(t, assistant_id=own["assistant"]),
        "stream run": lambda: runs.create(t, assistant_id=own["assistant"], stream=True),
        "list runs": lambda: runs.list(t),
        "retrieve run": lambda: runs.retrieve(r, thread_id=t),
        "update run": lambda: runs.update(r, thread_id=t, metadata={"k": "v"}),
        "cancel run": lambda: runs.cancel(r, thread_id=t),
        "submit tool outputs": lambda: runs.submit_tool_outputs(
            r, thread_id=t, tool_outputs=[{"tool_call_id": "x", "output": "1"}]
        ),
        "list steps": lambda: runs.steps.list(r, thread_id=t),
        "retrieve step": lambda: runs.steps.retrieve(b["step"], thread_id=t, run_id=r),
        "run with their assistant": lambda: runs.create(own["thread"], assistant_id=b["assistant"]),
        "thread and run with their assistant": lambda: threads.create_and_run(
            assistant_id=b["assistant"]
        ),
        "attach their file": lambda: threads.messages.create(
            own["thread"],
            role="user",
            content="hi",
            attachments=attach,  # type: ignore[arg-type]
        ),
        "their file as an image": lambda: threads.messages.create(
            own["thread"],
            role="user",
            content=[{"type": "image_file", "image_file": {"file_id": b["file"]}}],
        ),
        "their file in a thread's resources": lambda: threads.create(tool_resources=bob_files),
        "their file in an assistant's resources": lambda: ada.beta.assistants.create(
            model="replay", tool_resources=bob_files
        ),
    }


def test_another_users_ids_answer_404_on_every_endpoint(team: Any) -> None:
    _, ada, bob, b = team
    own = {
        "assistant": ada.beta.assistants.create(model="replay").id,
        "thread": ada.beta.threads.create().id,
    }
    for name, call in endpoints(ada, b, own).items():
        with pytest.raises(openai.NotFoundError) as info:
            call()
        assert "No " in info.value.message, name
    # Nothing of bob's changed, and his waiting run still takes his outputs.
    assert bob.beta.assistants.retrieve(b["assistant"]).name is None
    assert bob.files.content(b["file"]).read() == b"bob's"
    call_id = bob.beta.threads.runs.retrieve(b["run"], thread_id=b["thread"])
    calls = call_id.required_action.submit_tool_outputs.tool_calls  # type: ignore[union-attr]
    run = bob.beta.threads.runs.submit_tool_outputs(
        b["run"], thread_id=b["thread"], tool_outputs=[{"tool_call_id": calls[0].id, "output": "1"}]
    )
    assert run.id == b["run"]


def test_lists_show_ones_own_objects_and_the_admin_token_sees_all(team: Any) -> None:
    handle, ada, bob, b = team
    mine = ada.beta.assistants.create(model="replay", name="ada's")
    upload = ada.files.create(file=("a.txt", b"ada's"), purpose="assistants")
    assert [a.id for a in ada.beta.assistants.list()] == [mine.id]
    assert [f.id for f in ada.files.list()] == [upload.id]
    assert [a.id for a in bob.beta.assistants.list()] == [b["assistant"]]
    admin = client_for(handle)
    assert {a.id for a in admin.beta.assistants.list()} == {mine.id, b["assistant"]}
    assert {f.id for f in admin.files.list()} == {upload.id, b["file"]}


def test_a_users_run_writes_objects_only_that_user_sees(team: Any) -> None:
    _, ada, bob, _ = team
    assistant = ada.beta.assistants.create(model="replay")
    thread = ada.beta.threads.create(messages=[{"role": "user", "content": "Hello"}])
    run = ada.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed"
    reply = ada.beta.threads.messages.list(thread_id=thread.id).data[0]
    assert reply.content[0].text.value == "Hi!"  # type: ignore[union-attr]
    with pytest.raises(openai.NotFoundError):
        bob.beta.threads.messages.retrieve(reply.id, thread_id=thread.id)


def test_unknown_token_is_refused(team: Any) -> None:
    handle, *_ = team
    with pytest.raises(openai.AuthenticationError, match="Incorrect API key"):
        as_user(handle, "sk-local-not-a-user").beta.assistants.list()


def test_users_command_adds_lists_and_removes(tmp_path: Path) -> None:
    data = tmp_path / "data"

    def users(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "asst_magic.server", "users", "--data-dir", str(data)]
        env = {k: v for k, v in os.environ.items() if k != "ASST_MAGIC_DATABASE_URL"}
        return subprocess.run([*cmd, *args], capture_output=True, text=True, env=env, timeout=60)

    added = users("add", "ada")
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip()
    assert token.startswith("sk-local-") and "shown once" in added.stderr
    config = ServerConfig(data_dir=data, code_interpreter=False)
    with start_in_thread(config) as handle:
        assert as_user(handle, token).beta.assistants.list().data == []
        listed = users("list")
        assert listed.stdout.startswith("ada\tadded ") and token not in listed.stdout
        again = users("add", "ada")
        assert again.returncode == 2 and "User 'ada' exists already" in again.stderr
        removed = users("remove", "ada")
        assert removed.returncode == 0 and "no longer works" in removed.stdout
        with pytest.raises(openai.AuthenticationError):
            as_user(handle, token).beta.assistants.list()
    store = open_store(config)
    stored = store.database.rows("SELECT count(*) FROM users")
    store.close()
    assert stored == [(0,)]
    missing = users("remove", "nobody")
    assert missing.returncode == 2 and "No user 'nobody'" in missing.stderr
