"""Code interpreter latency, measured side by side in one run, each goal printed beside it.

    python bench/bench_kernels.py [--rounds 50] [--starts 3]

1. Warm round trip of ``print(1)`` on a thread whose kernel runs: the bubblewrap
   sandbox vs an unconfined kernel (``code_sandbox=off``), both through
   ``KernelSandbox.execute`` (goal: ≤ 1.1×); a bare ``jupyter_client`` execute on a
   running kernel of the same kind is shown for the sandbox's own overhead.
2. Sandbox start cost: first ``print(1)`` on a new thread, no pool, no preload,
   sandboxed vs unconfined (the ratio is what the sandbox adds to a cold start).
3. Warm pool vs no pool with identical preload: the first code on a new thread
   imports numpy, pandas and matplotlib; pooled kernels did that ahead, the cold
   side does it in the timed code. Also a burst of two new threads back to back.
4. Time to first logs right after server start (real server, real SDK over
   loopback): the same importing code, pool of 2 vs no pool.
Medians of interleaved rounds, with min and max.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from asst_magic.server import ServerConfig, start_in_thread
from asst_magic.server.code_interpreter.kernels import DEFAULT_PRELOAD, KernelSandbox
from asst_magic.server.code_interpreter.process import KernelProcess, kernel_env

__all__ = ["main"]

IMPORTS = "import numpy, pandas, matplotlib.pyplot\nprint(1)"


async def timed(fn: Callable[[], Awaitable[object]]) -> float:
    """Seconds one call of ``fn`` takes."""
    start = time.perf_counter()
    await fn()
    return time.perf_counter() - start


async def drain(box: KernelSandbox, thread: str, code: str) -> None:
    """Run ``code`` and consume its outputs."""
    async for _ in box.execute(thread, code):
        pass


async def warm_round_trips(root: Path, mode: str, rounds: int) -> list[float]:
    """``print(1)`` round trips through ``KernelSandbox`` on a warm thread."""
    box = KernelSandbox(root, pool_size=0, preload=(), sandbox=mode)
    try:
        for _ in range(4):  # starts the thread's kernel, then warms up
            await drain(box, "bench-warm", "print(1)")
        return [await timed(lambda: drain(box, "bench-warm", "print(1)")) for _ in range(rounds)]
    finally:
        await box.aclose()


async def bare_round_trips(root: Path, rounds: int) -> list[float]:
    """Round trips on an unconfined kernel of the same kind, driven by a bare client."""
    for folder in (root / "work", root / "runtime"):
        folder.mkdir(parents=True)
    kernel = await KernelProcess.start(
        cwd=root / "work",
        runtime_dir=root / "runtime",
        env=kernel_env(root / "ipython"),
        memory_limit_bytes=2 * 1024**3,
    )
    client = kernel.client

    async def once() -> None:
        msg_id = client.execute("print(1)")
        while True:
            msg = await client.get_iopub_msg(timeout=30)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return

    try:
        for _ in range(3):
            await once()
        return [await timed(once) for _ in range(rounds)]
    finally:
        await kernel.shutdown()


async def first_run(
    root: Path, *, mode: str, pool: int, code: str, threads: int = 1
) -> list[float]:
    """First ``code`` on ``threads`` new threads, back to back, after the pool is full."""
    preload = DEFAULT_PRELOAD if pool else ()
    box = KernelSandbox(root, pool_size=pool, preload=preload, sandbox=mode)
    try:
        await box.start()
        return [await timed(lambda n=n: drain(box, f"bench-{n}", code)) for n in range(threads)]
    finally:
        await box.aclose()


def first_logs_after_start(root: Path, pool: int) -> float:
    """Seconds from starting a server to the first logs of a code run on a new thread."""
    import openai

    root.mkdir(parents=True)
    cassette = root / "cassette.jsonl"
    call = {"tool_calls": [{"type": "code_interpreter", "input": IMPORTS}]}
    cassette.write_text(json.dumps({"user": "go", "turns": [call, {"text": "ok"}]}) + "\n")
    start = time.perf_counter()
    config = ServerConfig(data_dir=root / "data", cassettes=(cassette,), code_pool_size=pool)
    with start_in_thread(config) as handle, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        client = openai.OpenAI(base_url=handle.base_url, api_key=handle.token, max_retries=0)
        assistant = client.beta.assistants.create(
            model="replay", tools=[{"type": "code_interpreter"}]
        )
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "go"}])
        stream = client.beta.threads.runs.create(
            thread_id=thread.id, assistant_id=assistant.id, stream=True
        )
        for event in stream:
            if event.event == "thread.run.step.delta" and _has_logs(event.data):
                elapsed = time.perf_counter() - start
                break
        stream.close()
    return elapsed


def _has_logs(step: Any) -> bool:
    details = step.delta.step_details
    calls = getattr(details, "tool_calls", None) or []
    return any(
        o.type == "logs"
        for c in calls
        if c.type == "code_interpreter"
        for o in (c.code_interpreter.outputs or [])
    )


def row(label: str, times: list[float]) -> float:
    """Print one result line; return the median in seconds."""
    median = statistics.median(times)
    spread = f"min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f} ms"
    print(f"  {label:<52} median {median * 1000:8.1f} ms  ({spread})")
    return median


def verdict(label: str, ratio: float, goal: str, met: bool) -> None:
    """Print a measured ratio beside its goal."""
    print(f"  {label}: {ratio:.2f}x   goal {goal}: {'MET' if met else 'NOT MET'}")


async def measure(root: Path, rounds: int, starts: int) -> dict[str, list[float]]:
    """Every measurement, the compared sides interleaved round by round."""
    found: dict[str, list[float]] = {}

    def add(key: str, values: list[float]) -> None:
        found.setdefault(key, []).extend(values)

    for n in range(2):  # interleaved halves
        add("bare", await bare_round_trips(root / f"bare{n}", rounds // 2))
        add("warm_off", await warm_round_trips(root / f"off{n}", "off", rounds // 2))
        add("warm_box", await warm_round_trips(root / f"box{n}", "required", rounds // 2))
    for n in range(starts):
        add("cold_off", await first_run(root / f"c-off{n}", mode="off", pool=0, code="print(1)"))
        add(
            "cold_box",
            await first_run(root / f"c-box{n}", mode="required", pool=0, code="print(1)"),
        )
        add("nopool", await first_run(root / f"np{n}", mode="auto", pool=0, code=IMPORTS))
        burst = await first_run(root / f"p{n}", mode="auto", pool=2, code=IMPORTS, threads=2)
        add("pool", burst[:1])
        add("burst2", burst[1:])
    for n in range(starts):
        add("start_nopool", [await asyncio.to_thread(first_logs_after_start, root / f"s0{n}", 0)])
        add("start_pool", [await asyncio.to_thread(first_logs_after_start, root / f"s2{n}", 2)])
    return found


def report(found: dict[str, list[float]], rounds: int, starts: int) -> None:
    """Print the rows, ratios and goals."""
    print(f"1. Warm round trip, print(1), {rounds} rounds:")
    box, off = (
        row("sandboxed (bubblewrap)", found["warm_box"]),
        row("unconfined", found["warm_off"]),
    )
    bare = row("bare jupyter_client, unconfined kernel", found["bare"])
    verdict("sandboxed / unconfined", box / off, "<= 1.10x", box / off <= 1.10)
    print(f"  (unconfined KernelSandbox / bare client: {off / bare:.2f}x)")
    print(f"2. Sandbox start cost: first print(1) on a new thread, no pool, {starts} starts:")
    box, off = row("sandboxed", found["cold_box"]), row("unconfined", found["cold_off"])
    print(f"  sandboxed / unconfined cold start: {box / off:.2f}x   (no goal: the sandbox's price)")
    print(f"3. First numpy/pandas/matplotlib run on a new thread, {starts} rounds:")
    cold, pooled = (
        row("no pool (imports in the timed code)", found["nopool"]),
        row("warm pool of 2 (imports preloaded)", found["pool"]),
    )
    burst = row("second new thread right after (pool of 2)", found["burst2"])
    verdict("pool / no pool", pooled / cold, "<= 0.50x", pooled / cold <= 0.5)
    verdict("burst's second thread / first", burst / pooled, "<= 1.50x", burst / pooled <= 1.5)
    print(f"4. Time to first logs right after server start (same code), {starts} starts:")
    cold, pooled = row("no pool", found["start_nopool"]), row("pool of 2", found["start_pool"])
    print(
        f"  pool / no pool: {pooled / cold:.2f}x   (no goal set: no kernel can be warm yet,"
        " so both sides wait for one to start; a pool must not make it slower)"
    )


def main() -> None:
    """Parse arguments and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50, help="warm round trips to time")
    parser.add_argument("--starts", type=int, default=3, help="new threads/servers per mode")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        found = asyncio.run(measure(Path(tmp), args.rounds, args.starts))
    report(found, args.rounds, args.starts)


if __name__ == "__main__":
    main()
