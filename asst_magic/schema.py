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
import re
import types
import typing
import uuid
from collections import abc
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

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


@dataclasses.dataclass(frozen=True)
class Docstring:
    """A docstring split into its prose description and per-parameter text."""

    description: str
    params: dict[str, str]


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


def _lookup(table: Mapping[Any, Any], key: Any) -> Any:
    try:
        return table.get(key)
    except TypeError:  # an unhashable hint, e.g. Annotated metadata
        return None


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


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


def _annotated_schema(hint: Any, seen: frozenset[Any]) -> dict[str, Any]:
    schema = _schema(typing.get_args(hint)[0], seen)
    text = next((m for m in hint.__metadata__ if isinstance(m, str)), None)
    if text:
        schema["description"] = text
    return schema


def _inner_schema(hint: Any, seen: frozenset[Any]) -> dict[str, Any]:
    return _schema(typing.get_args(hint)[0], seen)  # Required[X], NotRequired[X]


_SET_ORIGINS = (set, frozenset, abc.Set, abc.MutableSet)


def _array_schema(hint: Any, seen: frozenset[Any]) -> dict[str, Any]:
    origin, args = typing.get_origin(hint) or hint, typing.get_args(hint)
    schema: dict[str, Any] = {"type": "array"}
    if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
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
    **dict.fromkeys(
        [list, tuple, abc.Sequence, abc.MutableSequence, abc.Iterable, abc.Collection],
        _array_schema,
    ),
    **dict.fromkeys(_SET_ORIGINS, _array_schema),
    **dict.fromkeys([dict, abc.Mapping, abc.MutableMapping], _object_schema),
}


def _is_enum(hint: Any) -> bool:
    return isinstance(hint, type) and issubclass(hint, enum.Enum)


def _is_dataclass(hint: Any) -> bool:
    return isinstance(hint, type) and dataclasses.is_dataclass(hint)


def _is_pydantic(hint: Any) -> bool:
    return isinstance(hint, type) and hasattr(hint, "model_json_schema")


def _class_enum_schema(hint: Any, seen: frozenset[Any]) -> dict[str, Any]:
    return _enum_schema([member.value for member in hint])


def _dataclass_schema(cls: Any, seen: frozenset[Any]) -> dict[str, Any]:
    if cls in seen:
        return {"type": "object"}  # a recursive reference: inline schemas cannot express it
    hints = _type_hints(cls, cls.__qualname__)
    docs = parse_docstring(_own_doc(cls))
    params = [
        Parameter(f.name, hints.get(f.name, Any), _field_default(f), docs.params.get(f.name, ""))
        for f in dataclasses.fields(cls)
        if f.init
    ]
    return _described(
        docs.description, parameters_schema(params, owner=cls.__qualname__, seen=seen | {cls})
    )


def _field_default(field: dataclasses.Field[Any]) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return _NO_JSON_DEFAULT
    return _EMPTY


def _typeddict_schema(cls: Any, seen: frozenset[Any]) -> dict[str, Any]:
    if cls in seen:
        return {"type": "object"}
    hints = _type_hints(cls, cls.__qualname__)
    docs = parse_docstring(_own_doc(cls))
    params = [
        Parameter(key, hint, _typeddict_default(cls, key, hint), docs.params.get(key, ""))
        for key, hint in hints.items()
    ]
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


# ---------------------------------------------------------------- JSON -> Python


def convert(value: Any, hint: Any, *, strict: bool = False) -> Any:
    """``value`` (decoded JSON) as ``hint`` asks: objects to dataclasses or models, etc.

    Plain JSON scalars pass through unchecked unless ``strict`` (used to pick a Union member).
    """
    origin = typing.get_origin(hint)
    converter = _lookup(_CONVERTERS, hint if origin is None else origin)
    if converter is None:
        converter = next((c for applies, c in _CLASS_CONVERTERS if applies(hint)), None)
    return value if converter is None else converter(value, hint, strict)


def _expect(value: Any, kind: type | tuple[type, ...], what: str) -> None:
    if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, (int, float))):
        raise TypeError(f"expected {what}, got {_json_kind(value)}")


