"""Benchmark: the local server's run stream against a raw SSE baseline on the same stack.

Run: ``python bench/bench_server.py``. Reports, side by side in one run,
time to first event after run create (median of several runs) and events/second
for a 20,000-chunk replayed run, for our server and for a minimal Starlette
handler on the same uvicorn that streams the very same bytes, one event per write.
A last row puts the Chat Completions bridge against the replay model: the same
text pieces, once from a cassette and once streamed by a loopback Chat
Completions server, through one server to one client; time per chunk, as a ratio.

The baseline writes the big run in the very chunk sizes our server's response
arrived in, so both sides pay the same number of writes. Then, on one server:
time to first event on threads of 0, 1,000 and 10,000 messages (interleaved
rounds, medians with spread), with 10 and 50 other runs streaming, and the run
latency of the first runs on a new thread against runs after 1,000 runs on an old
one (interleaved rounds).
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
from asst_magic.server.listen import base_url, bind
from asst_magic.sse import SSEDecoder

CHUNKS = 20_000
LATENCY_SAMPLES = 15
CHAT_CHUNKS = 5_000
CHAT_REPEATS = 5
RUNS_ON_ONE_THREAD = 1000


SIZES: list[int] = []  # the sizes of the chunks our server's big run arrived in


def consume(response: httpx2.Response, start: float) -> tuple[float, int, float, bytes]:
    """Read an SSE body: (time to first event, events, seconds from first event to end, bytes)."""
    decoder, first, count, body = SSEDecoder(), 0.0, 0, bytearray()
    for chunk in response.iter_bytes():
        SIZES.append(len(chunk))
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
            SIZES.clear()
            _, count, seconds, body = run("big")
    return latencies, (count, seconds), body


def baseline(big: bytes, small: bytes) -> tuple[list[float], tuple[int, float]]:
    def events_of(body: bytes) -> list[bytes]:
        return [part + b"\n\n" for part in body.split(b"\n\n") if part]

    def same_sizes(body: bytes) -> list[bytes]:
        """The body in the chunk sizes our server's response arrived in (same write sizes)."""
        chunks, at = [], 0
        for size in SIZES:
            chunks.append(body[at : at + size])
            at += size
        return [c for c in chunks if c] + ([body[at:]] if at < len(body) else [])

    bodies = {"big": same_sizes(big), "small": events_of(small)}

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
    print("events per second (baseline writes the same chunk sizes as ours):")
    print(
        f"  ours {rate_ours:10.0f}      baseline {rate_base:10.0f}      "
        f"ratio ours/baseline {rate_ours / rate_base:5.2f}x"
    )
    with tempfile.TemporaryDirectory() as tmp:
        thread_lengths(Path(tmp))
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


def thread_lengths(data_dir: Path) -> None:
    """First event vs thread length and concurrency; run latency after 1,000 runs."""
    cassette = data_dir / "bench.jsonl"
    entries = [
        {"user": "small", "turns": [{"text": ["hi"]}]},
        {"user": "busy", "turns": [{"text": [f"w{i} " for i in range(3000)]}], "delay": 0.001},
    ]
    cassette.write_text("".join(json.dumps(e) + "\n" for e in entries))
    config = ServerConfig(data_dir=data_dir / "data", cassettes=(cassette,), code_interpreter=False)
    with start_in_thread(config, sandbox=None) as handle:
        headers = {"authorization": f"Bearer {handle.token}"}
        with httpx2.Client(base_url=handle.base_url, headers=headers, timeout=120) as client:
            assistant = client.post("/assistants", json={"model": "replay"}).json()["id"]
            threads = {n: _thread_of(client, config.data_dir, n) for n in (0, 1000, 10_000)}
            _first_events_by_length(client, assistant, threads)
            _first_events_under_load(client, handle.base_url, headers, assistant)
            _latency_after_runs(client, assistant)


def _thread_of(client: httpx2.Client, data_dir: Path, messages: int) -> str:
    """A thread with ``messages`` earlier messages (copied into the store in one go)."""
    from asst_magic.server.store import open_store

    thread = client.post("/threads", json={"messages": [{"role": "user", "content": "x"}]})
    thread_id = thread.json()["id"]
    message = client.get(f"/threads/{thread_id}/messages").json()["data"][0]
    store = open_store(ServerConfig(data_dir=data_dir))
    with store.transaction():
        for i in range(messages):
            role = "user" if i % 2 else "assistant"
            store.put("message", message | {"id": f"msg_b{thread_id}{i}", "role": role})
    store.close()
    return thread_id


