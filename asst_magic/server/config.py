"""Settings for one local server start."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "GATEWAY_KERNELSPEC_ENV",
    "GATEWAY_TOKEN_ENV",
    "GATEWAY_URL_ENV",
    "NETWORK_ENV",
    "SANDBOX_ENV",
    "ServerConfig",
    "code_switches",
]

GATEWAY_URL_ENV = "ASST_MAGIC_KERNEL_GATEWAY_URL"
GATEWAY_TOKEN_ENV = "ASST_MAGIC_KERNEL_GATEWAY_TOKEN"
GATEWAY_KERNELSPEC_ENV = "ASST_MAGIC_KERNEL_GATEWAY_KERNELSPEC"
SANDBOX_ENV = "ASST_MAGIC_CODE_SANDBOX"
NETWORK_ENV = "ASST_MAGIC_CODE_NETWORK"


def code_switches(
    sandbox: str | None, network: bool | None, environ: Mapping[str, str]
) -> tuple[str, bool]:
    """The code sandbox mode and network switch: as given, else from the environment.

    ``$ASST_MAGIC_CODE_SANDBOX`` else ``auto``; the network is on when asked for or
    when ``$ASST_MAGIC_CODE_NETWORK`` is 1, true, yes or on. The magic and
    ``asst-magic serve`` both read them here, so they agree on what a value means.
    """
    mode = sandbox or environ.get(SANDBOX_ENV) or "auto"
    switched = environ.get(NETWORK_ENV, "").strip().lower() in ("1", "true", "yes", "on")
    return mode, bool(network) or switched


@dataclass(frozen=True)
class ServerConfig:
    """Where the server keeps its data, where it listens, and its limits.

    ``token`` is random per start when ``None`` (the launch handle reports it).
    ``code_interpreter=False`` starts without a sandbox: code_interpreter calls
    then fail their run with a clear ``last_error``. The ``code_*`` fields are the
    code interpreter's limits: per-execution timeout (s), output cap (characters),
    kernel memory limit (bytes, None for none), idle kernel shutdown (s), warm pool size,
    how many threads' kernels may run at once (the least recently used idle one
    is shut down to start another) and processes per kernel. ``code_sandbox`` is
    ``auto`` (bubblewrap where it runs, else unconfined with a warning),
    ``required`` or ``off``; ``code_network`` gives sandboxed code the network.
    ``model_connect_timeout`` and ``model_idle_timeout`` bound connecting to the live
    model and any silence of it (before or between stream chunks), in seconds.
    ``allowed_hosts`` are host names the ``Host`` header may carry besides the
    bound address (and, on loopback, ``localhost``).
    ``database_url`` (``postgresql://…``) keeps the objects in PostgreSQL instead of
    SQLite under ``data_dir``; replicas sharing it reach each other at their
    ``replica_url`` (default: where they listen) and fail the runs of one silent for
    ``replica_lease_seconds``.
    ``kernel_gateway_url`` (with its token and kernelspec) runs the code interpreter's
    kernels on a Jupyter Enterprise Gateway instead of locally.
    """

    data_dir: Path
    database_url: str | None = field(default=None, repr=False)
    replica_url: str | None = None
    replica_lease_seconds: float = 15.0
    host: str = "127.0.0.1"
    port: int = 0
    token: str | None = None
    allowed_hosts: tuple[str, ...] = ()
    cassettes: tuple[Path, ...] = ()
    max_body_bytes: int = 32 * 1024 * 1024
    code_timeout: float = 120.0
    code_interpreter: bool = True
    code_max_output_chars: int = 50_000
    code_memory_limit_bytes: int | None = 2 * 1024**3
    code_idle_timeout: float = 600.0
    code_pool_size: int = 2
    code_max_kernels: int = 8
    code_max_processes: int = 256
    code_sandbox: str = "auto"
    code_network: bool = False
    poll_after_ms: int = 100
    run_expiry_seconds: int = 600
    model_url: str | None = None
    model: str = ""
    model_api_key: str | None = field(default=None, repr=False)
    azure_api_version: str | None = None
    context_tokens: int | None = None
    model_connect_timeout: float = 10.0
    model_idle_timeout: float = 60.0
    record_cassette: Path | None = None
    kernel_gateway_url: str | None = None
    kernel_gateway_token: str | None = field(default=None, repr=False)
    kernel_gateway_kernelspec: str = "python3"
