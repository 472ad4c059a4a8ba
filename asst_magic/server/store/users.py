"""Users of a team server: a name and the SHA-256 of a random bearer token.

Tokens are 192-bit random strings, so one fast hash is enough: there is no
password to guess, only a database copy that must not yield working tokens.

>>> token = Users(store.database).add("ada")  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass

from asst_magic.server.ids import new_token
from asst_magic.server.store.database import Database

__all__ = ["User", "UserError", "Users"]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


class UserError(ValueError):
    """A ``users`` command that cannot be done, with what to do instead."""


@dataclass(frozen=True)
class User:
    """One user: its name and when it was added (seconds since the epoch)."""

    name: str
    created_at: int


class Users:
    """The ``users`` table of one database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, name: str) -> str:
        """Add ``name`` and return its new token (only its hash is kept)."""
        if not _NAME.fullmatch(name):
            raise UserError(
                f"Invalid user name {name!r}: use 1-64 letters, digits, '.', '_', '@' or '-', "
                "starting with a letter or digit."
            )
        if self._find(name):
            raise UserError(f"User {name!r} exists already; remove it first to issue a new token.")
        token = new_token()
        self._db.run(
            "INSERT INTO users (name, token_sha256, created_at) VALUES (?, ?, ?)",
            (name, _digest(token), int(time.time())),
        )
        return token

    def remove(self, name: str) -> None:
        """Remove ``name``: its token stops working at once (its objects stay)."""
        if not self._find(name):
            raise UserError(f"No user {name!r}; `asst-magic users list` shows who there is.")
        self._db.run("DELETE FROM users WHERE name = ?", (name,))

    def list(self) -> list[User]:
        """Every user, by name."""
        rows = self._db.rows("SELECT name, created_at FROM users ORDER BY name")
        return [User(str(name), int(created)) for name, created in rows]

    def by_token(self, token: str) -> str | None:
        """The name of the user holding ``token``, or ``None``."""
        rows = self._db.rows("SELECT name FROM users WHERE token_sha256 = ?", (_digest(token),))
        return str(rows[0][0]) if rows else None

    def _find(self, name: str) -> bool:
        return bool(self._db.rows("SELECT 1 FROM users WHERE name = ?", (name,)))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
