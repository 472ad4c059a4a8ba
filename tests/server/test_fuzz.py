"""Property test over every endpoint: no input gets a 5xx, and every stored object stays readable.

Hypothesis sends bodies built from each endpoint's own field names with values of
every JSON type (lone surrogates, NaN/Infinity, huge numbers, deep nesting
included), plus random ids, cursors and query strings, to one real server over a
loopback socket. The budget is fixed (``max_examples``, derandomized) so CI runs
the same few hundred requests in seconds.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from server_support import client_for, write_cassette

from asst_magic.server import ServerConfig, ServerHandle, start_in_thread
from asst_magic.server.store import open_store
from asst_magic.sse import SSEDecoder

HELLO = {"user": "Hello", "turns": [{"text": "Hi"}]}
BUDGET = settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

RUN_FIELDS = (
    "assistant_id", "model", "instructions", "additional_instructions", "additional_messages",
    "tools", "metadata", "temperature", "top_p", "stream", "max_prompt_tokens",
    "max_completion_tokens", "truncation_strategy", "tool_choice", "parallel_tool_calls",
    "response_format", "reasoning_effort",
)  # fmt: skip
ASSISTANT_FIELDS = (
    "model", "name", "description", "instructions", "tools", "tool_resources", "metadata",
    "temperature", "top_p", "response_format", "reasoning_effort",
)  # fmt: skip
REQUIRED = ("assistant_id", "model", "role", "content", "tool_outputs")
THREAD_FIELDS = ("messages", "metadata", "tool_resources")
MESSAGE_FIELDS = ("role", "content", "attachments", "metadata")

# (method, path, the body's field names); {names} are filled with real or random ids.
ENDPOINTS: list[tuple[str, str, tuple[str, ...]]] = [
    ("POST", "/assistants", ASSISTANT_FIELDS),
    ("GET", "/assistants", ()),
    ("GET", "/assistants/{assistant}", ()),
    ("POST", "/assistants/{assistant}", ASSISTANT_FIELDS),
    ("DELETE", "/assistants/{assistant}", ()),
    ("GET", "/files", ()),
    ("GET", "/files/{file}", ()),
    ("GET", "/files/{file}/content", ()),
    ("DELETE", "/files/{file}", ()),
    ("POST", "/threads", THREAD_FIELDS),
    ("GET", "/threads/{thread}", ()),
    ("POST", "/threads/{thread}", THREAD_FIELDS),
    ("DELETE", "/threads/{thread}", ()),
    ("POST", "/threads/{thread}/messages", MESSAGE_FIELDS),
    ("GET", "/threads/{thread}/messages", ()),
    ("GET", "/threads/{thread}/messages/{message}", ()),
    ("POST", "/threads/{thread}/messages/{message}", ("metadata",)),
    ("DELETE", "/threads/{thread}/messages/{message}", ()),
    ("POST", "/threads/runs", (*RUN_FIELDS, "thread")),
    ("POST", "/threads/{thread}/runs", RUN_FIELDS),
    ("GET", "/threads/{thread}/runs", ()),
    ("GET", "/threads/{thread}/runs/{run}", ()),
    ("POST", "/threads/{thread}/runs/{run}", ("metadata",)),
    ("POST", "/threads/{thread}/runs/{run}/cancel", ()),
    ("POST", "/threads/{thread}/runs/{run}/submit_tool_outputs", ("tool_outputs", "stream")),
    ("GET", "/threads/{thread}/runs/{run}/steps", ()),
    ("GET", "/threads/{thread}/runs/{run}/steps/{step}", ()),
]

any_text = st.text(st.characters(exclude_categories=()), max_size=12)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | any_text
    | st.sampled_from(["auto", "user", "assistant", "function", "text", "replay", "Hello"])
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_text, inner, max_size=3),
    max_leaves=12,
)


def plausible(name: str, assistant_id: str) -> st.SearchStrategy[Any]:
    """Values near what a field expects, so validation is passed and deeper code is reached."""
    close: dict[str, st.SearchStrategy[Any]] = {
        "assistant_id": st.just(assistant_id),
        "model": st.just("replay"),
        "role": st.sampled_from(["user", "assistant"]),
        "content": st.just("Hello") | st.lists(st.fixed_dictionaries({"type": st.just("text"),
                                                                     "text": any_text})),
        "messages": st.just([{"role": "user", "content": "Hello"}]),
        "stream": st.booleans(),
        "metadata": st.dictionaries(any_text, any_text, max_size=3),
        "tools": st.just([{"type": "code_interpreter"}]),
        "truncation_strategy": st.fixed_dictionaries({"type": st.sampled_from(["auto",
                                                      "last_messages"])}),
    }  # fmt: skip
    near = close.get(name, json_values)
    return st.one_of(near, near, near, json_values)  # mostly near, so deeper code is reached


@st.composite
def requests(draw: st.DrawFn, pool: dict[str, list[str]]) -> tuple[str, str, bytes]:
    """One request: method, path with query, raw body (ids mostly from objects made so far)."""
    method, template, fields = draw(st.sampled_from(ENDPOINTS))
    path, ids = template, {}
    for name in ("assistant", "file", "thread", "message", "run", "step"):
        # The same draws whatever the pool holds, so Hypothesis sees a stable strategy.
        pick, real, random_text = draw(st.integers(0, 999)), draw(st.integers(0, 3)), draw(any_text)
        found = pool[name]
        value = found[pick % len(found)] if found and real < 3 else random_text
        ids[name] = value
        path = path.replace("{" + name + "}", quote(value, safe="", errors="surrogatepass"))
    if method == "GET":
        query = draw(
            st.dictionaries(
                st.sampled_from(["limit", "order", "after", "before", "run_id", "purpose"]),
                any_text,
            )
        )
        return method, f"{path}?{urlencode(query, errors='surrogatepass')}" if query else path, b""
    chosen = draw(st.lists(st.sampled_from(fields), unique=True, max_size=3)) if fields else []
    chosen += [name for name in REQUIRED if name in fields and name not in chosen]
    body = {name: draw(plausible(name, ids["assistant"])) for name in chosen}
    raw = json.dumps(body, allow_nan=True).encode()
    deep = draw(st.integers(0, 20)) == 0  # now and then, nesting far past any limit
    return method, path, b'{"metadata": ' + b"[" * 5000 + b"]" * 5000 + b"}" if deep else raw


def strict(raw: bytes) -> Any:
    """Parse as a JavaScript client would: UTF-8, no NaN/Infinity, no lone surrogates."""

    def refuse(name: str) -> Any:
        raise AssertionError(f"{name} sent to a client")

    value = json.loads(raw.decode("utf-8"), parse_constant=refuse)
    json.dumps(value, ensure_ascii=False).encode("utf-8")
    return value


class Client:
    """One keep-alive connection with the server's token."""

    def __init__(self, handle: ServerHandle) -> None:
        url = urlsplit(handle.base_url)
        self.prefix = url.path
        self.conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=30)
        self.headers = {"authorization": f"Bearer {handle.token}",
                        "content-type": "application/json"}  # fmt: skip

    def send(self, method: str, path: str, raw: bytes = b"") -> tuple[int, str, bytes]:
        """Status, content type and body."""
        self.conn.request(method, self.prefix + path, body=raw or None, headers=self.headers)
        response = self.conn.getresponse()
        return response.status, response.getheader("content-type") or "", response.read()


