"""Start the local server in a background thread or a subprocess, and stop it cleanly.

>>> with start_in_thread(ServerConfig(data_dir=Path("data"))) as handle:  # doctest: +SKIP
...     client = openai.OpenAI(base_url=handle.base_url, api_key=handle.token)
"""

from __future__ import annotations

import logging
import os
import selectors
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn

from asst_magic.server.api.errors import StartupError
from asst_magic.server.code_interpreter.sandbox import Sandbox
from asst_magic.server.config import GATEWAY_TOKEN_ENV, ServerConfig
from asst_magic.server.datadir import make_private
from asst_magic.server.ids import new_token
from asst_magic.server.listen import advertised, allowed_hosts, base_url, bind, exposure_warning
from asst_magic.server.models import ModelRegistry
from asst_magic.server.runtime import RuntimeInfo, ServerLock

__all__ = [
    "DATABASE_URL_ENV",
    "MODEL_KEY_ENV",
    "TOKEN_ENV",
    "ServerHandle",
    "StartupError",
    "default_sandbox",
    "make_server",
    "spawn",
    "start_in_thread",
]

log = logging.getLogger(__name__)

TOKEN_ENV = "ASST_MAGIC_TOKEN"
DATABASE_URL_ENV = "ASST_MAGIC_DATABASE_URL"
MODEL_KEY_ENV = "ASST_MAGIC_MODEL_API_KEY"
_START_TIMEOUT = 60.0
_DEFAULT: Any = object()


class ServerHandle:
    """A running server: its ``base_url`` and ``token``; ``stop()`` ends it."""

    def __init__(
        self, base_url: str, token: str, stopper: Callable[[], None], pid: int | None = None
    ) -> None:
        self.base_url = base_url
        self.token = token
        self.pid = pid  # the subprocess's pid (None when running in a thread)
        self._stopper: Callable[[], None] | None = stopper

    def stop(self) -> None:
        """Stop the server and wait for it; idempotent."""
        stopper, self._stopper = self._stopper, None
        if stopper is not None:
            stopper()

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"ServerHandle(base_url={self.base_url!r})"


class _Server(uvicorn.Server):
    """A uvicorn server that reports when it is listening."""

    def __init__(self, config: uvicorn.Config, on_ready: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self._on_ready()


def default_sandbox(config: ServerConfig) -> Sandbox | None:
    """The code interpreter for ``config``: a ``KernelSandbox`` with its ``code_*`` limits."""
    if not config.code_interpreter:
        return None
    try:
        from asst_magic.server.code_interpreter.kernels import create_sandbox
    except ImportError:  # jupyter_client missing: serve; code_interpreter calls fail clearly
        return None
    try:
        return create_sandbox(config)
    except ValueError as exc:  # a bad code_sandbox value or gateway URL: the user's to fix
        hint = "" if config.kernel_gateway_url else " (--code-sandbox or $ASST_MAGIC_CODE_SANDBOX)"
        raise StartupError(f"{exc}{hint}") from exc


def make_server(
    config: ServerConfig,
    on_ready: Callable[[], None],
    *,
    sandbox: Sandbox | None,
    models: ModelRegistry | None = None,
    url: str,
    shared: bool = False,
) -> uvicorn.Server:
    """A uvicorn server for the app (quiet logs; streams get 2 s to finish at shutdown).

    It claims ``config.data_dir`` first (a second server there is a ``StartupError``)
    and publishes its ``url`` and token in the data dir's runtime file once listening.
    """
    from asst_magic.server.app import create_app

    owner = _claim(config.data_dir)
    try:
        app = create_app(
            config, sandbox=sandbox, models=models, owner=owner, hosts=allowed_hosts(config)
        )
    except BaseException:
        owner.release()
        raise
    assert config.token is not None
    info = RuntimeInfo(url, config.token, os.getpid(), shared, _cassette_names(config))

    def ready() -> None:
        owner.publish(info)
        on_ready()

    uv_config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=2
    )
    return _Server(uv_config, ready)


def _claim(data_dir: Path) -> ServerLock:
    """Make the data dir private and take its server lock (problems the user fixes)."""
    try:
        make_private(data_dir)
        return ServerLock(data_dir)
    except OSError as exc:
        raise StartupError(
            f"Cannot use the data directory {data_dir}: {exc.strerror} ({exc.filename}). "
            "Pass a writable --data-dir (ServerConfig.data_dir), or fix its permissions."
        ) from exc


def _cassette_names(config: ServerConfig) -> tuple[str, ...]:
    return tuple(str(Path(c).resolve()) for c in config.cassettes)


def start_in_thread(
    config: ServerConfig,
    *,
    sandbox: Sandbox | None = _DEFAULT,
    models: ModelRegistry | None = None,
) -> ServerHandle:
    """Serve from a daemon thread of this process; returns once listening."""
    config = replace(config, token=config.token or new_token())
    warning = exposure_warning(config.host)
    if warning is not None:
        log.warning("%s", warning)
    if sandbox is _DEFAULT:
        sandbox = default_sandbox(config)
    sock = bind(config.host, config.port)
    config = advertised(config, sock)
    ready = threading.Event()
    try:
        server = make_server(config, ready.set, sandbox=sandbox, models=models, url=base_url(sock))
    except BaseException:
        sock.close()
        raise
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="asst-magic-server", daemon=True
    )
    thread.start()
    while not ready.wait(0.05):
        if not thread.is_alive():
            sock.close()
            raise RuntimeError("The local assistant server failed to start; see the log above.")

    def stop() -> None:
        server.should_exit = True
        thread.join()
        sock.close()

    assert config.token is not None
    return ServerHandle(base_url(sock), config.token, stop)


