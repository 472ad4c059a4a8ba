"""Bad input: OpenAI error JSON, the right 4xx, no half-written state, and serving goes on."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import openai
import pytest
from server_support import BOTH_STORES, client_for

from asst_magic.server import ServerHandle

# The server suite runs against both stores (SQLite and PostgreSQL).
STORES = BOTH_STORES

Start = Callable[..., ServerHandle]
WEATHER = {
    "user": "Weather?",
    "turns": [
        {"tool_calls": [{"type": "function", "name": "get_weather", "arguments": "{}"}]},
        {"text": "ok"},
    ],
}


def raw(
    handle: ServerHandle, method: str, path: str, body: bytes | None = None, token: str | None = ""
) -> tuple[int, Any]:
    """A raw HTTP request (for what the SDK would never send); returns status and JSON body."""
    headers = {"content-type": "application/json"}
    if token is not None:
        headers["authorization"] = f"Bearer {token or handle.token}"
    request = urllib.request.Request(
        handle.base_url + path, data=body, method=method, headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def assert_error(status: int, body: Any, expected_status: int, message: str) -> None:
    assert status == expected_status
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["type"] == "invalid_request_error"
    assert message in body["error"]["message"]


def still_serving(client: openai.OpenAI) -> None:
    assert client.beta.assistants.create(model="replay").id.startswith("asst_")


def test_malformed_json_and_non_object_bodies(start_server: Start) -> None:
    handle = start_server()
    assert_error(
        *raw(handle, "POST", "/assistants", b'{"model": '), 400, "could not parse the JSON body"
    )
    assert_error(*raw(handle, "POST", "/assistants", b"[1, 2]"), 400, "must be a JSON object")
    still_serving(client_for(handle))


def test_missing_required_fields_and_wrong_types(start_server: Start) -> None:
    handle = start_server()
    status, body = raw(handle, "POST", "/assistants", b"{}")
    assert_error(status, body, 400, "Missing required parameter: 'model'.")
    assert body["error"]["param"] == "model"
    status, body = raw(handle, "POST", "/assistants", b'{"model": 5}')
    assert_error(status, body, 400, "Invalid type for 'model'")
    status, body = raw(handle, "POST", "/threads", b'{"messages": [{"role": "user"}]}')
    assert_error(status, body, 400, "Missing required parameter: 'messages[0].content'.")
    client = client_for(handle)
    with pytest.raises(openai.BadRequestError, match="assistant_id"):
        client.post("/threads/runs", body={"thread": {}}, cast_to=object)
    still_serving(client)


def test_unknown_ids_are_404_with_openai_wording(start_server: Start) -> None:
    handle = start_server()
    client = client_for(handle)
    thread = client.beta.threads.create()
    cases = [
        (
            lambda: client.beta.assistants.retrieve("asst_nope"),
            "No assistant found with id 'asst_nope'.",
        ),
        (
            lambda: client.beta.threads.retrieve("thread_nope"),
            "No thread found with id 'thread_nope'.",
        ),
        (
            lambda: client.beta.threads.runs.retrieve("run_nope", thread_id=thread.id),
            "No run found with id 'run_nope'.",
        ),
        (lambda: client.files.retrieve("file-nope"), "No file found with id 'file-nope'."),
        (lambda: client.files.content("file-nope"), "No file found with id 'file-nope'."),
        (
            lambda: client.beta.threads.runs.create(thread_id=thread.id, assistant_id="asst_nope"),
            "No assistant found",
        ),
        (
            lambda: client.beta.threads.messages.retrieve("msg_nope", thread_id=thread.id),
            "No message found",
        ),
        (
            lambda: client.beta.threads.messages.create(
                thread_id=thread.id,
                role="user",
                content="x",
                attachments=[{"file_id": "file-nope"}],
            ),
            "No file found with id 'file-nope'.",
        ),
    ]
    for call, message in cases:
        with pytest.raises(openai.NotFoundError) as info:
            call()
        assert message in info.value.body["message"]  # type: ignore[index]
    status, body = raw(handle, "GET", "/no/such/route")
    assert_error(status, body, 404, "Invalid URL (GET /v1/no/such/route)")
    assert client.beta.threads.messages.list(thread_id=thread.id).data == []
    still_serving(client)


def test_missing_or_wrong_token_is_401(start_server: Start) -> None:
    handle = start_server()
    status, body = raw(handle, "GET", "/assistants", token=None)
    assert status == 401 and body["error"]["code"] == "invalid_api_key"
    wrong = openai.OpenAI(base_url=handle.base_url, api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        wrong.beta.assistants.list()
    assert "sk-wrong" not in str(info.value)
    assert "Incorrect API key" in info.value.body["message"]  # type: ignore[index]
    still_serving(client_for(handle))


def test_second_run_and_new_message_on_busy_thread_are_rejected(start_server: Start) -> None:
    client = client_for(start_server([WEATHER]))
    assistant = client.beta.assistants.create(model="replay")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Weather?"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "requires_action"
    with pytest.raises(openai.BadRequestError) as info:
        client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    assert info.value.body["message"] == f"Thread {thread.id} already has an active run {run.id}."  # type: ignore[index]
    with pytest.raises(openai.BadRequestError, match="while a run"):
        client.beta.threads.messages.create(thread_id=thread.id, role="user", content="more")
    assert len(client.beta.threads.runs.list(thread_id=thread.id).data) == 1
    assert len(client.beta.threads.messages.list(thread_id=thread.id).data) == 1


def test_submit_tool_outputs_validation_leaves_run_waiting(start_server: Start) -> None:
    client = client_for(start_server([WEATHER, {"user": "Hi", "turns": [{"text": "Hello"}]}]))
    assistant = client.beta.assistants.create(model="replay")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Weather?"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    call_id = run.required_action.submit_tool_outputs.tool_calls[0].id  # type: ignore[union-attr]
    runs = client.beta.threads.runs
    with pytest.raises(openai.BadRequestError, match="call_unknown"):
        runs.submit_tool_outputs(
            run.id,
            thread_id=thread.id,
            tool_outputs=[{"tool_call_id": "call_unknown", "output": "x"}],
        )
    with pytest.raises(openai.BadRequestError, match="Expected tool outputs for call_ids"):
        runs.submit_tool_outputs(run.id, thread_id=thread.id, tool_outputs=[])
    assert runs.retrieve(run.id, thread_id=thread.id).status == "requires_action"
    done = runs.submit_tool_outputs_and_poll(
        run_id=run.id,
        thread_id=thread.id,
        tool_outputs=[{"tool_call_id": call_id, "output": "sun"}],
    )
    assert done.status == "completed"
    with pytest.raises(openai.BadRequestError) as info:
        runs.submit_tool_outputs(
            run.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": call_id, "output": "x"}]
        )
    assert info.value.body["message"] == 'Runs in status "completed" do not accept tool outputs.'  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as info:
        runs.cancel(run.id, thread_id=thread.id)
    assert info.value.body["message"] == "Cannot cancel run with status 'completed'."  # type: ignore[index]


def test_unknown_tool_type_is_rejected(start_server: Start) -> None:
    client = client_for(start_server())
    with pytest.raises(openai.BadRequestError) as info:
        client.beta.assistants.create(model="replay", tools=[{"type": "web_browser"}])  # type: ignore[list-item]
    assert info.value.body["param"] == "tools[0].type"  # type: ignore[index]
    assert "Supported values are" in info.value.body["message"]  # type: ignore[index]
    assert client.beta.assistants.list().data == []


def test_invalid_additional_message_writes_nothing(start_server: Start) -> None:
    client = client_for(start_server([{"user": "Hi", "turns": [{"text": "Hello"}]}]))
    assistant = client.beta.assistants.create(model="replay")
    thread = client.beta.threads.create()
    with pytest.raises(openai.BadRequestError):
        client.beta.threads.runs.create(
            thread_id=thread.id,
            assistant_id=assistant.id,
            additional_messages=[
                {"role": "user", "content": "Hi"},
                {"role": "robot", "content": "x"},
            ],  # type: ignore[list-item]
        )
    assert client.beta.threads.messages.list(thread_id=thread.id).data == []
    assert client.beta.threads.runs.list(thread_id=thread.id).data == []


def test_oversized_upload_and_body_are_413(start_server: Start) -> None:
    handle = start_server(max_body_bytes=10_000)
    client = client_for(handle)
    with pytest.raises(openai.APIStatusError) as info:
        client.files.create(file=("big.bin", b"x" * 50_000), purpose="assistants")
    assert info.value.status_code == 413
    assert "larger than this server's limit of 10000 bytes" in info.value.body["message"]  # type: ignore[index]
    with pytest.raises(openai.APIStatusError) as info:
        client.beta.assistants.create(model="replay", instructions="y" * 20_000)
    assert info.value.status_code == 413
    assert client.files.list().data == [] and client.beta.assistants.list().data == []
    still_serving(client)
