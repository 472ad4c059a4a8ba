"""Wrong-typed and malformed fields: a 400 naming the field, never a 500 or a stored bad value."""

from __future__ import annotations

import http.client
import json
import logging
import urllib.error
import urllib.parse
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
HELLO = {"user": "Hello", "turns": [{"text": "Hi"}]}
WEATHER = {
    "user": "Weather?",
    "turns": [
        {"tool_calls": [{"type": "function", "name": "get_weather", "arguments": "{}"}]},
        {"text": "ok"},
    ],
}


def post(handle: ServerHandle, path: str, body: Any) -> tuple[int, Any]:
    """A raw JSON POST (for bodies the SDK's types would refuse); returns status and JSON."""
    request = urllib.request.Request(
        handle.base_url + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"content-type": "application/json", "authorization": f"Bearer {handle.token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def assert_400(result: tuple[int, Any], param: str, words: str) -> None:
    status, body = result
    assert status == 400, body
    assert body["error"]["param"] == param
    assert words in body["error"]["message"]


ASSISTANT_CASES = [
    ({"temperature": "hot"}, "temperature", "expected a number, but got a string"),
    ({"temperature": 3}, "temperature", "out of range"),
    ({"top_p": True}, "top_p", "expected a number, but got a boolean"),
    ({"top_p": 1.5}, "top_p", "out of range"),
    ({"tool_resources": "x"}, "tool_resources", "expected an object"),
    (
        {"tool_resources": {"code_interpreter": {"file_ids": "file-1"}}},
        "tool_resources.code_interpreter.file_ids",
        "expected an array of strings",
    ),
    ({"response_format": 7}, "response_format", "'json_schema'"),
    ({"reasoning_effort": "max!"}, "reasoning_effort", "Supported values are: 'none'"),
    ({"name": "n" * 257}, "name", "maximum length 256"),
    ({"description": 5}, "description", "expected a string"),
    ({"metadata": {"k": "v" * 513}}, "metadata", "values at most 512"),
    ({"response_format": {"type": "yaml"}}, "response_format", "'json_object'"),
    (
        {"tools": [{"type": "function", "function": {"name": "f", "parameters": "notadict"}}]},
        "tools[0].function.parameters",
        "expected a JSON Schema object",
    ),
]


@pytest.mark.parametrize(("fields", "param", "words"), ASSISTANT_CASES)
def test_bad_assistant_fields_are_400_and_nothing_is_stored(
    start_server: Start, fields: dict[str, Any], param: str, words: str
) -> None:
    handle = start_server()
    assert_400(post(handle, "/assistants", {"model": "replay", **fields}), param, words)
    client = client_for(handle)
    assert client.beta.assistants.list().data == []
    good = client.beta.assistants.create(model="replay")
    assert_400(post(handle, f"/assistants/{good.id}", fields), param, words)
    assert client.beta.assistants.retrieve(good.id) == good


RUN_CASES = [
    ({"temperature": "hot"}, "temperature", "expected a number"),
    ({"max_prompt_tokens": 0}, "max_prompt_tokens", "positive integer"),
    ({"max_completion_tokens": 2.5}, "max_completion_tokens", "expected an integer"),
    ({"max_completion_tokens": "10"}, "max_completion_tokens", "expected an integer"),
    ({"stream": "false"}, "stream", "expected a boolean, but got a string"),
    ({"parallel_tool_calls": "false"}, "parallel_tool_calls", "expected a boolean"),
    ({"response_format": []}, "response_format", 'expected "auto"'),
    ({"truncation_strategy": "auto"}, "truncation_strategy", "expected an object"),
    ({"truncation_strategy": {"type": "middle"}}, "truncation_strategy.type", "'last_messages'"),
    (
        {"truncation_strategy": {"type": "last_messages", "last_messages": -1}},
        "truncation_strategy.last_messages",
        "positive integer",
    ),
    ({"tool_choice": "sometimes"}, "tool_choice", "'required'"),
    ({"tool_choice": 3}, "tool_choice", "expected a string or an object"),
    ({"tool_choice": {"type": "browser"}}, "tool_choice.type", "'code_interpreter'"),
    ({"tool_choice": {"type": "function"}}, "tool_choice.function.name", "Missing required"),
    ({"reasoning_effort": "extreme"}, "reasoning_effort", "'medium'"),
    ({"reasoning_effort": 1}, "reasoning_effort", "Supported values"),
    ({"instructions": "x" * 256_001}, "instructions", "maximum length 256000"),
]


@pytest.mark.parametrize(("fields", "param", "words"), RUN_CASES)
def test_bad_run_fields_are_400_and_leave_the_thread_free(
    start_server: Start, fields: dict[str, Any], param: str, words: str
) -> None:
    handle = start_server([HELLO])
    client = client_for(handle)
    assistant = client.beta.assistants.create(model="replay")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Hello"}])
    body = {"assistant_id": assistant.id, **fields}
    assert_400(post(handle, f"/threads/{thread.id}/runs", body), param, words)
    assert client.beta.threads.runs.list(thread.id).data == []
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed"


def test_valid_settings_are_kept_on_assistant_and_run(start_server: Start) -> None:
    handle = start_server([HELLO])
    client = client_for(handle)
    assistant = client.beta.assistants.create(model="replay", temperature=0.5, top_p=1)
    assert (assistant.temperature, assistant.top_p) == (0.5, 1.0)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Hello"}])
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id,
        assistant_id=assistant.id,
        max_completion_tokens=100,
        parallel_tool_calls=False,
        truncation_strategy={"type": "auto"},
        tool_choice={"type": "code_interpreter"},
        reasoning_effort="low",
    )
    assert run.status == "completed"
    assert (run.temperature, run.max_completion_tokens) == (0.5, 100)
    assert run.truncation_strategy is not None
    assert run.truncation_strategy.type == "auto"
    assert run.tool_choice is not None and run.tool_choice.type == "code_interpreter"
    assert run.reasoning_effort == "low"
    assert run.parallel_tool_calls is False