def spawn(config: ServerConfig, *, idle_shutdown: float | None = None) -> ServerHandle:
    """Serve from a ``python -m asst_magic.server`` subprocess that exits if this one dies.

    With ``idle_shutdown`` it is a shared server instead: it outlives this process
    and stops once no client has held a lease for that many seconds.
    """
    token = config.token or new_token()
    command = _command(config)
    if idle_shutdown is not None:
        at = command.index("--watch-parent")
        command[at : at + 2] = ["--idle-shutdown", str(idle_shutdown)]
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        env=_environment(config, token),
        start_new_session=True,
    )
    try:
        url = _first_line(proc)
    except BaseException:
        _terminate(proc)
        raise

    if idle_shutdown is not None:  # reap it whenever it ends, so it leaves no zombie
        threading.Thread(target=proc.wait, name="asst-magic-reaper", daemon=True).start()

    def stop() -> None:
        _terminate(proc)

    return ServerHandle(url, token, stop, pid=proc.pid)


def _command(config: ServerConfig) -> list[str]:
    cmd = [sys.executable, "-m", "asst_magic.server", "serve", "--host", config.host]
    cmd += ["--port", str(config.port), "--data-dir", str(config.data_dir)]
    cmd += ["--max-body-bytes", str(config.max_body_bytes)]
    if config.allowed_hosts:
        cmd += ["--allowed-hosts", ",".join(config.allowed_hosts)]
    cmd += ["--watch-parent", str(os.getpid())]
    for cassette in config.cassettes:
        cmd += ["--cassette", str(cassette)]
    cmd += ["--replica-lease", str(config.replica_lease_seconds)]
    if config.replica_url:
        cmd += ["--advertise-url", config.replica_url]
    return cmd + _code_arguments(config) + _model_arguments(config)


def _code_arguments(config: ServerConfig) -> list[str]:
    if not config.code_interpreter:
        return ["--no-code-interpreter"]
    memory_mb = (config.code_memory_limit_bytes or 0) // 1024**2
    gateway = []  # its token travels in the environment (argv is public)
    if config.kernel_gateway_url:
        gateway = ["--kernel-gateway", config.kernel_gateway_url]
        gateway += ["--kernel-gateway-kernelspec", config.kernel_gateway_kernelspec]
    return [
        *gateway,
        *("--code-timeout", str(config.code_timeout)),
        *("--code-idle-timeout", str(config.code_idle_timeout)),
        *("--code-pool-size", str(config.code_pool_size)),
        *("--code-max-kernels", str(config.code_max_kernels)),
        *("--code-max-output-chars", str(config.code_max_output_chars)),
        *("--code-memory-limit-mb", str(memory_mb)),
        *("--code-max-processes", str(config.code_max_processes or 0)),
        *("--code-sandbox", config.code_sandbox),
        *(["--code-network"] if config.code_network else []),
    ]


def _model_arguments(config: ServerConfig) -> list[str]:
    """The live-model flags; the API key travels in the environment (argv is public)."""
    cmd: list[str] = []
    if config.model_url:
        cmd += ["--model-url", config.model_url]
    if config.model:
        cmd += ["--model", config.model]
    if config.azure_api_version:
        cmd += ["--azure-api-version", config.azure_api_version]
    if config.context_tokens is not None:
        cmd += ["--context-tokens", str(config.context_tokens)]
    if config.record_cassette is not None:
        cmd += ["--record-cassette", str(config.record_cassette)]
    # Defaults are left to the child, so its ASST_MAGIC_MODEL_*_TIMEOUT variables apply.
    defaults = ServerConfig(config.data_dir)
    if config.model_connect_timeout != defaults.model_connect_timeout:
        cmd += ["--model-connect-timeout", str(config.model_connect_timeout)]
    if config.model_idle_timeout != defaults.model_idle_timeout:
        cmd += ["--model-idle-timeout", str(config.model_idle_timeout)]
    return cmd


def _environment(config: ServerConfig, token: str) -> dict[str, str]:
    env = {**os.environ, TOKEN_ENV: token}
    # The URL may hold a password, so it travels like the token; without one, the child
    # keeps to its config's SQLite store whatever our environment says.
    env.pop(DATABASE_URL_ENV, None)
    if config.database_url:
        env[DATABASE_URL_ENV] = config.database_url
    if config.kernel_gateway_token:
        env[GATEWAY_TOKEN_ENV] = config.kernel_gateway_token
    elif config.kernel_gateway_url:
        env.pop(GATEWAY_TOKEN_ENV, None)  # ours belongs to our gateway, not this explicit one
    if config.model_api_key:
        env[MODEL_KEY_ENV] = config.model_api_key
    elif config.model_url:
        # A key in our environment belongs to the URL there, not to this explicit one.
        env.pop(MODEL_KEY_ENV, None)
    return env


def _first_line(proc: subprocess.Popen[bytes]) -> str:
    assert proc.stdout is not None
    buffer = b""
    deadline = time.monotonic() + _START_TIMEOUT
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while b"\n" not in buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(remaining):
                raise RuntimeError("The local assistant server did not start within 60 s.")
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                raise RuntimeError(
                    f"The local assistant server exited at start (code {proc.wait()}); "
                    "see its error output above."
                )
            buffer += chunk
    return buffer.split(b"\n", 1)[0].decode().strip()


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()
