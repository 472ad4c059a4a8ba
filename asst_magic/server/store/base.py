"""SQLite storage of API objects as JSON documents, plus uploaded file bytes on disk.

One table holds every object: its id, kind, thread and run ids, status, a
creation sequence number (the order lists and cursors use) and the JSON the
API returns. Every ``put`` commits at once unless inside ``transaction()``.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from asst_magic.server.api.errors import StartupError, bad_request
from asst_magic.server.ids import new_id
from asst_magic.server.objects import file_object

__all__ = ["Store"]

Obj = dict[str, Any]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    thread_id TEXT,
    run_id TEXT,
    status TEXT,
    seq INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS objects_by_thread ON objects (kind, thread_id, seq);
CREATE INDEX IF NOT EXISTS objects_by_run ON objects (kind, run_id, seq);
CREATE INDEX IF NOT EXISTS objects_by_status ON objects (kind, status);
CREATE INDEX IF NOT EXISTS objects_by_thread_seq ON objects (thread_id, seq);
"""

_PAGE = 64  # rows per query of a newest-first read


class Store:
    """The server's durable state under ``data_dir`` (``asst.sqlite3`` and ``files/``)."""

    def __init__(self, data_dir: Path) -> None:
        self.files_dir = data_dir / "files"
        try:
            self._db = _open(data_dir, self.files_dir)
        except (OSError, sqlite3.Error) as exc:
            raise StartupError(
                f"Cannot use the data directory {data_dir}: {_reason(exc)}. Pass a writable "
                "--data-dir (ServerConfig.data_dir), or fix its permissions."
            ) from exc
        row = self._db.execute("SELECT max(seq) FROM objects").fetchone()
        self._seq = int(row[0] or 0)
        self._depth = 0

    def close(self) -> None:
        """Close the database; idempotent."""
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes: all of them are committed, or none (on an exception)."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._db.execute("BEGIN")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        else:
            self._db.execute("COMMIT")
        finally:
            self._depth = 0

    def put(self, kind: str, obj: Obj) -> None:
        """Insert or update ``obj`` (keeps its original place in list order)."""
        self._seq = max(self._seq + 1, time.time_ns() // 1000)
        self._db.execute(
            "INSERT INTO objects (id, kind, thread_id, run_id, status, seq, data)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET status = excluded.status, data = excluded.data",
            (
                obj["id"],
                kind,
                obj.get("thread_id") if kind != "thread" else obj["id"],
                obj.get("run_id"),
                obj.get("status"),
                self._seq,
                json.dumps(obj, separators=(",", ":")),
            ),
        )

    def get(self, kind: str, object_id: str) -> Obj | None:
        """The object, or ``None``."""
        row = self._db.execute(
            "SELECT data FROM objects WHERE id = ? AND kind = ?", (object_id, kind)
        ).fetchone()
        return None if row is None else json.loads(row[0])

    def delete(self, object_id: str) -> None:
        """Remove one object."""
        self._db.execute("DELETE FROM objects WHERE id = ?", (object_id,))

    def delete_thread(self, thread_id: str) -> None:
        """Remove a thread with its messages, runs and steps."""
        with self.transaction():
            self._db.execute("DELETE FROM objects WHERE thread_id = ?", (thread_id,))

    def select(
        self,
        kind: str | tuple[str, ...],
        *,
        thread_id: str | None = None,
        run_id: str | None = None,
        statuses: Iterable[str] = (),
    ) -> list[Obj]:
        """Every matching object, oldest first."""
        where, params = _where(kind, thread_id, run_id, statuses)
        rows = self._db.execute(
            f"SELECT data FROM objects WHERE {where} ORDER BY seq", params
        ).fetchall()
        return [json.loads(row[0]) for row in rows]

    def newest(self, kind: tuple[str, ...], *, thread_id: str) -> Iterator[Obj]:
        """A thread's objects of these kinds, newest first, read a page at a time.

        A caller that stops early (a model's history window is full) never reads,
        nor decodes, the rest of a long thread: each page walks the
        ``(thread_id, seq)`` index backwards from where the last one stopped.
        """
        marks = ", ".join("?" * len(kind))
        before = self._seq + 1
        while True:
            rows = self._db.execute(
                f"SELECT seq, data FROM objects WHERE thread_id = ? AND seq < ?"
                f" AND kind IN ({marks}) ORDER BY seq DESC LIMIT ?",
                (thread_id, before, *kind, _PAGE),
            ).fetchall()
            for seq, data in rows:
                before = seq
                yield json.loads(data)
            if len(rows) < _PAGE:
                return

    def page(
        self,
        kind: str,
        *,
        order: str,
        limit: int,
        after: str | None = None,
        before: str | None = None,
        thread_id: str | None = None,
        run_id: str | None = None,
        purpose: str | None = None,
    ) -> tuple[list[Obj], bool]:
        """One cursor page (``after``/``before`` are object ids) and whether more follow."""
        where, params = _where(kind, thread_id, run_id, ())
        if purpose is not None:  # filter in the query, so a page is never emptied afterwards
            where += " AND json_extract(data, '$.purpose') = ?"
            params.append(purpose)
        desc = order == "desc"
        for name, cursor, later in (("after", after, not desc), ("before", before, desc)):
            if cursor is not None:
                seq = self._seq_of(cursor, name)
                where += " AND seq > ?" if later else " AND seq < ?"
                params.append(seq)
        # ``before`` pages read backwards from the cursor, then flip to the asked order.
        reverse = before is not None and after is None
        direction = "ASC" if desc == reverse else "DESC"
        rows = self._db.execute(
            f"SELECT data FROM objects WHERE {where} ORDER BY seq {direction} LIMIT ?",
            [*params, limit + 1],
        ).fetchall()
        items = [json.loads(row[0]) for row in rows[:limit]]
        if reverse:
            items.reverse()
        return items, len(rows) > limit

    def _seq_of(self, object_id: str, param: str) -> int:
        row = self._db.execute("SELECT seq FROM objects WHERE id = ?", (object_id,)).fetchone()
        if row is None:
            raise bad_request(f"Invalid cursor: no object with id '{object_id}'.", param)
        return int(row[0])

    def add_file(self, data: bytes, filename: str, purpose: str, created_at: int) -> Obj:
        """Store bytes as a new file object (bytes first, so a listed file is always readable)."""
        file_id = new_id("file-")
        self.file_path(file_id).write_bytes(data)
        obj = file_object(file_id, created_at, filename, len(data), purpose)
        self.put("file", obj)
        return obj

    def delete_file(self, file_id: str) -> None:
        """Remove a file object and its bytes."""
        self.delete(file_id)
        self.file_path(file_id).unlink(missing_ok=True)

    def file_path(self, file_id: str) -> Path:
        """Where the bytes of an uploaded file live."""
        return self.files_dir / file_id


def _open(data_dir: Path, files_dir: Path) -> sqlite3.Connection:
    files_dir.mkdir(parents=True, exist_ok=True)
    probe = files_dir / ".write-test"
    probe.write_bytes(b"")  # fail now, not at the first upload, when it is read-only
    probe.unlink()
    # The app uses it from one event-loop thread, which need not be the creating one.
    db = sqlite3.connect(data_dir / "asst.sqlite3", isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(_SCHEMA)
    return db


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror} ({exc.filename})" if exc.filename else exc.strerror
    return str(exc)


def _where(
    kind: str | tuple[str, ...], thread_id: str | None, run_id: str | None, statuses: Iterable[str]
) -> tuple[str, list[Any]]:
    kinds = (kind,) if isinstance(kind, str) else kind
    clauses = [f"kind IN ({', '.join('?' * len(kinds))})"]
    params: list[Any] = list(kinds)
    if thread_id is not None:
        clauses.append("thread_id = ?")
        params.append(thread_id)
    if run_id is not None:
        clauses.append("run_id = ?")
        params.append(run_id)
    wanted = list(statuses)
    if wanted:
        clauses.append(f"status IN ({', '.join('?' * len(wanted))})")
        params.extend(wanted)
    return " AND ".join(clauses), params
