"""Description and per-parameter text from Google, NumPy and Sphinx style docstrings.

>>> parse_docstring(":param city: City name.").params
{'city': 'City name.'}
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from collections.abc import Iterable

__all__ = ["Docstring", "parse_docstring"]


@dataclasses.dataclass(frozen=True)
class Docstring:
    """A docstring split into its prose description and per-parameter text."""

    description: str
    params: dict[str, str]


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
