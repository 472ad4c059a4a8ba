"""File citations in an answer: ``【4:0†notes.txt】`` markers become numbered references.

A server with ``file_search`` marks what it quotes with a marker in the text and a
``file_citation`` annotation naming the file. Shown raw the markers are noise; the
reader wants a number and, under the answer, which file it stands for:

>>> text = {"value": "Cake【4:0†foods.txt】.", "annotations": [{"type": "file_citation",
...     "text": "【4:0†foods.txt】", "file_citation": {"file_id": "file-1"}}]}
>>> cite(text, {})
('Cake[1].', ['foods.txt'])
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["cite", "searched_files", "sources_line"]


def cite(text: Mapping[str, Any], names: Mapping[str, str]) -> tuple[str, list[str]]:
    """The text with each cited marker as ``[n]``, and the cited files, numbered from 1.

    A file is named by ``names`` (file id to name, from the search results), else
    by the marker itself (``†name``), else by its id; citing it again reuses its number.
    """
    value = str(text.get("value") or "")
    sources: list[str] = []
    numbers: dict[str, int] = {}
    for note in text.get("annotations") or ():
        marker = note.get("text") or ""
        if note.get("type") != "file_citation" or not marker:
            continue
        file_id = str((note.get("file_citation") or {}).get("file_id") or "")
        label = names.get(file_id) or _named_in(marker) or file_id or "a file"
        key = file_id or label
        if key not in numbers:
            sources.append(label)
            numbers[key] = len(sources)
        value = value.replace(marker, f"[{numbers[key]}]")
    return value, sources


def sources_line(sources: list[str]) -> str:
    """``Sources: [1] a.txt, [2] b.pdf``, to stand under the answer ('' without sources)."""
    if not sources:
        return ""
    return "Sources: " + ", ".join(f"[{n}] {name}" for n, name in enumerate(sources, 1))


def searched_files(steps: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """File id to file name, for every file a ``file_search`` call of these steps found."""
    names: dict[str, str] = {}
    for step in steps:
        for call in (step.get("step_details") or {}).get("tool_calls") or ():
            if call.get("type") != "file_search":
                continue
            for result in (call.get("file_search") or {}).get("results") or ():
                if result.get("file_id") and result.get("file_name"):
                    names[str(result["file_id"])] = str(result["file_name"])
    return names


def _named_in(marker: str) -> str:
    """The file name a ``【4:0†name】`` marker carries, or ''."""
    _, dagger, rest = marker.partition("†")
    return rest.rstrip("】").strip() if dagger else ""
