"""Which isolation the code interpreter's kernels get: the ``code_sandbox`` setting.

``auto`` (the default) confines every kernel with bubblewrap where it can run
and otherwise runs them unconfined, saying so once (server log and the first
execution's output); ``required`` refuses to run code without the sandbox;
``off`` runs kernels unconfined as the user, as before, and says so too.

Example::

    confinement = choose_confinement("auto", network=False, hidden=[data_dir])
    confinement.bubblewrap  # a Bubblewrap, or None with confinement.warning set
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from asst_magic.server.code_interpreter.bubblewrap import (
    INSTALL_HINT,
    Bubblewrap,
    probe_bubblewrap,
    python_roots,
)

__all__ = ["SANDBOX_MODES", "Confinement", "SandboxMode", "choose_confinement"]

SandboxMode = Literal["auto", "required", "off"]
SANDBOX_MODES: tuple[str, ...] = get_args(SandboxMode)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Confinement:
    """The decision for one server: a ``Bubblewrap`` to run kernels in, or why not.

    ``warning`` is shown once when kernels run unconfined; ``refusal`` is set when
    code must not run at all (``required`` without a working sandbox).
    """

    bubblewrap: Bubblewrap | None
    network: bool = False
    warning: str | None = None
    refusal: str | None = None

    @property
    def summary(self) -> str:
        """One phrase for logs and notes, e.g. ``bubblewrap sandbox, no network``."""
        if self.bubblewrap is None:
            return "no sandbox"
        return f"bubblewrap sandbox, {'network on' if self.network else 'no network'}"


def choose_confinement(
    mode: str, *, network: bool = False, hidden: Sequence[Path] = ()
) -> Confinement:
    """Decide for ``mode`` (``auto``/``required``/``off``); log a warning when unconfined."""
    if mode not in SANDBOX_MODES:
        raise ValueError(f"code_sandbox must be one of {', '.join(SANDBOX_MODES)}, not {mode!r}")
    if mode == "off":
        decision = Confinement(None, network=True, warning=_OFF)
    elif (missing := probe_bubblewrap()) is None:
        roots = tuple(python_roots())
        box = Bubblewrap(network=network, readable=roots, hidden=tuple(hidden))
        return Confinement(box, network=network)
    elif mode == "required":
        return Confinement(None, refusal=_refusal(missing))
    else:
        decision = Confinement(None, network=True, warning=_missing(missing))
    log.warning("%s", decision.warning)
    return decision


_OFF = (
    "Code interpreter: code_sandbox is off, so model-written code runs unconfined as your "
    "user (your files, your network). Set code_sandbox = auto to sandbox it."
)


def _missing(reason: str) -> str:
    fix = INSTALL_HINT if sys.platform.startswith("linux") else _NOT_LINUX
    return (
        f"Code interpreter: no sandbox, so model-written code runs unconfined as your user "
        f"(your files, your network): {reason}. To sandbox it, {fix}; to refuse to run code "
        "without it, set code_sandbox = required."
    )


def _refusal(reason: str) -> str:
    fix = INSTALL_HINT if sys.platform.startswith("linux") else _NOT_LINUX
    return (
        f"The code sandbox is required (code_sandbox = required) but cannot run here: {reason}. "
        f"To run code, {fix}, or set code_sandbox = auto."
    )


_NOT_LINUX = "run the server on Linux (macOS and Windows kernels are not sandboxed yet)"
