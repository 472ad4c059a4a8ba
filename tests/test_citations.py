"""File citations: markers numbered in order of first citation, their files named below."""

from __future__ import annotations

from typing import Any

import pytest

from asst_magic.citations import cite, searched_files, sources_line


def citation(marker: str, file_id: str | None) -> dict[str, Any]:
    return {"type": "file_citation", "text": marker, "file_citation": {"file_id": file_id}}


A, B = "【4:0†a.txt】", "【4:1†b.pdf】"


@pytest.mark.parametrize(
    ("value", "annotations", "names", "expected"),
    [
        ("plain", [], {}, ("plain", [])),
        (f"x{A}.", [citation(A, "file-a")], {}, ("x[1].", ["a.txt"])),
        # The search results' name wins over the marker's.
        (f"x{A}.", [citation(A, "file-a")], {"file-a": "A.txt"}, ("x[1].", ["A.txt"])),
        # Two files in order; the first one cited again keeps its number.
        (
            f"x{A} y{B} z【4:2†a.txt】",
            [citation(A, "file-a"), citation(B, "file-b"), citation("【4:2†a.txt】", "file-a")],
            {},
            ("x[1] y[2] z[1]", ["a.txt", "b.pdf"]),
        ),
        # A marker without a name: the file id; with neither: still numbered.
        ("x【1】", [citation("【1】", "file-z")], {}, ("x[1]", ["file-z"])),
        ("x【1】", [citation("【1】", None)], {}, ("x[1]", ["a file"])),
        # Other annotations are left to their own handling.
        (
            "see x",
            [{"type": "file_path", "text": "x", "file_path": {"file_id": "f"}}],
            {},
            ("see x", []),
        ),
    ],
)
def test_cite(
    value: str, annotations: list[dict[str, Any]], names: dict[str, str], expected: Any
) -> None:
    assert cite({"value": value, "annotations": annotations}, names) == expected


def test_sources_line() -> None:
    assert sources_line([]) == ""
    assert sources_line(["a.txt", "b.pdf"]) == "Sources: [1] a.txt, [2] b.pdf"


def test_searched_files_reads_every_file_search_result() -> None:
    search = {
        "type": "file_search",
        "file_search": {"results": [{"file_id": "file-a", "file_name": "a.txt"}, {"file_id": "x"}]},
    }
    code = {"type": "code_interpreter", "code_interpreter": {"input": "1"}}
    steps = [
        {"step_details": {"type": "tool_calls", "tool_calls": [code, search]}},
        {"step_details": {"type": "message_creation"}},
    ]
    assert searched_files(steps) == {"file-a": "a.txt"}
