"""Requests that race: concurrent tool-output submits and updates while a run changes."""

from __future__ import annotations

import json
from collections.abc import Callable

import openai
from server_support import SlowRequest, client_for, sse_events

from asst_magic.server import ServerHandle

Start = Callable[..., ServerHandle]
WEATHER = {
    "user": "Weather?",
    "turns": [
        {"tool_calls": [{"type": "function", "name": "get_weather", "arguments": "{}"}]},
        {"text": ["It is ", "sunny."]},
    ],
}
SLOW = {"user": "Count", "delay": 0.01, "turns": [{"text": [f"{i} " for i in range(300)]}]}


def waiting_run(client: openai.OpenAI) -> tuple[str, str, str]:
    assistant = client.beta.assistants.create(model="replay")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Weather?"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "requires_action"
    call = run.required_action.submit_tool_outputs.tool_calls[0]  # type: ignore[union-attr]
    return thread.id, run.id, call.id


def test_concurrent_submits_one_streams_to_completion_the_other_is_rejected(
    start_server: Start,
) -> None:
    handle = start_server([WEATHER])
    client = client_for(handle)
    thread_id, run_id, call_id = waiting_run(client)
    path = f"/threads/{thread_id}/runs/{run_id}/submit_tool_outputs"
    body = {"tool_outputs": [{"tool_call_id": call_id, "output": "sunny"}], "stream": True}
    # Both handlers are waiting for their bodies when the bodies complete back to back.
    first, second = SlowRequest(handle, path, body).start(), SlowRequest(handle, path, body).start()
    first.finish()
    second.finish()
    responses = sorted([first.response(), second.response()])
    (ok_status, ok_body), (bad_status, bad_body) = responses
    assert (ok_status, bad_status) == (200, 400)
    events = sse_events(iter([ok_body]))
    assert events[-1] == ("done", "[DONE]")
    assert events[-2][0] == "thread.run.completed"
    text = "".join(
        part["text"]["value"]
        for name, data in events
        if name == "thread.message.delta"
        for part in data["delta"]["content"]
    )
    assert text == "It is sunny."
    error = json.loads(bad_body)["error"]
    assert error["message"].startswith("Runs in status ")
    assert error["message"].endswith("do not accept tool outputs.")
    run = client.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
    assert run.status == "completed"


def test_submit_after_outputs_were_taken_is_a_400_naming_the_status(start_server: Start) -> None:
    handle = start_server([WEATHER])
    client = client_for(handle)
    thread_id, run_id, call_id = waiting_run(client)
    outputs = [{"tool_call_id": call_id, "output": "sunny"}]
    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run_id, thread_id=thread_id, tool_outputs=outputs
    )
    assert run.status == "completed"
    try:
        client.beta.threads.runs.submit_tool_outputs(
            run_id=run_id, thread_id=thread_id, tool_outputs=outputs
        )
    except openai.BadRequestError as exc:
        assert exc.message.endswith('Runs in status "completed" do not accept tool outputs.')
    else:
        raise AssertionError("a second submit was accepted")


def test_run_metadata_set_mid_run_survives_its_status_changes(start_server: Start) -> None:
    client = client_for(start_server([SLOW]))
    assistant = client.beta.assistants.create(model="replay")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Count"}])
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
        for event in stream:
            if event.event == "thread.message.delta":
                run_id = stream.current_run.id  # type: ignore[union-attr]
                updated = client.beta.threads.runs.update(
                    run_id, thread_id=thread.id, metadata={"tag": "mid-run"}
                )
                assert updated.status == "in_progress"
                break
        stream.until_done()
    run = client.beta.threads.runs.retrieve(run_id, thread_id=thread.id)
    assert run.status == "completed"
    assert run.metadata == {"tag": "mid-run"}


def test_slow_run_update_never_writes_back_a_stale_status(start_server: Start) -> None:
    handle = start_server([SLOW])
    client = client_for(handle)
    assistant = client.beta.assistants.create(model="replay")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Count"}])
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
        for event in stream:
            if event.event == "thread.message.delta":
                run_id = stream.current_run.id  # type: ignore[union-attr]
                path = f"/threads/{thread.id}/runs/{run_id}"
                update = SlowRequest(handle, path, {"metadata": {"tag": "late"}}).start()
                break
        stream.until_done()
    update.finish()
    status, body = update.response()
    assert status == 200
    assert json.loads(body)["status"] == "completed"
    run = client.beta.threads.runs.retrieve(run_id, thread_id=thread.id)
    assert (run.status, run.metadata) == ("completed", {"tag": "late"})
    # The thread is not left locked by a resurrected in_progress run.
    client.beta.threads.messages.create(thread_id=thread.id, role="user", content="Count")


def test_slow_thread_and_message_updates_keep_each_others_changes(start_server: Start) -> None:
    handle = start_server()
    client = client_for(handle)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    slow = SlowRequest(handle, f"/threads/{thread.id}", {"metadata": {"a": "1"}}).start()
    client.beta.threads.update(thread.id, tool_resources={"code_interpreter": {"file_ids": []}})
    slow.finish()
    assert slow.response()[0] == 200
    stored = client.beta.threads.retrieve(thread.id)
    assert stored.metadata == {"a": "1"}
    assert stored.tool_resources is not None and stored.tool_resources.code_interpreter is not None

    assistant = client.beta.assistants.create(model="replay", name="first")
    slow = SlowRequest(handle, f"/assistants/{assistant.id}", {"metadata": {"k": "v"}}).start()
    client.beta.assistants.update(assistant.id, name="second")
    slow.finish()
    assert slow.response()[0] == 200
    stored_assistant = client.beta.assistants.retrieve(assistant.id)
    assert (stored_assistant.name, stored_assistant.metadata) == ("second", {"k": "v"})


def test_metadata_of_a_message_still_being_written_survives_its_completion(
    start_server: Start,
) -> None:
    client = client_for(start_server([SLOW]))
    assistant = client.beta.assistants.create(model="replay")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Count"}])
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
        for event in stream:
            if event.event == "thread.message.delta":
                message_id = event.data.id
                client.beta.threads.messages.update(
                    message_id, thread_id=thread.id, metadata={"seen": "yes"}
                )
                break
        stream.until_done()
    message = client.beta.threads.messages.retrieve(message_id, thread_id=thread.id)
    assert message.status == "completed"
    assert message.metadata == {"seen": "yes"}
