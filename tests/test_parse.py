"""Cell interpolation: only defined names, ``{{`` escapes, code braces untouched."""

from __future__ import annotations

from asst_magic.parse import interpolate


def test_defined_name_is_replaced() -> None:
    assert interpolate("Plot {n} points", {"n": 30}) == "Plot 30 points"


def test_undefined_name_stays_as_typed() -> None:
    assert interpolate("Use {missing} here", {}) == "Use {missing} here"


def test_double_braces_escape() -> None:
    assert interpolate("{{n}} is literal, {n} is not", {"n": 1}) == "{n} is literal, 1 is not"


def test_code_and_json_braces_are_left_alone() -> None:
    cell = 'data = {"a": [1, 2]}\nf"{x + 1}" and { n }'
    assert interpolate(cell, {"x": 5, "n": 2}) == cell


def test_nested_json_and_dicts_keep_every_closing_brace() -> None:
    cell = 'Validate {"a": {"b": 1}} and d = {"k": {"x": [1]}}'
    assert interpolate(cell, {}) == cell


def test_lone_double_open_brace_is_one_brace() -> None:
    assert interpolate("set {{1, 2}", {}) == "set {1, 2}"
