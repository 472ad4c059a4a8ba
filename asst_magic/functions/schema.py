"""JSON schema from Python signatures, type hints and docstrings, and JSON values back to Python.

>>> type_schema(list[int] | None)
{'anyOf': [{'type': 'array', 'items': {'type': 'integer'}}, {'type': 'null'}]}
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import functools
import inspect
import json
import types
import typing
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from asst_magic.functions.convert import (
    _ARRAY_ORIGINS,
    _MAPPING_ORIGINS,
    _SET_ORIGINS,
    _is_dataclass,
    _is_enum,
    _is_fixed_tuple,
    _is_pydantic,
    _lookup,
    _plain,
    convert,
)
from asst_magic.functions.docstrings import Docstring, parse_docstring

__all__ = [
    "Docstring",
    "Parameter",
    "SchemaError",
    "convert",
    "function_description",
    "parameters_schema",
    "parse_docstring",
    "resolve_parameters",
    "type_schema",
]

_EMPTY = inspect.Parameter.empty
_NO_JSON_DEFAULT = object()  # optional, but its default (a factory) has no JSON form


class SchemaError(TypeError):
    """A function or type hint with no JSON schema; the message says what to change."""


@dataclasses.dataclass(frozen=True)
class Parameter:
    """One argument the model may pass: resolved type hint, default, docstring text."""

    name: str
    hint: Any = Any
    default: Any = _EMPTY
    description: str = ""

    @property
    def required(self) -> bool:
        """True when the signature gives no default."""
        return self.default is _EMPTY


# ---------------------------------------------------------------- signatures


def resolve_parameters(fn: Callable[..., Any], name: str) -> tuple[Parameter, ...]:
    """The parameters of ``fn`` with hints resolved (string annotations included)."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise SchemaError(f"{name}: cannot read its signature ({exc})") from None
    hints = _type_hints(_unwrap(fn), name)
    docs = parse_docstring(_doc(fn)).params
    return tuple(_parameter(p, hints, docs, name) for p in signature.parameters.values())


def function_description(fn: Callable[..., Any]) -> str:
    """The prose part of ``fn``'s docstring (everything before Args/Parameters/:param ...)."""
    return parse_docstring(_doc(fn)).description


def _unwrap(fn: Callable[..., Any]) -> Any:
    if isinstance(fn, functools.partial):
        return fn.func
    if inspect.isroutine(fn) or isinstance(fn, type):
        return fn
    return type(fn).__call__  # a callable instance: hints live on its __call__


def _doc(fn: Callable[..., Any]) -> str | None:
    return inspect.getdoc(_unwrap(fn))


def _type_hints(target: Any, name: str) -> dict[str, Any]:
    try:
        return typing.get_type_hints(target, include_extras=True)
    except Exception as exc:
        raise SchemaError(
            f"{name}: cannot resolve its type hints ({type(exc).__name__}: {exc}); "
            "define or import every type it uses at module level, then register it again"
        ) from None


def _parameter(
    param: inspect.Parameter, hints: Mapping[str, Any], docs: Mapping[str, str], name: str
) -> Parameter:
    if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
        stars = "*" if param.kind is param.VAR_POSITIONAL else "**"
        raise SchemaError(
            f"{name}: {stars}{param.name} cannot be filled from JSON arguments; "
            "give each argument the model may pass its own named parameter"
        )
    if param.kind is param.POSITIONAL_ONLY:
        raise SchemaError(
            f"{name}: parameter {param.name!r} is positional-only; "
            "the model passes arguments by name, so remove the '/' from the signature"
        )
    hint = hints.get(param.name, Any)
    return Parameter(param.name, hint, param.default, docs.get(param.name, ""))


def parameters_schema(
    params: Iterable[Parameter], *, owner: str = "", seen: frozenset[Any] = frozenset()
) -> dict[str, Any]:
    """The ``{"type": "object", "properties": ..., "required": [...]}`` schema of ``params``."""
    params = tuple(params)
    properties = {p.name: _property_schema(p, owner, seen) for p in params}
    required = [p.name for p in params if p.required]
    return {"type": "object", "properties": properties, "required": required}


def _property_schema(param: Parameter, owner: str, seen: frozenset[Any]) -> dict[str, Any]:
    try:
        schema = _schema(param.hint, seen)
    except SchemaError as exc:
        where = f"{owner}: parameter {param.name!r}" if owner else f"parameter {param.name!r}"
        raise SchemaError(f"{where}: {exc}") from None
    if param.description:
        schema["description"] = param.description
    default = _json_default(param.default)
    if default is not _NO_JSON_DEFAULT:
        schema["default"] = default
    return schema


