"""The function registry: registering, tool objects, and executing the model's calls."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any, Literal

import numpy as np
import pandas as pd
import pydantic
import pytest

from asst_magic.functions import (
    CallOutcome,
    FunctionRegistry,
    SchemaError,
    ToolCall,
    UnknownFunctionError,
    default_registry,
    format_output,
    function,
)

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name."},
                "unit": {"type": "string", "enum": ["c", "f"], "default": "c"},
            },
            "required": ["city"],
        },
    },
}


def get_weather(city: str, unit: Literal["c", "f"] = "c") -> str:
    """Current weather for a city.

    Args:
        city: City name.
    """
    if city == "Atlantis":
        raise ValueError("bad city")
    return f"22{unit.upper()} and sunny in {city}"


def get_time(zone: str = "UTC") -> dict[str, str]:
    """Current time."""
    return {"zone": zone, "time": "12:00"}


async def fetch_population(city: str) -> int:
    """Population of a city, looked up asynchronously."""
    await asyncio.sleep(0)
    if city == "Atlantis":
        raise LookupError("no such city")
    return 2_100_000


@dataclasses.dataclass
class Point:
    x: float
    y: float


class Trip(pydantic.BaseModel):
    origin: str
    nights: int


def distance(a: Point, b: Point | None = None) -> float:
    """Distance from a to b (or the origin)."""
    b = b or Point(0, 0)
    return float(((a.x - b.x) ** 2 + (a.y - b.y) ** 2) ** 0.5)


def book(trip: Trip) -> Trip:
    """Book a trip."""
    return trip


@pytest.fixture
def registry() -> FunctionRegistry:
    registry = FunctionRegistry()
    for fn in (get_weather, get_time, fetch_population, distance, book):
        registry.register(fn)
    return registry


@pytest.fixture
def clean_default_registry() -> Iterator[None]:
    before = default_registry.names()
    yield
    for name in default_registry.names():
        if name not in before:
            default_registry.remove(name)


def call(name: str, arguments: str = "", id: str = "call_1") -> ToolCall:
    return ToolCall(id, name, arguments)


# ---------------------------------------------------------------- registering


@pytest.mark.usefixtures("clean_default_registry")
def test_bare_decorator_registers_in_the_default_registry_and_returns_the_function() -> None:
    def shout(text: str) -> str:
        """Upper-case some text."""
        return text.upper()

    assert function(shout) is shout
    assert shout("hi") == "HI"
    assert "shout" in default_registry
    assert default_registry.tools(["shout"]) == [
        {
            "type": "function",
            "function": {
                "name": "shout",
                "description": "Upper-case some text.",
                "parameters": {
                    "type": "object",
                    "properties": {"text": {"type": "string"}},
                    "required": ["text"],
                },
            },
        }
    ]


def test_decorator_with_options_uses_the_given_registry_name_and_description() -> None:
    registry = FunctionRegistry()

    @function(name="lookup", description="Look a word up.", registry=registry)
    def define(word: str) -> str:
        return f"{word}: a word"

    assert define("cat") == "cat: a word"
    assert registry.names() == ["lookup"]
    assert registry.tools()[0]["function"]["description"] == "Look a word up."
    assert "define" not in default_registry


def test_decorator_called_with_a_name_positionally_explains_the_keyword() -> None:
    with pytest.raises(TypeError, match=r"use @function\(name='lookup'\)"):
        function("lookup")  # type: ignore[call-overload]


def test_tools_are_openai_function_tool_objects(registry: FunctionRegistry) -> None:
    assert registry.tools(["get_weather"]) == [WEATHER_TOOL]
    assert [t["function"]["name"] for t in registry.tools()] == registry.names()


def test_tools_are_copies_callers_cannot_corrupt(registry: FunctionRegistry) -> None:
    registry.tools()[0]["function"]["name"] = "changed"
    assert registry.tools(["get_weather"]) == [WEATHER_TOOL]


def test_tools_for_an_unknown_name_lists_the_registered_ones(registry: FunctionRegistry) -> None:
    message = (
        "no function named 'nope' is registered; registered: "
        "get_weather, get_time, fetch_population, distance, book"
    )
    with pytest.raises(UnknownFunctionError) as raised:
        registry.tools(["get_weather", "nope"])
    assert str(raised.value) == message


def test_registering_a_name_again_replaces_the_function() -> None:
    registry = FunctionRegistry()
    registry.register(get_weather)
    registry.register(get_time, name="get_weather")
    [outcome] = registry.execute([call("get_weather")])
    assert outcome.output == '{"zone": "UTC", "time": "12:00"}'
    assert registry.names() == ["get_weather"]


def test_remove_get_clear(registry: FunctionRegistry) -> None:
    assert registry.get("get_time") is not None
    assert registry.remove("get_time") is True
    assert registry.remove("get_time") is False
    assert "get_time" not in registry
    assert registry.get("get_time") is None
    registry.clear()
    assert registry.names() == []
    assert len(registry) == 0


def test_a_lambda_needs_a_name() -> None:
    registry = FunctionRegistry()
    with pytest.raises(SchemaError, match=r"<lambda> is not a usable function name.*name='...'"):
        registry.register(lambda city: city)
    assert registry.register(lambda city: city, name="echo").name == "echo"


def test_variadic_functions_are_rejected_at_registration() -> None:
    def log(*messages: str) -> None:
        """Log."""

    with pytest.raises(SchemaError, match=r"log: \*messages cannot be filled from JSON"):
        function(registry=FunctionRegistry())(log)


def test_describe_lists_signatures_and_summaries(registry: FunctionRegistry) -> None:
    assert registry.describe() == "\n".join(
        [
            "get_weather(city: str, unit: Literal['c', 'f'] = 'c') -> str"
            " — Current weather for a city.",
            "get_time(zone: str = 'UTC') -> dict[str, str] — Current time.",
            "async fetch_population(city: str) -> int"
            " — Population of a city, looked up asynchronously.",
            "distance(a: Point, b: Point | None = None) -> float"
            " — Distance from a to b (or the origin).",
            "book(trip: Trip) -> Trip — Book a trip.",
        ]
    )
    assert repr(registry).startswith("FunctionRegistry with 5 functions:\n  get_weather(")


def test_describe_an_empty_registry_says_how_to_register() -> None:
    assert FunctionRegistry().describe() == (
        "No functions registered. Register one with @asst_magic.function."
    )
    assert repr(FunctionRegistry()) == "FunctionRegistry (no functions)"


def test_describe_shows_evaluated_annotations_without_module_prefixes() -> None:
    registry = FunctionRegistry()
    registry.register(eval("lambda a, b=2: a", {}), name="add")
    scope: dict[str, Any] = {"Point": Point}
    exec("def near(p: Point, radius: float = 1.0) -> list[Point]:\n    return [p]", scope)
    registry.register(scope["near"])
    assert registry.describe() == "add(a, b=2)\nnear(p: Point, radius: float = 1.0) -> list[Point]"


# ---------------------------------------------------------------- executing


def test_one_call(registry: FunctionRegistry) -> None:
    outcomes = registry.execute([call("get_weather", '{"city": "Paris"}', id="call_abc")])
    assert outcomes == [
        CallOutcome("call_abc", "22C and sunny in Paris", None, "22C and sunny in Paris")
    ]
    assert outcomes[0].to_dict() == {"tool_call_id": "call_abc", "output": "22C and sunny in Paris"}


def test_three_calls_in_one_round_come_back_in_call_order(registry: FunctionRegistry) -> None:
    calls = [
        call("fetch_population", '{"city": "Paris"}', id="call_1"),
        call("get_weather", '{"city": "Oslo", "unit": "f"}', id="call_2"),
        call("get_time", "", id="call_3"),
    ]
    outcomes = registry.execute(calls)
    assert [(o.tool_call_id, o.output, o.error) for o in outcomes] == [
        ("call_1", "2100000", None),
        ("call_2", "22F and sunny in Oslo", None),
        ("call_3", '{"zone": "UTC", "time": "12:00"}', None),
    ]
    assert outcomes[2].value == {"zone": "UTC", "time": "12:00"}


def test_a_raising_function_reports_its_exception_type_and_message(
    registry: FunctionRegistry,
) -> None:
    [outcome] = registry.execute([call("get_weather", '{"city": "Atlantis"}')])
    assert outcome == CallOutcome("call_1", "Error: ValueError: bad city", "ValueError: bad city")


def test_an_exception_without_a_message_reports_its_type() -> None:
    registry = FunctionRegistry()

    def broken() -> None:
        raise RuntimeError

    registry.register(broken)
    assert registry.execute([call("broken")])[0].output == "Error: RuntimeError"


def test_an_unknown_name_is_an_error_outcome_listing_registered_names() -> None:
    registry = FunctionRegistry()
    registry.register(get_weather)
    registry.register(get_time)
    [outcome] = registry.execute([call("get_wether", '{"city": "Paris"}')])
    assert outcome.output == (
        "Error: no function named 'get_wether' is registered; registered: get_weather, get_time"
    )
    assert outcome.value is None


def test_an_empty_registry_says_none_are_registered() -> None:
    [outcome] = FunctionRegistry().execute([call("x")])
    assert outcome.error == "no function named 'x' is registered; registered: none"


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        (
            '{"city": "Paris"',
            "arguments for get_weather are not valid JSON: "
            "Expecting ',' delimiter: line 1 column 17 (char 16)",
        ),
        ('["Paris"]', "arguments for get_weather must be a JSON object, not list"),
        ("{}", "invalid arguments for get_weather: missing a required argument: 'city'"),
        (
            '{"city": "Paris", "country": "FR"}',
            "invalid arguments for get_weather: got an unexpected keyword argument 'country'",
        ),
    ],
)
def test_bad_arguments_are_error_outcomes_naming_the_function(
    registry: FunctionRegistry, arguments: str, error: str
) -> None:
    [outcome] = registry.execute([call("get_weather", arguments)])
    assert (outcome.output, outcome.error, outcome.value) == (f"Error: {error}", error, None)


def test_one_bad_call_does_not_stop_the_others(registry: FunctionRegistry) -> None:
    calls = [call("nope", id="a"), call("get_weather", "{", id="b"), call("get_time", id="c")]
    assert [o.error is None for o in registry.execute(calls)] == [False, False, True]


def test_empty_arguments_mean_no_arguments(registry: FunctionRegistry) -> None:
    assert registry.execute([call("get_time", "")])[0].value == {"zone": "UTC", "time": "12:00"}
    assert registry.execute([call("get_time", "  ")])[0].value == {"zone": "UTC", "time": "12:00"}


def test_objects_become_dataclass_instances(registry: FunctionRegistry) -> None:
    calls = [call("distance", '{"a": {"x": 3, "y": 4}}'), call("distance", '{"a": {"x": 1}}')]
    first, second = registry.execute(calls)
    assert (first.output, first.value) == ("5.0", 5.0)
    assert second.error == (
        "invalid arguments for distance: 'a': "
        "TypeError: Point.__init__() missing 1 required positional argument: 'y'"
    )


def test_objects_become_pydantic_models(registry: FunctionRegistry) -> None:
    good, bad = registry.execute(
        [
            call("book", '{"trip": {"origin": "Paris", "nights": 3}}'),
            call("book", '{"trip": {"origin": "Paris", "nights": "many"}}'),
        ]
    )
    assert good.value == Trip(origin="Paris", nights=3)
    assert good.output == '{"origin": "Paris", "nights": 3}'
    assert bad.error is not None
    assert bad.error.startswith("invalid arguments for book: 'trip': ValidationError: 1 validation")
    assert "nights" in bad.error


# ---------------------------------------------------------------- async


def test_async_function_without_a_running_loop(registry: FunctionRegistry) -> None:
    [ok, failed] = registry.execute(
        [
            call("fetch_population", '{"city": "Paris"}'),
            call("fetch_population", '{"city": "Atlantis"}'),
        ]
    )
    assert (ok.output, ok.value) == ("2100000", 2_100_000)
    assert failed.output == "Error: LookupError: no such city"


def test_async_function_called_while_an_event_loop_runs_in_this_thread(
    registry: FunctionRegistry,
) -> None:
    async def cell() -> list[CallOutcome]:  # as in a Jupyter kernel, whose loop runs the cell
        return registry.execute([call("fetch_population", '{"city": "Paris"}')])

    [outcome] = asyncio.run(cell())
    assert outcome.output == "2100000"


def test_async_calls_in_one_round_run_concurrently() -> None:
    registry = FunctionRegistry()
    arrived: dict[str, asyncio.Event] = {}

    async def meet(who: str, other: str) -> str:
        """Wait for ``other``: finishes only if both run at the same time."""
        arrived.setdefault(who, asyncio.Event()).set()
        await asyncio.wait_for(arrived.setdefault(other, asyncio.Event()).wait(), timeout=30)
        return f"{who} met {other}"

    registry.register(meet)
    calls = [call("meet", '{"who": "a", "other": "b"}'), call("meet", '{"who": "b", "other": "a"}')]
    assert [o.output for o in registry.execute(calls)] == ["a met b", "b met a"]


def test_sync_and_async_calls_mixed_keep_call_order(registry: FunctionRegistry) -> None:
    calls = [
        call("fetch_population", '{"city": "Paris"}', id="1"),
        call("get_time", id="2"),
        call("fetch_population", '{"city": "Atlantis"}', id="3"),
        call("nope", id="4"),
    ]
    outcomes = registry.execute(calls)
    assert [o.tool_call_id for o in outcomes] == ["1", "2", "3", "4"]
    assert [o.error is None for o in outcomes] == [True, True, False, False]


# ---------------------------------------------------------------- interrupts


def test_keyboard_interrupt_in_a_function_propagates() -> None:
    registry = FunctionRegistry()
    ran: list[str] = []

    def slow() -> None:
        ran.append("slow")
        raise KeyboardInterrupt

    registry.register(slow)
    registry.register(get_time)
    with pytest.raises(KeyboardInterrupt):
        registry.execute([call("slow"), call("get_time")])
    assert ran == ["slow"]


def test_keyboard_interrupt_in_an_async_function_propagates_from_a_worker_loop() -> None:
    registry = FunctionRegistry()

    async def interrupted() -> None:
        raise KeyboardInterrupt

    registry.register(interrupted)

    async def cell() -> None:
        registry.execute([call("interrupted")])

    with pytest.raises(KeyboardInterrupt):
        asyncio.run(cell())


def _interrupt_main_thread() -> None:
    """Deliver SIGINT to the main thread, as Jupyter's interrupt button does to the kernel."""
    signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)


