"""A model backed by any Chat Completions endpoint: OpenAI, Azure OpenAI, Ollama, vLLM, ...

>>> model = ChatCompletionsModel("http://127.0.0.1:11434/v1", None, "llama3.1")
>>> model
ChatCompletionsModel(base_url='http://127.0.0.1:11434/v1', model='llama3.1', api_key=None)

The stream is read raw (``with_streaming_response``) and decoded with the
project's ``SSEDecoder``: the SDK brings auth, Azure routing and typed errors,
and the bridge stays liberal about what each server actually sends.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import Any
from urllib.parse import urlsplit

import httpx2
import openai

from asst_magic.server.models.base import Chunk, Model, ModelError, TurnEnd, TurnRequest
from asst_magic.server.models.chat_errors import (
    connection_error,
    display_url,
    ended_early,
    idle_timeout_error,
    is_retryable,
    provider_message,
    retry_after,
    scrub,
    sentence,
    status_error,
)
from asst_magic.server.models.chat_messages import (
    CODE_TOOL_NAME,
    build_messages,
    build_tools,
    offers_code_interpreter,
)
from asst_magic.server.models.chat_stream import StreamTranslator, completion_as_chunk
from asst_magic.server.models.endpoint import Endpoint, endpoint_from_env
from asst_magic.sse import DONE, SSEDecoder

__all__ = ["ChatCompletionsModel", "ChatModelProvider", "Endpoint", "endpoint_from_env"]

log = logging.getLogger(__name__)

# Local servers ignore the key, but the SDK insists on one; never fall back to OPENAI_API_KEY,
# which would send the user's OpenAI key to whatever server the URL names.
_NO_KEY = "no-key"
_PASSED_OPTIONS = ("top_p", "response_format", "parallel_tool_calls", "tool_choice")
_TOOL_OPTIONS = frozenset({"parallel_tool_calls", "tool_choice"})
DEFAULT_CONNECT_TIMEOUT = 10.0
# Seconds with no byte from the model (before the answer starts, or between chunks) before
# the run fails; servers that think for long send keep-alive comments, which count.
DEFAULT_IDLE_TIMEOUT = 60.0

Sleep = Callable[[float], Awaitable[None]]


class ChatCompletionsModel:
    """Streams turns from a Chat Completions endpoint (see ``Model`` in ``base``).

    The configured ``model`` names the endpoint's model; when it is empty the
    run's own model name is sent. ``connect_timeout`` bounds connecting,
    ``idle_timeout`` any silence of the endpoint (waiting for the answer to start,
    or between chunks). ``sleep``, ``clock`` and ``backoff`` are seams for retry
    timing (tests pass a ``sleep`` that records instead of waiting).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        model: str,
        *,
        azure_api_version: str | None = None,
        max_retries: int = 3,
        context_tokens: int | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        http_client: httpx2.AsyncClient | None = None,
        backoff: float = 0.5,
        max_retry_after: float = 60.0,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.base_url = base_url
        self.model = model
        self.azure_api_version = azure_api_version
        self.max_retries = max_retries
        self.context_tokens = context_tokens
        self._api_key = api_key
        self._backoff, self._max_retry_after = backoff, max_retry_after
        self._sleep, self._clock = sleep, clock
        self.idle_timeout = idle_timeout
        self._include_usage = True  # dropped for good if the server rejects stream_options
        timeout = httpx2.Timeout(idle_timeout, connect=connect_timeout)
        self._client = _make_client(base_url, api_key, azure_api_version, http_client, timeout)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **options: Any
    ) -> ChatCompletionsModel:
        """The model the environment configures (``endpoint_from_env``); else ``ModelError``."""
        endpoint = endpoint_from_env(os.environ if environ is None else environ)
        if endpoint is None:
            raise ModelError(
                "No model endpoint configured. Set ASST_MAGIC_MODEL_URL and ASST_MAGIC_MODEL "
                "(and ASST_MAGIC_MODEL_API_KEY if it needs one), or OPENAI_API_KEY, or start "
                "the server with --model-url/--model; or use the model 'replay'."
            )
        return cls(
            endpoint.base_url,
            endpoint.api_key,
            endpoint.model,
            azure_api_version=endpoint.azure_api_version,
            **options,
        )

    def __repr__(self) -> str:
        key = "'***'" if self._api_key else "None"
        azure = f", azure_api_version={self.azure_api_version!r}" if self.azure_api_version else ""
        url = display_url(self.base_url)
        return f"ChatCompletionsModel(base_url={url!r}, model={self.model!r}, api_key={key}{azure})"

    def describe(self) -> str:
        """``Chat Completions at http://127.0.0.1:11434/v1 (model llama3.1)``, for messages."""
        model = f" (model {self.model})" if self.model else ""
        return f"Chat Completions at {display_url(self.base_url)}{model}"

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._client.close()

    async def turn(self, request: TurnRequest) -> AsyncIterator[Chunk]:
        """Stream one turn; ends with one ``TurnEnd``; raises ``ModelError``."""
        code_tool = CODE_TOOL_NAME if offers_code_interpreter(request) else None
        translator = StreamTranslator(code_tool)
        params = self._params(request)
        async with AsyncExitStack() as stack:
            response = await self._open(stack, params)
            async for data in self._stream_chunks(response):
                for chunk in translator.feed(data):
                    yield chunk
        for chunk in translator.closing_chunks():
            yield chunk
        yield self._turn_end(translator, params["model"])

    def source(self, model: str) -> str:
        """Who answers: provider fields go back only to the endpoint and model that sent them."""
        return f"{display_url(self.base_url)}#{model}"

    def _turn_end(self, translator: StreamTranslator, model: str) -> TurnEnd:
        """The turn's end, once the provider said it finished; else the run fails."""
        if translator.finish_reason is None:
            raise ended_early(self.base_url, translator.produced)
        if translator.finish_reason == "error":
            raise ModelError(
                f"The model endpoint {display_url(self.base_url)} ended the answer with an error "
                "(finish_reason 'error') and sent no message. Run again."
            )
        return translator.finish(self.source(model))

    # ── The request ──────────────────────────────────────────────────────────

    def _params(self, request: TurnRequest) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": self.model or request.model,
            "messages": build_messages(
                request, self._context_budget(request), self.source(self.model or request.model)
            ),
            "stream": True,
        }
        tools = build_tools(request)
        if tools:
            params["tools"] = tools
        if self._include_usage:
            params["stream_options"] = {"include_usage": True}
        if request.temperature is not None:
            params["temperature"] = request.temperature
        if request.max_completion_tokens:
            params[self._max_tokens_param()] = request.max_completion_tokens
        for name in _PASSED_OPTIONS:
            if name in request.options and (tools or name not in _TOOL_OPTIONS):
                params[name] = request.options[name]
        if "tool_choice" in params:
            params["tool_choice"] = _tool_choice(params["tool_choice"])
        return params

    def _context_budget(self, request: TurnRequest) -> int | None:
        """The smaller of the server's context size and the run's ``max_prompt_tokens``."""
        budgets = [self.context_tokens] if self.context_tokens else []
        prompt_cap = request.options.get("max_prompt_tokens")
        if isinstance(prompt_cap, int) and prompt_cap > 0:
            # build_messages reserves the completion inside the budget; this cap is prompt-only.
            budgets.append(prompt_cap + (request.max_completion_tokens or 0))
        return min(budgets) if budgets else None

    def _max_tokens_param(self) -> str:
        """OpenAI and Azure take ``max_completion_tokens``; local servers know ``max_tokens``."""
        official = self.azure_api_version or urlsplit(self.base_url).hostname == "api.openai.com"
        return "max_completion_tokens" if official else "max_tokens"

    async def _open(
        self, stack: AsyncExitStack, params: dict[str, Any]
    ) -> openai.AsyncAPIResponse[Any]:
        """Send the request, retrying rate limits and server errors; return the open response."""
        attempt = 0
        while True:
            try:
                return await stack.enter_async_context(self._create(params))
            except openai.APIStatusError as exc:
                if self._rejects_stream_options(exc, params):
                    continue
                delay, reason = self._retry_delay(exc.response, attempt)
                if delay is None:
                    message = provider_message(exc.body, self._api_key) + reason
                    raise status_error(
                        exc.status_code, message, self.base_url, params["model"], attempt + 1
                    ) from None
                log.warning(
                    "model endpoint %s answered HTTP %s; retrying in %.1fs (%d/%d)",
                    display_url(self.base_url),
                    exc.status_code,
                    delay,
                    attempt + 1,
                    self.max_retries,
                )
            except openai.APITimeoutError:
                raise idle_timeout_error(self.base_url, self.idle_timeout, started=False) from None
            except openai.APIConnectionError as exc:
                delay = self._connection_retry_delay(exc, attempt)
            await self._sleep(delay)
            attempt += 1

    def _create(self, params: dict[str, Any]) -> AbstractAsyncContextManager[Any]:
        create: Any = self._client.chat.completions.with_streaming_response.create
        return create(**params)

    def _rejects_stream_options(self, exc: openai.APIStatusError, params: dict[str, Any]) -> bool:
        """Some local servers refuse ``stream_options``: forget it and send again."""
        if exc.status_code not in (400, 422) or "stream_options" not in params:
            return False
        if "stream_options" not in f"{exc.message} {exc.body}":
            return False
        log.info(
            "model endpoint %s rejects stream_options; usage will be estimated",
            display_url(self.base_url),
        )
        del params["stream_options"]
        self._include_usage = False
        return True

    def _retry_delay(self, response: httpx2.Response, attempt: int) -> tuple[float | None, str]:
        """Seconds to wait before the next attempt, or ``None`` to give up (with why)."""
        if not is_retryable(response.status_code) or attempt >= self.max_retries:
            return None, ""
        asked = retry_after(response.headers, self._clock)
        if asked is None:
            return self._backoff * 2**attempt, ""
        if asked > self._max_retry_after:
            return None, f" (the server asked to wait {asked:.0f}s before retrying)"
        return asked, ""

    def _connection_retry_delay(self, exc: openai.APIConnectionError, attempt: int) -> float:
        """Backoff for a dropped connection; raise at once when nothing listens or time ran out."""
        refused = _is_refused(exc)
        if refused or attempt >= self.max_retries:
            detail = scrub(_cause_text(exc), self._api_key)
            raise connection_error(self.base_url, refused, detail) from None
        return self._backoff * 2**attempt

    # ── The response ─────────────────────────────────────────────────────────

    async def _stream_chunks(self, response: Any) -> AsyncIterator[dict[str, Any]]:
        """Parsed stream chunks until ``[DONE]`` (or a whole completion, if not streamed)."""
        content_type = response.headers.get("content-type", "")
        try:
            if "json" in content_type and "event-stream" not in content_type:
                yield completion_as_chunk(json.loads(await response.read()))
                return
            decoder = SSEDecoder(error_field=True)
            async for raw in response.iter_bytes():
                for event, data in decoder.feed(raw):
                    if data.strip() == DONE:
                        return
                    yield self._parse(event, data)
            for event, data in decoder.flush():
                if data.strip() != DONE:
                    yield self._parse(event, data)
        except (httpx2.TimeoutException, openai.APITimeoutError):
            raise idle_timeout_error(self.base_url, self.idle_timeout, started=True) from None
        except (httpx2.HTTPError, openai.APIConnectionError) as exc:
            raise ModelError(
                f"The connection to the model server at {display_url(self.base_url)} broke "
                f"mid-answer ({type(exc).__name__}). Run again."
            ) from None

    def _parse(self, event: str, data: str) -> dict[str, Any]:
        try:
            chunk = json.loads(data)
        except ValueError:
            if event == "error":  # an error frame whose data is plain text
                raise self._stream_error(data) from None
            raise ModelError(
                f"The model server at {display_url(self.base_url)} sent a stream chunk that is "
                f"not JSON: {scrub(data[:200], self._api_key)!r}. Is the URL a Chat Completions "
                "endpoint?"
            ) from None
        if event == "error" or _is_error_frame(chunk):
            raise self._stream_error(chunk)
        return chunk if isinstance(chunk, dict) else {}

    def _stream_error(self, body: object) -> ModelError:
        """An error the provider sent inside the stream (``error:`` frame or error chunk)."""
        message = provider_message(body, self._api_key)
        where = display_url(self.base_url)
        return ModelError(sentence(f"The model endpoint {where} failed mid-answer: {message}"))


