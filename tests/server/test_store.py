"""The two stores: versioned migrations, start-up errors, and PostgreSQL chosen by URL or env."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from server_support import BOTH_STORES, client_for

from asst_magic.server import ServerConfig, spawn, start_in_thread
from asst_magic.server.api.errors import StartupError
from asst_magic.server.store import open_store
from asst_magic.server.store.migrations import MIGRATIONS, migrate

STORES = BOTH_STORES


def test_each_migration_is_applied_once(tmp_path: Path, database_url: str | None) -> None:
    config = ServerConfig(data_dir=tmp_path, database_url=database_url)
    store = open_store(config)
    store.put("assistant", {"id": "asst_1", "name": "kept"})
    db = store.database
    versions = db.rows("SELECT version FROM schema_migrations ORDER BY version")
    assert [v for (v,) in versions] == list(range(1, len(MIGRATIONS[db.dialect]) + 1))
    assert migrate(db) == 0
    store.close()
    again = open_store(config)
    assert again.get("assistant", "asst_1") == {"id": "asst_1", "name": "kept"}
    again.close()


def test_a_newer_schema_refuses_to_start_and_says_why(
    tmp_path: Path, database_url: str | None
) -> None:
    config = ServerConfig(data_dir=tmp_path, database_url=database_url)
    store = open_store(config)
    store.database.run("INSERT INTO schema_migrations (version, applied_at) VALUES (99, 'later')")
    store.close()
    with pytest.raises(StartupError, match="schema is at version 99, newer than this") as info:
        open_store(config)
    assert "Upgrade asst_magic" in str(info.value)


def test_sqlite_data_from_before_schema_versions_carries_on(tmp_path: Path) -> None:
    old = sqlite3.connect(tmp_path / "asst.sqlite3")
    old.executescript(
        "CREATE TABLE objects (id TEXT PRIMARY KEY, kind TEXT NOT NULL, thread_id TEXT,"
        " run_id TEXT, status TEXT, seq INTEGER NOT NULL, data TEXT NOT NULL);"
        """INSERT INTO objects VALUES ('asst_old', 'assistant', NULL, NULL, NULL, 5,
        '{"id": "asst_old"}');"""
    )
    old.commit()
    old.close()
    store = open_store(ServerConfig(data_dir=tmp_path))
    assert store.get("assistant", "asst_old") == {"id": "asst_old"}
    versions = store.database.rows("SELECT version FROM schema_migrations ORDER BY version")
    assert [v for (v,) in versions] == list(range(1, len(MIGRATIONS["sqlite"]) + 1))
    store.close()


def test_unknown_database_scheme_names_the_supported_one(tmp_path: Path) -> None:
    config = ServerConfig(data_dir=tmp_path, database_url="mysql://db/asst")
    with pytest.raises(StartupError, match=r"Unsupported --database-url scheme in 'mysql'"):
        start_in_thread(config)


def test_cli_unreachable_postgres_is_named_without_its_password(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here once closed
    url = f"postgresql://asst:s3cret@127.0.0.1:{port}/teamdb"
    cmd = [sys.executable, "-m", "asst_magic.server", "serve", "--no-code-interpreter"]
    done = subprocess.run(
        [*cmd, "--data-dir", str(tmp_path), "--database-url", url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.startswith(
        f"asst-magic serve: error: Cannot connect to PostgreSQL at 127.0.0.1:{port}/teamdb: "
    )
    assert "Check --database-url ($ASST_MAGIC_DATABASE_URL)" in done.stderr
    assert "s3cret" not in done.stderr and "Traceback" not in done.stderr


def test_spawned_server_keeps_objects_and_files_in_postgres(
    tmp_path: Path, postgres_url: str
) -> None:
    """The URL reaches the child (through its environment); another server sees it all."""
    spawned = ServerConfig(
        data_dir=tmp_path / "one", database_url=postgres_url, code_interpreter=False
    )
    with spawn(spawned) as handle:
        client = client_for(handle)
        assistant = client.beta.assistants.create(model="replay", name="Shared")
        upload = client.files.create(file=("a.txt", b"abc"), purpose="assistants")
    other = ServerConfig(
        data_dir=tmp_path / "two", database_url=postgres_url, code_interpreter=False
    )
    with start_in_thread(other) as handle:
        client = client_for(handle)
        assert client.beta.assistants.retrieve(assistant.id).name == "Shared"
        assert client.files.content(upload.id).read() == b"abc"
    assert not (tmp_path / "two" / "asst.sqlite3").exists()


def test_get_many_reads_what_exists_of_one_kind(tmp_path: Path, database_url: str | None) -> None:
    store = open_store(ServerConfig(data_dir=tmp_path, database_url=database_url))
    with store.transaction():
        for i in range(1200):
            store.put("model_turn", {"id": f"turn:{i}", "n": i})
        store.put("message", {"id": "turn:msg", "n": -1})
    wanted = [f"turn:{i}" for i in range(0, 1200, 2)] + ["turn:msg", "turn:none"]
    found = store.get_many("model_turn", wanted)
    assert sorted(found) == sorted(wanted[:-2])  # past 500 ids; other kinds and gaps left out
    assert found["turn:1198"]["n"] == 1198
    store.close()