def check(status: int, kind: str, body: bytes, what: str) -> None:
    assert status < 500, f"{what} -> {status}: {body[:300]!r}"
    if kind.startswith("text/event-stream"):
        for name, data in SSEDecoder().feed(body):
            if name != "done":
                strict(data.encode("utf-8"))
    elif kind.startswith("application/json"):
        strict(body)


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerHandle, Path]]:
    root = tmp_path_factory.mktemp("fuzz")
    cassette = write_cassette(root / "c.jsonl", [HELLO] * 50)
    config = ServerConfig(data_dir=root / "data", cassettes=(cassette,), code_interpreter=False)
    with start_in_thread(config) as handle:
        yield handle, root / "data"


def _seed(handle: ServerHandle) -> dict[str, list[str]]:
    client = client_for(handle)
    assistant = client.beta.assistants.create(model="replay")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Hello"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    step = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data[0]
    message = client.beta.threads.messages.list(thread.id).data[0]
    upload = client.files.create(file=("a.txt", b"abc"), purpose="assistants")
    return {"assistant": [assistant.id], "thread": [thread.id], "run": [run.id],
            "step": [step.id], "message": [message.id], "file": [upload.id]}  # fmt: skip


_PREFIXES = {"asst_": "assistant", "file-": "file", "thread_": "thread", "msg_": "message",
             "run_": "run", "step_": "step"}  # fmt: skip


def learn(pool: dict[str, list[str]], method: str, kind: str, body: bytes) -> None:
    """Keep the pool of ids to aim at current: add what was made, drop what was deleted."""
    found = json.loads(body).get("id") if kind.startswith("application/json") else None
    for prefix, name in _PREFIXES.items():
        if not isinstance(found, str) or not found.startswith(prefix):
            continue
        if method == "DELETE" and found in pool[name]:
            pool[name].remove(found)
        elif method == "POST" and found not in pool[name]:
            pool[name].append(found)


def test_no_input_gets_a_5xx_or_leaves_an_unreadable_object(
    fuzzed: tuple[ServerHandle, Path],
) -> None:
    handle, data_dir = fuzzed
    client = Client(handle)
    pool = _seed(handle)

    @BUDGET
    @given(request=requests(pool))
    def one(request: tuple[str, str, bytes]) -> None:
        method, path, raw = request
        status, kind, body = client.send(method, path, raw)
        check(status, kind, body, f"{method} {path} {raw[:200]!r}")
        if status == 200:
            learn(pool, method, kind, body)

    one()
    _seed(handle)  # so the read-back below never checks an empty store
    _every_object_is_readable(client, data_dir)


_URLS = {
    "assistant": "/assistants/{id}",
    "file": "/files/{id}",
    "thread": "/threads/{id}",
    "message": "/threads/{thread_id}/messages/{id}",
    "run": "/threads/{thread_id}/runs/{id}",
    "step": "/threads/{thread_id}/runs/{run_id}/steps/{id}",
}


def _every_object_is_readable(client: Client, data_dir: Path) -> None:
    store = open_store(ServerConfig(data_dir=data_dir))
    try:
        stored = {kind: store.select(kind) for kind in _URLS}
    finally:
        store.close()
    assert all(stored.values())
    for kind, objects in stored.items():
        for obj in objects:
            path = _URLS[kind].format(**{k: quote(str(v), safe="") for k, v in obj.items()})
            status, content_type, body = client.send("GET", path)
            assert status == 200, (path, body[:300])
            check(status, content_type, body, path)
