"""How ten Chat Completions providers shape their streams, errors and second-turn rules.

Written for this project from each provider's public documentation and reference
clients (``source`` names them); no live service was recorded. ``provider_endpoint``
renders a test's scripted turns in these shapes and refuses a request the way the
real provider would when it breaks one of the provider's ``rules``.

Liberties taken everywhere, for speed: every 429/500 carries ``Retry-After: 0``, and
all providers are served under one ``/v1`` path (the bridge only sees the base URL).
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PROVIDERS", "Issued", "Provider", "by_model"]

Obj = dict[str, Any]
Messages = list[Obj]
_ALNUM = string.ascii_letters + string.digits


def _random(alphabet: str, size: int) -> str:
    return "".join(random.choice(alphabet) for _ in range(size))


@dataclass
class Issued:
    """What the endpoint sent one provider: per tool-call id, the fields it must get back."""

    calls: dict[str, Obj] = field(default_factory=dict)


Rule = Callable[[Messages, Issued], "str | None"]


@dataclass(frozen=True)
class Provider:
    """One provider's wire shapes and rules (see the module docstring)."""

    name: str
    model: str
    source: str
    new_id: Callable[[int], str]
    reasoning: str | None = None  # reasoning_content | reasoning | openrouter | magistral
    whole_calls: bool = False  # tool calls arrive whole, in one chunk
    call_index: bool = True  # tool-call deltas carry "index"
    list_content: bool = False  # delta.content is a list of parts (Magistral)
    signature: bool = False  # Gemini: extra_content.google.thought_signature on the first call
    usage_in: str = "chunk"  # chunk (a last chunk) | x_groq | every (each chunk)
    prelude: bytes = b""
    envelope: Obj = field(default_factory=dict)  # keys every chunk carries
    choice_extra: Obj = field(default_factory=dict)  # keys every choice carries
    rules: tuple[Rule, ...] = ()
    error_body: Callable[[int, str], Any] = lambda status, message: {
        "error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}
    }
    midstream: Callable[[], bytes] = lambda: (
        b'data: {"error": {"message": "The server had an error while processing your request.'
        b' Sorry about that!", "type": "server_error", "param": null, "code": null}}\n\n'
    )
    # What a run ends as after the mid-stream failure: ("failed", words in last_error) or
    # ("incomplete", the incomplete_details reason).
    midstream_outcome: tuple[str, str] = ("failed", "The server had an error")
    reject_status: int = 400


# ── Rules ─────────────────────────────────────────────────────────────────────


def tools_answered(messages: Messages, issued: Issued) -> str | None:
    """OpenAI's pairing rule, which every provider follows: each call gets one tool message."""
    open_ids: list[str] = []
    for index, message in enumerate(messages):
        if message["role"] == "tool":
            if message.get("tool_call_id") not in open_ids:
                return (
                    f"Invalid parameter: messages[{index}] with role 'tool' must be a response "
                    "to a preceeding message with 'tool_calls'."
                )
            open_ids.remove(message["tool_call_id"])
            continue
        if open_ids:
            return (
                "An assistant message with 'tool_calls' must be followed by tool messages "
                "responding to each 'tool_call_id'. The following tool_call_ids did not have "
                f"response messages: {', '.join(open_ids)}"
            )
        open_ids = [c["id"] for c in message.get("tool_calls") or []]
    return None


def ids_at_most_40(messages: Messages, issued: Issued) -> str | None:
    for index, message in enumerate(messages):
        for n, call in enumerate(message.get("tool_calls") or []):
            if len(call["id"]) > 40:
                return (
                    f"Invalid 'messages[{index}].tool_calls[{n}].id': string too long. "
                    "Expected a string with maximum length 40."
                )
    return None


def mistral_ids(messages: Messages, issued: Issued) -> str | None:
    """Mistral (and vLLM with a Mistral tokenizer): ids are exactly 9 letters and digits."""
    for message in messages:
        ids = [c["id"] for c in message.get("tool_calls") or []]
        ids += [message["tool_call_id"]] if message["role"] == "tool" else []
        for call_id in ids:
            if not re.fullmatch(r"[a-zA-Z0-9]{9}", call_id):
                return f"Tool call id was {call_id} but must be a-z, A-Z, 0-9, with a length of 9."
    return None


