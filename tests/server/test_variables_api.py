"""The variables API: its own path prefix, the same token, OpenAI-shaped errors, the kernel."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx2
import pytest
from server_support import client_for

from asst_magic.server import ServerHandle


def api(handle: ServerHandle, token: str | None = None) -> httpx2.Client:
    root = handle.base_url.removesuffix("/v1")
    headers = {"Authorization": f"Bearer {token or handle.token}"}
    return httpx2.Client(base_url=root, headers=headers, timeout=60)


def error(response: Any) -> dict[str, Any]:
    return dict(json.loads(response.content)["error"])


@pytest.fixture
def server(start_server: Callable[..., ServerHandle]) -> tuple[ServerHandle, str]:
    handle = start_server(code_interpreter=True)
    return handle, client_for(handle).beta.threads.create().id


def test_a_value_put_into_the_kernel_comes_back_byte_for_byte(
    server: tuple[ServerHandle, str],
) -> None:
    handle, thread = server
    url = f"/asst_magic/v1/threads/{thread}/variables/cfg"
    with api(handle) as http:
        put = http.put(url, params={"format": "json", "kind": "json"}, content=b'{"a": [1, 2]}')
        assert put.status_code == 200
        assert put.json() == {
            "object": "thread.variable",
            "thread_id": thread,
            "name": "cfg",
            "kind": "json",
            "bytes": 13,
        }
        got = http.get(url)
    assert got.status_code == 200 and got.content == b'{"a": [1, 2]}'
    assert (got.headers["x-asst-magic-format"], got.headers["x-asst-magic-type"]) == (
        "json",
        "dict",
    )


def test_errors_are_openai_shaped_and_name_the_problem(server: tuple[ServerHandle, str]) -> None:
    handle, thread = server
    base = f"/asst_magic/v1/threads/{thread}/variables"
    with api(handle) as http:
        missing = http.get(f"{base}/nothing")
        assert missing.status_code == 404
        assert error(missing)["message"] == f"No variable nothing in thread {thread}."
        assert error(missing)["code"] == "variable_not_found"
        bad_name = http.get(f"{base}/_private")
        assert bad_name.status_code == 400 and "not a variable name" in error(bad_name)["message"]
        pickled = http.put(f"{base}/x", params={"format": "pickle", "kind": "json"}, content=b"")
        assert pickled.status_code == 400 and error(pickled)["param"] == "format"
        broken = http.put(f"{base}/x", params={"format": "json", "kind": "json"}, content=b"{")
        assert broken.status_code == 400
        assert error(broken)["message"].startswith("The code interpreter could not load x: ")
        http.put(
            f"{base}/big",
            params={"format": "json", "kind": "json"},
            content=b'"' + b"x" * 500 + b'"',
        )
        large = http.get(f"{base}/big", params={"max_bytes": "100"})
        assert large.status_code == 413 and error(large)["code"] == "variable_too_large"
        nothread = http.get("/asst_magic/v1/threads/thread_nope/variables/x")
        assert nothread.status_code == 404
        assert error(nothread)["message"] == "No thread found with id 'thread_nope'."


def test_the_prefix_is_apart_from_the_assistants_api_and_needs_the_token(
    server: tuple[ServerHandle, str],
) -> None:
    handle, thread = server
    with api(handle, token="wrong") as http:
        refused = http.get(f"/asst_magic/v1/threads/{thread}/variables/x")
    assert refused.status_code == 401 and error(refused)["code"] == "invalid_api_key"
    with api(handle) as http:
        inside = http.get(f"/v1/threads/{thread}/variables/x")
    assert inside.status_code == 404 and error(inside)["message"].startswith("Invalid URL")


def test_a_server_without_a_code_interpreter_says_so(
    start_server: Callable[..., ServerHandle],
) -> None:
    handle = start_server()
    thread = client_for(handle).beta.threads.create().id
    with api(handle) as http:
        response = http.get(f"/asst_magic/v1/threads/{thread}/variables/x")
    assert response.status_code == 400
    assert "runs without a code interpreter" in error(response)["message"]


def test_a_thread_with_an_active_run_is_refused(start_server: Callable[..., ServerHandle]) -> None:
    busy = {"type": "code_interpreter", "input": "import time\ntime.sleep(60)"}
    handle = start_server(
        [{"user": "wait", "turns": [{"tool_calls": [busy]}]}], code_interpreter=True
    )
    client = client_for(handle)
    assistant = client.beta.assistants.create(model="replay", tools=[{"type": "code_interpreter"}])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "wait"}])
    run = client.beta.threads.runs.create(thread.id, assistant_id=assistant.id)
    try:
        with api(handle) as http:
            response = http.get(f"/asst_magic/v1/threads/{thread.id}/variables/x")
        assert response.status_code == 400
        assert (
            error(response)["message"] == f"Thread {thread.id} already has an active run {run.id}."
        )
    finally:
        client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