def _json_default(value: Any) -> Any:
    if value is _EMPTY:
        return _NO_JSON_DEFAULT
    if isinstance(value, enum.Enum):
        value = value.value
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError):
        return _NO_JSON_DEFAULT


# ---------------------------------------------------------------- type hints -> schema


def type_schema(hint: Any) -> dict[str, Any]:
    """The JSON schema of one type hint; raises SchemaError for types JSON cannot carry."""
    return _schema(hint, frozenset())


def _schema(hint: Any, seen: frozenset[Any]) -> dict[str, Any]:
    scalar = _lookup(_SCALAR_SCHEMAS, hint)
    if scalar is not None:
        return dict(scalar)
    origin = typing.get_origin(hint)
    build = _lookup(_GENERIC_SCHEMAS, hint if origin is None else origin)
    if build is None:
        build = next((b for applies, b in _CLASS_SCHEMAS if applies(hint)), None)
    if build is None:
        raise SchemaError(
            f"{_hint_name(hint)} has no JSON form; annotate with str, int, float, bool, "
            "list, dict, Literal, an Enum, a dataclass, a TypedDict, a pydantic model or Any"
        )
    return build(hint, seen)


def _hint_name(hint: Any) -> str:
    return getattr(hint, "__qualname__", None) or repr(hint)


_STRING_FORMATS: dict[Any, str | None] = {
    dt.datetime: "date-time",
    dt.date: "date",
    dt.time: "time",
    uuid.UUID: "uuid",
    Path: None,
}
_JSON_TYPES: dict[type, str] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    type(None): "null",
}
_SCALAR_SCHEMAS: dict[Any, dict[str, Any]] = {
    **{cls: {"type": name} for cls, name in _JSON_TYPES.items()},
    None: {"type": "null"},
    Any: {},
    object: {},
    **{
        cls: {"type": "string", **({"format": fmt} if fmt else {})}
        for cls, fmt in _STRING_FORMATS.items()
    },
}


def _union_schema(hint: Any, seen: frozenset[Any]) -> dict[str, Any]:
    members = [_schema(arg, seen) for arg in typing.get_args(hint)]
    if all(set(m) == {"type"} and isinstance(m["type"], str) for m in members):
        return {"type": [m["type"] for m in members]}
    return {"anyOf": members}


def _literal_schema(hint: Any, seen: frozenset[Any]) -> dict[str, Any]:
    return _enum_schema([_plain(v) for v in typing.get_args(hint)])


def _enum_schema(values: list[Any]) -> dict[str, Any]:
    kinds = {_JSON_TYPES.get(type(v)) for v in values}
    if kinds == {"integer", "number"}:
        kinds = {"number"}
    if len(kinds) == 1 and None not in kinds:
        return {"type": kinds.pop(), "enum": values}
    return {"enum": values}


def _annotated_schema(hint: Any, seen: frozenset[Any]) -> dict[str, Any]:
    schema = _schema(typing.get_args(hint)[0], seen)
    text = next((m for m in hint.__metadata__ if isinstance(m, str)), None)
    if text:
        schema["description"] = text
    return schema


def _inner_schema(hint: Any, seen: frozenset[Any]) -> dict[str, Any]:
    return _schema(typing.get_args(hint)[0], seen)  # Required[X], NotRequired[X]


def _array_schema(hint: Any, seen: frozenset[Any]) -> dict[str, Any]:
    origin, args = typing.get_origin(hint) or hint, typing.get_args(hint)
    schema: dict[str, Any] = {"type": "array"}
    if _is_fixed_tuple(origin, args):
        items = [_schema(arg, seen) for arg in args]
        schema.update(prefixItems=items, minItems=len(items), maxItems=len(items))
    elif args:
        schema["items"] = _schema(args[0], seen)
    if origin in _SET_ORIGINS:
        schema["uniqueItems"] = True
    return schema


def _object_schema(hint: Any, seen: frozenset[Any]) -> dict[str, Any]:
    args = typing.get_args(hint)
    schema: dict[str, Any] = {"type": "object"}
    if args:
        if args[0] not in (str, Any):
            raise SchemaError(f"{hint} has non-string keys, which JSON objects cannot carry")
        values = _schema(args[1], seen)
        if values:
            schema["additionalProperties"] = values
    return schema


