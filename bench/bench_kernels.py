"""Code interpreter latency, measured side by side in one run, each goal printed beside it.

    python bench/bench_kernels.py [--rounds 200] [--starts 3]

1. Warm round trip of ``print(1)`` on a thread whose kernel runs: the bubblewrap
   sandbox vs an unconfined kernel (``code_sandbox=off``), both through
   ``KernelSandbox.execute`` (goal: ≤ 1.1×); a bare ``jupyter_client`` execute on a
   running kernel of the same kind is shown for the sandbox's own overhead. The three
   kernels run at once and each round times one trip on each, so noise hits all three.
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


async def warm_round_trips(root: Path, rounds: int) -> dict[str, list[float]]:
    """``print(1)`` round trips on three warm kernels, alive at once, timed in turn each round.

    ``warm_box`` / ``warm_off``: a sandboxed and an unconfined thread kernel through
    ``KernelSandbox.execute``; ``bare``: an unconfined kernel driven by a bare client.
    """
    boxes = [
        KernelSandbox(root / mode, pool_size=0, preload=(), sandbox=mode)
        for mode in ("required", "off")
    ]
    kernel = await _bare_kernel(root / "bare")
    sides: dict[str, Callable[[], Awaitable[object]]] = {
        "warm_box": lambda: drain(boxes[0], "bench-warm", "print(1)"),
        "warm_off": lambda: drain(boxes[1], "bench-warm", "print(1)"),
        "bare": lambda: _bare_print(kernel),
    }
    try:
        for _ in range(4):  # starts each thread's kernel, then warms up
            for once in sides.values():
                await once()
        found: dict[str, list[float]] = {name: [] for name in sides}
        for _ in range(rounds):
            for name, once in sides.items():
                found[name].append(await timed(once))
        return found
    finally:
        for box in boxes:
            await box.aclose()
        await kernel.shutdown()


async def _bare_kernel(root: Path) -> KernelProcess:
    """An unconfined kernel of the kind the sandbox starts, without ``KernelSandbox``."""
    for folder in (root / "work", root / "runtime"):
        folder.mkdir(parents=True)
    return await KernelProcess.start(
        cwd=root / "work",
        runtime_dir=root / "runtime",
        env=kernel_env(root / "ipython"),
        memory_limit_bytes=2 * 1024**3,
    )


async def _bare_print(kernel: KernelProcess) -> None:
    """``print(1)`` through the kernel's own client, until the kernel is idle again."""
    client = kernel.client
    msg_id = client.execute("print(1)")
    while True:
        msg = await client.get_iopub_msg(timeout=30)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return


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

    for key, values in (await warm_round_trips(root / "warm", rounds)).items():
        add(key, values)
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
    parser.add_argument("--rounds", type=int, default=200, help="warm round trips to time")
    parser.add_argument("--starts", type=int, default=3, help="new threads/servers per mode")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        found = asyncio.run(measure(Path(tmp), args.rounds, args.starts))
    report(found, args.rounds, args.starts)


if __name__ == "__main__":
    main()
