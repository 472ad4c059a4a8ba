"""Which Chat Completions endpoint the environment names: own variables, Azure's, or OpenAI's."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = [
    "DEFAULT_AZURE_API_VERSION",
    "DEFAULT_OPENAI_MODEL",
    "OPENAI_URL",
    "Endpoint",
    "endpoint_from_env",
]

OPENAI_URL = "https://api.openai.com/v1"
DEFAULT_OPENAI_MODEL = "gpt-4o-mini"
DEFAULT_AZURE_API_VERSION = "2024-10-21"


@dataclass(frozen=True)
class Endpoint:
    """Where the model lives; ``api_key`` never shows in the repr."""

    base_url: str
    api_key: str | None = field(default=None, repr=False)
    model: str = ""
    azure_api_version: str | None = None


def endpoint_from_env(environ: Mapping[str, str]) -> Endpoint | None:
    """The endpoint the environment configures, or ``None``.

    In order: ``ASST_MAGIC_MODEL_URL`` (+ ``ASST_MAGIC_MODEL_API_KEY``); Azure's
    ``AZURE_OPENAI_ENDPOINT`` / ``AZURE_OPENAI_API_KEY`` / ``AZURE_OPENAI_API_VERSION``
    (the deployment is the model name); an OpenAI key alone means OpenAI's endpoint.
    ``ASST_MAGIC_MODEL`` names the model in every case.
    """
    model = environ.get("ASST_MAGIC_MODEL", "")
    own_key = environ.get("ASST_MAGIC_MODEL_API_KEY") or None
    if environ.get("ASST_MAGIC_MODEL_URL"):
        return Endpoint(environ["ASST_MAGIC_MODEL_URL"], own_key, model)
    if environ.get("AZURE_OPENAI_ENDPOINT"):
        key = environ.get("AZURE_OPENAI_API_KEY") or own_key
        version = environ.get("AZURE_OPENAI_API_VERSION") or DEFAULT_AZURE_API_VERSION
        return Endpoint(environ["AZURE_OPENAI_ENDPOINT"], key, model, version)
    key = own_key or environ.get("OPENAI_API_KEY") or None
    if key:
        url = environ.get("OPENAI_BASE_URL") or OPENAI_URL
        return Endpoint(url, key, model or DEFAULT_OPENAI_MODEL)
    return None
