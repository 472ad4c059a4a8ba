"""What the document store needs from a SQL database: the seam between SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

__all__ = ["Database", "Row", "StoreConflict"]

Row = tuple[Any, ...]


class StoreConflict(Exception):
    """A write broke a uniqueness rule of the schema (e.g. a second active run on a thread)."""


class Database(Protocol):
    """One connection's worth of SQL (``?`` placeholders) plus uploaded files' bytes.

    >>> db.rows("SELECT data FROM objects WHERE id = ?", ("asst_1",))  # doctest: +SKIP
    """

    dialect: str

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Execute one statement; the number of rows it changed (``StoreConflict``: none)."""

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Execute one query and fetch every row."""

    def begin_exclusive(self) -> None:
        """Begin a transaction that no other process's ``begin_exclusive`` runs beside."""

    def try_lock(self, name: str) -> bool:
        """Inside a transaction: whether this process alone now holds lock ``name`` until commit."""

    def now_ms(self) -> int:
        """The database's clock, in milliseconds since the epoch (one clock for all replicas)."""

    def json_field(self, column: str, key: str) -> str:
        """SQL for the text of top-level ``key`` of the JSON in ``column``."""

    def next_seq(self) -> int:
        """A creation order number larger than any this process handed out."""

    def write_bytes(self, file_id: str, data: bytes) -> None:
        """Keep an uploaded file's bytes (committed at once)."""

    def read_bytes(self, file_id: str) -> bytes:
        """An uploaded file's bytes."""

    def delete_bytes(self, file_id: str) -> None:
        """Forget an uploaded file's bytes; no error when they are gone."""

    def local_copy(self, file_id: str) -> Path:
        """A path on this machine holding an uploaded file's bytes."""

    def close(self) -> None:
        """Close the connection; idempotent."""
