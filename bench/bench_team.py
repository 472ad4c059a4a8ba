"""Benchmark: a team's load on two PostgreSQL replicas against one SQLite server.

Run: ``python bench/bench_team.py``. Needs Debian's ``postgresql`` binaries (the
bench starts a throwaway cluster, as the tests do). USERS users, each with their
own token, run RUNS streamed runs each (create thread and run, read the stream to
the end), all users at once, after one unmeasured warm-up run per server. The same
load goes to one SQLite server and to two replicas on one PostgreSQL database, with
each user's requests alternating between the replicas as a round-robin load
balancer would send them. Every server is a separate process. Reported side by
side in one run: completed runs per second, and p50/p99 time from request to the
first SSE event; then the ratios.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "server"))

from postgres_support import PostgresCluster

from asst_magic.server import ServerConfig, ServerHandle, spawn
from asst_magic.server.store import open_store
from asst_magic.server.store.users import Users
from asst_magic.sse import SSEDecoder

USERS = 8
RUNS = 60
CHUNKS = 40


def add_users(config: ServerConfig) -> list[str]:
    """Tokens for USERS new users of ``config``'s store."""
    store = open_store(config)
    try:
        return [Users(store.database).add(f"user{i}") for i in range(USERS)]
    finally:
        store.close()


def one_run(client: httpx2.Client, url: str, assistant: str) -> float:
    """Stream one create-thread-and-run to its end; seconds to its first event."""
    body = {
        "assistant_id": assistant,
        "stream": True,
        "thread": {"messages": [{"role": "user", "content": "Hello"}]},
    }
    start, first, decoder = time.perf_counter(), 0.0, SSEDecoder()
    with client.stream("POST", f"{url}/threads/runs", json=body) as response:
        response.raise_for_status()
        for chunk in response.iter_bytes():
            if decoder.feed(chunk) and not first:
                first = time.perf_counter()
    return first - start


def user(urls: list[str], token: str, firsts: list[float], go: threading.Barrier) -> None:
    """One user: an assistant of their own, then RUNS runs, alternating ``urls``."""
    headers = {"authorization": f"Bearer {token}"}
    with httpx2.Client(headers=headers, timeout=120) as client:
        created = client.post(f"{urls[0]}/assistants", json={"model": "replay"})
        assistant = created.raise_for_status().json()["id"]
        for url in urls:  # warm-up, not measured: connections, first queries
            one_run(client, url, assistant)
        go.wait(timeout=120)
        for i in range(RUNS):
            firsts.append(one_run(client, urls[i % len(urls)], assistant))


def load(handles: list[ServerHandle], tokens: list[str]) -> tuple[float, list[float]]:
    """All users at once: (runs per second, seconds to first event of every run)."""
    urls = [h.base_url for h in handles]
    firsts: list[float] = []
    go = threading.Barrier(USERS + 1)
    workers = [
        threading.Thread(
            target=user, args=(urls[i % len(urls) :] + urls[: i % len(urls)], t, firsts, go)
        )
        for i, t in enumerate(tokens)
    ]
    for worker in workers:
        worker.start()
    go.wait(timeout=120)
    start = time.perf_counter()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - start
    if len(firsts) != USERS * RUNS:
        raise RuntimeError(f"only {len(firsts)} of {USERS * RUNS} runs finished")
    return len(firsts) / elapsed, firsts


def sqlite_side(base: ServerConfig) -> tuple[float, list[float]]:
    tokens = add_users(base)
    with spawn(base) as handle:
        return load([handle], tokens)


def postgres_side(base: ServerConfig, url: str) -> tuple[float, list[float]]:
    first = replace(base, data_dir=base.data_dir.with_name("pg-a"), database_url=url)
    second = replace(first, data_dir=base.data_dir.with_name("pg-b"))
    tokens = add_users(first)
    with spawn(first) as a, spawn(second) as b:
        return load([a, b], tokens)


def percentile(values: list[float], q: float) -> float:
    return (
        statistics.quantiles(values, n=100, method="inclusive")[q - 1] if q < 100 else max(values)
    )


def row(name: str, rate: float, firsts: list[float]) -> tuple[float, float, float]:
    p50, p99 = statistics.median(firsts), percentile(firsts, 99)
    print(f"{name:<30} {rate:>9.1f} {p50 * 1000:>14.1f} {p99 * 1000:>14.1f}")
    return rate, p50, p99


def main() -> None:
    cluster = PostgresCluster.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            cassette = Path(tmp) / "bench.jsonl"
            entry = {"user": "Hello", "turns": [{"text": [f"w{i} " for i in range(CHUNKS)]}]}
            cassette.write_text(json.dumps(entry) + "\n")
            base = ServerConfig(
                data_dir=Path(tmp) / "sqlite",
                cassettes=(cassette,),
                code_interpreter=False,
                token="sk-local-bench-admin",
            )
            print(
                f"{USERS} users x {RUNS} streamed runs each, all users at once "
                f"({CHUNKS} text chunks per run)\n"
            )
            print(f"{'server':<30} {'runs/s':>9} {'p50 first ms':>14} {'p99 first ms':>14}")
            lite = row("SQLite, 1 server", *sqlite_side(base))
            pg = row("PostgreSQL, 2 replicas", *postgres_side(base, cluster.new_database()))
    finally:
        cluster.stop()
    print(
        f"\nratios (PostgreSQL x2 / SQLite x1): runs/s {pg[0] / lite[0]:.2f}x, "
        f"p50 first event {pg[1] / lite[1]:.2f}x, p99 first event {pg[2] / lite[2]:.2f}x"
    )


if __name__ == "__main__":
    main()
