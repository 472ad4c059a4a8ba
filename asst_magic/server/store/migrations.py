"""Versioned schema migrations, applied in order at start (each version once).

A database remembers the versions it has in ``schema_migrations``. To change the
schema, append a version to both lists; never edit one that has shipped.

>>> migrate(db)  # doctest: +SKIP
"""

from __future__ import annotations

from asst_magic.server.api.errors import StartupError
from asst_magic.server.store.database import Database

__all__ = ["MIGRATIONS", "migrate"]

_OBJECT_INDEXES = (
    "CREATE INDEX IF NOT EXISTS objects_by_thread ON objects (kind, thread_id, seq)",
    "CREATE INDEX IF NOT EXISTS objects_by_run ON objects (kind, run_id, seq)",
    "CREATE INDEX IF NOT EXISTS objects_by_status ON objects (kind, status)",
    "CREATE INDEX IF NOT EXISTS objects_by_thread_seq ON objects (thread_id, seq)",
)

# Version 2: every object has an owner (NULL: the single-user or admin token's), and
# users hold the hashes of their tokens.
_OWNERS = (
    "ALTER TABLE objects ADD COLUMN owner TEXT",
    "CREATE INDEX IF NOT EXISTS objects_by_owner ON objects (kind, owner, seq)",
    "CREATE TABLE IF NOT EXISTS users (name TEXT PRIMARY KEY,"
    " token_sha256 TEXT NOT NULL UNIQUE, created_at BIGINT NOT NULL)",
)

# Version 3: replicas sharing one database. Each object records the replica that
# created it (a run executes there); replicas renew a lease in ``replicas``; the
# database itself allows one active run per thread.
_REPLICAS = (
    "ALTER TABLE objects ADD COLUMN replica TEXT",
    "CREATE UNIQUE INDEX IF NOT EXISTS one_active_run_per_thread ON objects (thread_id)"
    " WHERE kind = 'run'"
    " AND status IN ('queued', 'in_progress', 'requires_action', 'cancelling')",
    "CREATE TABLE IF NOT EXISTS replicas (id TEXT PRIMARY KEY, url TEXT NOT NULL,"
    " heartbeat_ms BIGINT NOT NULL)",
)

# Version 4: "is a run active on this thread?" seeks its few rows instead of walking
# every run the thread ever had (the partial index above takes no bound parameters).
_ACTIVE_RUNS = (
    "CREATE INDEX IF NOT EXISTS objects_by_thread_status ON objects (kind, thread_id, status)",
)

# Each version is a tuple of statements. SQLite's first one matches the schema that
# servers made before versions existed, so their databases carry on unchanged.
MIGRATIONS: dict[str, tuple[tuple[str, ...], ...]] = {
    "sqlite": (
        (
            "CREATE TABLE IF NOT EXISTS objects (id TEXT PRIMARY KEY, kind TEXT NOT NULL,"
            " thread_id TEXT, run_id TEXT, status TEXT, seq INTEGER NOT NULL, data TEXT NOT NULL)",
            *_OBJECT_INDEXES,
        ),
        _OWNERS,
        _REPLICAS,
        _ACTIVE_RUNS,
    ),
    "postgresql": (
        (
            "CREATE TABLE IF NOT EXISTS objects (id TEXT PRIMARY KEY, kind TEXT NOT NULL,"
            " thread_id TEXT, run_id TEXT, status TEXT, seq BIGINT NOT NULL, data TEXT NOT NULL)",
            *_OBJECT_INDEXES,
            "CREATE TABLE IF NOT EXISTS file_bytes (id TEXT PRIMARY KEY, data BYTEA NOT NULL)",
        ),
        _OWNERS,
        _REPLICAS,
        _ACTIVE_RUNS,
    ),
}


def migrate(db: Database) -> int:
    """Bring ``db`` to the newest schema version; returns how many versions were applied."""
    versions = MIGRATIONS[db.dialect]
    db.begin_exclusive()  # two servers starting on one database apply each version once
    try:
        db.run(
            "CREATE TABLE IF NOT EXISTS schema_migrations"
            " (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        current = int(db.rows("SELECT max(version) FROM schema_migrations")[0][0] or 0)
        _check_known(current, len(versions))
        for number in range(current + 1, len(versions) + 1):
            for statement in versions[number - 1]:
                db.run(statement)
            db.run(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?, CURRENT_TIMESTAMP)",
                (number,),
            )
    except BaseException:
        db.run("ROLLBACK")
        raise
    db.run("COMMIT")
    return len(versions) - current


def _check_known(current: int, known: int) -> None:
    if current > known:
        raise StartupError(
            f"The database's schema is at version {current}, newer than this asst_magic "
            f"knows (version {known}): a newer asst_magic wrote it. Upgrade asst_magic "
            "(pip install -U asst-magic), or point --database-url/--data-dir elsewhere."
        )