def _json_kind(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return next((n for t, n in names.items() if isinstance(value, t)), type(value).__name__)


def _scalar(kind: type | tuple[type, ...], what: str) -> Callable[[Any, Any, bool], Any]:
    def check(value: Any, hint: Any, strict: bool) -> Any:
        if strict:
            _expect(value, kind, what)
        return value

    return check


def _from_string(parse: Callable[[str], Any]) -> Callable[[Any, Any, bool], Any]:
    def build(value: Any, hint: Any, strict: bool) -> Any:
        _expect(value, str, f"a string for {hint.__name__}")
        return parse(value)

    return build


def _convert_union(value: Any, hint: Any, strict: bool) -> Any:
    members = typing.get_args(hint)
    for member in members:
        try:
            return convert(value, member, strict=True)
        except (TypeError, ValueError):
            continue
    if strict:
        raise TypeError(f"expected {hint}, got {_json_kind(value)}")
    fallback = next((m for m in members if m is not type(None)), members[0])
    return convert(value, fallback)


def _convert_literal(value: Any, hint: Any, strict: bool) -> Any:
    for allowed in typing.get_args(hint):
        if value == _plain(allowed) and type(value) is type(_plain(allowed)):
            return allowed
    if strict:
        raise ValueError(f"expected one of {[_plain(a) for a in typing.get_args(hint)]}")
    return value


def _convert_inner(value: Any, hint: Any, strict: bool) -> Any:
    return convert(value, typing.get_args(hint)[0], strict=strict)


def _convert_array(value: Any, hint: Any, strict: bool) -> Any:
    _expect(value, list, "an array")
    origin, args = typing.get_origin(hint) or hint, typing.get_args(hint)
    if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
        if len(value) != len(args):
            raise ValueError(f"expected an array of {len(args)} items, got {len(value)}")
        return tuple(convert(v, a, strict=strict) for v, a in zip(value, args, strict=True))
    items = [convert(v, args[0], strict=strict) for v in value] if args else list(value)
    kind = {tuple: tuple, set: set, frozenset: frozenset, abc.Set: set, abc.MutableSet: set}
    return kind.get(origin, list)(items)


def _convert_object(value: Any, hint: Any, strict: bool) -> Any:
    _expect(value, dict, "an object")
    args = typing.get_args(hint)
    return {k: convert(v, args[1], strict=strict) for k, v in value.items()} if args else value


def _convert_enum(value: Any, hint: Any, strict: bool) -> Any:
    try:
        return hint(value)
    except ValueError:
        if isinstance(value, str) and value in hint.__members__:
            return hint[value]  # the model sent the member's name
        raise ValueError(f"{value!r} is not one of {[m.value for m in hint]}") from None


def _convert_dataclass(value: Any, hint: Any, strict: bool) -> Any:
    if isinstance(value, hint):
        return value
    _expect(value, dict, f"an object for {hint.__qualname__}")
    hints = typing.get_type_hints(hint, include_extras=True)
    return hint(**{k: convert(v, hints.get(k, Any), strict=strict) for k, v in value.items()})


def _convert_pydantic(value: Any, hint: Any, strict: bool) -> Any:
    return value if isinstance(value, hint) else hint.model_validate(value)


def _convert_typeddict(value: Any, hint: Any, strict: bool) -> Any:
    _expect(value, dict, f"an object for {hint.__qualname__}")
    hints = typing.get_type_hints(hint, include_extras=True)
    return {k: convert(v, hints.get(k, Any), strict=strict) for k, v in value.items()}


_CONVERTERS: dict[Any, Callable[[Any, Any, bool], Any]] = {
    str: _scalar(str, "a string"),
    int: _scalar(int, "an integer"),
    float: _scalar((int, float), "a number"),
    bool: _scalar(bool, "a boolean"),
    type(None): _scalar(type(None), "null"),
    None: _scalar(type(None), "null"),
    dt.datetime: _from_string(dt.datetime.fromisoformat),
    dt.date: _from_string(dt.date.fromisoformat),
    dt.time: _from_string(dt.time.fromisoformat),
    uuid.UUID: _from_string(uuid.UUID),
    Path: _from_string(Path),
    typing.Union: _convert_union,
    types.UnionType: _convert_union,
    Literal: _convert_literal,
    typing.Annotated: _convert_inner,
    typing.Required: _convert_inner,
    typing.NotRequired: _convert_inner,
    **dict.fromkeys(
        [list, tuple, abc.Sequence, abc.MutableSequence, abc.Iterable, abc.Collection],
        _convert_array,
    ),
    **dict.fromkeys(_SET_ORIGINS, _convert_array),
    **dict.fromkeys([dict, abc.Mapping, abc.MutableMapping], _convert_object),
}
_CLASS_CONVERTERS: list[tuple[Callable[[Any], bool], Callable[[Any, Any, bool], Any]]] = [
    (_is_enum, _convert_enum),
    (_is_dataclass, _convert_dataclass),
    (_is_pydantic, _convert_pydantic),
    (typing.is_typeddict, _convert_typeddict),
]


# ---------------------------------------------------------------- docstrings

_PARAM_SECTIONS = {"args", "arguments", "parameters", "params", "attributes"}
_PARAM_SECTIONS |= {"keyword args", "keyword arguments", "other parameters"}
_SECTIONS = _PARAM_SECTIONS | {"returns", "return", "yields", "yield", "raises", "examples"}
_SECTIONS |= {"example", "note", "notes", "warning", "warnings", "todo", "references", "see also"}
_SPHINX_FIELD = re.compile(r"^\s*:(\w+)\s*([^:]*):\s*(.*)$")
_SPHINX_PARAMS = {"param", "parameter", "arg", "argument", "key", "keyword"}
_GOOGLE_ENTRY = re.compile(r"^\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")


def parse_docstring(doc: str | None) -> Docstring:
    """Description and per-parameter text from a Google, NumPy or Sphinx style docstring."""
    lines = inspect.cleandoc(doc or "").splitlines()
    end = next((i for i in range(len(lines)) if _starts_section(lines, i)), len(lines))
    params = {**_numpy_params(lines), **_google_params(lines), **_sphinx_params(lines)}
    return Docstring("\n".join(lines[:end]).strip(), params)


def _starts_section(lines: list[str], i: int) -> bool:
    return (
        _is_google_header(lines[i], _SECTIONS)
        or _is_numpy_header(lines, i)
        or bool(_SPHINX_FIELD.match(lines[i]))
    )


def _is_google_header(line: str, names: set[str]) -> bool:
    text = line.strip()
    return text.endswith(":") and text[:-1].strip().lower() in names


def _is_numpy_header(lines: list[str], i: int) -> bool:
    return bool(lines[i].strip()) and i + 1 < len(lines) and set(lines[i + 1].strip()) == {"-"}


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _entries(block: list[str]) -> list[list[str]]:
    """Group a block into entries: a line at the block's indent, then its deeper lines."""
    lines = [line for line in block if line.strip()]
    base = min((_indent(line) for line in lines), default=0)
    entries: list[list[str]] = []
    for line in lines:
        if _indent(line) == base:
            entries.append([line.strip()])
        elif entries:
            entries[-1].append(line.strip())
    return entries


def _join(parts: Iterable[str]) -> str:
    return " ".join(" ".join(parts).split())


def _google_params(lines: list[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    for i, line in enumerate(lines):
        if not _is_google_header(line, _PARAM_SECTIONS):
            continue
        block = []
        for following in lines[i + 1 :]:
            if following.strip() and _indent(following) <= _indent(line):
                break
            block.append(following)
        for head, *rest in _entries(block):
            if match := _GOOGLE_ENTRY.match(head):
                params[match[1]] = _join([match[2], *rest])
    return params


def _numpy_params(lines: list[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    for i, line in enumerate(lines):
        if not (_is_numpy_header(lines, i) and line.strip().lower() in _PARAM_SECTIONS):
            continue
        end = next((j for j in range(i + 2, len(lines)) if _is_numpy_header(lines, j)), len(lines))
        for head, *rest in _entries(lines[i + 2 : end]):
            for name in head.split(":")[0].split(","):
                params[name.strip().lstrip("*")] = _join(rest)
    return params


def _sphinx_params(lines: list[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    for i, line in enumerate(lines):
        match = _SPHINX_FIELD.match(line)
        if not match or match[1] not in _SPHINX_PARAMS or not match[2].split():
            continue
        rest = []
        for following in lines[i + 1 :]:
            if not following.strip() or _indent(following) <= _indent(line):
                break
            rest.append(following)
        params[match[2].split()[-1]] = _join([match[3], *rest])
    return params
