"""The magic's event path vs the SDK's stream helper vs the bare SSE + JSON limit.

    python bench/bench_client.py

Feeds two Assistants streams at once (a 20,000-event mix of small code blocks and
text, and a 24 KB code block followed by a 100 KB answer) as HTTP response bytes
through an httpx2 MockTransport, so the real ``openai`` client runs, three ways,
after a warm-up of each, in 5 interleaved rounds (medians and ranges):

* magic: backend + accumulate + render + the live view (throttled), into widget-like
  sinks that count the bytes of every display/comm message;
* SDK: ``client.beta.threads.runs.stream(...)``, iterating its events;
* limit: split the SSE lines and ``json.loads`` each ``data:`` line.

Then paces a 100 KB answer and a 50 KB code block at 100, 500 and 2,000 events/s
through the live view (see ``paced_section``). Every goal is printed beside its
measured ratio.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
import openai

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asst_magic.live.highlight as highlight_module
import asst_magic.work as render_module
from asst_magic.accumulate import Snapshot, apply
from asst_magic.backends.base import RunRequest
from asst_magic.backends.http import SDKBackend
from asst_magic.sse import encode_done, encode_event
from asst_magic.view import RunView

EVENTS = 20_000
ROUNDS = 10
CHUNK = 4096
IDS = {"thread_id": "thread_b", "assistant_id": "asst_b"}


def build_stream() -> bytes:
    """thread + run lifecycle, then rounds of (streamed code + logs, streamed answer)."""
    run = {"id": "run_b", "object": "thread.run", "status": "queued", **IDS}
    out = [encode_event("thread.run.created", run), encode_event("thread.run.queued", run)]
    out.append(encode_event("thread.run.in_progress", run | {"status": "in_progress"}))
    per_round = (EVENTS - 5) // ROUNDS  # 5 = three run events above, completed and done
    code_deltas = per_round // 4
    text_deltas = per_round - code_deltas - 3  # 3 = step created/completed, message created
    for r in range(ROUNDS):
        out += _code_step(f"step_{r}", code_deltas)
        extra = EVENTS - 5 - per_round * ROUNDS if r == ROUNDS - 1 else 0
        out += _message(f"msg_{r}", text_deltas + extra)
    out.append(encode_event("thread.run.completed", run | {"status": "completed"}))
    out.append(encode_done())
    return b"".join(out)


def build_big_stream(code_chars: int = 24_000, answer_chars: int = 100_000) -> bytes:
    """One code block of ``code_chars`` then an answer of ``answer_chars``, ~6 per delta."""
    run = {"id": "run_b", "object": "thread.run", "status": "in_progress", **IDS}
    out = [encode_event("thread.run.created", run)]
    for name, data in paced_events("code", code_chars)[1:-1]:
        out.append(encode_event(name, data))
    for name, data in paced_events("text", answer_chars)[1:-1]:
        out.append(encode_event(name, data))
    out.append(encode_event("thread.run.completed", run | {"status": "completed"}))
    out.append(encode_done())
    return b"".join(out)


def _code_step(step_id: str, deltas: int) -> list[bytes]:
    step = {
        "id": step_id,
        "object": "thread.run.step",
        "type": "tool_calls",
        "status": "in_progress",
        "step_details": {"type": "tool_calls", "tool_calls": []},
    }
    events = [encode_event("thread.run.step.created", step)]
    first = {
        "index": 0,
        "id": f"call_{step_id}",
        "type": "code_interpreter",
        "code_interpreter": {"input": "", "outputs": []},
    }
    events.append(_step_delta(step_id, first))
    for i in range(deltas - 2):
        piece = {"index": 0, "type": "code_interpreter", "code_interpreter": {"input": f"x{i} "}}
        events.append(_step_delta(step_id, piece))
    logs = {
        "index": 0,
        "type": "code_interpreter",
        "code_interpreter": {"outputs": [{"index": 0, "type": "logs", "logs": "ok\n"}]},
    }
    events.append(_step_delta(step_id, logs))
    events.append(encode_event("thread.run.step.completed", step | {"status": "completed"}))
    return events


def _step_delta(step_id: str, call: dict[str, Any]) -> bytes:
    delta = {"step_details": {"type": "tool_calls", "tool_calls": [call]}}
    return encode_event(
        "thread.run.step.delta", {"id": step_id, "object": "thread.run.step.delta", "delta": delta}
    )


def _message(message_id: str, deltas: int) -> list[bytes]:
    message = {
        "id": message_id,
        "object": "thread.message",
        "role": "assistant",
        "content": [],
        "status": "in_progress",
        **IDS,
    }
    events = [encode_event("thread.message.created", message)]
    for i in range(deltas):
        part = {"index": 0, "type": "text", "text": {"value": f" word{i % 97}"}}
        events.append(
            encode_event(
                "thread.message.delta",
                {"id": message_id, "object": "thread.message.delta", "delta": {"content": [part]}},
            )
        )
    return events


def client_for(body: bytes) -> openai.OpenAI:
    """A real openai client whose transport answers every request with ``body``, in chunks."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        chunks = (body[i : i + CHUNK] for i in range(0, len(body), CHUNK))
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=chunks)

    http = httpx2.Client(transport=httpx2.MockTransport(handler))
    return openai.OpenAI(base_url="http://bench.invalid/v1", api_key="bench", http_client=http)