def mistral_last_role(messages: Messages, issued: Issued) -> str | None:
    role = messages[-1]["role"]
    if role not in ("user", "tool"):
        return (
            "Expected last role User or Tool (or Assistant with prefix True) for serving "
            f"but got {role}"
        )
    return None


def _issued_calls(message: Obj, issued: Issued) -> list[Obj]:
    return [
        issued.calls[c["id"]] for c in message.get("tool_calls") or [] if c["id"] in issued.calls
    ]


def deepseek_reasoning(messages: Messages, issued: Issued) -> str | None:
    """Thinking mode: a tool-calling turn's reasoning_content goes back in every later request."""
    for message in messages:
        for sent in _issued_calls(message, issued)[:1]:
            if message.get("reasoning_content") != sent["reasoning"]:
                return (
                    "The `reasoning_content` in the thinking mode must be passed back to the API."
                )
    return None


def gemini_signatures(messages: Messages, issued: Issued) -> str | None:
    """Gemini 3: the first call of each step in the current turn carries its thought signature."""
    last_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
    for position, message in enumerate(messages[last_user:], start=last_user):
        calls = message.get("tool_calls") or []
        if not calls:
            continue
        sent = issued.calls.get(calls[0]["id"], {}).get("signature")
        got = (calls[0].get("extra_content") or {}).get("google", {}).get("thought_signature")
        if got is None or got != sent:
            return (
                "Function call is missing a thought_signature in functionCall parts. This is "
                "required for tools to work correctly, and missing thought_signature may lead to "
                f"degraded model performance. Additional data, function call "
                f"`default_api:{calls[0]['function']['name']}` , position {position}. Please refer "
                "to https://ai.google.dev/gemini-api/docs/thought-signatures for more details."
            )
    return None


def openrouter_details(messages: Messages, issued: Issued) -> str | None:
    """Anthropic through OpenRouter: reasoning_details of a tool-calling turn come back as sent."""
    for message in messages:
        for sent in _issued_calls(message, issued)[:1]:
            if message.get("reasoning_details") != sent["details"]:
                return (
                    "messages: assistant tool use must be preceded by its thinking block; pass "
                    "reasoning_details back unmodified"
                )
    return None


_GROQ_KEYS = {
    "system": {"role", "content", "name"},
    "user": {"role", "content", "name"},
    "assistant": {"role", "content", "name", "tool_calls", "reasoning"},
    "tool": {"role", "content", "tool_call_id", "name"},
}


def groq_known_properties(messages: Messages, issued: Issued) -> str | None:
    """Groq validates message objects strictly: an unknown property is a 400."""
    for index, message in enumerate(messages):
        for key in message:
            if key not in _GROQ_KEYS[message["role"]]:
                where = f"'messages.{index}'"
                return (
                    f"{where} : for 'role:{message['role']}' the following must be satisfied"
                    f"[({where} : property '{key}' is unsupported)]"
                )
    return None


# ── Bodies ────────────────────────────────────────────────────────────────────


def _google_error(status: int, message: str) -> Any:
    names = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 429: "RESOURCE_EXHAUSTED"}
    return [
        {"error": {"code": status, "message": message, "status": names.get(status, "INTERNAL")}}
    ]


def _mistral_error(status: int, message: str) -> Any:
    if status == 400:  # validation errors come as a list of details
        detail = [{"type": "value_error", "loc": ["body", "messages"], "msg": message}]
        return {
            "object": "error",
            "message": {"detail": detail},
            "type": "invalid_request_message_error",
        }
    return {"object": "error", "message": message, "type": "invalid_request_error", "code": None}


def _llamacpp_error(status: int, message: str) -> Any:
    kinds = {401: "authentication_error", 400: "invalid_request_error"}
    return {
        "error": {"code": status, "message": message, "type": kinds.get(status, "server_error")}
    }


def _vllm_error(status: int, message: str) -> Any:
    return {
        "object": "error",
        "message": message,
        "type": "BadRequestError",
        "param": None,
        "code": status,
    }


def _plain_error(status: int, message: str) -> Any:
    return {"error": {"message": message, "code": status}}


# ── The providers ─────────────────────────────────────────────────────────────

_AZURE_FILTER = {
    "hate": {"filtered": False, "severity": "safe"},
    "self_harm": {"filtered": False, "severity": "safe"},
    "sexual": {"filtered": False, "severity": "safe"},
    "violence": {"filtered": False, "severity": "safe"},
}

