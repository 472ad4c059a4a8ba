"""The default backend: the project's own Assistants server, started on first use."""

from __future__ import annotations

import atexit
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from asst_magic.backends.http import SDKBackend

if TYPE_CHECKING:
    from asst_magic.server.config import ServerConfig
    from asst_magic.server.launch import ServerHandle

__all__ = ["LocalBackend", "cassettes_from", "data_dir_from"]

_HINT = "The local server stopped; `%reload_ext asst_magic` starts a new one."
_MARK = {"asst_magic": "default"}


def data_dir_from(environ: Mapping[str, str]) -> Path:
    """``ASST_MAGIC_DATA_DIR``, else the user data directory (XDG rules on Linux)."""
    if environ.get("ASST_MAGIC_DATA_DIR"):
        return Path(environ["ASST_MAGIC_DATA_DIR"]).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("asst_magic", appauthor=False))


def cassettes_from(value: str) -> tuple[Path, ...]:
    """``os.pathsep``-separated cassette paths, made absolute (the server has its own cwd)."""
    return tuple(Path(p).expanduser().resolve() for p in value.split(os.pathsep) if p.strip())


class LocalBackend(SDKBackend):
    """Use the data dir's ``asst_magic.server`` (started on first use) over loopback HTTP.

    Notebooks on one data dir share one server; it stops when the last has gone.
    """

    def __init__(
        self,
        *,
        data_dir: Path,
        cassettes: tuple[Path, ...] = (),
        model: str = "replay",
        files_dir: Path = Path("assistant_files"),
        launcher: Callable[[ServerConfig], ServerHandle] | None = None,
        code_sandbox: str = "auto",
        code_network: bool = False,
    ) -> None:
        import openai

        from asst_magic.server.config import ServerConfig

        if launcher is None:  # the data dir's shared server, started if none runs
            from asst_magic.server.sharing import connect

            launcher = connect
        self.cassettes, self.model = cassettes, model
        config = ServerConfig(
            data_dir=data_dir,
            cassettes=cassettes,
            code_sandbox=code_sandbox,
            code_network=code_network,
        )
        self._handle = launcher(config)
        # Sandboxed code reaching the network is the user's explicit choice: keep it in view.
        self.status_notes = ("code network on",) if code_network else ()
        # A kernel that exits lets go too, so the last one out stops the server at once.
        atexit.register(self._handle.stop)
        client = openai.OpenAI(base_url=self._handle.base_url, api_key=self._handle.token)
        super().__init__(client, hint=_HINT, files_dir=files_dir)
        self._assistants: dict[str, str] = {}  # model -> its default assistant

    def default_assistant(self) -> str:
        """Reuse the assistant this data dir already has for ``model``, or create it."""
        if self.model not in self._assistants:
            found = self._find_assistant() or self._create_assistant()
            self._assistants[self.model] = found
        return self._assistants[self.model]

    def _find_assistant(self) -> str | None:
        for assistant in self.client.beta.assistants.list(limit=100):
            if assistant.metadata == _MARK and assistant.model == self.model:
                return assistant.id
        return None

    def _create_assistant(self) -> str:
        tools: Any = [{"type": "code_interpreter"}]
        assistant = self.client.beta.assistants.create(
            model=self.model, name="asst_magic", tools=tools, metadata=_MARK
        )
        return assistant.id

    def close(self) -> None:
        """Let go of the server (the last notebook to let go stops it)."""
        super().close()
        self._handle.stop()
        atexit.unregister(self._handle.stop)