class ChatModelProvider:
    """Offers one Chat Completions model under every name (register it after ``replay``).

    With a configured ``model`` the endpoint always gets that model; without one
    the run's model name is passed through, so each assistant can pick its own.
    """

    def __init__(self, model: Model) -> None:
        self.model = model

    def get(self, name: str) -> Model | None:
        """The model, whatever ``name`` is."""
        return self.model

    async def aclose(self) -> None:
        """Close the model's HTTP connections."""
        close = getattr(self.model, "aclose", None)
        if close is not None:
            await close()

    def describe(self) -> str:
        """``any other name: Chat Completions at http://...``."""
        describe = getattr(self.model, "describe", None)
        return f"any other name: {describe() if describe else self.model!r}"


def _make_client(
    base_url: str,
    api_key: str | None,
    azure_api_version: str | None,
    http_client: Any,
    timeout: httpx2.Timeout,
) -> openai.AsyncOpenAI:
    # Retries are ours (see _open), so that Retry-After and backoff are testable.
    key = api_key or _NO_KEY
    common: dict[str, Any] = {"max_retries": 0, "http_client": http_client, "timeout": timeout}
    if azure_api_version:
        return openai.AsyncAzureOpenAI(
            azure_endpoint=base_url, api_key=key, api_version=azure_api_version, **common
        )
    return openai.AsyncOpenAI(base_url=base_url, api_key=key, **common)


def _is_error_frame(chunk: object) -> bool:
    """``{"error": ...}`` (Ollama, OpenRouter, old llama.cpp) or vLLM's ``{"object": "error"}``."""
    if isinstance(chunk, list):
        return any(_is_error_frame(item) for item in chunk)
    return isinstance(chunk, dict) and bool(chunk.get("error") or chunk.get("object") == "error")


def _tool_choice(choice: Any) -> Any:
    """The Assistants ``tool_choice`` in Chat Completions terms (code interpreter = ``python``)."""
    if isinstance(choice, dict) and choice.get("type") == "code_interpreter":
        return {"type": "function", "function": {"name": CODE_TOOL_NAME}}
    return choice


def _is_refused(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError) or "refused" in str(seen).lower():
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _cause_text(exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__
    return f"{type(cause).__name__}: {cause}" if cause else str(exc)