PROVIDERS: tuple[Provider, ...] = (
    Provider(
        "openai",
        "gpt-4o",
        "platform.openai.com/docs/api-reference/chat-streaming; openai-python _streaming.py "
        "(a data line with an 'error' key is a failure)",
        lambda i: "call_" + _random(_ALNUM, 24),
        envelope={"object": "chat.completion.chunk", "system_fingerprint": "fp_50cad350e4"},
        choice_extra={"logprobs": None},
        rules=(tools_answered, ids_at_most_40),
    ),
    Provider(
        "azure",
        "gpt-4o-deployment",
        "learn.microsoft.com/azure/ai-services/openai/reference (streaming with "
        "prompt_filter_results first, content_filter_results per choice); error bodies with "
        "string codes",
        lambda i: "call_" + _random(_ALNUM, 24),
        prelude=(
            b'data: {"choices":[],"created":0,"id":"","model":"","object":"",'
            b'"prompt_filter_results":[{"prompt_index":0,"content_filter_results":{}}]}\n\n'
        ),
        envelope={"object": "chat.completion.chunk", "system_fingerprint": "fp_b705f0c291"},
        choice_extra={"content_filter_results": _AZURE_FILTER},
        rules=(tools_answered, ids_at_most_40),
        error_body=lambda status, message: {"error": {"code": str(status), "message": message}},
    ),
    Provider(
        "ollama",
        "qwen3:8b",
        "github.com/ollama/ollama openai/openai.go (tool calls whole with 'call_' + 8 "
        "characters, 'reasoning' deltas, errors as data lines {'error': {...}})",
        lambda i: "call_" + _random(string.ascii_lowercase + string.digits, 8),
        reasoning="reasoning",
        whole_calls=True,
        envelope={"object": "chat.completion.chunk", "system_fingerprint": "fp_ollama"},
        rules=(tools_answered,),
        midstream=lambda: (
            b'data: {"error":{"message":"an error was encountered while running the model: '
            b'unexpected EOF","type":"api_error","param":null,"code":null}}\n\n'
        ),
        midstream_outcome=("failed", "unexpected EOF"),
    ),
    Provider(
        "vllm",
        "mistralai/Magistral-Small-2509",
        "docs.vllm.ai (OpenAI-compatible server; Mistral tokenizer tool-call ids of 9 "
        "characters, checked on input; reasoning_content with a reasoning parser); "
        "vllm/entrypoints/openai/serving_engine.py create_streaming_error_response",
        lambda i: _random(_ALNUM, 9),
        reasoning="reasoning_content",
        envelope={"object": "chat.completion.chunk"},
        rules=(tools_answered, mistral_ids),
        error_body=_vllm_error,
        midstream=lambda: (
            b'data: {"object":"error","message":"The engine loop has stopped.",'
            b'"type":"InternalServerError","param":null,"code":500}\n\n'
        ),
        midstream_outcome=("failed", "engine loop has stopped"),
    ),
    Provider(
        "llamacpp",
        "gpt-3.5-turbo",
        'github.com/ggml-org/llama.cpp tools/server (server_sent_event(sink, "error", ...) '
        "writes an 'error: {...}' line; tool-call ids of 32 random characters; "
        "reasoning_content with --reasoning-format deepseek)",
        lambda i: _random(_ALNUM, 32),
        reasoning="reasoning_content",
        envelope={"object": "chat.completion.chunk", "system_fingerprint": "b6000-1a2b3c4d"},
        rules=(tools_answered,),
        error_body=_llamacpp_error,
        midstream=lambda: (
            b'error: {"code":500,"message":"the request exceeds the available context size, '
            b'try increasing it","type":"exceed_context_size_error"}\n\n'
        ),
        midstream_outcome=("failed", "exceeds the available context size"),
    ),
    Provider(
        "mistral",
        "magistral-medium-latest",
        "docs.mistral.ai/api (chat completion streaming; finish_reason one of stop, length, "
        "model_length, error, tool_calls; tool calls whole with 9-character ids; Magistral "
        "content as a list of 'thinking' and 'text' chunks); the 9-character rule and last-role "
        "rule as the API states them",
        lambda i: _random(_ALNUM, 9),
        reasoning="magistral",
        whole_calls=True,
        list_content=True,
        envelope={"object": "chat.completion.chunk"},
        rules=(tools_answered, mistral_ids, mistral_last_role),
        error_body=_mistral_error,
        midstream=lambda: (
            b'data: {"id":"e1","object":"chat.completion.chunk","model":"magistral-medium-latest",'
            b'"choices":[{"index":0,"delta":{"content":""},"finish_reason":"error"}]}\n\n'
        ),
        midstream_outcome=("failed", "finish_reason 'error'"),
    ),
    Provider(
        "deepseek",
        "deepseek-reasoner",
        "api-docs.deepseek.com/guides/thinking_mode (reasoning_content; a tool-calling turn's "
        "reasoning_content must be passed back in all later requests, else 400); "
        "api-docs.deepseek.com/api/create-chat-completion (finish_reason "
        "insufficient_system_resource; ': keep-alive' comments while busy)",
        lambda i: f"call_{i:02d}_" + _random(_ALNUM, 24),
        reasoning="reasoning_content",
        envelope={
            "object": "chat.completion.chunk",
            "system_fingerprint": "fp_ffc7281d48_prod0820_fp8_kvcache",
        },
        choice_extra={"logprobs": None},
        prelude=b": keep-alive\n\n",
        rules=(tools_answered, deepseek_reasoning),
        midstream=lambda: (
            b'data: {"id":"d1","object":"chat.completion.chunk","model":"deepseek-reasoner",'
            b'"choices":[{"index":0,"delta":{"content":""},'
            b'"finish_reason":"insufficient_system_resource"}]}\n\n'
        ),
        midstream_outcome=("incomplete", "insufficient_system_resource"),
    ),
    Provider(
        "gemini",
        "gemini-3-pro-preview",
        "ai.google.dev/gemini-api/docs/openai and /docs/thought-signatures (extra_content."
        "google.thought_signature on the first function call of a step, required back in the "
        "current turn); Google APIs' list-shaped error bodies",
        lambda i: "function-call-" + _random(string.digits, 19),
        whole_calls=True,
        call_index=False,
        signature=True,
        usage_in="every",
        envelope={"object": "chat.completion.chunk"},
        rules=(tools_answered, gemini_signatures),
        error_body=_google_error,
        midstream=lambda: (
            b'data: [{"error": {"code": 503, "message": "The model is overloaded. Please try '
            b'again later.", "status": "UNAVAILABLE"}}]\n\n'
        ),
        midstream_outcome=("failed", "The model is overloaded"),
    ),
    Provider(
        "groq",
        "qwen/qwen3-32b",
        "console.groq.com/docs/api-reference (x_groq on chunks, usage in x_groq on the last "
        "one; tool calls whole; 'reasoning' with reasoning_format parsed; strict message "
        "properties)",
        lambda i: "call_" + _random(string.ascii_lowercase + string.digits, 4),
        reasoning="reasoning",
        whole_calls=True,
        usage_in="x_groq",
        envelope={"object": "chat.completion.chunk", "x_groq": {"id": "req_01k0abcd"}},
        rules=(tools_answered, groq_known_properties),
        midstream=lambda: (
            b'data: {"error":{"message":"Service Unavailable","type":"internal_server_error"}}\n\n'
        ),
        midstream_outcome=("failed", "Service Unavailable"),
    ),
    Provider(
        "openrouter",
        "anthropic/claude-sonnet-4",
        "openrouter.ai/docs (': OPENROUTER PROCESSING' comments; reasoning and "
        "reasoning_details deltas, to be passed back unmodified with tool calls; mid-stream "
        "errors as a chunk with 'error' and finish_reason 'error')",
        lambda i: "toolu_vrtx_01" + _random(_ALNUM, 22),
        reasoning="openrouter",
        prelude=b": OPENROUTER PROCESSING\n\n",
        envelope={"object": "chat.completion.chunk", "provider": "Anthropic"},
        choice_extra={"native_finish_reason": None, "logprobs": None},
        rules=(tools_answered, openrouter_details),
        error_body=_plain_error,
        midstream=lambda: (
            b'data: {"id":"gen-1","object":"chat.completion.chunk","provider":"Anthropic",'
            b'"error":{"code":"server_error","message":"Provider disconnected unexpectedly"},'
            b'"choices":[{"index":0,"delta":{"content":""},"finish_reason":"error"}]}\n\n'
        ),
        midstream_outcome=("failed", "Provider disconnected unexpectedly"),
    ),
)


def by_model(model: str) -> Provider:
    """The provider serving ``model``."""
    return next(p for p in PROVIDERS if p.model == model)
