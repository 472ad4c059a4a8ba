"""The ``asst-magic`` command line: its flags, and the variables each one falls back to."""

from __future__ import annotations

import argparse
from pathlib import Path

from asst_magic.server.code_interpreter.confinement import SANDBOX_MODES
from asst_magic.server.config import (
    GATEWAY_KERNELSPEC_ENV,
    GATEWAY_TOKEN_ENV,
    GATEWAY_URL_ENV,
    NETWORK_ENV,
    SANDBOX_ENV,
)
from asst_magic.server.launch import DATABASE_URL_ENV, MODEL_KEY_ENV, TOKEN_ENV
from asst_magic.server.users_command import add_users_parser

__all__ = [
    "CONNECT_TIMEOUT_ENV",
    "IDLE_TIMEOUT_ENV",
    "RECORD_ENV",
    "build_parser",
]

DESCRIPTION = "``asst-magic serve``: run the local Assistants API server in the foreground."
RECORD_ENV = "ASST_MAGIC_RECORD_CASSETTE"
CONNECT_TIMEOUT_ENV = "ASST_MAGIC_MODEL_CONNECT_TIMEOUT"
IDLE_TIMEOUT_ENV = "ASST_MAGIC_MODEL_IDLE_TIMEOUT"


def build_parser() -> argparse.ArgumentParser:
    """The ``asst-magic`` argument parser."""
    parser = argparse.ArgumentParser(prog="asst-magic", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the local Assistants API v2 server")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    serve.add_argument("--port", type=int, default=0, help="port; 0 picks a free one")
    serve.add_argument(
        "--data-dir", type=Path, default=None, help="where data is kept (default: user data dir)"
    )
    serve.add_argument(
        "--token",
        default=None,
        help=f"bearer token (default: ${TOKEN_ENV}, else random). Arguments are visible to "
        f"every user of this machine (ps): set {TOKEN_ENV} instead to keep the token private",
    )
    serve.add_argument(
        "--allowed-hosts",
        default="",
        metavar="NAMES",
        help="comma-separated host names the Host header may carry besides the bound address "
        "(a check against DNS rebinding; default: the address, and localhost on loopback)",
    )
    serve.add_argument(
        "--cassette", type=Path, action="append", default=[], help="replay cassette (repeatable)"
    )
    serve.add_argument("--max-body-bytes", type=int, default=32 * 1024 * 1024)
    serve.add_argument(
        "--database-url",
        default=None,
        help=f"keep objects in PostgreSQL, e.g. postgresql://asst@db.example/asst (default: "
        f"${DATABASE_URL_ENV}, else SQLite under --data-dir; prefer the variable when the URL "
        "holds a password: arguments are visible to other users)",
    )
    _add_code_arguments(serve)
    _add_gateway_arguments(serve)
    _add_model_arguments(serve)
    serve.add_argument("--watch-parent", type=int, default=None, help=argparse.SUPPRESS)
    serve.add_argument(
        "--idle-shutdown",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop once no notebook has used this server for SECONDS (how notebooks share "
        "one server per data dir; default: serve until stopped)",
    )
    _add_replica_arguments(serve)
    add_users_parser(commands, DATABASE_URL_ENV)
    return parser


def _add_replica_arguments(serve: argparse.ArgumentParser) -> None:
    replicas = serve.add_argument_group(
        "replicas", "several servers on one --database-url, behind any HTTP load balancer"
    )
    replicas.add_argument(
        "--advertise-url",
        default=None,
        help="where the other replicas reach this one, e.g. http://10.0.0.5:8765 "
        "(default: the address it listens on)",
    )
    replicas.add_argument(
        "--replica-lease",
        type=float,
        default=15.0,
        help="seconds without a heartbeat after which a replica's runs are failed (default 15)",
    )


def _add_code_arguments(serve: argparse.ArgumentParser) -> None:
    code = serve.add_argument_group("code interpreter", "one Jupyter kernel per thread")
    code.add_argument("--no-code-interpreter", action="store_true", help="serve without it")
    code.add_argument(
        "--code-timeout", type=float, default=120.0, help="seconds per execution (default 120)"
    )
    code.add_argument(
        "--code-idle-timeout",
        type=float,
        default=600.0,
        help="shut a thread's kernel down after this many idle seconds (default 600)",
    )
    code.add_argument(
        "--code-pool-size",
        type=int,
        default=2,
        help="kernels kept started and preloaded for new threads (default 2)",
    )
    code.add_argument(
        "--code-sandbox",
        choices=SANDBOX_MODES,
        default=None,
        help=f"auto: confine kernels with bubblewrap where it runs, else run unconfined with "
        f"a warning; required: refuse to run code without it; off: unconfined "
        f"(default: ${SANDBOX_ENV}, else auto)",
    )
    code.add_argument(
        "--code-network",
        action="store_true",
        default=None,
        help=f"let sandboxed code use the network, e.g. for pip install (default: "
        f"${NETWORK_ENV}=1, else no network)",
    )
    code.add_argument(
        "--code-max-processes",
        type=int,
        default=256,
        help="processes per kernel user, as RLIMIT_NPROC; 0 for no limit (default 256)",
    )
    code.add_argument(
        "--code-max-kernels",
        type=_positive_int,
        default=8,
        help="threads' kernels running at once; the least recently used idle one is shut "
        "down beyond it (default 8)",
    )
    code.add_argument(
        "--code-max-output-chars", type=int, default=50_000, help="output cap per execution"
    )
    code.add_argument(
        "--code-memory-limit-mb",
        type=int,
        default=2048,
        help="address-space limit per kernel, MiB; 0 for none (default 2048)",
    )


def _add_gateway_arguments(serve: argparse.ArgumentParser) -> None:
    gateway = serve.add_argument_group(
        "kernel gateway", "run the code interpreter's kernels on a Jupyter Enterprise Gateway"
    )
    gateway.add_argument(
        "--kernel-gateway",
        metavar="URL",
        default=None,
        help=f"the gateway's base URL, e.g. http://gateway:8888 (default: ${GATEWAY_URL_ENV}, "
        "else kernels run locally)",
    )
    gateway.add_argument(
        "--kernel-gateway-token",
        default=None,
        help=f"its auth token (default: ${GATEWAY_TOKEN_ENV}; prefer the variable: arguments "
        "are visible to other users)",
    )
    gateway.add_argument(
        "--kernel-gateway-kernelspec",
        metavar="NAME",
        default=None,
        help=f"the kernelspec to start (default: ${GATEWAY_KERNELSPEC_ENV}, else python3)",
    )


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _add_model_arguments(serve: argparse.ArgumentParser) -> None:
    model = serve.add_argument_group(
        "live model", "a Chat Completions endpoint for every model name except 'replay'"
    )
    model.add_argument(
        "--model-url",
        default=None,
        help="its base URL, e.g. http://127.0.0.1:11434/v1 (default: $ASST_MAGIC_MODEL_URL, "
        "else $AZURE_OPENAI_ENDPOINT, else OpenAI when $OPENAI_API_KEY is set)",
    )
    model.add_argument(
        "--model", default=None, help="the endpoint's model (default: $ASST_MAGIC_MODEL)"
    )
    model.add_argument(
        "--model-api-key",
        default=None,
        help=f"its API key (default: ${MODEL_KEY_ENV}; prefer the variable: "
        "arguments are visible to other users)",
    )
    model.add_argument("--azure-api-version", default=None, help="for an Azure OpenAI endpoint")
    model.add_argument(
        "--context-tokens", type=int, default=None, help="drop the oldest turns beyond this"
    )
    model.add_argument(
        "--model-connect-timeout",
        type=float,
        default=None,
        help=f"seconds to connect to it (default: ${CONNECT_TIMEOUT_ENV}, else 10)",
    )
    model.add_argument(
        "--model-idle-timeout",
        type=float,
        default=None,
        help="seconds it may stay silent, before or during an answer, before the run fails "
        f"(default: ${IDLE_TIMEOUT_ENV}, else 60)",
    )
    model.add_argument(
        "--record-cassette",
        type=Path,
        default=None,
        help=f"append every live model turn to this replay cassette (default: ${RECORD_ENV})",
    )
