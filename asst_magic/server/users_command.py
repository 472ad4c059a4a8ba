"""``asst-magic users add|list|remove``: the users of a team server and their tokens.

>>> main(["users", "add", "ada", "--database-url", url])  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from asst_magic.server.api.errors import StartupError
from asst_magic.server.config import ServerConfig
from asst_magic.server.store import open_store
from asst_magic.server.store.users import UserError, Users

__all__ = ["add_users_parser", "run_users"]


def add_users_parser(commands: argparse._SubParsersAction, database_env: str) -> None:
    """The ``users`` subcommand and its ``add``, ``list`` and ``remove`` actions."""
    users = commands.add_parser("users", help="add, list or remove the users of a team server")
    users.add_argument(
        "--data-dir", type=Path, default=None, help="the server's data dir (SQLite store)"
    )
    users.add_argument(
        "--database-url", default=None, help=f"the server's PostgreSQL (default: ${database_env})"
    )
    actions = users.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="add a user and print its new token (shown once)")
    add.add_argument("name")
    actions.add_parser("list", help="list the users")
    remove = actions.add_parser("remove", help="remove a user; its token stops working")
    remove.add_argument("name")


def run_users(args: argparse.Namespace, config: ServerConfig) -> int:
    """Do one ``users`` action on ``config``'s store; 2 with a message when it cannot."""
    try:
        store = open_store(config)
    except StartupError as exc:
        print(f"asst-magic users: error: {exc}", file=sys.stderr)
        return 2
    try:
        return _act(args, Users(store.database))
    except UserError as exc:
        print(f"asst-magic users: error: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()


def _act(args: argparse.Namespace, users: Users) -> int:
    if args.action == "add":
        token = users.add(args.name)
        print(token)
        print(
            f"Token for {args.name} (shown once; only its hash is kept). In a notebook: "
            f"OPENAI_API_KEY={token[:12]}… and OPENAI_BASE_URL=<the server's /v1 URL>.",
            file=sys.stderr,
        )
    elif args.action == "list":
        for user in users.list():
            added = time.strftime("%Y-%m-%d %H:%M", time.gmtime(user.created_at))
            print(f"{user.name}\tadded {added} UTC")
    else:
        users.remove(args.name)
        print(f"Removed {args.name}; its token no longer works (its objects are kept).")
    return 0
