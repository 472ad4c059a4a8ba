"""Input the store could not keep and send back is a 400 before anything is written;
objects an older server stored broken are still readable, streamable and deletable."""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from server_support import client_for, sse_events

from asst_magic.server import ServerConfig, ServerHandle
from asst_magic.server.api.payload import MAX_DEPTH
from asst_magic.server.store import open_store
from asst_magic.sse import SSEDecoder

Start = Callable[..., ServerHandle]
HELLO = {"user": "Hello", "turns": [{"text": "Hi"}]}


def send(handle: ServerHandle, method: str, path: str, raw: bytes = b"") -> tuple[int, bytes]:
    """One raw request (the body exactly as given); returns status and body bytes."""
    url = urlsplit(handle.base_url)
    conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=10)
    headers = {"authorization": f"Bearer {handle.token}", "content-type": "application/json"}
    try:
        conn.request(method, url.path + path, body=raw or None, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def strict_json(raw: bytes) -> Any:
    """Parse as a JavaScript client would: UTF-8, no NaN/Infinity, no lone surrogates."""

    def refuse(name: str) -> Any:
        raise AssertionError(f"{name} in a response")

    text = raw.decode("utf-8")  # raises on bytes a browser would refuse
    value = json.loads(text, parse_constant=refuse)
    json.dumps(value, ensure_ascii=False).encode("utf-8")  # raises on a lone surrogate
    return value


BAD_BODIES = [
    (b'{"model": "replay", "name": "a\\ud800b"}', "name", "lone UTF-16 surrogate"),
    (b'{"model": "replay", "metadata": {"\\udfff": "v"}}', "metadata.\ufffd", "surrogate"),
    (b'{"model": "replay", "temperature": NaN}', None, "NaN and Infinity are not JSON"),
    (b'{"model": "replay", "top_p": -Infinity}', None, "NaN and Infinity"),
    (b'{"model": "replay", "temperature": 1e999}', None, "NaN and Infinity"),
    (b"[" * 100_000 + b"]" * 100_000, None, f"nested more than {MAX_DEPTH} levels"),
]


@pytest.mark.parametrize(("raw", "param", "words"), BAD_BODIES)
def test_unstorable_assistant_body_is_400_and_nothing_is_stored(
    start_server: Start, raw: bytes, param: str | None, words: str
) -> None:
    handle = start_server()
    status, body = send(handle, "POST", "/assistants", raw)
    error = strict_json(body)["error"]
    assert status == 400, error
    assert words in error["message"]
    if param is not None:
        assert error["param"] == param
    status, listing = send(handle, "GET", "/assistants")
    assert status == 200 and strict_json(listing)["data"] == []


def test_deep_tool_schema_names_where_it_is_too_deep(start_server: Start) -> None:
    handle = start_server()
    schema: Any = {"type": "string"}
    for _ in range(MAX_DEPTH):
        schema = {"type": "array", "items": schema}
    tool = {"type": "function", "function": {"name": "f", "parameters": schema}}
    raw = json.dumps({"model": "replay", "tools": [tool]}).encode()
    status, body = send(handle, "POST", "/assistants", raw)
    error = strict_json(body)["error"]
    assert status == 400
    assert error["param"].startswith("tools[0].function.parameters.items.items")
    assert "flatten" in error["message"]


def test_lone_surrogate_in_a_run_writes_no_run_and_leaves_the_thread_free(
    start_server: Start,
) -> None:
    handle = start_server([HELLO])
    client = client_for(handle)
    assistant = client.beta.assistants.create(model="replay")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Hello"}])
    raw = b'{"assistant_id": "%s", "instructions": "\\ud800", "stream": true}' % (
        assistant.id.encode()
    )
    status, body = send(handle, "POST", f"/threads/{thread.id}/runs", raw)
    assert status == 400 and strict_json(body)["error"]["param"] == "instructions"
    assert client.beta.threads.runs.list(thread.id).data == []
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed"


def _old_broken_store(data_dir: Path) -> dict[str, str]:
    """A data dir as an older server left it: an assistant, thread and run stored broken."""
    store = open_store(ServerConfig(data_dir=data_dir))
    try:
        assistant = {
            "id": "asst_old", "object": "assistant", "created_at": 1, "name": "bad \ud800 name",
            "description": None, "model": "replay", "instructions": "be \udc00 kind",
            "tools": [], "top_p": 1.0, "temperature": float("nan"), "reasoning_effort": None,
            "tool_resources": {}, "metadata": {"k\ud800": "v"}, "response_format": "auto",
        }  # fmt: skip
        store.put("assistant", assistant)
        thread = {"id": "thread_old", "object": "thread", "created_at": 1,
                  "metadata": {"note": "\ud83d"}, "tool_resources": {}}  # fmt: skip
        store.put("thread", thread)
        run = {"id": "run_old", "object": "thread.run", "thread_id": "thread_old",
               "status": "failed", "temperature": float("inf"), "created_at": 1}  # fmt: skip
        store.put("run", run)
    finally:
        store.close()
    return {"assistant": "asst_old", "thread": "thread_old", "run": "run_old"}


def test_objects_stored_broken_are_readable_streamable_and_deletable(
    tmp_path: Path, start_server: Start
) -> None:
    ids = _old_broken_store(tmp_path / "data")
    handle = start_server([HELLO])
    status, body = send(handle, "GET", "/assistants")
    assert status == 200
    [assistant] = strict_json(body)["data"]
    assert assistant["name"] == "bad \ufffd name" and assistant["temperature"] is None
    assert assistant["metadata"] == {"k\ufffd": "v"}
    status, body = send(handle, "GET", f"/threads/{ids['thread']}/runs")
    assert status == 200 and strict_json(body)["data"][0]["temperature"] is None
    # A streamed run of the broken assistant carries its instructions as JSON a browser parses.
    thread = client_for(handle).beta.threads.create(messages=[{"role": "user", "content": "Hello"}])
    raw = json.dumps({"assistant_id": ids["assistant"], "stream": True}).encode()
    status, stream = send(handle, "POST", f"/threads/{thread.id}/runs", raw)
    assert status == 200
    for name, data in SSEDecoder().feed(stream):
        assert name == "done" or strict_json(data.encode("utf-8")) is not None
    events = sse_events(iter([stream]))
    assert events[-2][0] == "thread.run.completed"
    assert events[-2][1]["instructions"] == "be \ufffd kind"
    for path in (f"/assistants/{ids['assistant']}", f"/threads/{ids['thread']}"):
        status, body = send(handle, "DELETE", path)
        assert status == 200 and strict_json(body)["deleted"] is True
