"""Function calling: Python functions the assistant may call, their schemas, and the call loop.

``registry`` keeps the functions and runs calls; ``schema``, ``convert`` and
``docstrings`` turn signatures into JSON schema and arguments back into Python;
``outputs`` formats results for the model; ``loops`` runs ``async def`` functions.
"""

from __future__ import annotations

from asst_magic.functions.registry import (
    DEFAULT_MAX_OUTPUT_CHARS,
    CallOutcome,
    FunctionRegistry,
    RegisteredFunction,
    SchemaError,
    ToolCall,
    UnknownFunctionError,
    default_registry,
    format_output,
    function,
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