MESSAGE_CASES = [
    (
        {"role": "user", "content": "x", "attachments": [{"file_id": "FILE", "tools": "x"}]},
        "attachments[0].tools",
        "expected an array of tools",
    ),
    (
        {"role": "user", "content": "x", "attachments": [{"file_id": "FILE", "tools": ["x"]}]},
        "attachments[0].tools",
        "expected an array of tools",
    ),
    ({"role": "user"}, "content", "Missing required parameter: 'content'."),
    ({"role": "robot", "content": "x"}, "role", "expected 'user' or 'assistant'"),
]


@pytest.mark.parametrize(("body", "param", "words"), MESSAGE_CASES)
def test_bad_message_fields_name_the_field_without_a_body_prefix(
    start_server: Start, body: dict[str, Any], param: str, words: str
) -> None:
    handle = start_server()
    client = client_for(handle)
    upload = client.files.create(file=("a.txt", b"abc"), purpose="assistants")
    body = json.loads(json.dumps(body).replace("FILE", upload.id))
    thread = client.beta.threads.create()
    assert_400(post(handle, f"/threads/{thread.id}/messages", body), param, words)
    assert client.beta.threads.messages.list(thread.id).data == []


def test_image_file_with_unknown_file_id_is_404_and_not_stored(start_server: Start) -> None:
    handle = start_server()
    client = client_for(handle)
    content = [{"type": "image_file", "image_file": {"file_id": "file-nope"}}]
    status, body = post(handle, "/threads", {"messages": [{"role": "user", "content": content}]})
    assert status == 404
    assert body["error"]["message"] == "No file found with id 'file-nope'."
    thread = client.beta.threads.create()
    status, body = post(
        handle, f"/threads/{thread.id}/messages", {"role": "user", "content": content}
    )
    assert status == 404
    assert client.beta.threads.messages.list(thread.id).data == []