class CountingSink:
    """Counts the bytes of every display message and widget ``outputs`` update."""

    def __init__(self) -> None:
        self.sent = 0
        self.final: list[dict[str, Any]] = []

    def publish(
        self,
        data: dict[str, Any],
        metadata: dict[str, Any] | None = None,
        *,
        transient: dict[str, Any] | None = None,
        update: bool = False,
    ) -> None:
        message = {"data": data, "metadata": metadata or {}, "transient": transient or {}}
        self.sent += len(json.dumps(message))
        if "application/vnd.jupyter.widget-view+json" not in data:
            self.final.append(
                {"output_type": "display_data", "data": data, "metadata": metadata or {}}
            )

    def clear_output(self, wait: bool = False) -> None:
        self.sent += len(json.dumps({"wait": wait}))  # a clear_output message

    def live(self) -> CountingLive:
        return CountingLive(self)


class CountingLive:
    """Stands in for the live widget: counts each batch as its comm message."""

    def __init__(self, sink: CountingSink) -> None:
        self.model_id = uuid.uuid4().hex
        self._sink = sink
        self._n = 0

    def send_batch(self, ops: list[Any]) -> int:
        self._n += 1
        message = {"method": "update", "state": {f"b{self._n}": ops}, "buffer_paths": []}
        sent = len(json.dumps(message, ensure_ascii=False).encode())
        self._sink.sent += sent
        return sent

    def close(self) -> None:
        return None


def run_magic(body: bytes) -> tuple[int, float, RunView, CountingSink]:
    render_module._highlight.cache_clear()  # each run starts cold: no help from the last one
    highlight_module._RECENT.clear()
    sink = CountingSink()
    view = RunView(sink, widget_factory=sink.live)
    backend = SDKBackend(client_for(body), hint="")
    snap, count = Snapshot(), 0
    start = time.perf_counter()
    for name, data in backend.stream_run(RunRequest("bench", assistant_id="asst_b")):
        apply(snap, name, data)
        view.update(snap)
        count += 1
    view.finish(snap)
    return count, time.perf_counter() - start, view, sink


def run_sdk(body: bytes) -> tuple[int, float]:
    client, count = client_for(body), 0
    start = time.perf_counter()
    with client.beta.threads.runs.stream(thread_id="thread_b", assistant_id="asst_b") as stream:
        for _event in stream:
            count += 1
    return count, time.perf_counter() - start


def run_limit(body: bytes) -> tuple[int, float]:
    client, count, loads = client_for(body), 0, json.loads
    start = time.perf_counter()
    with client.beta.threads.runs.with_streaming_response.create(
        thread_id="thread_b", assistant_id="asst_b", stream=True
    ) as response:
        rest = b""
        for chunk in response.iter_bytes():
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            for line in lines:
                if line.startswith(b"data: ") and line != b"data: [DONE]":
                    loads(line[6:])
                    count += 1
    return count, time.perf_counter() - start


