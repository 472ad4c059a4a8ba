"""Reading tracebacks out of code-interpreter logs: real ipykernel tracebacks, table-driven."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asst_magic.server.code_interpreter.compact import compact_logs
from asst_magic.tracebacks import compact_traceback, find_error, tidy_traceback

RECORDED = Path(__file__).parent / "vectors" / "tracebacks" / "ipykernel.jsonl"
TRACEBACKS = {
    d["ename"] + ("-exec" if "exec(" in "".join(d["tb"]) else ""): "\n".join(d["tb"]) + "\n"
    for d in map(json.loads, RECORDED.read_text().splitlines())
}

# name -> (error line, failing line of the assistant's code, its text)
EXPECTED = {
    "KeyError": ("KeyError: 'revenue'", 4, "df['revenue']"),
    "ZeroDivisionError": ("ZeroDivisionError: division by zero", 2, "1/0"),
    "ValueError": ("ValueError: bad 3", 4, "raise ValueError(f'bad {n}')"),
    "FileNotFoundError": (
        "FileNotFoundError: [Errno 2] No such file or directory: '/mnt/data/nope.csv'",
        2,
        "pd.read_csv('/mnt/data/nope.csv')",
    ),
    "ZeroDivisionError-exec": ("ZeroDivisionError: division by zero", 1, "exec('1/0')"),
    "SyntaxError": ("SyntaxError: invalid syntax", 2, "def f(:"),
    "IndentationError": (
        "IndentationError: expected an indented block after 'if' statement on line 1",
        2,
        "print(2)",
    ),
    "JSONDecodeError": (
        "JSONDecodeError: Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1)",
        2,
        "json.loads('{bad')",
    ),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_error_and_the_failing_line_are_found(name: str) -> None:
    printed = "loaded 3 rows\n"
    error = find_error(printed + TRACEBACKS[name])
    assert error is not None
    assert (error.message, error.line, error.source) == EXPECTED[name]
    assert error.before == printed
    assert error.after == ""


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_tidy_traceback_hides_noise_but_keeps_the_frames(name: str) -> None:
    error = find_error(TRACEBACKS[name])
    assert error is not None
    tidy = tidy_traceback(error.traceback)
    for noise in ("Cell In[", "site-packages", "/work/venvs", "Could not get source", "-----"):
        assert noise not in tidy, noise
    assert f"Code, line {EXPECTED[name][1]}" in tidy
    assert tidy.rstrip().endswith(EXPECTED[name][0])


def test_library_paths_are_shown_from_the_package_name() -> None:
    error = find_error(TRACEBACKS["KeyError"])
    assert error is not None
    assert "File pandas/core/frame.py:4330, in DataFrame.__getitem__" in tidy_traceback(
        error.traceback
    )
    json_error = find_error(TRACEBACKS["JSONDecodeError"])
    assert json_error is not None
    assert "File json/decoder.py:353" in tidy_traceback(json_error.traceback)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_model_gets_its_own_frames_the_raising_frame_and_the_error(name: str) -> None:
    error = find_error(TRACEBACKS[name])
    assert error is not None
    compact = compact_traceback(error)
    assert compact.rstrip().endswith(EXPECTED[name][0])
    assert EXPECTED[name][2] in compact  # the line of its code that failed
    assert len(compact) <= min(len(TRACEBACKS[name]), 1200)
    assert "Cell In[" not in compact and "Could not get source" not in compact


def test_a_pandas_key_error_shrinks_to_a_tenth() -> None:
    logs = "loaded\n" + TRACEBACKS["KeyError"]
    compact = compact_logs(logs)
    assert compact == (
        "loaded\n"
        "Traceback (most recent call last):\n"
        "  Code, line 4\n"
        "    df['revenue']\n"
        "  ... 1 library frame ...\n"
        "  File pandas/core/indexes/base.py:3823, in Index.get_loc(self, key)\n"
        "    raise KeyError(key) from err\n"
        "KeyError: 'revenue'\n"
    )
    assert len(compact) * 10 < len(logs)


def test_the_size_is_bounded_however_deep_or_long_the_error() -> None:
    deep = TRACEBACKS["ValueError"].replace(
        "Cell In[3], line 2, in f(n)", "\n\n".join(["Cell In[3], line 2, in f(n)"] * 400)
    )
    huge = TRACEBACKS["ZeroDivisionError"].replace("division by zero", "x" * 50_000)
    for logs in (deep, huge):
        assert len(compact_logs(logs, limit=800)) <= 800


@pytest.mark.parametrize(
    "logs",
    [
        "",
        "plain output\n",
        "Traceback talk in a print, no traceback\n",
        "---------------------------------------------------------------------------\n",
    ],
)
def test_logs_without_a_traceback_are_left_alone(logs: str) -> None:
    assert find_error(logs) is None
    assert compact_logs(logs) == logs


def test_notes_after_the_traceback_are_kept() -> None:
    note = "[output truncated: only the first 50,000 characters are shown]\n"
    error = find_error(TRACEBACKS["ZeroDivisionError"] + note)
    assert error is not None
    assert error.after == note
    assert compact_logs(TRACEBACKS["ZeroDivisionError"] + note).endswith(note)
