"""What ``%config AssistantMagics`` sets, and what those settings resolve to.

The settings live on ``AssistantSettings``, the base of ``AssistantMagics`` (so
``%config AssistantMagics.collapse = "none"`` works as before); its helpers read
a setting or, where it is empty, the environment: which model, which cassette,
which code sandbox, widget or text.

Example::

    %config AssistantMagics.collapse = "all"
    %config AssistantMagics.code_sandbox = "required"
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from typing import Any

from IPython.core.magic import Magics
from traitlets import Bool, Enum, Float, Int, Unicode

from asst_magic.render import COLLAPSE

__all__ = ["AssistantSettings"]


class AssistantSettings(Magics):
    """The magics' settings (traitlets, configurable) and the environment they fall back on."""

    backend = Enum(
        ("auto", "local", "assistants"),
        default_value="auto",
        help="Where runs happen. auto: `assistants` when ASSISTANT_ID and OPENAI_BASE_URL "
        "(or AZURE_OPENAI_ENDPOINT) are set, else the built-in `local` server.",
    ).tag(config=True)
    model = Unicode(
        "",
        help="Model of the local server's default assistant. Empty: `replay` when a cassette "
        "is set, else $ASST_MAGIC_MODEL, else the live endpoint's model when one is configured "
        "(ASST_MAGIC_MODEL_URL, OPENAI_API_KEY or AZURE_OPENAI_ENDPOINT), else `replay`.",
    ).tag(config=True)
    assistant_id = Unicode("", help="Assistant to use (default: the local default one).").tag(
        config=True
    )
    instructions = Unicode("", help="Extra instructions for every run.").tag(config=True)
    cassette = Unicode(
        "",
        help="Replay cassette file(s) for the local server, os.pathsep-separated "
        "(default: $ASST_MAGIC_CASSETTE).",
    ).tag(config=True)
    repaint_hz = Float(25.0, help="Most repaints per second of the live output.").tag(config=True)
    display = Enum(
        ("auto", "widget", "text"),
        default_value="auto",
        help="Live widget, or plain text on stdout; auto picks the widget in a Jupyter kernel.",
    ).tag(config=True)
    files_dir = Unicode(
        "assistant_files", help="Where files the assistant makes are saved (links point here)."
    ).tag(config=True)
    code_sandbox = Enum(
        ("", "auto", "required", "off"),
        default_value="",
        help="The local server's code sandbox (bubblewrap on Linux). auto: sandboxed where "
        "it can run, else unconfined with a warning; required: refuse to run code without "
        "it; off: unconfined. Empty: $ASST_MAGIC_CODE_SANDBOX, else auto.",
    ).tag(config=True)
    code_network = Bool(
        False,
        help="Let the local server's sandboxed code use the network (pip install, web "
        "fetches); also on when $ASST_MAGIC_CODE_NETWORK=1.",
    ).tag(config=True)
    save_images = Bool(
        False,
        help="Also save plots in files_dir (they are always shown; files the code writes "
        "are always saved). Plain-text display saves them, as it cannot show them.",
    ).tag(config=True)
    collapse = Enum(
        COLLAPSE,
        default_value="code",
        help="What folds once it is done: `code` (code steps and function calls; their "
        "output stays), `all` (their output too) or `none`. Sections are open while they run.",
    ).tag(config=True)
    max_var_bytes = Int(
        32 * 1024 * 1024,
        help="Largest value (encoded bytes) that `--var` sends and `%asst_get` accepts.",
    ).tag(config=True)

    def __init__(self, shell: Any = None, *, environ: Mapping[str, str] | None = None) -> None:
        """``environ`` (default: ``os.environ``) is where empty settings look next."""
        super().__init__(shell=shell)
        self.environ = os.environ if environ is None else environ

    def _cassette(self) -> str:
        return self.cassette or self.environ.get("ASST_MAGIC_CASSETTE", "")

    def _server_settings(self, name: str) -> Any:
        """What the backend was built from: a change means building it again."""
        if name == "local":
            data_dir = self.environ.get("ASST_MAGIC_DATA_DIR", "")
            return (name, self._cassette(), data_dir, *self._code_settings())
        return (name,)

    def _code_settings(self) -> tuple[str, bool]:
        """The local server's code sandbox mode and network switch (setting, else env)."""
        from asst_magic.server.config import code_switches  # only the local backend asks

        return code_switches(self.code_sandbox, self.code_network, self.environ)

    def _model(self) -> str:
        """The ``model`` setting, or what the environment implies (see its help)."""
        env = self.environ
        if self.model:
            return self.model
        if self._cassette():
            return "replay"
        if env.get("ASST_MAGIC_MODEL"):
            return env["ASST_MAGIC_MODEL"]
        live = ("ASST_MAGIC_MODEL_URL", "OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT")
        # With an endpoint but no model name, the server uses the endpoint's default.
        return "default" if any(env.get(v) for v in live) else "replay"

    def _mode(self) -> str:
        """``widget`` or ``text``: the ``display`` setting, with ``auto`` decided."""
        if self.display != "auto":
            return str(self.display)
        kernel = getattr(self.shell, "kernel", None) is not None
        return "widget" if kernel and importlib.util.find_spec("ipywidgets") else "text"
