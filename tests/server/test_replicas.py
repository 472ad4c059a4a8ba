"""Two replicas on one PostgreSQL database: any replica serves, runs survive a dead peer."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import openai
import pytest
from server_support import azure_client, client_for, write_cassette

from asst_magic.server import ServerConfig, ServerHandle, spawn, start_in_thread
from asst_magic.server.store import open_store
from asst_magic.server.store.database import StoreConflict

WEATHER_TOOL: Any = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}},
}
WEATHER = {
    "user": "Weather?",
    "turns": [
        {"tool_calls": [{"type": "function", "name": "get_weather", "arguments": "{}"}]},
        {"text": ["It is ", "sunny", "."]},
    ],
}
SLOW = {"user": "Count", "delay": 0.05, "turns": [{"text": ["tick "] * 2000}]}
HELLO = {"user": "Hello", "turns": [{"text": ["Hi", "!"]}]}
LEASE = 2.0


def replica(config: ServerConfig, token: str | None = None) -> ServerHandle:
    return start_in_thread(config if token is None else _with_token(config, token))


def _with_token(config: ServerConfig, token: str) -> ServerConfig:
    from dataclasses import replace

    return replace(config, token=token)


@pytest.fixture
def config(tmp_path: Path, postgres_url: str) -> ServerConfig:
    return ServerConfig(
        data_dir=tmp_path / "a",
        database_url=postgres_url,
        cassettes=(write_cassette(tmp_path / "c.jsonl", [WEATHER, SLOW, HELLO]),),
        code_interpreter=False,
        replica_lease_seconds=LEASE,
        token="sk-local-team",
    )


def other(config: ServerConfig) -> ServerConfig:
    from dataclasses import replace

    return replace(config, data_dir=config.data_dir.with_name("b"))


def start_thread(client: openai.OpenAI, text: str, **assistant: Any) -> tuple[str, str]:
    created = client.beta.assistants.create(model="replay", **assistant)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": text}])
    return created.id, thread.id


@pytest.mark.parametrize("layout", ["v1", "azure"])
def test_tool_outputs_sent_to_the_other_replica_stream_the_run_in_order(
    config: ServerConfig, layout: str
) -> None:
    with replica(config) as a, replica(other(config)) as b:
        via_a = client_for(a)
        via_b = client_for(b) if layout == "v1" else azure_client(b)
        assistant_id, thread_id = start_thread(via_a, "Weather?", tools=[WEATHER_TOOL])
        run = via_a.beta.threads.runs.create_and_poll(
            thread_id=thread_id, assistant_id=assistant_id
        )
        assert run.status == "requires_action"
        call = run.required_action.submit_tool_outputs.tool_calls[0]  # type: ignore[union-attr]
        with via_b.beta.threads.runs.submit_tool_outputs_stream(
            thread_id=thread_id,
            run_id=run.id,
            tool_outputs=[{"tool_call_id": call.id, "output": "22C"}],
        ) as stream:
            names = [event.event for event in stream]
            final = stream.get_final_run()
        # Replica B relays replica A's events, in order, from the tool step to the end.
        assert names[0] == "thread.run.step.completed" and names[-1] == "thread.run.completed"
        runs = [n for n in names if n.startswith("thread.run.") and ".step." not in n]
        assert runs == ["thread.run.queued", "thread.run.in_progress", "thread.run.completed"]
        deltas = [n for n in names if n == "thread.message.delta"]
        assert len(deltas) == 3 and final.status == "completed"
        text = via_b.beta.threads.messages.list(thread_id=thread_id).data[0]
        assert text.content[0].text.value == "It is sunny."  # type: ignore[union-attr]


def test_cancel_through_the_other_replica_stops_the_run(config: ServerConfig) -> None:
    with replica(config) as a, replica(other(config)) as b:
        via_a, via_b = client_for(a), client_for(b)
        assistant_id, thread_id = start_thread(via_a, "Count")
        names: list[str] = []
        with via_a.beta.threads.runs.stream(
            thread_id=thread_id, assistant_id=assistant_id
        ) as stream:
            for event in stream:
                names.append(event.event)
                if event.event == "thread.message.delta" and "cancel" not in names:
                    names.append("cancel")
                    run_id = stream.current_run.id  # type: ignore[union-attr]
                    cancelling = via_b.beta.threads.runs.cancel(run_id, thread_id=thread_id)
                    assert cancelling.status == "cancelling"
        # The stream on replica A tells of the cancel asked through replica B.
        after = [n for n in names[names.index("cancel") :] if n.startswith("thread.run.can")]
        assert after == ["thread.run.cancelling", "thread.run.cancelled"]
        run = via_b.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
        assert run.status == "cancelled"


def test_killed_replica_runs_fail_on_the_other_within_the_lease(config: ServerConfig) -> None:
    doomed = spawn(config)  # a child process, so it can die by SIGKILL
    survivor = replica(other(config))
    try:
        via_doomed, via_survivor = client_for(doomed), client_for(survivor)
        assistant_id, thread_id = start_thread(via_doomed, "Count")
        with via_doomed.beta.threads.runs.stream(
            thread_id=thread_id, assistant_id=assistant_id
        ) as stream:
            for event in stream:
                if event.event == "thread.message.delta":
                    run_id = stream.current_run.id  # type: ignore[union-attr]
                    assert doomed.pid is not None
                    os.kill(doomed.pid, signal.SIGKILL)
                    killed_at = time.monotonic()
                    break
        run = via_survivor.beta.threads.runs.poll(run_id, thread_id=thread_id, poll_interval_ms=50)
        took = time.monotonic() - killed_at
        assert run.status == "failed" and run.last_error is not None
        assert run.last_error.code == "server_error"
        assert "stopped while this run was in_progress (no heartbeat for 2 s)" in (
            run.last_error.message
        )
        # Bounded: 1.2 leases after the last heartbeat, plus slack for a loaded 2-core machine.
        assert took < LEASE * 1.2 + 4.0, f"failed {took:.1f} s after the kill"
        message = via_survivor.beta.threads.messages.list(thread_id=thread_id, limit=1).data[0]
        assert message.status == "incomplete"
        # The thread takes a new run, on the survivor.
        via_survivor.beta.threads.messages.create(thread_id, role="user", content="Hello")
        again = via_survivor.beta.threads.runs.create_and_poll(
            thread_id=thread_id, assistant_id=assistant_id
        )
        assert again.status == "completed"
    finally:
        doomed.stop()
        survivor.stop()


def test_a_replica_paused_past_its_lease_stops_the_runs_another_failed(
    config: ServerConfig,
) -> None:
    paused = spawn(config)  # a child process, so SIGSTOP can freeze it past its lease
    survivor = replica(other(config))
    assert paused.pid is not None
    try:
        via_paused, via_survivor = client_for(paused), client_for(survivor)
        assistant_id, thread_id = start_thread(via_paused, "Count")
        with via_paused.beta.threads.runs.stream(
            thread_id=thread_id, assistant_id=assistant_id
        ) as stream:
            events = iter(stream)
            next(e for e in events if e.event == "thread.message.delta")
            run_id = stream.current_run.id  # type: ignore[union-attr]
            os.kill(paused.pid, signal.SIGSTOP)
            try:
                failed = via_survivor.beta.threads.runs.poll(
                    run_id, thread_id=thread_id, poll_interval_ms=50
                )
            finally:
                os.kill(paused.pid, signal.SIGCONT)
            after = [event.event for event in events]
        assert failed.status == "failed"
        # Its client sees the run end as the database has it, at once, not 2,000 chunks on.
        assert after[-1] == "thread.run.failed" and "thread.run.completed" not in after
        assert len(after) < 100, after[:5]
        run = via_survivor.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
        assert run.status == "failed" and run.last_error == failed.last_error
        message = via_survivor.beta.threads.messages.list(thread_id=thread_id, limit=1).data[0]
        assert message.status == "incomplete"
    finally:
        paused.stop()
        survivor.stop()


def test_the_database_allows_one_active_run_per_thread(config: ServerConfig) -> None:
    with replica(config) as a, replica(other(config)) as b:
        assistant_id, thread_id = start_thread(client_for(a), "Weather?", tools=[WEATHER_TOOL])
        clients = [client_for(a), client_for(b)] * 3
        outcomes: list[str] = []
        ready = threading.Barrier(len(clients))

        def create(client: openai.OpenAI) -> None:
            ready.wait(timeout=30)
            try:
                client.beta.threads.runs.create(thread_id=thread_id, assistant_id=assistant_id)
                outcomes.append("created")
            except openai.BadRequestError as exc:
                assert "already has an active run" in exc.message
                outcomes.append("refused")

        workers = [threading.Thread(target=create, args=(c,)) for c in clients]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=60)
        assert sorted(outcomes) == ["created"] + ["refused"] * (len(clients) - 1)
    # The rule lives in the database: a second active run on a thread is refused there.
    store = open_store(config)
    try:
        store.put("run", {"id": "run_one", "thread_id": "thread_x", "status": "queued"})
        with pytest.raises(StoreConflict):
            store.put("run", {"id": "run_two", "thread_id": "thread_x", "status": "in_progress"})
        store.put("run", {"id": "run_one", "thread_id": "thread_x", "status": "completed"})
        store.put("run", {"id": "run_two", "thread_id": "thread_x", "status": "in_progress"})
    finally:
        store.close()