@pytest.mark.parametrize(
    ("output", "words"),
    [
        (None, "Missing required parameter: 'tool_outputs[0].output'."),
        (42, "expected a string, but got an integer"),
        ({"temp": 21}, "expected a string, but got an object"),
    ],
)
def test_tool_output_must_be_a_string(start_server: Start, output: Any, words: str) -> None:
    handle = start_server([WEATHER])
    client = client_for(handle)
    assistant = client.beta.assistants.create(model="replay")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Weather?"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    call = run.required_action.submit_tool_outputs.tool_calls[0]  # type: ignore[union-attr]
    item: dict[str, Any] = {"tool_call_id": call.id}
    if output is not None:
        item["output"] = output
    path = f"/threads/{thread.id}/runs/{run.id}/submit_tool_outputs"
    assert_400(post(handle, path, {"tool_outputs": [item]}), "tool_outputs[0].output", words)
    assert client.beta.threads.runs.retrieve(run.id, thread_id=thread.id).status == (
        "requires_action"
    )


def test_list_files_by_purpose_filters_before_paging(start_server: Start) -> None:
    client = client_for(start_server())
    wanted = [
        client.files.create(file=(f"in{i}.txt", b"x"), purpose="assistants").id for i in range(3)
    ]
    for i in range(5):
        client.files.create(file=(f"out{i}.txt", b"x"), purpose="batch")
    page = client.files.list(purpose="assistants", limit=2)
    assert [f.id for f in page.data] == wanted[::-1][:2]
    assert page.has_more is True
    everything = [f.id for f in client.files.list(purpose="assistants", limit=2)]
    assert everything == wanted[::-1]


def test_files_list_pages_up_to_ten_thousand_and_assistants_lists_to_a_hundred(
    start_server: Start,
) -> None:
    client = client_for(start_server())
    ids = [client.files.create(file=(f"f{i}.txt", b"x"), purpose="assistants").id for i in range(3)]
    everything = client.files.list(limit=1000)  # OpenAI's Files list: 1-10,000
    assert [f.id for f in everything.data] == ids[::-1] and everything.has_more is False
    assert [f.id for f in client.files.list(limit=10_000).data] == ids[::-1]
    with pytest.raises(openai.BadRequestError) as info:
        client.files.list(limit=10_001)
    assert "between 1 and 10000" in info.value.message
    with pytest.raises(openai.BadRequestError) as info:
        client.beta.assistants.list(limit=1000)  # the Assistants lists stay 1-100
    assert "between 1 and 100." in info.value.message


def test_bad_cursor_names_the_parameter_it_came_from(start_server: Start) -> None:
    handle = start_server()
    for name in ("after", "before"):
        request = urllib.request.Request(
            f"{handle.base_url}/assistants?{name}=bogus",
            headers={"authorization": f"Bearer {handle.token}"},
        )
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(request, timeout=10)
        assert info.value.code == 400
        assert json.loads(info.value.read())["error"]["param"] == name


class BrokenSandbox:
    """A sandbox whose ``close_thread`` has a bug: deleting a thread hits it."""

    async def start(self) -> None:
        return None

    async def close_thread(self, thread_id: str, *, delete_files: bool = False) -> None:
        raise RuntimeError("sandbox bug")

    async def aclose(self) -> None:
        return None


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_internal_error_is_one_logged_500_and_keeps_the_connection(
    start_server: Start,
) -> None:
    handle = start_server(sandbox=BrokenSandbox())
    thread = client_for(handle).beta.threads.create()
    records = Records()
    loggers = [logging.getLogger(name) for name in ("asst_magic", "uvicorn.error")]
    for logger in loggers:
        logger.addHandler(records)
    url = urllib.parse.urlsplit(handle.base_url)
    connection = http.client.HTTPConnection(url.netloc, timeout=10)
    headers = {"authorization": f"Bearer {handle.token}"}
    try:
        connection.request("DELETE", f"{url.path}/threads/{thread.id}", headers=headers)
        response = connection.getresponse()
        body = json.loads(response.read())
        sock = connection.sock
        connection.request("GET", f"{url.path}/assistants", headers=headers)
        again = connection.getresponse()
        again.read()
        reused = connection.sock is sock is not None
    finally:
        connection.close()
        for logger in loggers:
            logger.removeHandler(records)
    assert response.status == 500
    assert body["error"]["type"] == "server_error"
    assert "internal error: RuntimeError('sandbox bug')" in body["error"]["message"]
    assert again.status == 200 and reused  # the same keep-alive connection
    assert [r.exc_info is not None for r in records.records] == [True]
