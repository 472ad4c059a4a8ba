"""Code interpreter latency, measured side by side in one run.

    python bench/bench_kernels.py [--rounds 50] [--starts 3]

1. Warm round trip of ``print(1)``: ``KernelSandbox.execute`` on a thread whose
   kernel is running vs a bare ``jupyter_client`` execute (send, read IOPub to
   idle) on an already-running kernel of the same kind (the ratio is the
   sandbox's own overhead); a stock ``python3`` kernel is shown for reference.
2. First execution on a new thread: with a warm pool (kernel already started
   and preloaded) vs without (``pool_size=0``: a kernel starts on demand).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from jupyter_client.manager import AsyncKernelManager

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from asst_magic.server.code_interpreter.kernels import KernelSandbox
from asst_magic.server.code_interpreter.process import KernelProcess, kernel_env

__all__ = ["main"]


async def timed(fn: Callable[[], Awaitable[object]]) -> float:
    """Seconds one call of ``fn`` takes."""
    start = time.perf_counter()
    await fn()
    return time.perf_counter() - start


async def drain(box: KernelSandbox, thread: str, code: str) -> None:
    """Run ``code`` and consume its outputs."""
    async for _ in box.execute(thread, code):
        pass


async def client_round_trips(client: Any, rounds: int) -> list[float]:
    """``print(1)`` round trips (send, read IOPub until idle) on a running kernel's client."""

    async def once() -> None:
        msg_id = client.execute("print(1)")
        while True:
            msg = await client.get_iopub_msg(timeout=30)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return

    for _ in range(3):
        await once()  # warm-up
    return [await timed(once) for _ in range(rounds)]


async def bare_same_kernel(root: Path, rounds: int) -> list[float]:
    """Round trips on the sandbox's kind of kernel, driven by a bare client."""
    for folder in (root / "work", root / "runtime"):
        folder.mkdir(parents=True)
    kernel = await KernelProcess.start(
        cwd=root / "work",
        runtime_dir=root / "runtime",
        env=kernel_env(root / "ipython"),
        memory_limit_bytes=2 * 1024**3,
    )
    try:
        return await client_round_trips(kernel.client, rounds)
    finally:
        await kernel.shutdown()


async def bare_default_kernel(rounds: int) -> list[float]:
    """Round trips on a stock ``python3`` ipykernel (history on), for reference."""
    manager = AsyncKernelManager(kernel_name="python3")
    await manager.start_kernel(stderr=subprocess.DEVNULL)
    client = manager.client()
    client.start_channels()
    await client.wait_for_ready(timeout=60)
    try:
        return await client_round_trips(client, rounds)
    finally:
        client.stop_channels()
        await manager.shutdown_kernel(now=True)


async def sandbox_round_trips(root: Path, rounds: int) -> list[float]:
    """``print(1)`` round trips through ``KernelSandbox`` on a warm thread."""
    box = KernelSandbox(root, pool_size=0, preload=())
    try:
        for _ in range(4):  # starts the thread's kernel, then warms up
            await drain(box, "bench-warm", "print(1)")
        return [await timed(lambda: drain(box, "bench-warm", "print(1)")) for _ in range(rounds)]
    finally:
        await box.aclose()


async def first_runs(root: Path, starts: int, pool_size: int) -> list[float]:
    """First ``print(1)`` on ``starts`` new threads; the pool is refilled between them."""
    box = KernelSandbox(root, pool_size=pool_size)
    times = []
    try:
        for n in range(starts):
            await box.start()  # a full pool (no-op without one)
            times.append(await timed(functools.partial(drain, box, f"bench-new-{n}", "print(1)")))
        return times
    finally:
        await box.aclose()


def row(label: str, times: list[float]) -> float:
    """Print one result line; return the median in seconds."""
    median = statistics.median(times)
    print(f"  {label:<44} median {median * 1000:8.1f} ms  (min {min(times) * 1000:.1f} ms)")
    return median


async def run(rounds: int, starts: int) -> None:
    """Measure both comparisons and print them with their ratios."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bare = await bare_same_kernel(root / "bare", rounds)
        stock = await bare_default_kernel(rounds)
        ours = await sandbox_round_trips(root / "warm", rounds)
        pooled = await first_runs(root / "pooled", starts, pool_size=1)
        cold = await first_runs(root / "cold", starts, pool_size=0)
    print(f"Warm round trip, print(1), {rounds} rounds:")
    ratio = row("KernelSandbox.execute", ours) / row("bare jupyter_client, same kernel", bare)
    row("bare jupyter_client, stock python3 kernel", stock)
    print(f"  ratio sandbox / bare (same kernel): {ratio:.2f}x")
    print(f"First execution on a new thread, {starts} threads:")
    speedup = row("without pool (kernel starts on demand)", cold) / row(
        "with warm pool (pool_size=1)", pooled
    )
    print(f"  ratio without / with pool: {speedup:.1f}x faster with the pool")


def main() -> None:
    """Parse arguments and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50, help="warm round trips to time")
    parser.add_argument("--starts", type=int, default=3, help="new threads to time per mode")
    args = parser.parse_args()
    asyncio.run(run(args.rounds, args.starts))


if __name__ == "__main__":
    main()
