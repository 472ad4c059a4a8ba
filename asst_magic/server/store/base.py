"""API objects as JSON documents in one SQL table, over SQLite or PostgreSQL.

One table holds every object: its id, kind, thread and run ids, status, a
creation sequence number (the order lists and cursors use) and the JSON the
API returns. Every ``put`` commits at once unless inside ``transaction()``.
The SQL is written once, with ``?`` placeholders; a ``Database`` adapts it.
Reads see only the current owner's objects (``store.owners``); a new object
belongs to the current owner.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from asst_magic.server.api.errors import bad_request
from asst_magic.server.ids import new_id
from asst_magic.server.objects import file_object
from asst_magic.server.store.database import Database
from asst_magic.server.store.owners import current_owner

__all__ = ["Store"]

Obj = dict[str, Any]

_PAGE = 64  # rows per query of a newest-first read
_AFTER_ALL = 2**62  # a seq above any (microseconds since the epoch)


class Store:
    """The server's durable state: objects in ``db``, uploaded bytes in its file area."""

    def __init__(self, db: Database, replica: str | None = None) -> None:
        self._db = db
        self._depth = 0
        self.replica = replica  # stamped on new objects: a run executes where it was made

    @property
    def database(self) -> Database:
        """The database this store writes to."""
        return self._db

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
        self._db.run("BEGIN")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._db.run("ROLLBACK")
            raise
        else:
            self._db.run("COMMIT")
        finally:
            self._depth = 0

    def put(self, kind: str, obj: Obj) -> None:
        """Insert or update ``obj`` (keeps its original place in list order)."""
        self._db.run(
            "INSERT INTO objects (id, kind, thread_id, run_id, status, seq, data, owner, replica)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET status = excluded.status, data = excluded.data",
            (
                obj["id"],
                kind,
                obj.get("thread_id") if kind != "thread" else obj["id"],
                obj.get("run_id"),
                obj.get("status"),
                self._db.next_seq(),
                json.dumps(obj, separators=(",", ":")),
                current_owner(),
                self.replica,
            ),
        )

    def get(self, kind: str, object_id: str) -> Obj | None:
        """The object, or ``None``."""
        owned, params = _owned(["id = ?", "kind = ?"], [object_id, kind])
        rows = self._db.rows(f"SELECT data FROM objects WHERE {owned}", params)
        return json.loads(rows[0][0]) if rows else None

    def replica_of(self, object_id: str) -> str | None:
        """The replica that created the object (``None`` when unknown or not visible)."""
        owned, params = _owned(["id = ?"], [object_id])
        rows = self._db.rows(f"SELECT replica FROM objects WHERE {owned}", params)
        return rows[0][0] if rows else None

    def get_many(self, kind: str, object_ids: Iterable[str]) -> dict[str, Obj]:
        """The objects of these ids that exist, by id, in one query per 500 ids.

        >>> store.get_many("file", ["file-a", "file-missing"])  # {"file-a": {...}}
        """
        ids, found = list(dict.fromkeys(object_ids)), {}
        for start in range(0, len(ids), 500):  # under SQLite's bound-parameter limit
            chunk = ids[start : start + 500]
            owned, params = _owned(
                ["kind = ?", f"id IN ({', '.join('?' * len(chunk))})"], [kind, *chunk]
            )
            rows = self._db.rows(f"SELECT data FROM objects WHERE {owned}", params)
            for row in rows:
                obj = json.loads(row[0])
                found[obj["id"]] = obj
        return found

    def delete(self, object_id: str) -> None:
        """Remove one object."""
        self._db.run("DELETE FROM objects WHERE id = ?", (object_id,))

    def delete_thread(self, thread_id: str) -> None:
        """Remove a thread with its messages, runs and steps."""
        with self.transaction():
            self._db.run("DELETE FROM objects WHERE thread_id = ?", (thread_id,))

    def select(
        self,
        kind: str | tuple[str, ...],
        *,
        thread_id: str | None = None,
        run_id: str | None = None,
        statuses: Iterable[str] = (),
    ) -> list[Obj]:
        """Every matching object, oldest first.

        With statuses (few rows: "the thread's active run"), ``+seq`` keeps the
        planner off the ``(kind, thread_id, seq)`` index, which would walk every
        run the thread ever had, for the ``(kind, thread_id, status)`` one.
        """
        wanted = tuple(statuses)
        where, params = _where(kind, thread_id, run_id, wanted)
        order = "+seq" if wanted else "seq"
        rows = self._db.rows(f"SELECT data FROM objects WHERE {where} ORDER BY {order}", params)
        return [json.loads(row[0]) for row in rows]

    def newest(self, kind: tuple[str, ...], *, thread_id: str) -> Iterator[Obj]:
        """A thread's objects of these kinds, newest first, read a page at a time.

        A caller that stops early (a model's history window is full) never reads,
        nor decodes, the rest of a long thread: each page walks the
        ``(thread_id, seq)`` index backwards from where the last one stopped.
        """
        marks = ", ".join("?" * len(kind))
        before = _AFTER_ALL
        while True:
            where, params = _owned(
                ["thread_id = ?", "seq < ?", f"kind IN ({marks})"], [thread_id, before, *kind]
            )
            rows = self._db.rows(
                f"SELECT seq, data FROM objects WHERE {where} ORDER BY seq DESC LIMIT ?",
                [*params, _PAGE],
            )
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
            where += f" AND {self._db.json_field('data', 'purpose')} = ?"
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
        rows = self._db.rows(
            f"SELECT data FROM objects WHERE {where} ORDER BY seq {direction} LIMIT ?",
            [*params, limit + 1],
        )
        items = [json.loads(row[0]) for row in rows[:limit]]
        if reverse:
            items.reverse()
        return items, len(rows) > limit

    def _seq_of(self, object_id: str, param: str) -> int:
        owned, params = _owned(["id = ?"], [object_id])
        rows = self._db.rows(f"SELECT seq FROM objects WHERE {owned}", params)
        if not rows:
            raise bad_request(f"Invalid cursor: no object with id '{object_id}'.", param)
        return int(rows[0][0])

    def add_file(self, data: bytes, filename: str, purpose: str, created_at: int) -> Obj:
        """Store bytes as a new file object (bytes first, so a listed file is always readable)."""
        file_id = new_id("file-")
        self._db.write_bytes(file_id, data)
        obj = file_object(file_id, created_at, filename, len(data), purpose)
        self.put("file", obj)
        return obj

    def delete_file(self, file_id: str) -> None:
        """Remove a file object and its bytes."""
        self.delete(file_id)
        self._db.delete_bytes(file_id)

    def read_file(self, file_id: str) -> bytes:
        """The bytes of an uploaded file."""
        return self._db.read_bytes(file_id)

    def file_path(self, file_id: str) -> Path:
        """A local path holding the bytes of an uploaded file (for the code interpreter)."""
        return self._db.local_copy(file_id)


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
    return _owned(clauses, params)


def _owned(clauses: list[str], params: list[Any]) -> tuple[str, list[Any]]:
    """The ``WHERE`` text of ``clauses``, limited to the current owner's objects."""
    owner = current_owner()
    if owner is not None:
        clauses = [*clauses, "owner = ?"]
        params = [*params, owner]
    return " AND ".join(clauses), params
