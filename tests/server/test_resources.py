"""Assistants, threads, messages and files through the real openai SDK."""

from __future__ import annotations

from collections.abc import Callable

import openai
from server_support import BOTH_STORES

# The server suite runs against both stores (SQLite and PostgreSQL).
STORES = BOTH_STORES

Serve = Callable[..., openai.OpenAI]


def test_assistant_create_retrieve_update_list_delete(serve: Serve) -> None:
    client = serve()
    created = client.beta.assistants.create(
        model="replay",
        name="Helper",
        instructions="Be brief.",
        metadata={"k": "v"},
        tools=[{"type": "code_interpreter"}, {"type": "function", "function": {"name": "f"}}],
    )
    assert created.id.startswith("asst_") and created.object == "assistant"
    assert created.tools[1].function.parameters == {"type": "object", "properties": {}}  # type: ignore[union-attr]
    assert client.beta.assistants.retrieve(created.id).name == "Helper"
    updated = client.beta.assistants.update(created.id, name="Renamed", model="other")
    assert (updated.name, updated.model, updated.instructions) == ("Renamed", "other", "Be brief.")
    assert [a.id for a in client.beta.assistants.list()] == [created.id]
    deleted = client.beta.assistants.delete(created.id)
    assert deleted.deleted and deleted.object == "assistant.deleted"
    assert client.beta.assistants.list().data == []


def test_thread_create_with_messages_retrieve_update_delete(serve: Serve) -> None:
    client = serve()
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "one"}, {"role": "assistant", "content": "two"}],
        metadata={"topic": "x"},
    )
    assert thread.id.startswith("thread_") and thread.metadata == {"topic": "x"}
    messages = client.beta.threads.messages.list(thread_id=thread.id, order="asc").data
    assert [(m.role, m.content[0].text.value) for m in messages] == [
        ("user", "one"),
        ("assistant", "two"),
    ]  # type: ignore[union-attr]
    updated = client.beta.threads.update(thread.id, metadata={"topic": "y"})
    assert client.beta.threads.retrieve(thread.id).metadata == updated.metadata == {"topic": "y"}
    assert client.beta.threads.delete(thread.id).deleted
    try:
        client.beta.threads.retrieve(thread.id)
    except openai.NotFoundError as exc:
        assert exc.body["message"] == f"No thread found with id '{thread.id}'."  # type: ignore[index]
    else:
        raise AssertionError("deleted thread still found")


def test_messages_paging_after_before_limit_order(serve: Serve) -> None:
    client = serve()
    thread = client.beta.threads.create()
    ids = [
        client.beta.threads.messages.create(thread_id=thread.id, role="user", content=f"m{i}").id
        for i in range(7)
    ]
    page = client.beta.threads.messages.list(thread_id=thread.id, limit=3, order="asc")
    assert [m.id for m in page.data] == ids[:3] and page.has_more
    assert page.first_id == ids[0] and page.last_id == ids[2]
    after = client.beta.threads.messages.list(
        thread_id=thread.id, limit=3, order="asc", after=ids[2]
    )
    assert [m.id for m in after.data] == ids[3:6]
    before = client.beta.threads.messages.list(
        thread_id=thread.id, limit=2, order="asc", before=ids[4]
    )
    assert [m.id for m in before.data] == ids[2:4]
    desc = client.beta.threads.messages.list(thread_id=thread.id, limit=2)
    assert [m.id for m in desc.data] == [ids[6], ids[5]]
    # The SDK's auto-pagination follows the cursors through every page.
    everything = client.beta.threads.messages.list(thread_id=thread.id, limit=2, order="asc")
    assert [m.id for m in everything] == ids


def test_message_parts_attachments_and_run_id_filter(serve: Serve) -> None:
    client = serve([{"user": "look\nat this", "turns": [{"text": "ok"}]}])
    upload = client.files.create(file=("data.csv", b"a,b\n1,2\n"), purpose="assistants")
    thread = client.beta.threads.create()
    message = client.beta.threads.messages.create(
        thread_id=thread.id,
        role="user",
        content=[
            {"type": "text", "text": "look"},
            {"type": "image_file", "image_file": {"file_id": upload.id}},
            {"type": "text", "text": "at this"},
        ],
        attachments=[{"file_id": upload.id, "tools": [{"type": "code_interpreter"}]}],
    )
    assert [c.type for c in message.content] == ["text", "image_file", "text"]
    assert message.attachments[0].file_id == upload.id  # type: ignore[index]
    assistant = client.beta.assistants.create(model="replay")
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed"
    only_run = client.beta.threads.messages.list(thread_id=thread.id, run_id=run.id).data
    assert [m.role for m in only_run] == ["assistant"]
    got = client.beta.threads.messages.retrieve(message.id, thread_id=thread.id)
    assert got.content[1].image_file.file_id == upload.id  # type: ignore[union-attr]


def test_files_upload_retrieve_list_content_delete(serve: Serve) -> None:
    client = serve()
    payload = bytes(range(256)) * 10
    uploaded = client.files.create(file=("blob.bin", payload), purpose="assistants")
    assert uploaded.id.startswith("file-") and uploaded.bytes == len(payload)
    assert (uploaded.filename, uploaded.purpose, uploaded.status) == (
        "blob.bin",
        "assistants",
        "processed",
    )
    assert client.files.retrieve(uploaded.id).filename == "blob.bin"
    assert client.files.content(uploaded.id).read() == payload
    assert [f.id for f in client.files.list()] == [uploaded.id]
    assert client.files.delete(uploaded.id).deleted
    assert client.files.list().data == []


def test_run_list_retrieve_and_metadata_update(serve: Serve) -> None:
    client = serve([{"user": "Hello", "turns": [{"text": "Hi"}]}])
    assistant = client.beta.assistants.create(model="replay", instructions="Base.")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Hello"}])
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, additional_instructions="More."
    )
    assert run.instructions == "Base.\n\nMore."
    assert [r.id for r in client.beta.threads.runs.list(thread_id=thread.id)] == [run.id]
    updated = client.beta.threads.runs.update(run.id, thread_id=thread.id, metadata={"a": "b"})
    assert updated.metadata == {"a": "b"}
    assert client.beta.threads.runs.retrieve(run.id, thread_id=thread.id).metadata == {"a": "b"}