def _run_once(client: httpx2.Client, assistant: str, thread_id: str) -> float:
    client.post(f"/threads/{thread_id}/messages", json={"role": "user", "content": "small"})
    url = f"/threads/{thread_id}/runs"
    return timed_post(client, url, {"assistant_id": assistant, "stream": True})[0]


def _spread(samples: list[float]) -> str:
    q = statistics.quantiles(samples, n=4)
    return f"{statistics.median(samples) * 1000:7.2f} ms (IQR {q[0] * 1000:.2f}-{q[2] * 1000:.2f})"


def _first_events_by_length(client: httpx2.Client, assistant: str, threads: dict[int, str]) -> None:
    samples: dict[int, list[float]] = {n: [] for n in threads}
    for _ in range(2):  # warm-up, every side
        for thread_id in threads.values():
            _run_once(client, assistant, thread_id)
    for _ in range(LATENCY_SAMPLES):  # interleaved rounds
        for n, thread_id in threads.items():
            samples[n].append(_run_once(client, assistant, thread_id))
    print(f"time to first event by thread length (interleaved, median of {LATENCY_SAMPLES}):")
    for n, values in samples.items():
        print(f"  {n:>6} messages  {_spread(values)}")
    ratio = statistics.median(samples[10_000]) / statistics.median(samples[0])
    print(
        f"  10k vs empty thread: {ratio:5.2f}x   (goal <= 2x) {'met' if ratio <= 2 else 'MISSED'}"
    )


def _first_events_under_load(
    client: httpx2.Client, url: str, headers: dict[str, str], assistant: str
) -> None:
    print("time to first event while other runs stream (median of 7):")
    thread_id = _thread_of_api(client)
    for others in (0, 10, 50):
        stop = threading.Event()
        workers = [
            threading.Thread(target=_busy, args=(url, headers, assistant, stop), daemon=True)
            for _ in range(others)
        ]
        for worker in workers:
            worker.start()
        time.sleep(0.5 if others else 0)  # let them start streaming
        values = [_run_once(client, assistant, thread_id) for _ in range(7)]
        stop.set()
        for worker in workers:
            worker.join()
        print(f"  {others:>3} other runs  {_spread(values)}   (no goal set: for reference)")


def _thread_of_api(client: httpx2.Client) -> str:
    return str(client.post("/threads", json={}).json()["id"])


def _busy(url: str, headers: dict[str, str], assistant: str, stop: threading.Event) -> None:
    with httpx2.Client(base_url=url, headers=headers, timeout=120) as client:
        thread_id = _thread_of_api(client)
        while not stop.is_set():
            client.post(f"/threads/{thread_id}/messages", json={"role": "user", "content": "busy"})
            body = {"assistant_id": assistant, "stream": True}
            with client.stream("POST", f"/threads/{thread_id}/runs", json=body) as response:
                for _ in response.iter_bytes():
                    if stop.is_set():
                        break


def _latency_after_runs(client: httpx2.Client, assistant: str) -> None:
    """Runs 6-25 of a new thread against runs 1,006-1,025 of an old one, interleaved.

    The old thread first takes 1,000 runs; then each round runs once on each thread,
    so the machine's noise falls on both sides alike.
    """
    old, new = _thread_of_api(client), _thread_of_api(client)
    for _ in range(RUNS_ON_ONE_THREAD):
        _timed_run(client, assistant, old)
    fresh, aged = [], []
    for _ in range(25):
        fresh.append(_timed_run(client, assistant, new))
        aged.append(_timed_run(client, assistant, old))
    first, last = fresh[5:], aged[5:]
    ratio = statistics.median(last) / statistics.median(first)
    print("run latency (message + streamed run), interleaved rounds:")
    print(f"  runs 6-25 of a new thread          {_spread(first)}")
    later = f"runs {RUNS_ON_ONE_THREAD + 6}-{RUNS_ON_ONE_THREAD + 25} of the old thread"
    print(f"  {later}  {_spread(last)}")
    print(
        f"  after {RUNS_ON_ONE_THREAD} runs vs first runs: {ratio:5.2f}x   (goal <= 1.5x) "
        f"{'met' if ratio <= 1.5 else 'MISSED'}"
    )


def _timed_run(client: httpx2.Client, assistant: str, thread_id: str) -> float:
    start = time.perf_counter()
    client.post(f"/threads/{thread_id}/messages", json={"role": "user", "content": "small"})
    body = {"assistant_id": assistant, "stream": True}
    timed_post(client, f"/threads/{thread_id}/runs", body)
    return time.perf_counter() - start


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
