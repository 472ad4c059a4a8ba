"""A real Jupyter Enterprise Gateway on loopback, from its own virtualenv, for the gateway tests.

``.ci/gateway-deps.sh`` makes that virtualenv (``.ci/gateway-venv``, pinned versions);
``ASST_MAGIC_TEST_GATEWAY_PYTHON`` may name another one's Python. Without one the
tests fail, saying how to get it; ``ASST_MAGIC_TEST_GATEWAY=skip`` skips them instead,
for a machine where it cannot be installed (CI never sets it).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["CuttableProxy", "Gateway", "gateway_python", "start_gateway"]

ROOT = Path(__file__).resolve().parents[2]
PYTHON_ENV = "ASST_MAGIC_TEST_GATEWAY_PYTHON"
SKIP_ENV = "ASST_MAGIC_TEST_GATEWAY"
_READY = "is available at"


@dataclass
class Gateway:
    """A running gateway: its URL, token and process."""

    url: str
    token: str
    process: subprocess.Popen[str]
    python: Path
    log: list[str]


def gateway_python() -> Path:
    """The gateway virtualenv's Python; fails (or skips, when told) without one."""
    python = Path(os.environ.get(PYTHON_ENV) or ROOT / ".ci" / "gateway-venv" / "bin" / "python")
    if (python.parent / "jupyter-enterprisegateway").is_file():
        return python
    reason = (
        f"no Jupyter Enterprise Gateway next to {python}: run `bash .ci/gateway-deps.sh` "
        f"(or set {PYTHON_ENV} to a Python with jupyter_enterprise_gateway)"
    )
    if os.environ.get(SKIP_ENV) == "skip":
        pytest.skip(f"{reason}; skipped because {SKIP_ENV}=skip")
    pytest.fail(f"{reason}; to skip these tests on purpose set {SKIP_ENV}=skip", pytrace=False)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def start_gateway(home: Path, *, timeout: float = 60.0) -> Iterator[Gateway]:
    """Start the gateway on a free loopback port and stop it (and its kernels) afterwards."""
    python = gateway_python()
    for _ in range(3):  # the free port may be taken before the gateway binds it
        gateway = _launch(python, home, _free_port(), timeout)
        if gateway is not None:
            break
    else:
        raise RuntimeError("the Enterprise Gateway did not start on three ports")
    try:
        yield gateway
    finally:
        gateway.process.terminate()
        try:
            gateway.process.wait(15)
        except subprocess.TimeoutExpired:
            gateway.process.kill()
            gateway.process.wait()


def _launch(python: Path, home: Path, port: int, timeout: float) -> Gateway | None:
    token = secrets.token_hex(16)
    home.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": f"{python.parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(home),
        "EG_AUTH_TOKEN": token,  # the environment, not argv: argv is public
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "IPYTHONDIR": str(home / "ipython"),
        "MPLCONFIGDIR": str(home / "matplotlib"),
        "LANG": "C.UTF-8",
    }
    command = [
        str(python.parent / "jupyter-enterprisegateway"),
        "--ip=127.0.0.1",
        f"--port={port}",
        "--port_retries=0",
        # The tests run as root in CI, which the gateway refuses by default.
        "--EnterpriseGatewayApp.unauthorized_users=nobody-in-particular",
        "--EnterpriseGatewayApp.list_kernels=True",
    ]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    log: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            log.append(line)
            if _READY in line:
                ready.set()
        ready.set()  # it exited

    threading.Thread(target=read, name="gateway-log", daemon=True).start()
    if ready.wait(timeout) and process.poll() is None and any(_READY in x for x in log):
        return Gateway(f"http://127.0.0.1:{port}", token, process, python, log)
    process.kill()
    process.wait()
    if not any("already in use" in line or "Address" in line for line in log):
        raise RuntimeError("the Enterprise Gateway did not start:\n" + "".join(log[-30:]))
    return None


class CuttableProxy:
    """A loopback TCP proxy to ``target`` whose open connections ``cut()`` closes.

    It stands in for a load balancer that drops idle websockets.
    """

    def __init__(self, target: str) -> None:
        host, port = target.removeprefix("http://").split(":")
        self._target = (host, int(port))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, name="proxy", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # closed
                return
            upstream = socket.create_connection(self._target)
            with self._lock:
                self._open += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pipe, args=(source, sink), daemon=True).start()

    def cut(self) -> None:
        """Close every connection open now (new ones still go through)."""
        with self._lock:
            connections, self._open = self._open, []
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()

    def close(self) -> None:
        self._listener.close()
        self.cut()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)
