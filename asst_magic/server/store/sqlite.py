"""The embedded default: one SQLite file, uploaded bytes as files beside it.

>>> db = SQLiteDatabase.open(Path("data"))  # doctest: +SKIP
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from asst_magic.server.api.errors import StartupError
from asst_magic.server.store.database import Row, StoreConflict

__all__ = ["SQLiteDatabase"]


class SQLiteDatabase:
    """``data_dir/asst.sqlite3`` and ``data_dir/files/``."""

    dialect = "sqlite"

    def __init__(self, db: sqlite3.Connection, files_dir: Path) -> None:
        self._db = db
        self.files_dir = files_dir
        self._seq = 0

    @classmethod
    def open(cls, data_dir: Path) -> SQLiteDatabase:
        """Open (creating) the database under ``data_dir``; ``StartupError`` names the fix."""
        files_dir = data_dir / "files"
        try:
            return cls(_connect(data_dir, files_dir), files_dir)
        except (OSError, sqlite3.Error) as exc:
            raise StartupError(
                f"Cannot use the data directory {data_dir}: {_reason(exc)}. Pass a writable "
                "--data-dir (ServerConfig.data_dir), or fix its permissions."
            ) from exc

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Execute one statement; the number of rows it changed."""
        try:
            return self._db.execute(sql, params).rowcount
        except sqlite3.IntegrityError as exc:
            raise StoreConflict(str(exc)) from exc

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Execute one query and fetch every row."""
        return self._db.execute(sql, params).fetchall()

    def begin_exclusive(self) -> None:
        """``BEGIN IMMEDIATE``: takes the write lock now, so two starting servers queue."""
        self._db.execute("BEGIN IMMEDIATE")

    def try_lock(self, name: str) -> bool:
        """Always: one server uses a SQLite file, and its transactions are serial."""
        return True

    def now_ms(self) -> int:
        """This machine's clock."""
        return time.time_ns() // 1_000_000

    def json_field(self, column: str, key: str) -> str:
        """``json_extract(column, '$.key')``."""
        return f"json_extract({column}, '$.{key}')"

    def next_seq(self) -> int:
        """Microseconds since the epoch, bumped past the last one handed out."""
        if not self._seq:
            self._seq = int(self.rows("SELECT max(seq) FROM objects")[0][0] or 0)
        self._seq = max(self._seq + 1, time.time_ns() // 1000)
        return self._seq

    def write_bytes(self, file_id: str, data: bytes) -> None:
        """Write ``files/FILE_ID``."""
        self.local_copy(file_id).write_bytes(data)

    def read_bytes(self, file_id: str) -> bytes:
        """Read ``files/FILE_ID``."""
        return self.local_copy(file_id).read_bytes()

    def delete_bytes(self, file_id: str) -> None:
        """Remove ``files/FILE_ID``."""
        self.local_copy(file_id).unlink(missing_ok=True)

    def local_copy(self, file_id: str) -> Path:
        """``files/FILE_ID`` itself."""
        return self.files_dir / file_id

    def close(self) -> None:
        """Close the connection; idempotent."""
        self._db.close()


def _connect(data_dir: Path, files_dir: Path) -> sqlite3.Connection:
    files_dir.mkdir(parents=True, exist_ok=True)
    probe = files_dir / ".write-test"
    probe.write_bytes(b"")  # fail now, not at the first upload, when it is read-only
    probe.unlink()
    # The app uses it from one event-loop thread, which need not be the creating one.
    db = sqlite3.connect(data_dir / "asst.sqlite3", isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    return db


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror} ({exc.filename})" if exc.filename else exc.strerror
    return str(exc)
