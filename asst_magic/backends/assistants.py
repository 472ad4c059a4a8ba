"""A remote Assistants-compatible endpoint, configured from the environment.

``OPENAI_BASE_URL`` + ``OPENAI_API_KEY`` + ``ASSISTANT_ID``, or Azure's
``AZURE_OPENAI_ENDPOINT`` + ``AZURE_OPENAI_API_KEY`` + ``AZURE_OPENAI_API_VERSION``
(as the Azure samples read them). ``OPENAI_API_KEY`` alone selects nothing:
OpenAI's own Assistants endpoint no longer exists.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from asst_magic.backends.base import BackendError
from asst_magic.backends.http import SDKBackend

__all__ = ["AZURE_VARIABLES", "OPENAI_VARIABLES", "AssistantsBackend", "configured"]

OPENAI_VARIABLES = ("OPENAI_BASE_URL", "OPENAI_API_KEY", "ASSISTANT_ID")
AZURE_VARIABLES = ("AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_API_VERSION")
_HINT = "Check OPENAI_BASE_URL / AZURE_OPENAI_ENDPOINT, or use `--backend local`."


def configured(environ: Mapping[str, str]) -> bool:
    """Whether the environment points at a remote Assistants endpoint with an assistant."""
    endpoint = environ.get("OPENAI_BASE_URL") or environ.get("AZURE_OPENAI_ENDPOINT")
    return bool(endpoint and environ.get("ASSISTANT_ID"))


class AssistantsBackend(SDKBackend):
    """A remote Assistants API v2 service reached with ``openai.OpenAI`` or ``AzureOpenAI``."""

    # Any Assistants server's code interpreter can read an attached file.
    attaches_variables = True

    def __init__(
        self,
        environ: Mapping[str, str],
        *,
        files_dir: Path = Path("assistant_files"),
    ) -> None:
        import openai

        client: openai.OpenAI
        if environ.get("AZURE_OPENAI_ENDPOINT"):
            _require(environ, AZURE_VARIABLES)
            client = openai.AzureOpenAI(
                azure_endpoint=environ["AZURE_OPENAI_ENDPOINT"],
                api_key=environ["AZURE_OPENAI_API_KEY"],
                api_version=environ["AZURE_OPENAI_API_VERSION"],
            )
        else:
            _require(environ, OPENAI_VARIABLES[:2])
            client = openai.OpenAI(
                base_url=environ["OPENAI_BASE_URL"], api_key=environ["OPENAI_API_KEY"]
            )
        super().__init__(client, hint=_HINT, files_dir=files_dir)
        # `--assistant` and `AssistantMagics.assistant_id` arrive with each request instead.
        self._assistant_id = environ.get("ASSISTANT_ID", "")

    def default_assistant(self) -> str:
        """``ASSISTANT_ID``: a remote assistant is never created for you."""
        if not self._assistant_id:
            raise BackendError(
                "The assistants backend needs an assistant: set ASSISTANT_ID, "
                "`%config AssistantMagics.assistant_id = '...'` or pass --assistant ID."
            )
        return self._assistant_id


def _require(environ: Mapping[str, str], names: tuple[str, ...]) -> None:
    missing = [name for name in names if not environ.get(name)]
    if missing:
        raise BackendError(
            f"The assistants backend needs {', '.join(missing)}. Set "
            f"{' / '.join(OPENAI_VARIABLES)} (or {' / '.join(AZURE_VARIABLES)} and ASSISTANT_ID) "
            "in the environment, or use `--backend local`."
        )
