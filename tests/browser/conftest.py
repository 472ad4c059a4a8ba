"""Fixtures for the real-browser tests: a JupyterLab server on loopback and Debian's chromium.

The server runs in a scratch copy of ``notebooks/`` with its own Jupyter config,
settings and workspace directories, so a developer's own JupyterLab set-up can't
change what the test sees. Screenshots go to ``test-artifacts/browser/``.
"""

from __future__ import annotations

import json
import os
import queue
import secrets
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
ARTIFACTS = REPO / "test-artifacts" / "browser"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Plugins that reach for the internet or pop up over the notebook on first start.
DISABLED_PLUGINS = [
    "@jupyterlab/apputils-extension:announcements",
    "@jupyterlab/extensionmanager-extension:plugin",
]
# Render every cell: with windowing, cells scrolled out of view have no DOM to assert on.
USER_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}
STARTUP_TIMEOUT = 60.0


@dataclass(frozen=True)
class Lab:
    """A running JupyterLab: where it listens, its token and the folder it serves."""

    url: str  # http://127.0.0.1:PORT
    token: str
    root: Path

    def lab_url(self, path: str = "") -> str:
        """The browser URL that opens ``path`` (relative to ``root``) with the token."""
        return f"{self.url}/lab/tree/{path}?token={self.token}"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Tell the reader where the screenshots are."""
    if ARTIFACTS.is_dir() and any(ARTIFACTS.iterdir()):
        terminalreporter.write_line(f"browser screenshots: {ARTIFACTS}")


@pytest.fixture(scope="module")
def artifacts() -> Path:
    """A fresh ``test-artifacts/browser/`` folder for this run's screenshots."""
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    print(f"\nbrowser screenshots: {ARTIFACTS}")
    return ARTIFACTS


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """JupyterLab on 127.0.0.1 with a random token, serving a scratch copy of ``notebooks/``."""
    base = tmp_path_factory.mktemp("lab")
    root = base / "notebooks"
    shutil.copytree(NOTEBOOKS, root, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "*.png"))
    token = secrets.token_hex(16)
    port = _free_port()
    proc = subprocess.Popen(
        _lab_command(root, port, token),
        env=_lab_environment(base),
        cwd=root,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    log = base / "jupyterlab.log"
    try:
        _wait_until_listening(proc, port, log)
        yield Lab(f"http://127.0.0.1:{port}", token, root)
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's chromium, headless, driven by Playwright (never a downloaded browser)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `sh .ci/browser-deps.sh` as root to install it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser page with a desktop-sized viewport."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _lab_command(root: Path, port: int, token: str) -> list[str]:
    return [
        sys.executable, "-m", "jupyter", "lab",
        "--no-browser",
        "--allow-root",  # CI runs as root; harmless otherwise
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--LabApp.expose_app_in_browser=True",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
        "--ServerApp.terminals_enabled=False",
    ]  # fmt: skip


def _lab_environment(base: Path) -> dict[str, str]:
    """Isolated Jupyter config/settings dirs; the kernel imports the asst_magic under test."""
    config, settings = base / "config", base / "settings"
    (config / "labconfig").mkdir(parents=True)
    page_config = {"disabledExtensions": dict.fromkeys(DISABLED_PLUGINS, True)}
    (config / "labconfig" / "page_config.json").write_text(json.dumps(page_config))
    for name, values in USER_SETTINGS.items():
        path = settings / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    env = dict(os.environ)
    env.update(
        JUPYTER_CONFIG_DIR=str(config),
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(base / "workspaces"),
        JUPYTER_RUNTIME_DIR=str(base / "runtime"),
        IPYTHONDIR=str(base / "ipython"),
        PYTHONPATH=os.pathsep.join(p for p in (_package_root(), env.get("PYTHONPATH")) if p),
    )
    return env


def _package_root() -> str:
    """The folder holding the ``asst_magic`` this test process imports (else this checkout)."""
    try:
        import asst_magic
    except ImportError:
        return str(REPO)
    return str(Path(asst_magic.__file__).resolve().parents[1])


def _wait_until_listening(proc: subprocess.Popen[str], port: int, log: Path) -> None:
    """Read the server's log until it says it is serving on ``port``; keep the log in a file."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stderr is not None
        with log.open("w") as out:
            for line in proc.stderr:
                out.write(line)
                out.flush()
                lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    ready = f"http://127.0.0.1:{port}/lab"
    while True:
        try:
            line = lines.get(timeout=STARTUP_TIMEOUT)
        except queue.Empty:
            pytest.fail(f"JupyterLab did not start within {STARTUP_TIMEOUT}s; see {log}")
        if line is None:
            pytest.fail(f"JupyterLab exited with {proc.wait()}; see {log}")
        if ready in line:
            return


def _stop(proc: subprocess.Popen[str]) -> None:
    """Stop the server (which shuts down its kernels); kill it if it hangs."""
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
