"""Model resolution: a run's ``model`` string names the model that produces its turns.

``replay`` is the deterministic cassette model. Other names are offered to the
registry's providers in order; with ``config.model_url`` set, every other name
goes to that Chat Completions endpoint::

    registry = default_registry(config)
    registry.add(MyProvider())          # anything with get(name) and describe()
    model = registry.resolve("replay")
"""

from __future__ import annotations

from typing import Protocol

from asst_magic.server.config import ServerConfig
from asst_magic.server.models.base import Model, ModelError
from asst_magic.server.models.replay import ReplayModel

__all__ = ["ModelProvider", "ModelRegistry", "NamedModel", "default_registry"]


class ModelProvider(Protocol):
    """Offers models by name."""

    def get(self, name: str) -> Model | None:
        """The model called ``name``, or ``None`` when this provider has no such model."""
        ...

    def describe(self) -> str:
        """What this provider serves, for error messages (``"replay (cassettes: a.jsonl)"``)."""
        ...


class NamedModel:
    """A provider of exactly one model under one name."""

    def __init__(self, name: str, model: Model, description: str | None = None) -> None:
        self._name = name
        self._model = model
        self._description = description or name

    def get(self, name: str) -> Model | None:
        """``model`` when ``name`` matches."""
        return self._model if name == self._name else None

    def describe(self) -> str:
        """The name (and what it is)."""
        return self._description


class ModelRegistry:
    """Providers asked in order; the first that knows a name wins."""

    def __init__(self, providers: list[ModelProvider] | None = None) -> None:
        self._providers: list[ModelProvider] = list(providers or [])

    def add(self, provider: ModelProvider, *, first: bool = False) -> None:
        """Register ``provider`` (asked last, or first)."""
        if first:
            self._providers.insert(0, provider)
        else:
            self._providers.append(provider)

    async def aclose(self) -> None:
        """Close every provider (and so its models) that holds resources."""
        for provider in self._providers:
            close = getattr(provider, "aclose", None)
            if close is not None:
                await close()

    def resolve(self, name: str) -> Model:
        """The model for ``name``; ``ModelError`` naming what is available otherwise."""
        for provider in self._providers:
            model = provider.get(name)
            if model is not None:
                return model
        available = "; ".join(p.describe() for p in self._providers) or "none"
        raise ModelError(
            f"No model named '{name}' on this server. Available: {available}. "
            "Set the assistant's or run's model to one of these.",
            code="invalid_prompt",
        )


def default_registry(config: ServerConfig) -> ModelRegistry:
    """``replay`` over the configured cassettes, then the Chat Completions model if configured."""
    replay = ReplayModel(config.cassettes)
    registry = ModelRegistry([NamedModel("replay", replay, replay.describe())])
    if config.model_url:
        registry.add(_chat_provider(config))
    return registry


def _chat_provider(config: ServerConfig) -> ModelProvider:
    """Every other name goes to the endpoint (recorded to a cassette when asked)."""
    # Imported here: the openai SDK is only loaded by servers that talk to a live model.
    from asst_magic.server.models.chat import ChatCompletionsModel, ChatModelProvider
    from asst_magic.server.models.recorder import CassetteRecorder, RecordingModel

    assert config.model_url is not None
    model: Model = ChatCompletionsModel(
        config.model_url,
        config.model_api_key,
        config.model,
        azure_api_version=config.azure_api_version,
        context_tokens=config.context_tokens,
        connect_timeout=config.model_connect_timeout,
        idle_timeout=config.model_idle_timeout,
    )
    if config.record_cassette is not None:
        model = RecordingModel(model, CassetteRecorder(config.record_cassette))
    return ChatModelProvider(model)