_GENERIC_SCHEMAS: dict[Any, Callable[[Any, frozenset[Any]], dict[str, Any]]] = {
    typing.Union: _union_schema,
    types.UnionType: _union_schema,
    Literal: _literal_schema,
    typing.Annotated: _annotated_schema,
    typing.Required: _inner_schema,
    typing.NotRequired: _inner_schema,
    **dict.fromkeys(_ARRAY_ORIGINS + _SET_ORIGINS, _array_schema),
    **dict.fromkeys(_MAPPING_ORIGINS, _object_schema),
}


def _class_enum_schema(hint: Any, seen: frozenset[Any]) -> dict[str, Any]:
    return _enum_schema([member.value for member in hint])


def _dataclass_schema(cls: Any, seen: frozenset[Any]) -> dict[str, Any]:
    return _fields_schema(cls, seen, _dataclass_params)


def _dataclass_params(cls: Any, hints: dict[str, Any], docs: dict[str, str]) -> list[Parameter]:
    return [
        Parameter(f.name, hints.get(f.name, Any), _field_default(f), docs.get(f.name, ""))
        for f in dataclasses.fields(cls)
        if f.init
    ]


def _field_default(field: dataclasses.Field[Any]) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return _NO_JSON_DEFAULT
    return _EMPTY


def _typeddict_schema(cls: Any, seen: frozenset[Any]) -> dict[str, Any]:
    return _fields_schema(cls, seen, _typeddict_params)


def _typeddict_params(cls: Any, hints: dict[str, Any], docs: dict[str, str]) -> list[Parameter]:
    return [
        Parameter(key, hint, _typeddict_default(cls, key, hint), docs.get(key, ""))
        for key, hint in hints.items()
    ]


_FieldParams = Callable[[Any, dict[str, Any], dict[str, str]], list[Parameter]]


def _fields_schema(cls: Any, seen: frozenset[Any], params_of: _FieldParams) -> dict[str, Any]:
    """An object schema for a class of named fields, described by its own docstring."""
    if cls in seen:
        return {"type": "object"}  # a recursive reference: inline schemas cannot express it
    hints = _type_hints(cls, cls.__qualname__)
    docs = parse_docstring(_own_doc(cls))
    params = params_of(cls, hints, docs.params)
    return _described(
        docs.description, parameters_schema(params, owner=cls.__qualname__, seen=seen | {cls})
    )


def _typeddict_default(cls: Any, key: str, hint: Any) -> Any:
    # With string annotations, Python 3.11 cannot see NotRequired[...] when it builds
    # __required_keys__, so the resolved hint has the last word.
    origin = typing.get_origin(hint)
    required = origin is typing.Required or (
        origin is not typing.NotRequired and key in cls.__required_keys__
    )
    return _EMPTY if required else _NO_JSON_DEFAULT


def _own_doc(cls: Any) -> str | None:
    doc = cls.__dict__.get("__doc__")
    if not doc or doc.startswith(f"{cls.__name__}("):  # the signature @dataclass writes
        return None
    return str(doc)


def _described(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, **schema} if description else schema


def _pydantic_schema(cls: Any, seen: frozenset[Any]) -> dict[str, Any]:
    schema = cls.model_json_schema()
    defs = schema.pop("$defs", {})
    return dict(_inline_refs(schema, defs, frozenset()))


def _inline_refs(node: Any, defs: Mapping[str, Any], stack: frozenset[str]) -> Any:
    """Replace ``{"$ref": "#/$defs/X"}`` with X itself; a schema nested in ours has no $defs."""
    if isinstance(node, list):
        return [_inline_refs(item, defs, stack) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    rest = {k: _inline_refs(v, defs, stack) for k, v in node.items() if k != "$ref"}
    if not isinstance(ref, str) or not ref.startswith("#/$defs/"):
        return rest
    key = ref.removeprefix("#/$defs/")
    if key in stack:
        return {"type": "object", **rest}  # recursive model
    return {**_inline_refs(defs[key], defs, stack | {key}), **rest}


_CLASS_SCHEMAS: list[
    tuple[Callable[[Any], bool], Callable[[Any, frozenset[Any]], dict[str, Any]]]
] = [
    (_is_enum, _class_enum_schema),
    (_is_dataclass, _dataclass_schema),
    (_is_pydantic, _pydantic_schema),
    (typing.is_typeddict, _typeddict_schema),
]
