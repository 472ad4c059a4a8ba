"""Replica leases: each replica renews a heartbeat; any replica fails a silent one's runs.

A replica registers its URL in ``replicas`` and renews ``heartbeat_ms`` (the
database's clock) every fifth of the lease. Every fifth of the lease, the one
replica that wins a transaction-scoped advisory lock fails the active runs of
every replica silent for longer than the lease (and of replicas long gone), so
a dead replica's runs end with a clear ``last_error`` within 1.2 leases of its
last heartbeat.

>>> lease = ReplicaLease(store, "http://10.0.0.5:8765", seconds=15)  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from asst_magic.server.ids import new_id
from asst_magic.server.runs.engine import recover_interrupted_runs
from asst_magic.server.store import Store

__all__ = ["ReplicaLease"]

log = logging.getLogger(__name__)

_REAPER_LOCK = "asst_magic.reaper"


class ReplicaLease:
    """This replica's lease on a shared database, and the reaper of expired ones."""

    def __init__(self, store: Store, url: str, *, seconds: float) -> None:
        self.store = store
        self.url = url
        self.lease_ms = int(seconds * 1000)
        self.id = new_id("replica_")
        self._urls: dict[str, str] = {}
        self._task: asyncio.Task[None] | None = None
        # Stops this replica's runs that another one failed while it was silent.
        self.on_lost: Callable[[], int] | None = None

    def register(self) -> None:
        """Take a lease (before serving, so runs made here are never taken for orphans)."""
        db = self.store.database
        db.run(
            "INSERT INTO replicas (id, url, heartbeat_ms) VALUES (?, ?, ?)",
            (self.id, self.url, db.now_ms()),
        )
        self.store.replica = self.id

    def start(self) -> None:
        """Renew the lease and reap expired ones from now on (in the running loop)."""
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def aclose(self) -> None:
        """Stop renewing and give the lease up: the other replicas fail its runs at once."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):  # the database may be gone already
            self.store.database.run("DELETE FROM replicas WHERE id = ?", (self.id,))

    def url_of(self, replica: str) -> str | None:
        """The URL of a replica whose lease is current, else ``None``."""
        db = self.store.database
        rows = db.rows(
            "SELECT url FROM replicas WHERE id = ? AND heartbeat_ms >= ?",
            (replica, db.now_ms() - self.lease_ms),
        )
        return str(rows[0][0]) if rows else None

    def renew(self) -> None:
        """Extend the lease; a replica found reaped registers again and stops its old runs.

        Another replica failed those runs while this one was silent (paused past its
        lease); ``on_lost`` stops their drivers, so they are not written again.
        """
        db = self.store.database
        changed = db.run(
            "UPDATE replicas SET heartbeat_ms = ? WHERE id = ?", (db.now_ms(), self.id)
        )
        if not changed:
            log.error(
                "replica %s lost its lease (no heartbeat for %.0f s): its runs were failed by "
                "another replica; registering again",
                self.id,
                self.lease_ms / 1000,
            )
            self.register()
            stopped = self.on_lost() if self.on_lost is not None else 0
            if stopped:
                log.warning("stopped %d run(s) that another replica failed meanwhile", stopped)

    def reap(self) -> int:
        """Fail the runs of replicas without a current lease; returns how many runs."""
        store, db = self.store, self.store.database
        with store.transaction():
            if not db.try_lock(_REAPER_LOCK):
                return 0  # another replica is reaping right now
            horizon = db.now_ms() - self.lease_ms
            rows = db.rows("SELECT id, url, heartbeat_ms FROM replicas")
            live = frozenset(str(i) for i, _, beat in rows if beat >= horizon)
            self._urls = {str(i): str(url) for i, url, _ in rows}
            count = recover_interrupted_runs(store, int(time.time()), live=live, reason=self._why)
            db.run("DELETE FROM replicas WHERE heartbeat_ms < ?", (horizon,))
        if count:
            log.warning("failed %d run(s) of replicas that stopped renewing their lease", count)
        return count

    def _why(self, replica: str | None, status: str) -> str:
        url = self._urls.get(replica or "")
        where = f"The server replica at {url}" if url else "The server that ran it"
        return (
            f"{where} stopped while this run was {status} (no heartbeat for "
            f"{self.lease_ms / 1000:g} s), so the run cannot continue. Create a new run on "
            "the thread."
        )

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.lease_ms / 5000)
            try:
                self.renew()
                self.reap()
            except Exception as exc:  # a database hiccup: try again at the next tick
                log.warning("replica lease upkeep failed: %r", exc)
