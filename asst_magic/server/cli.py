"""``asst-magic serve``: run the local Assistants API server in the foreground."""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import platformdirs

from asst_magic.server.code_interpreter.confinement import SANDBOX_MODES
from asst_magic.server.config import (
    GATEWAY_KERNELSPEC_ENV,
    GATEWAY_TOKEN_ENV,
    GATEWAY_URL_ENV,
    ServerConfig,
)
from asst_magic.server.ids import new_token
from asst_magic.server.launch import (
    DATABASE_URL_ENV,
    MODEL_KEY_ENV,
    TOKEN_ENV,
    StartupError,
    advertised,
    base_url,
    bind,
    default_sandbox,
    exposure_warning,
    make_server,
)
from asst_magic.server.sharing import watch_clients
from asst_magic.server.users_command import add_users_parser, run_users

__all__ = [
    "CONNECT_TIMEOUT_ENV",
    "IDLE_TIMEOUT_ENV",
    "NETWORK_ENV",
    "RECORD_ENV",
    "SANDBOX_ENV",
    "build_parser",
    "gateway_settings",
    "main",
    "model_settings",
]

RECORD_ENV = "ASST_MAGIC_RECORD_CASSETTE"
SANDBOX_ENV = "ASST_MAGIC_CODE_SANDBOX"
NETWORK_ENV = "ASST_MAGIC_CODE_NETWORK"
CONNECT_TIMEOUT_ENV = "ASST_MAGIC_MODEL_CONNECT_TIMEOUT"
IDLE_TIMEOUT_ENV = "ASST_MAGIC_MODEL_IDLE_TIMEOUT"


def build_parser() -> argparse.ArgumentParser:
    """The ``asst-magic`` argument parser."""
    parser = argparse.ArgumentParser(prog="asst-magic", description=__doc__)
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


