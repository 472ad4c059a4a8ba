"""Azure OpenAI's URL layout and key header, as the Azure samples and `AzureOpenAI` send them.

The same API answers under ``/openai`` (``{endpoint}/openai/threads?api-version=...``)
and takes the token from an ``api-key`` header as well as from ``Authorization``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest
from openai import AssistantEventHandler
from server_support import Entry, azure_client, azure_endpoint
from test_users import add_users

from asst_magic.server import ServerConfig, ServerHandle, start_in_thread

API_VERSION = "2024-05-01-preview"
HELLO: list[Entry] = [{"user": "hello", "turns": [{"text": ["Hello", " **world**", "!"]}]}]


class Collect(AssistantEventHandler):
    def __init__(self) -> None:
        super().__init__()
        self.deltas: list[str] = []

    def on_text_delta(self, delta: Any, snapshot: Any) -> None:
        self.deltas.append(delta.value)


def converse(client: openai.OpenAI) -> tuple[list[str], list[str]]:
    """One streamed run, the way the samples do it: the text deltas, then the thread's messages."""
    assistant = client.beta.assistants.create(model="replay")
    thread = client.beta.threads.create()
    client.beta.threads.messages.create(thread.id, role="user", content="hello")
    handler = Collect()
    with client.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant.id, event_handler=handler
    ) as stream:
        stream.until_done()
    listed = client.beta.threads.messages.list(thread.id, order="asc").data
    return handler.deltas, [m.content[0].text.value for m in listed]  # type: ignore[union-attr]


def test_the_azure_client_works_unchanged(start_server: Callable[..., ServerHandle]) -> None:
    handle = start_server(HELLO)
    assert converse(azure_client(handle, version=API_VERSION)) == (
        ["Hello", " **world**", "!"],
        ["hello", "Hello **world**!"],
    )


def test_the_azure_samples_client_settings_work_unchanged(
    start_server: Callable[..., ServerHandle],
) -> None:
    # Exactly how the Azure AI CLI's Python sample builds its client from AZURE_OPENAI_*.
    handle = start_server(HELLO)
    key = handle.token
    client = openai.OpenAI(
        api_key=key,
        base_url=f"{azure_endpoint(handle).rstrip('/')}/openai",
        default_query={"api-version": API_VERSION},
        default_headers={"api-key": key},
    )
    assert converse(client) == (["Hello", " **world**", "!"], ["hello", "Hello **world**!"])


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"api-key": "wrong"}, "Incorrect API key provided."),
        ({}, "You didn't provide an API key (no Authorization or api-key header)."),
    ],
)
def test_a_wrong_or_missing_api_key_is_refused(
    start_server: Callable[..., ServerHandle], headers: dict[str, str], message: str
) -> None:
    import httpx2

    handle = start_server()
    response = httpx2.get(
        f"{azure_endpoint(handle)}/openai/assistants",
        params={"api-version": API_VERSION},
        headers=headers,
    )
    assert response.status_code == 401
    said = response.json()["error"]["message"]
    assert said.startswith(f"{message} Pass the server's token as the API key")
    assert "wrong" not in said  # the key that was sent is never echoed


def test_a_bearer_token_wins_over_an_api_key_header(
    start_server: Callable[..., ServerHandle],
) -> None:
    import httpx2

    handle = start_server()
    url = f"{azure_endpoint(handle)}/openai/assistants"
    good = {"Authorization": f"Bearer {handle.token}", "api-key": "stale"}
    assert httpx2.get(url, headers=good).status_code == 200
    bad = {"Authorization": "Bearer stale", "api-key": handle.token}
    assert httpx2.get(url, headers=bad).status_code == 401


def test_a_users_token_works_as_an_api_key_and_sees_only_their_objects(tmp_path: Path) -> None:
    config = ServerConfig(data_dir=tmp_path / "data", code_interpreter=False)
    with start_in_thread(config) as handle:
        (ada_token,) = add_users(config, "ada")
        admin = openai.OpenAI(base_url=handle.base_url, api_key=handle.token)
        admin.beta.assistants.create(model="replay")
        ada = azure_client(handle, ada_token, API_VERSION)
        mine = ada.beta.assistants.create(model="replay")
        assert [a.id for a in ada.beta.assistants.list().data] == [mine.id]
