"""Fixtures for server tests: a real server on a loopback socket, driven by the real openai SDK."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import openai
import pytest
from postgres_support import PostgresCluster
from server_support import Entry, ReplicaSet, client_for, write_cassette

from asst_magic.server import ServerConfig, ServerHandle, start_in_thread


@pytest.fixture(autouse=True)
def _quiet_deprecations() -> Iterator[None]:
    # The SDK marks the whole Assistants API deprecated; that is the API this server serves.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A module with ``STORES = BOTH_STORES`` runs its server tests on SQLite and PostgreSQL."""
    kinds = getattr(metafunc.module, "STORES", None)
    if kinds and "store_kind" in metafunc.fixturenames:
        metafunc.parametrize("store_kind", kinds, indirect=True)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """One throwaway PostgreSQL cluster for the whole session, started on first use."""
    cluster = PostgresCluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture
def postgres_url(postgres_cluster: PostgresCluster) -> str:
    """A fresh PostgreSQL database's URL, for tests about PostgreSQL alone."""
    return postgres_cluster.new_database()


@pytest.fixture
def store_kind(request: pytest.FixtureRequest) -> str:
    """``sqlite`` unless the module parametrizes it."""
    kind: str = getattr(request, "param", "sqlite")
    return kind


@pytest.fixture
def database_url(store_kind: str, request: pytest.FixtureRequest) -> str | None:
    """``None`` (SQLite under the data dir), or a fresh PostgreSQL database's URL."""
    if store_kind == "sqlite":
        return None
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    return cluster.new_database()


@pytest.fixture
def start_server(tmp_path: Path, database_url: str | None) -> Iterator[Callable[..., ServerHandle]]:
    """Start servers over cassettes; every one is stopped at teardown."""
    handles: list[ServerHandle] = []

    def start(
        entries: list[Entry] | None = None,
        *,
        models: Any = None,
        **options: Any,
    ) -> ServerHandle:
        """Pass ``sandbox=`` to use one; else ``code_interpreter=True`` uses the real one."""
        cassettes = options.pop("cassettes", ())
        sandbox = {"sandbox": options.pop("sandbox")} if "sandbox" in options else {}
        if entries is not None:
            cassettes = (write_cassette(tmp_path / f"c{len(handles)}.jsonl", entries),)
        options.setdefault("data_dir", tmp_path / "data")
        options.setdefault("database_url", database_url)
        options.setdefault("code_interpreter", False)
        config = ServerConfig(cassettes=tuple(cassettes), **options)
        handle = start_in_thread(config, models=models, **sandbox)
        handles.append(handle)
        if config.database_url is None or sandbox or models is not None:
            return handle  # a test's own sandbox or models object serves one server only
        # On PostgreSQL the suite runs on two replicas; ``client_for`` alternates them.
        second = replace(config, data_dir=config.data_dir.with_name(f"{config.data_dir.name}-2"))
        handles.append(start_in_thread(replace(second, token=handle.token)))
        return ReplicaSet([handle, handles[-1]])

    yield start
    for handle in handles:
        handle.stop()


@pytest.fixture
def serve(start_server: Callable[..., ServerHandle]) -> Callable[..., openai.OpenAI]:
    """Start a server over cassette entries and return an SDK client for it."""

    def make(entries: list[Entry] | None = None, **options: Any) -> openai.OpenAI:
        return client_for(start_server(entries, **options))

    return make
