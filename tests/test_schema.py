"""JSON schemas from signatures, hints and docstrings; JSON values converted back to hints."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, NotRequired, Optional, TypedDict

import pydantic
import pytest

from asst_magic.functions.schema import (
    Docstring,
    SchemaError,
    convert,
    parameters_schema,
    parse_docstring,
    resolve_parameters,
    type_schema,
)


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@dataclasses.dataclass
class Point:
    """A point on the map.

    Attributes:
        x: Longitude.
        y: Latitude.
    """

    x: float
    y: float
    label: str = ""
    tags: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Route:
    start: Point
    stops: list[Point]


@dataclasses.dataclass
class Tree:
    value: int
    children: list[Tree]


class Movie(TypedDict):
    """A film."""

    title: str
    year: NotRequired[int]


class Address(pydantic.BaseModel):
    street: str
    zip_code: str = pydantic.Field(description="Postal code")


class Person(pydantic.BaseModel):
    name: str
    home: Address


def schema_of(fn: Any) -> dict[str, Any]:
    return parameters_schema(resolve_parameters(fn, fn.__name__), owner=fn.__name__)


# ---------------------------------------------------------------- single hints


@pytest.mark.parametrize(
    ("hint", "expected"),
    [
        (str, {"type": "string"}),
        (int, {"type": "integer"}),
        (float, {"type": "number"}),
        (bool, {"type": "boolean"}),
        (None, {"type": "null"}),
        (Any, {}),
        (Optional[int], {"type": ["integer", "null"]}),  # noqa: UP045 - the old spelling too
        (int | None, {"type": ["integer", "null"]}),
        (int | str, {"type": ["integer", "string"]}),
        (Literal["c", "f"], {"type": "string", "enum": ["c", "f"]}),
        (Literal[1, 2.5], {"type": "number", "enum": [1, 2.5]}),
        (Literal["a", 1], {"enum": ["a", 1]}),
        (Color, {"type": "string", "enum": ["red", "green"]}),
        (Level, {"type": "integer", "enum": [1, 2]}),
        (list, {"type": "array"}),
        (list[int], {"type": "array", "items": {"type": "integer"}}),
        (Sequence[str], {"type": "array", "items": {"type": "string"}}),
        (tuple[int, ...], {"type": "array", "items": {"type": "integer"}}),
        (
            tuple[int, str],
            {
                "type": "array",
                "prefixItems": [{"type": "integer"}, {"type": "string"}],
                "minItems": 2,
                "maxItems": 2,
            },
        ),
        (set[str], {"type": "array", "items": {"type": "string"}, "uniqueItems": True}),
        (dict, {"type": "object"}),
        (dict[str, Any], {"type": "object"}),
        (dict[str, float], {"type": "object", "additionalProperties": {"type": "number"}}),
        (Annotated[str, "City name"], {"type": "string", "description": "City name"}),
        (dt.datetime, {"type": "string", "format": "date-time"}),
        (dt.date, {"type": "string", "format": "date"}),
        (Path, {"type": "string"}),
        (
            list[Point] | None,
            {
                "anyOf": [
                    {"type": "array", "items": type_schema(Point)},
                    {"type": "null"},
                ]
            },
        ),
    ],
)
def test_type_schema(hint: Any, expected: dict[str, Any]) -> None:
    assert type_schema(hint) == expected


def test_dataclass_schema_uses_fields_defaults_and_attribute_docs() -> None:
    assert type_schema(Point) == {
        "description": "A point on the map.",
        "type": "object",
        "properties": {
            "x": {"type": "number", "description": "Longitude."},
            "y": {"type": "number", "description": "Latitude."},
            "label": {"type": "string", "default": ""},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["x", "y"],
    }


def test_nested_dataclasses_are_inlined() -> None:
    point = type_schema(Point)
    assert type_schema(Route) == {
        "type": "object",
        "properties": {"start": point, "stops": {"type": "array", "items": point}},
        "required": ["start", "stops"],
    }


def test_recursive_dataclass_stops_at_the_recursion() -> None:
    assert type_schema(Tree) == {
        "type": "object",
        "properties": {
            "value": {"type": "integer"},
            "children": {"type": "array", "items": {"type": "object"}},
        },
        "required": ["value", "children"],
    }


def test_typeddict_schema_marks_not_required_keys() -> None:
    assert type_schema(Movie) == {
        "description": "A film.",
        "type": "object",
        "properties": {"title": {"type": "string"}, "year": {"type": "integer"}},
        "required": ["title"],
    }


def test_pydantic_model_schema_is_pydantics_own_with_refs_inlined() -> None:
    assert type_schema(Person) == {
        "title": "Person",
        "type": "object",
        "properties": {
            "name": {"title": "Name", "type": "string"},
            "home": {
                "title": "Address",
                "type": "object",
                "properties": {
                    "street": {"title": "Street", "type": "string"},
                    "zip_code": {
                        "title": "Zip Code",
                        "type": "string",
                        "description": "Postal code",
                    },
                },
                "required": ["street", "zip_code"],
            },
        },
        "required": ["name", "home"],
    }


@pytest.mark.parametrize(
    ("hint", "message"),
    [
        (bytes, "bytes has no JSON form; annotate with str, int"),
        (dict[int, str], "has non-string keys, which JSON objects cannot carry"),
    ],
)
def test_types_json_cannot_carry_are_rejected(hint: Any, message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        type_schema(hint)


# ---------------------------------------------------------------- functions


def weather(city: str, unit: Literal["c", "f"] = "c", days: int | None = None) -> str:
    """Forecast for a city.

    Uses the national service.

    Args:
        city: The city name,
            e.g. "Paris".
        unit (str): Temperature unit.
        days: How many days ahead.

    Returns:
        The forecast.
    """
    return city


def weather_numpy(city: str, when: dt.date, color: Color = Color.RED) -> str:
    """Forecast for a city.

    Parameters
    ----------
    city : str
        The city name.
    when : date
        The day,
        in ISO format.
    color
        Map color.

    Returns
    -------
    str
    """
    return city


def weather_sphinx(city: str, route: Route, limit=3) -> str:
    """Forecast for a city.

    :param city: The city name.
    :param Route route: The way there,
        stop by stop.
    :param limit: At most this many.
    :type limit: int
    :returns: The forecast.
    """
    return city


def test_google_docstring_function_schema() -> None:
    assert schema_of(weather) == {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": 'The city name, e.g. "Paris".'},
            "unit": {
                "type": "string",
                "enum": ["c", "f"],
                "description": "Temperature unit.",
                "default": "c",
            },
            "days": {
                "type": ["integer", "null"],
                "description": "How many days ahead.",
                "default": None,
            },
        },
        "required": ["city"],
    }


def test_numpy_docstring_function_schema() -> None:
    assert schema_of(weather_numpy) == {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "The city name."},
            "when": {"type": "string", "format": "date", "description": "The day, in ISO format."},
            "color": {
                "type": "string",
                "enum": ["red", "green"],
                "description": "Map color.",
                "default": "red",
            },
        },
        "required": ["city", "when"],
    }


def test_sphinx_docstring_function_schema_and_unannotated_parameter() -> None:
    assert schema_of(weather_sphinx) == {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "The city name."},
            "route": {**type_schema(Route), "description": "The way there, stop by stop."},
            "limit": {"description": "At most this many.", "default": 3},
        },
        "required": ["city", "route"],
    }


@pytest.mark.parametrize("fn", [weather, weather_numpy, weather_sphinx])
def test_description_is_the_prose_before_the_sections(fn: Any) -> None:
    expected = "Forecast for a city.\n\nUses the national service." if fn is weather else None
    assert parse_docstring(fn.__doc__).description == (expected or "Forecast for a city.")


def test_docstring_without_sections() -> None:
    assert parse_docstring("Just a summary.") == Docstring("Just a summary.", {})
    assert parse_docstring(None) == Docstring("", {})


def takes_args(city: str, *more: str) -> None:
    """Variadic positional."""


def takes_kwargs(city: str, **options: str) -> None:
    """Variadic keywords."""


def takes_positional_only(city: str, /) -> None:
    """Positional-only."""


def takes_unresolvable(city: NoSuchType) -> None:  # type: ignore[name-defined]  # noqa: F821
    """A hint that names nothing."""


@pytest.mark.parametrize(
    ("fn", "message"),
    [
        (takes_args, r"takes_args: \*more cannot be filled from JSON arguments"),
        (takes_kwargs, r"takes_kwargs: \*\*options cannot be filled from JSON arguments"),
        (takes_positional_only, "takes_positional_only: parameter 'city' is positional-only"),
        (takes_unresolvable, "takes_unresolvable: cannot resolve its type hints .*NoSuchType"),
    ],
)
def test_signatures_json_cannot_fill_are_rejected(fn: Any, message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        schema_of(fn)


def takes_bytes(data: bytes) -> None:
    """Bytes."""


def test_unsupported_parameter_type_names_the_parameter() -> None:
    with pytest.raises(SchemaError, match="takes_bytes: parameter 'data': bytes has no JSON form"):
        schema_of(takes_bytes)


# ---------------------------------------------------------------- JSON -> Python


def test_convert_builds_nested_dataclasses() -> None:
    value = {"start": {"x": 1, "y": 2}, "stops": [{"x": 3, "y": 4, "label": "b"}]}
    assert convert(value, Route) == Route(Point(1, 2), [Point(3, 4, "b")])


def test_convert_builds_pydantic_models() -> None:
    value = {"name": "Ada", "home": {"street": "Main", "zip_code": "1"}}
    assert convert(value, Person) == Person(name="Ada", home=Address(street="Main", zip_code="1"))


@pytest.mark.parametrize(
    ("value", "hint", "expected"),
    [
        ("green", Color, Color.GREEN),
        ("GREEN", Color, Color.GREEN),
        (2, Level, Level.HIGH),
        ("2024-05-01", dt.date, dt.date(2024, 5, 1)),
        ("/tmp/x", Path, Path("/tmp/x")),
        ([1, "a"], tuple[int, str], (1, "a")),
        (["a", "a"], set[str], {"a"}),
        ({"p": {"x": 1, "y": 2}}, dict[str, Point], {"p": Point(1, 2)}),
        (None, Point | None, None),
        ({"x": 1, "y": 2}, Optional[Point], Point(1, 2)),  # noqa: UP045
        ("3", int | str, "3"),
        ({"title": "Up", "year": 2009}, Movie, {"title": "Up", "year": 2009}),
        ("anything", Any, "anything"),
    ],
)
def test_convert(value: Any, hint: Any, expected: Any) -> None:
    assert convert(value, hint) == expected


@pytest.mark.parametrize(
    ("value", "hint", "error", "message"),
    [
        ("here", Point, TypeError, "expected an object for Point, got a string"),
        ({"x": 1, "y": 2, "z": 3}, Point, TypeError, "unexpected keyword argument 'z'"),
        ("blue", Color, ValueError, r"'blue' is not one of \['red', 'green'\]"),
        ("a,b", list[str], TypeError, "expected an array, got a string"),
        ({"street": "Main"}, Address, ValueError, "zip_code"),
    ],
)
def test_convert_rejects_mismatched_values(
    value: Any, hint: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        convert(value, hint)