def interleaved(body: bytes, rounds: int = 5) -> dict[str, list[Any]]:
    """One warm-up run of every side, then ``rounds`` rounds of magic, SDK, limit in turn."""
    sides: dict[str, Callable[[bytes], Any]] = {
        "magic": run_magic,
        "sdk": run_sdk,
        "limit": run_limit,
    }
    for fn in sides.values():
        fn(body)
    results: dict[str, list[Any]] = {name: [] for name in sides}
    for _ in range(rounds):
        for name, fn in sides.items():
            results[name].append(fn(body))
    return results


def spread(values: list[float]) -> str:
    """Median and range, in milliseconds."""
    ms = sorted(v * 1000 for v in values)
    return f"{statistics.median(ms):8.1f} ms ({ms[0]:.1f}-{ms[-1]:.1f})"


def instant_section(label: str, body: bytes) -> bool:
    """The whole stream at once: magic vs SDK helper vs bare decode, medians of 5 rounds."""
    runs = interleaved(body)
    seconds = {name: [r[1] for r in rs] for name, rs in runs.items()}
    events = runs["magic"][0][0]
    print(f"\n{label}: {len(body):,} bytes, {events:,} events, delivered at once")
    for name, values in seconds.items():
        print(f"  {name:6} {spread(values)}")
    magic, sdk = statistics.median(seconds["magic"]), statistics.median(seconds["sdk"])
    limit = statistics.median(seconds["limit"])
    _, _, view, sink = runs["magic"][-1]
    ratio = sink.sent / len(json.dumps(sink.final))
    goals = [
        ("magic vs SDK runs.stream", sdk / magic, "× faster", "≥ 10×", sdk / magic >= 10),
        ("magic vs bare decode", magic / limit, "× slower", "≤ 3×", magic / limit <= 3),
        ("bytes to front end / final", ratio, "×", "≤ 3×", ratio <= 3),
    ]
    for name, value, unit, goal, ok in goals:
        print(f"  {name:28} {value:6.2f}{unit:9} goal {goal:6} {'met' if ok else 'MISSED'}")
    print(f"  repaints: {view.repaints}")
    return all(ok for *_, ok in goals)


# -- paced delivery: a model's pace, on the view's clock seam ----------------------------

RATES = (100, 500, 2000)  # events a second
ANSWER = 100_000  # characters of Markdown answer
CODE = 50_000  # characters of code streamed into one code-interpreter block


