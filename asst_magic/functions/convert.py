"""JSON values (as the model sent them) back to Python, as a type hint asks.

>>> convert(["red", "blue"], tuple[str, str])
('red', 'blue')
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import types
import typing
import uuid
from collections import abc
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

__all__ = ["convert"]

# The hint classification below is shared with asst_magic.functions.schema, so a hint is read the
# same way when its schema is built and when the model's value for it is converted.
_SET_ORIGINS = (set, frozenset, abc.Set, abc.MutableSet)
_ARRAY_ORIGINS = (list, tuple, abc.Sequence, abc.MutableSequence, abc.Iterable, abc.Collection)
_MAPPING_ORIGINS = (dict, abc.Mapping, abc.MutableMapping)
_INNER_ORIGINS = (typing.Annotated, typing.Required, typing.NotRequired)


def _lookup(table: Mapping[Any, Any], key: Any) -> Any:
    try:
        return table.get(key)
    except TypeError:  # an unhashable hint, e.g. Annotated metadata
        return None


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


def _is_enum(hint: Any) -> bool:
    return isinstance(hint, type) and issubclass(hint, enum.Enum)


def _is_dataclass(hint: Any) -> bool:
    return isinstance(hint, type) and dataclasses.is_dataclass(hint)


def _is_pydantic(hint: Any) -> bool:
    return isinstance(hint, type) and hasattr(hint, "model_json_schema")


def _is_fixed_tuple(origin: Any, args: tuple[Any, ...]) -> bool:
    """True for ``tuple[X, Y]`` (one item per arg), False for ``tuple[X, ...]`` and ``tuple``."""
    return origin is tuple and bool(args) and not (len(args) == 2 and args[1] is Ellipsis)


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
    if _is_fixed_tuple(origin, args):
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
    return hint(**_convert_fields(value, hint, strict))


def _convert_pydantic(value: Any, hint: Any, strict: bool) -> Any:
    return value if isinstance(value, hint) else hint.model_validate(value)


def _convert_fields(value: Any, hint: Any, strict: bool) -> Any:
    """An object's fields converted by ``hint``'s annotations (a TypedDict or a dataclass)."""
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
    **dict.fromkeys(_INNER_ORIGINS, _convert_inner),
    **dict.fromkeys(_ARRAY_ORIGINS + _SET_ORIGINS, _convert_array),
    **dict.fromkeys(_MAPPING_ORIGINS, _convert_object),
}
_CLASS_CONVERTERS: list[tuple[Callable[[Any], bool], Callable[[Any, Any, bool], Any]]] = [
    (_is_enum, _convert_enum),
    (_is_dataclass, _convert_dataclass),
    (_is_pydantic, _convert_pydantic),
    (typing.is_typeddict, _convert_fields),
]