def _waiting_function(cancelled: threading.Event) -> Callable[[], Any]:
    async def wait_forever() -> None:
        _interrupt_main_thread()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    return wait_forever


def test_interrupt_while_an_async_function_runs_on_the_worker_cancels_it() -> None:
    registry = FunctionRegistry()
    cancelled = threading.Event()
    registry.register(_waiting_function(cancelled), name="wait_forever")

    async def cell() -> None:
        registry.execute([call("wait_forever")])

    # A plain loop, as the kernel has: asyncio.run would turn the first SIGINT into a cancel.
    loop = asyncio.new_event_loop()
    try:
        with pytest.raises(KeyboardInterrupt):
            loop.run_until_complete(cell())
    finally:
        loop.close()
    assert cancelled.wait(timeout=30)


def test_interrupt_while_an_async_function_runs_without_a_loop_cancels_it() -> None:
    registry = FunctionRegistry()
    cancelled = threading.Event()
    registry.register(_waiting_function(cancelled), name="wait_forever")
    with pytest.raises(KeyboardInterrupt):
        registry.execute([call("wait_forever")])
    assert cancelled.is_set()


# ---------------------------------------------------------------- outputs


def test_a_large_return_value_is_truncated_with_a_visible_marker() -> None:
    registry = FunctionRegistry()
    registry.register(lambda: "x" * 150_000, name="big")
    [outcome] = registry.execute([call("big")])
    assert outcome.output == "x" * 20_000 + "… [truncated 130,000 characters]"
    assert outcome.value == "x" * 150_000


