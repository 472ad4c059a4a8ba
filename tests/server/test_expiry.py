"""A run never outlives expires_at, and a reader that stops reading never stalls its run."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

from server_support import client_for

from asst_magic.server import ServerHandle
from asst_magic.server.runs.streams import MAX_BEHIND

Start = Callable[..., ServerHandle]
HELLO = {"user": "Hello", "turns": [{"text": "Hi"}]}


def test_an_in_progress_run_expires_and_frees_its_thread(start_server: Start) -> None:
    slow = {"user": "Talk", "delay": 0.05, "turns": [{"text": ["word "] * 2000}]}
    client = client_for(start_server([slow, HELLO], run_expiry_seconds=3))
    assistant = client.beta.assistants.create(model="replay")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Talk"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "expired"
    message = client.beta.threads.messages.list(thread.id, limit=1).data[0]
    assert message.status == "incomplete" and message.incomplete_details is not None
    assert message.incomplete_details.reason == "run_expired"
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data
    assert [s.status for s in steps] == ["expired"]
    client.beta.threads.messages.create(thread.id, role="user", content="Hello")
    again = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert again.status == "completed"


def test_a_stream_nobody_reads_is_dropped_and_the_run_completes(start_server: Start) -> None:
    # Far more text than the socket buffers and the stream's allowance together hold.
    chunk = "x" * 4000
    big = {"user": "Flood", "turns": [{"text": [chunk] * (3 * MAX_BEHIND // len(chunk))}]}
    handle = start_server([big])
    client = client_for(handle)
    assistant = client.beta.assistants.create(model="replay")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Flood"}])
    url = urlsplit(handle.base_url)
    body = json.dumps({"assistant_id": assistant.id, "stream": True}).encode()
    stalled = socket.create_connection((url.hostname or "", url.port or 80), timeout=30)
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        stalled.sendall(
            f"POST {url.path}/threads/{thread.id}/runs HTTP/1.1\r\nHost: {url.netloc}\r\n"
            f"Authorization: Bearer {handle.token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )  # ... and never read a byte of the answer
        stalled.recv(1)  # the response has started: the run exists
        [run] = client.beta.threads.runs.list(thread.id).data
        done = client.beta.threads.runs.poll(run.id, thread_id=thread.id)
        assert done.status == "completed"
        message = client.beta.threads.messages.list(thread.id, limit=1).data[0]
        assert message.content[0].text.value == chunk * (3 * MAX_BEHIND // len(chunk))  # type: ignore[union-attr]
    finally:
        stalled.close()
