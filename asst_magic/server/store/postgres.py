"""PostgreSQL through psycopg 3: objects and uploaded bytes in the database, shared by replicas.

>>> db = PostgresDatabase.open("postgresql://asst@db/asst", Path("cache"))  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from asst_magic.server.api.errors import StartupError
from asst_magic.server.store.database import Row, StoreConflict

__all__ = ["SCHEMES", "PostgresDatabase", "describe_url"]

SCHEMES = ("postgresql://", "postgres://")


class PostgresDatabase:
    """One autocommit connection; uploaded bytes in ``file_bytes``, copied locally on demand."""

    dialect = "postgresql"

    def __init__(self, conn: Any, cache_dir: Path) -> None:
        import psycopg

        self._unique_violation = psycopg.errors.UniqueViolation
        self._conn = conn
        self.cache_dir = cache_dir
        self._seq = 0

    @classmethod
    def open(cls, url: str, cache_dir: Path) -> PostgresDatabase:
        """Connect to ``url``; ``StartupError`` (with no password in it) names the fix."""
        try:
            import psycopg
        except ImportError as exc:
            raise StartupError(
                '--database-url postgresql://… needs psycopg 3: pip install "asst-magic[postgres]".'
            ) from exc
        try:
            conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise StartupError(
                f"Cannot connect to PostgreSQL at {describe_url(url)}: {_first_line(exc)}. "
                "Check --database-url ($ASST_MAGIC_DATABASE_URL) and that the server runs."
            ) from exc
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            conn.close()
            raise StartupError(f"Cannot create {cache_dir}: {exc.strerror}.") from exc
        return cls(conn, cache_dir)

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Execute one statement; the number of rows it changed."""
        try:
            return int(self._conn.execute(_pyformat(sql), params).rowcount)
        except self._unique_violation as exc:
            raise StoreConflict(str(exc)) from exc

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Execute one query and fetch every row."""
        rows: list[Row] = self._conn.execute(_pyformat(sql), params).fetchall()
        return rows

    def begin_exclusive(self) -> None:
        """``BEGIN`` plus a transaction-scoped advisory lock that other replicas wait for."""
        self._conn.execute("BEGIN")
        self._conn.execute("SELECT pg_advisory_xact_lock(hashtext('asst_magic.schema'))")

    def try_lock(self, name: str) -> bool:
        """``pg_try_advisory_xact_lock``: held until the transaction ends."""
        rows = self.rows("SELECT pg_try_advisory_xact_lock(hashtext(?))", (name,))
        return bool(rows[0][0])

    def now_ms(self) -> int:
        """The database server's clock."""
        rows = self.rows("SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint")
        return int(rows[0][0])

    def json_field(self, column: str, key: str) -> str:
        """``(column::jsonb ->> 'key')``."""
        return f"({column}::jsonb ->> '{key}')"

    def next_seq(self) -> int:
        """Microseconds since the epoch, bumped past the last one this process handed out."""
        if not self._seq:
            self._seq = int(self.rows("SELECT max(seq) FROM objects")[0][0] or 0)
        self._seq = max(self._seq + 1, time.time_ns() // 1000)
        return self._seq

    def write_bytes(self, file_id: str, data: bytes) -> None:
        """Insert into ``file_bytes``."""
        self.run("INSERT INTO file_bytes (id, data) VALUES (?, ?)", (file_id, data))

    def read_bytes(self, file_id: str) -> bytes:
        """Read from ``file_bytes`` (``FileNotFoundError`` when gone)."""
        rows = self.rows("SELECT data FROM file_bytes WHERE id = ?", (file_id,))
        if not rows:
            raise FileNotFoundError(file_id)
        return bytes(rows[0][0])

    def delete_bytes(self, file_id: str) -> None:
        """Delete from ``file_bytes`` and the local cache."""
        self.run("DELETE FROM file_bytes WHERE id = ?", (file_id,))
        (self.cache_dir / file_id).unlink(missing_ok=True)

    def local_copy(self, file_id: str) -> Path:
        """A cached copy under ``cache_dir`` (file ids are never reused, so it never goes stale)."""
        path = self.cache_dir / file_id
        if not path.exists():
            partial = path.with_name(f".{file_id}.{os.getpid()}.part")
            partial.write_bytes(self.read_bytes(file_id))
            partial.replace(path)
        return path

    def close(self) -> None:
        """Close the connection; idempotent."""
        self._conn.close()


def describe_url(url: str) -> str:
    """``host:port/dbname`` of a connection URL, without user or password."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(url)
    except Exception:
        return "(an unreadable URL)"
    host = parts.get("host") or "localhost"
    return f"{host}:{parts.get('port') or 5432}/{parts.get('dbname') or ''}"


@functools.lru_cache(maxsize=256)
def _pyformat(sql: str) -> str:
    """``?`` placeholders as psycopg's ``%s`` (the shared SQL has no other ``%`` or ``?``)."""
    return sql.replace("%", "%%").replace("?", "%s")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0].rstrip(".")
