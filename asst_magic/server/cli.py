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

from asst_magic.server.arguments import (
    CONNECT_TIMEOUT_ENV,
    IDLE_TIMEOUT_ENV,
    RECORD_ENV,
    build_parser,
)
from asst_magic.server.config import (
    GATEWAY_KERNELSPEC_ENV,
    GATEWAY_TOKEN_ENV,
    GATEWAY_URL_ENV,
    ServerConfig,
    code_switches,
)
from asst_magic.server.ids import new_token
from asst_magic.server.launch import (
    DATABASE_URL_ENV,
    MODEL_KEY_ENV,
    TOKEN_ENV,
    StartupError,
    default_sandbox,
    make_server,
)
from asst_magic.server.listen import advertised, base_url, bind, exposure_warning
from asst_magic.server.models.endpoint import endpoint_from_env
from asst_magic.server.sharing import watch_clients
from asst_magic.server.users_command import run_users

__all__ = ["gateway_settings", "main", "model_settings", "serve"]


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
    sandbox, network = code_switches(args.code_sandbox, args.code_network, os.environ)
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
        code_sandbox=sandbox,
        code_network=network,
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
