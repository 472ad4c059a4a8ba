"""Python functions the assistant may call: the ``@function`` decorator, a registry, execution.

>>> registry = FunctionRegistry()
>>> @function(registry=registry)
... def get_weather(city: str) -> str:
...     '''Current weather for a city.'''
...     return f"sunny in {city}"
>>> registry.execute([ToolCall("call_1", "get_weather", '{"city": "Paris"}')])[0].output
'sunny in Paris'
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import inspect
import json
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar, overload

from asst_magic.functions.loops import run_coroutine
from asst_magic.functions.outputs import (
    DEFAULT_MAX_OUTPUT_CHARS,
    exception_text,
    format_error,
    format_output,
)
from asst_magic.functions.schema import (
    Parameter,
    SchemaError,
    convert,
    function_description,
    parameters_schema,
    resolve_parameters,
)

__all__ = [
    "DEFAULT_MAX_OUTPUT_CHARS",
    "CallOutcome",
    "FunctionRegistry",
    "RegisteredFunction",
    "SchemaError",
    "ToolCall",
    "UnknownFunctionError",
    "default_registry",
    "format_output",
    "function",
]

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # what the API accepts as a function name

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


class UnknownFunctionError(LookupError):
    """A function name that is not in the registry; the message lists what is."""


@dataclasses.dataclass(frozen=True)
class ToolCall:
    """One function call the model requested; ``arguments`` is the raw JSON text."""

    id: str
    name: str
    arguments: str

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ToolCall:
        """From a ``required_action`` tool call: ``{"id", "function": {"name", "arguments"}}``."""
        function = data.get("function") or {}
        return cls(
            str(data.get("id", "")),
            str(function.get("name", "")),
            str(function.get("arguments") or ""),
        )


@dataclasses.dataclass(frozen=True)
class CallOutcome:
    """What one call produced: ``output`` is submitted; ``error`` is set when it failed."""

    tool_call_id: str
    output: str
    error: str | None = None
    value: Any = None

    def to_dict(self) -> dict[str, str]:
        """The ``tool_outputs`` item for ``submit_tool_outputs``."""
        return {"tool_call_id": self.tool_call_id, "output": self.output}


@dataclasses.dataclass(frozen=True)
class RegisteredFunction:
    """A registered function with the tool object sent to the model."""

    name: str
    fn: Callable[..., Any]
    description: str
    parameters: tuple[Parameter, ...]
    tool: dict[str, Any]

    @classmethod
    def build(
        cls, fn: Callable[..., Any], *, name: str | None = None, description: str | None = None
    ) -> RegisteredFunction:
        """Read ``fn``'s signature and docstring; raises SchemaError naming what to change."""
        name = _checked_name(fn, name)
        params = resolve_parameters(fn, name)
        description = function_description(fn) if description is None else description
        function: dict[str, Any] = {"name": name}
        if description:
            function["description"] = description
        function["parameters"] = parameters_schema(params, owner=name)
        return cls(name, fn, description, params, {"type": "function", "function": function})

    @property
    def is_async(self) -> bool:
        """True for ``async def`` functions."""
        return inspect.iscoroutinefunction(self.fn)

    def signature(self) -> str:
        """The call signature as a user reads it: ``get_weather(city: str) -> str``."""
        sig = inspect.signature(self.fn)
        module = getattr(self.fn, "__module__", None)
        params = [
            p if p.annotation is p.empty else p.replace(annotation=_Shown(p.annotation, module))
            for p in sig.parameters.values()
        ]
        returns = sig.return_annotation
        if returns is not sig.empty:
            returns = _Shown(returns, module)
        text = str(sig.replace(parameters=params, return_annotation=returns))
        return f"{'async ' if self.is_async else ''}{self.name}{text}"