def paced_events(kind: str, size: int) -> list[tuple[str, Any]]:
    """A run that streams ``size`` characters of Markdown or code in ~6-character deltas."""
    run = {"id": "run_p", "object": "thread.run", "status": "in_progress", **IDS}
    events: list[tuple[str, Any]] = [("thread.run.created", run)]
    line = "total = sum(value * 2 for value in range(10))  # sum\n"
    prose = "Some **Markdown** words, a `code span` and more text. "
    text = ((line if kind == "code" else prose) * (size // 40 + 1))[:size]
    pieces = [text[i : i + 6] for i in range(0, len(text), 6)]
    if kind == "code":
        details = {"type": "tool_calls", "tool_calls": []}
        step = {
            "id": "step_p",
            "type": "tool_calls",
            "status": "in_progress",
            "step_details": details,
        }
        events.append(("thread.run.step.created", step))
        for piece in pieces:
            call = {"index": 0, "type": "code_interpreter", "code_interpreter": {"input": piece}}
            delta = {"step_details": {"type": "tool_calls", "tool_calls": [call]}}
            events.append(("thread.run.step.delta", {"id": "step_p", "delta": delta}))
    else:
        events.append(
            ("thread.message.created", {"id": "msg_p", "role": "assistant", "content": [], **IDS})
        )
        for piece in pieces:
            part = {"index": 0, "type": "text", "text": {"value": piece}}
            events.append(("thread.message.delta", {"id": "msg_p", "delta": {"content": [part]}}))
    events.append(("thread.run.completed", run | {"status": "completed"}))
    return events


def run_paced(events: list[tuple[str, Any]], rate: float) -> dict[str, float]:
    """Feed events at ``rate``; the view's clock is the later of arrival time and real time."""
    render_module._highlight.cache_clear()
    highlight_module._RECENT.clear()
    events = json.loads(json.dumps(events))  # apply() folds deltas into the created objects
    sink, virtual = CountingSink(), [0.0]
    start = time.perf_counter()

    def clock() -> float:  # paint time counts: falling behind shows as real time passing
        return max(virtual[0], time.perf_counter() - start)

    view = RunView(sink, clock=clock, widget_factory=sink.live)
    snap, first_arrival, first_shown, before = Snapshot(), None, None, 0
    for n, (name, data) in enumerate(events):
        virtual[0] = n / rate
        apply(snap, name, data)
        if first_arrival is None and "delta" in name:
            first_arrival, before = clock(), view.repaints
        view.update(snap)
        if view.wait() < 1 / rate:  # the trailing timer fires before the next event
            virtual[0] = max(virtual[0], clock() + view.wait())
            view.update(snap)
        if first_shown is None and first_arrival is not None and view.repaints > before:
            first_shown = clock()  # the repaint that carried the first token
    lag = (time.perf_counter() - start) - (len(events) - 1) / rate
    view.finish(snap)
    final = len(json.dumps(sink.final))
    duration = max(len(events) / rate, time.perf_counter() - start)
    return {
        "bytes": sink.sent / final,
        "repaints_per_s": view.repaints / duration,
        "first_ms": ((first_shown or 0) - (first_arrival or 0)) * 1000,
        "lag_s": max(0.0, lag),
    }


def paced_section(rounds: int = 3) -> bool:
    """Bytes, repaints and first-token delay at a model's pace (100 KB answer, 50 KB code)."""
    print(
        f"\npaced delivery (view clock = arrival time, or real time when behind; rounds of "
        f"{rounds} interleaved across rates; medians, first token and lag: worst round):"
    )
    print(f"  {'stream':24} {'bytes/final':>12} {'repaints/s':>11} {'first token':>12} {'lag':>7}")
    met = True
    for kind, size in (("text", ANSWER), ("code", CODE)):
        events = paced_events(kind, size)
        run_paced(events[:2000], 2000)  # warm-up: imports, Pygments' lexer, caches
        results: dict[int, list[dict[str, float]]] = {rate: [] for rate in RATES}
        for _ in range(rounds):
            for rate in RATES:
                results[rate].append(run_paced(events, rate))
        for rate, rs in results.items():
            row = {
                "bytes": statistics.median(r["bytes"] for r in rs),
                "repaints_per_s": statistics.median(r["repaints_per_s"] for r in rs),
                "first_ms": max(r["first_ms"] for r in rs),
                "lag_s": max(r["lag_s"] for r in rs),
            }
            ok = row["bytes"] <= 3 and row["repaints_per_s"] <= 30 and row["first_ms"] <= 50
            ok = ok and row["lag_s"] <= 0.5
            met = met and ok
            label = f"{kind} {size // 1000} KB @ {rate}/s"
            print(
                f"  {label:24} {row['bytes']:>11.2f}× {row['repaints_per_s']:>11.1f} "
                f"{row['first_ms']:>9.1f} ms {row['lag_s']:>6.2f}s {'met' if ok else 'MISSED'}"
            )
    print("  goals: bytes ≤ 3× final, ≤ 30 repaints/s, first token ≤ 50 ms, lag ≤ 0.5 s")
    return met


def main() -> None:
    warnings.simplefilter("ignore", DeprecationWarning)
    met = instant_section("mixed stream (10 rounds of small code + text)", build_stream())
    met &= instant_section("big stream (24 KB code, 100 KB answer)", build_big_stream())
    met &= paced_section()
    print("\nall goals met" if met else "\nNOT all goals met")


if __name__ == "__main__":
    main()
