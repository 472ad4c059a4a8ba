"""Benchmark: the local server's run stream against a raw SSE baseline on the same stack.

Run: ``python bench/bench_server.py``. Reports, side by side in one run,
time to first event after run create (median of several runs) and events/second
for a 20,000-chunk replayed run, for our server and for a minimal Starlette
handler on the same uvicorn that streams the very same bytes, one event per write.
A last row puts the Chat Completions bridge against the replay model: the same
text pieces, once from a cassette and once streamed by a loopback Chat
Completions server, through one server to one client; time per chunk, as a ratio.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "server"))

from chat_replay_server import ChatReplayServer, Reply, chat_chunk, sse_body

from asst_magic.server import ServerConfig, start_in_thread
from asst_magic.server.launch import base_url, bind
from asst_magic.sse import SSEDecoder

CHUNKS = 20_000
LATENCY_SAMPLES = 15
CHAT_CHUNKS = 5_000
CHAT_REPEATS = 5


def consume(response: httpx2.Response, start: float) -> tuple[float, int, float, bytes]:
    """Read an SSE body: (time to first event, events, seconds from first event to end, bytes)."""
    decoder, first, count, body = SSEDecoder(), 0.0, 0, bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        events = decoder.feed(chunk)
        if events and not first:
            first = time.perf_counter()
        count += len(events)
    end = time.perf_counter()
    return first - start, count, end - first, bytes(body)


def timed_post(
    client: httpx2.Client, url: str, body: dict[str, object]
) -> tuple[float, int, float, bytes]:
    start = time.perf_counter()
    with client.stream("POST", url, json=body) as response:
        return consume(response, start)


def ours(data_dir: Path) -> tuple[list[float], tuple[int, float], bytes]:
    cassette = data_dir / "bench.jsonl"
    entries = [
        {"user": "big", "turns": [{"text": [f"w{i} " for i in range(CHUNKS)]}]},
        {"user": "small", "turns": [{"text": ["hi"]}]},
    ]
    cassette.write_text("".join(json.dumps(e) + "\n" for e in entries))
    config = ServerConfig(data_dir=data_dir / "data", cassettes=(cassette,), code_interpreter=False)
    with start_in_thread(config, sandbox=None) as handle:
        headers = {"authorization": f"Bearer {handle.token}"}
        with httpx2.Client(base_url=handle.base_url, headers=headers, timeout=60) as client:
            assistant = client.post("/assistants", json={"model": "replay"}).json()["id"]

            def run(text: str) -> tuple[float, int, float, bytes]:
                thread = client.post(
                    "/threads", json={"messages": [{"role": "user", "content": text}]}
                )
                url = f"/threads/{thread.json()['id']}/runs"
                return timed_post(client, url, {"assistant_id": assistant, "stream": True})

            latencies = [run("small")[0] for _ in range(LATENCY_SAMPLES)]
            _, count, seconds, body = run("big")
    return latencies, (count, seconds), body


def baseline(big: bytes, small: bytes) -> tuple[list[float], tuple[int, float]]:
    def events_of(body: bytes) -> list[bytes]:
        return [part + b"\n\n" for part in body.split(b"\n\n") if part]

    bodies = {"big": events_of(big), "small": events_of(small)}

    async def stream(request: Request) -> Response:
        async def chunks():  # type: ignore[no-untyped-def]
            for event in bodies[request.path_params["name"]]:
                yield event

        return StreamingResponse(chunks(), media_type="text/event-stream")

    return serve_baseline(Starlette(routes=[Route("/{name}", stream, methods=["POST"])]))


def serve_baseline(app: Starlette) -> tuple[list[float], tuple[int, float]]:
    import uvicorn

    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        url = base_url(sock).removesuffix("/v1")
        with httpx2.Client(base_url=url, timeout=60) as client:
            wait_until(lambda: server.started)
            latencies = [timed_post(client, "/small", {})[0] for _ in range(LATENCY_SAMPLES)]
            _, count, seconds, _ = timed_post(client, "/big", {})
    finally:
        server.should_exit = True
        thread.join()
        sock.close()
    return latencies, (count, seconds)


def wait_until(ready: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not ready():
        if time.monotonic() > deadline:
            raise RuntimeError("baseline server did not start")
        time.sleep(0.01)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        our_latencies, (our_count, our_seconds), big = ours(Path(tmp))
        small = _small_body(big)
    base_latencies, (base_count, base_seconds) = baseline(big, small)
    ttfe_ours, ttfe_base = statistics.median(our_latencies), statistics.median(base_latencies)
    rate_ours, rate_base = our_count / our_seconds, base_count / base_seconds
    print(f"run stream: {CHUNKS} text chunks -> {our_count} events (baseline sends {base_count})")
    print(f"time to first event (median of {LATENCY_SAMPLES}):")
    print(
        f"  ours {ttfe_ours * 1000:8.2f} ms   baseline {ttfe_base * 1000:8.2f} ms   "
        f"ratio ours/baseline {ttfe_ours / ttfe_base:5.2f}x"
    )
    print("events per second:")
    print(
        f"  ours {rate_ours:10.0f}      baseline {rate_base:10.0f}      "
        f"ratio ours/baseline {rate_ours / rate_base:5.2f}x"
    )
    with tempfile.TemporaryDirectory() as tmp:
        replay, chat, events = chat_bridge(Path(tmp))
    print(
        f"chat completions bridge vs replay model ({CHAT_CHUNKS} text chunks, {events} events, "
        f"median of {CHAT_REPEATS}), time per event:"
    )
    print(
        f"  chat {chat * 1e6:8.1f} us     replay   {replay * 1e6:8.1f} us     "
        f"ratio chat/replay {chat / replay:5.2f}x"
    )


def chat_bridge(data_dir: Path) -> tuple[float, float, int]:
    """Median seconds per streamed chunk: (replay model, Chat Completions bridge, events)."""
    pieces = [f"w{i} " for i in range(CHAT_CHUNKS)]
    cassette = data_dir / "chat-bench.jsonl"
    cassette.write_text(json.dumps({"user": "pieces", "turns": [{"text": pieces}]}) + "\n")
    deltas = [chat_chunk({"content": p}) for p in pieces] + [chat_chunk({}, "stop")]
    # A real endpoint flushes often; 100 chunks per write keeps this server out of the way.
    body = sse_body(deltas)
    events = [e + b"\n\n" for e in body.split(b"\n\n") if e]
    writes = [b"".join(events[i : i + 100]) for i in range(0, len(events), 100)]
    with ChatReplayServer([Reply.sse(writes)]) as upstream:
        config = ServerConfig(
            data_dir=data_dir / "chat-data",
            cassettes=(cassette,),
            code_interpreter=False,
            model_url=upstream.base_url,
        )
        with start_in_thread(config, sandbox=None) as handle:
            headers = {"authorization": f"Bearer {handle.token}"}
            with httpx2.Client(base_url=handle.base_url, headers=headers, timeout=60) as client:
                per_chunk = {
                    model: [_seconds_per_event(client, model) for _ in range(CHAT_REPEATS)]
                    for model in ("replay", "bench-model")
                }
                count = _seconds_per_event(client, "replay", count_only=True)
    replay, chat = (statistics.median(per_chunk[m]) for m in ("replay", "bench-model"))
    return replay, chat, int(count)


def _seconds_per_event(client: httpx2.Client, model: str, *, count_only: bool = False) -> float:
    assistant = client.post("/assistants", json={"model": model}).json()["id"]
    thread = client.post("/threads", json={"messages": [{"role": "user", "content": "pieces"}]})
    url = f"/threads/{thread.json()['id']}/runs"
    _, count, seconds, _ = timed_post(client, url, {"assistant_id": assistant, "stream": True})
    if count < CHAT_CHUNKS:
        raise RuntimeError(f"the {model} run streamed only {count} events")
    return count if count_only else seconds / count


def _small_body(big: bytes) -> bytes:
    """A short run's worth of events (created..in_progress) to time the first event."""
    parts = [p + b"\n\n" for p in big.split(b"\n\n") if p]
    return b"".join(parts[:3] + parts[-2:])


if __name__ == "__main__":
    main()