class _Shown:
    """An annotation shown as written (``str``, not ``'str'`` or ``builtins.str``)."""

    def __init__(self, annotation: Any, module: str | None) -> None:
        text = annotation if isinstance(annotation, str) else None
        if text is None:
            text = inspect.formatannotation(annotation, base_module=module)
            text = text.replace(f"{module}.", "") if module else text
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _checked_name(fn: Callable[..., Any], name: str | None) -> str:
    if not callable(fn):
        raise SchemaError(f"{fn!r} is not callable; register a function")
    name = name or getattr(fn, "__name__", None)
    if not name or not _NAME.match(name):
        raise SchemaError(
            f"{name or repr(fn)} is not a usable function name (letters, digits, _ and -, at "
            "most 64); pass one with @function(name='...')"
        )
    return name


class FunctionRegistry:
    """The functions the assistant may call, their tool objects, and how calls run.

    Sync functions run one after another in call order on the calling thread; the async
    ones of a round then run concurrently (``asyncio.gather``) on one event loop.
    """

    def __init__(self, *, max_output_chars: int | None = DEFAULT_MAX_OUTPUT_CHARS) -> None:
        self.max_output_chars = max_output_chars
        self._functions: dict[str, RegisteredFunction] = {}

    def register(
        self, fn: Callable[..., Any], *, name: str | None = None, description: str | None = None
    ) -> RegisteredFunction:
        """Add ``fn`` (replacing a function of the same name) and return its entry."""
        entry = RegisteredFunction.build(fn, name=name, description=description)
        self._functions[entry.name] = entry
        return entry

    def remove(self, name: str) -> bool:
        """Forget the function called ``name``; False when there was none."""
        return self._functions.pop(name, None) is not None

    def clear(self) -> None:
        """Forget every function."""
        self._functions.clear()

    def names(self) -> list[str]:
        """Registered names, in registration order."""
        return list(self._functions)

    def get(self, name: str) -> RegisteredFunction | None:
        """The entry for ``name``, or None."""
        return self._functions.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._functions

    def __len__(self) -> int:
        return len(self._functions)

    def tools(self, names: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """OpenAI function tool objects for all functions, or only ``names`` (cell scoping)."""
        if names is None:
            chosen = list(self._functions.values())
        else:
            chosen = [self._require(name) for name in names]
        return [copy.deepcopy(entry.tool) for entry in chosen]

    def subset(self, names: Iterable[str]) -> FunctionRegistry:
        """A registry of only ``names`` (a cell's ``--functions``); raises UnknownFunctionError."""
        scoped = FunctionRegistry(max_output_chars=self.max_output_chars)
        scoped._functions = {name: self._require(name) for name in names}
        return scoped

    def _require(self, name: str) -> RegisteredFunction:
        entry = self._functions.get(name)
        if entry is None:
            raise UnknownFunctionError(self._unknown(name))
        return entry

    def _unknown(self, name: str) -> str:
        known = ", ".join(self._functions) or "none"
        return f"no function named {name!r} is registered; registered: {known}"

    def describe(self) -> str:
        """One line per function: its signature and the first line of its description."""
        if not self._functions:
            return "No functions registered. Register one with @asst_magic.function."
        lines = []
        for entry in self._functions.values():
            summary = entry.description.strip().split("\n", 1)[0]
            lines.append(f"{entry.signature()} — {summary}" if summary else entry.signature())
        return "\n".join(lines)

    def __repr__(self) -> str:
        if not self._functions:
            return "FunctionRegistry (no functions)"
        body = "\n".join(f"  {line}" for line in self.describe().splitlines())
        return f"FunctionRegistry with {len(self)} functions:\n{body}"

    # ------------------------------------------------------------ execution

    def execute(self, calls: Sequence[ToolCall]) -> list[CallOutcome]:
        """Run ``calls``; one outcome each, in call order. Only BaseExceptions escape."""
        started: list[CallOutcome | _Pending] = []
        try:
            for call in calls:
                started.append(self._start(call))
            pending = [item for item in started if isinstance(item, _Pending)]
            settled = iter(self._settle(pending))
        except BaseException:
            _close_unstarted(started)
            raise
        return [next(settled) if isinstance(s, _Pending) else s for s in started]

    def _start(self, call: ToolCall) -> CallOutcome | _Pending:
        entry = self._functions.get(call.name)
        if entry is None:
            return self._failure(call, self._unknown(call.name))
        try:
            kwargs = _arguments(entry, call.arguments)
        except _ArgumentError as exc:
            return self._failure(call, str(exc))
        try:
            result = entry.fn(**kwargs)
        except Exception as exc:
            return self._failure(call, exception_text(exc))
        if inspect.isawaitable(result):
            return _Pending(call, result)
        return self._success(call, result)

    def _settle(self, pending: list[_Pending]) -> list[CallOutcome]:
        if not pending:
            return []
        return run_coroutine(self._gather(pending))

    async def _gather(self, pending: list[_Pending]) -> list[CallOutcome]:
        return list(await asyncio.gather(*(self._await(p.call, p.awaitable) for p in pending)))

    async def _await(self, call: ToolCall, awaitable: Awaitable[Any]) -> CallOutcome:
        try:
            value = await awaitable
        except Exception as exc:
            return self._failure(call, exception_text(exc))
        return self._success(call, value)

    def _success(self, call: ToolCall, value: Any) -> CallOutcome:
        return CallOutcome(call.id, format_output(value, self.max_output_chars), None, value)

    def _failure(self, call: ToolCall, error: str) -> CallOutcome:
        return CallOutcome(call.id, format_error(error, self.max_output_chars), error)


@dataclasses.dataclass(frozen=True)
class _Pending:
    call: ToolCall
    awaitable: Awaitable[Any]


class _ArgumentError(Exception):
    """Arguments that cannot be passed to the function; the message goes to the model."""


def _arguments(entry: RegisteredFunction, text: str) -> dict[str, Any]:
    """The keyword arguments for ``entry`` from the model's JSON text."""
    try:
        data = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise _ArgumentError(f"arguments for {entry.name} are not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise _ArgumentError(f"arguments for {entry.name} must be a JSON object, not {kind}")
    try:
        inspect.signature(entry.fn).bind(**data)
    except TypeError as exc:
        raise _ArgumentError(f"invalid arguments for {entry.name}: {exc}") from None
    hints = {p.name: p.hint for p in entry.parameters}
    kwargs = {}
    for key, value in data.items():
        try:
            kwargs[key] = convert(value, hints[key])
        except Exception as exc:
            message = f"invalid arguments for {entry.name}: {key!r}: {exception_text(exc)}"
            raise _ArgumentError(message) from None
    return kwargs


def _close_unstarted(started: list[CallOutcome | _Pending]) -> None:
    """Close coroutines that never ran, so an interrupted round leaves no warnings behind."""
    for item in started:
        awaitable = item.awaitable if isinstance(item, _Pending) else None
        if (
            inspect.iscoroutine(awaitable)
            and inspect.getcoroutinestate(awaitable) == "CORO_CREATED"
        ):
            awaitable.close()


# ---------------------------------------------------------------- decorator

default_registry = FunctionRegistry()


@overload
def function(fn: F, /) -> F: ...
@overload
def function(
    *,
    name: str | None = None,
    description: str | None = None,
    registry: FunctionRegistry | None = None,
) -> Callable[[F], F]: ...
def function(
    fn: F | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    registry: FunctionRegistry | None = None,
) -> F | Callable[[F], F]:
    """Let the assistant call the decorated function; returns it unchanged.

    ``@function`` or ``@function(name="lookup", description="...", registry=my_registry)``.
    """
    if isinstance(fn, str):
        raise TypeError(f"use @function(name={fn!r}) to choose the name the model sees")

    def decorate(target: F) -> F:
        (registry if registry is not None else default_registry).register(
            target, name=name, description=description
        )
        return target

    return decorate if fn is None else decorate(fn)
