"""The server's durable state: API objects and uploaded file bytes, in SQLite or PostgreSQL.

>>> store = open_store(ServerConfig(data_dir=Path("data")))  # doctest: +SKIP
"""

from __future__ import annotations

from asst_magic.server.api.errors import StartupError
from asst_magic.server.config import ServerConfig
from asst_magic.server.store.base import Store
from asst_magic.server.store.database import Database
from asst_magic.server.store.migrations import migrate
from asst_magic.server.store.postgres import SCHEMES

__all__ = ["Store", "open_database", "open_store"]


def open_store(config: ServerConfig) -> Store:
    """The store ``config`` names, migrated to the newest schema."""
    db = open_database(config)
    try:
        migrate(db)
    except BaseException:
        db.close()
        raise
    return Store(db)


def open_database(config: ServerConfig) -> Database:
    """PostgreSQL when ``config.database_url`` is set, else SQLite under ``config.data_dir``."""
    url = config.database_url
    if not url:
        from asst_magic.server.store.sqlite import SQLiteDatabase

        return SQLiteDatabase.open(config.data_dir)
    if not url.startswith(SCHEMES):
        raise StartupError(
            f"Unsupported --database-url scheme in {url.split(':', 1)[0]!r}: use "
            "postgresql://USER@HOST/DBNAME, or leave it out for SQLite under --data-dir."
        )
    from asst_magic.server.store.postgres import PostgresDatabase

    return PostgresDatabase.open(url, config.data_dir / "file-cache")