def test_the_output_cap_is_configurable() -> None:
    registry = FunctionRegistry(max_output_chars=10)
    registry.register(lambda: list(range(10)), name="numbers")
    assert registry.execute([call("numbers")])[0].output == (
        "[0, 1, 2, … [truncated 20 characters]"
    )
    registry.max_output_chars = None
    assert registry.execute([call("numbers")])[0].output == json.dumps(list(range(10)))


@dataclasses.dataclass
class Reading:
    when: dt.datetime
    tags: set[str]


class Unprintable:
    def __repr__(self) -> str:
        return "<Unprintable>"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain text", "plain text"),
        (None, "null"),
        ({"a": [1, 2.5, True]}, '{"a": [1, 2.5, true]}'),
        ("café", "café"),
        ({"city": "Zürich"}, '{"city": "Zürich"}'),
        (
            Reading(dt.datetime(2024, 5, 1, 12, 30), {"b", "a"}),
            '{"when": "2024-05-01T12:30:00", "tags": ["a", "b"]}',
        ),
        (Trip(origin="Oslo", nights=2), '{"origin": "Oslo", "nights": 2}'),
        (np.int64(7), "7"),
        (np.array([[1, 2], [3, 4]]), "[[1, 2], [3, 4]]"),
        (
            pd.DataFrame({"city": ["Paris", "Oslo"], "temp": [22, 15]}),
            '[{"city": "Paris", "temp": 22}, {"city": "Oslo", "temp": 15}]',
        ),
        (pd.Series([1, 2], index=["a", "b"]), '{"a": 1, "b": 2}'),
        (dt.date(2024, 5, 1), '"2024-05-01"'),
        (Unprintable(), "<Unprintable>"),
        ({"x": Unprintable()}, "{'x': <Unprintable>}"),
    ],
)
def test_format_output(value: Any, expected: str) -> None:
    assert format_output(value) == expected


def test_tool_call_from_a_required_action_dict() -> None:
    data = {
        "id": "call_9",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }
    assert ToolCall.from_dict(data) == ToolCall("call_9", "get_weather", '{"city": "Paris"}')