def gateway_settings(args: argparse.Namespace, environ: Mapping[str, str]) -> dict[str, Any]:
    """The kernel-gateway ``ServerConfig`` fields: flags first, then the environment."""
    url = args.kernel_gateway or environ.get(GATEWAY_URL_ENV) or None
    if url is None:
        return {}
    return {
        "kernel_gateway_url": url,
        "kernel_gateway_token": args.kernel_gateway_token or environ.get(GATEWAY_TOKEN_ENV),
        "kernel_gateway_kernelspec": args.kernel_gateway_kernelspec
        or environ.get(GATEWAY_KERNELSPEC_ENV)
        or "python3",
    }


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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``asst-magic`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "users":
        return run_users(args, _store_config(args))
    token = args.token or os.environ.get(TOKEN_ENV)
    model = model_settings(args, os.environ)
    timeouts = _timeouts(parser, args, os.environ)
    record = args.record_cassette or _env_path(os.environ.get(RECORD_ENV))
    if record is not None and model.get("model_url") is None:
        parser.error(
            "--record-cassette (or $ASST_MAGIC_RECORD_CASSETTE) records a live model: "
            "also give --model-url (or set ASST_MAGIC_MODEL_URL)"
        )
    config = replace(
        _store_config(args),
        host=args.host,
        port=args.port,
        token=token,
        allowed_hosts=tuple(h.strip() for h in args.allowed_hosts.split(",") if h.strip()),
        replica_url=args.advertise_url,
        replica_lease_seconds=args.replica_lease,
        cassettes=tuple(args.cassette),
        max_body_bytes=args.max_body_bytes,
        code_interpreter=not args.no_code_interpreter,
        code_timeout=args.code_timeout,
        code_idle_timeout=args.code_idle_timeout,
        code_pool_size=args.code_pool_size,
        code_max_kernels=args.code_max_kernels,
        code_max_processes=args.code_max_processes,
        code_sandbox=args.code_sandbox or os.environ.get(SANDBOX_ENV) or "auto",
        code_network=bool(args.code_network) or _truthy(os.environ.get(NETWORK_ENV)),
        code_max_output_chars=args.code_max_output_chars,
        code_memory_limit_bytes=args.code_memory_limit_mb * 1024**2 or None,
        context_tokens=args.context_tokens,
        record_cassette=record,
        **timeouts,
        **model,
        **gateway_settings(args, os.environ),
    )
    try:
        return serve(
            config,
            announce_token=token is None,
            watch_parent=args.watch_parent,
            idle_shutdown=args.idle_shutdown,
        )
    except StartupError as exc:  # the user's to fix: a message, not a traceback
        print(f"asst-magic serve: error: {exc}", file=sys.stderr)
        return 2


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def _timeouts(
    parser: argparse.ArgumentParser, args: argparse.Namespace, environ: Mapping[str, str]
) -> dict[str, Any]:
    """The model timeouts: flags first, then the environment; positive seconds."""
    found: dict[str, Any] = {}
    for field, flag, env in (
        ("model_connect_timeout", args.model_connect_timeout, CONNECT_TIMEOUT_ENV),
        ("model_idle_timeout", args.model_idle_timeout, IDLE_TIMEOUT_ENV),
    ):
        value: float | None = flag
        if value is None and environ.get(env):
            try:
                value = float(environ[env])
            except ValueError:
                parser.error(f"${env} must be a number of seconds, not {environ[env]!r}")
        if value is not None and value <= 0:
            parser.error(f"{field.replace('_', '-')} must be more than 0 seconds")
        if value is not None:
            found[field] = value
    return found


def _store_config(args: argparse.Namespace) -> ServerConfig:
    """The data dir and database that ``--data-dir`` / ``--database-url`` (or env) name."""
    return ServerConfig(
        data_dir=args.data_dir or Path(platformdirs.user_data_dir("asst_magic", appauthor=False)),
        database_url=args.database_url or os.environ.get(DATABASE_URL_ENV) or None,
    )


def _env_path(value: str | None) -> Path | None:
    return Path(value).expanduser() if value else None


def model_settings(args: argparse.Namespace, environ: Mapping[str, str]) -> dict[str, Any]:
    """The live-model ``ServerConfig`` fields: flags first, then the environment."""
    from asst_magic.server.models.chat import endpoint_from_env

    if args.model_url:
        url, version = args.model_url, args.azure_api_version
        key = args.model_api_key or environ.get(MODEL_KEY_ENV) or None
        name = args.model or environ.get("ASST_MAGIC_MODEL", "")
    else:
        endpoint = endpoint_from_env(environ)
        if endpoint is None:
            return {"model": args.model or ""}
        url, key = endpoint.base_url, args.model_api_key or endpoint.api_key
        name = args.model or endpoint.model
        version = args.azure_api_version or endpoint.azure_api_version
    return {"model_url": url, "model": name, "model_api_key": key, "azure_api_version": version}


def serve(
    config: ServerConfig,
    *,
    announce_token: bool,
    watch_parent: int | None,
    idle_shutdown: float | None = None,
) -> int:
    """Serve until interrupted; the first stdout line is the base URL."""
    if config.token is None:
        config = replace(config, token=new_token())
    os.umask(0o077)  # what this process and its kernels write is private to this user
    warning = exposure_warning(config.host)
    if warning is not None:
        print(f"asst-magic serve: warning: {warning}", file=sys.stderr, flush=True)
    sock = bind(config.host, config.port)
    config = advertised(config, sock)

    def ready() -> None:
        print(base_url(sock), flush=True)
        if announce_token:
            print(f"token: {config.token}", flush=True)

    try:
        server = make_server(
            config,
            ready,
            sandbox=default_sandbox(config),
            url=base_url(sock),
            shared=idle_shutdown is not None,
        )
    except BaseException:
        sock.close()
        raise
    if watch_parent is not None:
        _watch_parent(watch_parent, server)
    if idle_shutdown is not None:
        watch_clients(config.data_dir, idle_shutdown, server)
    server.run(sockets=[sock])
    return 0


def _watch_parent(parent: int, server: object) -> None:
    """Stop serving when the process that spawned us is gone (its child is re-parented)."""

    def watch() -> None:
        while os.getppid() == parent:
            threading.Event().wait(0.5)
        server.should_exit = True  # type: ignore[attr-defined]

    threading.Thread(target=watch, name="asst-magic-parent-watch", daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
