"""Every package the project's code, tests and recorded model code import is declared.

A test that passes only because some package happened to be installed by hand is a
red build on the next fresh machine. This reads every import (the package, tests,
benchmarks, the shipped notebooks, and the code the cassettes and recorded vectors
send to the code interpreter) and checks that a distribution pyproject declares
(dependencies or an extra) provides it.
"""

from __future__ import annotations

import ast
import json
import re
import sys
import tomllib
from collections.abc import Iterator
from importlib.metadata import packages_distributions
from pathlib import Path
from typing import Any

import nbformat
from IPython.core.inputtransformer2 import TransformerManager

ROOT = Path(__file__).resolve().parents[1]
LOCAL = {"asst_magic", "_asst_magic_sandbox"} | {p.stem for p in ROOT.glob("tests/**/*.py")}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared() -> set[str]:
    """Distribution names pyproject lists, in dependencies or any extra."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        specs += extra
    return {_normal(re.split(r"[\s<>=!~;\[]", spec, maxsplit=1)[0]) for spec in specs}


def imported(code: str) -> Iterator[str]:
    """Top-level module names ``code`` imports (magics turned into Python first)."""
    tree = ast.parse(TransformerManager().transform_cell(code))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module.split(".")[0]


def cassette_code(value: object) -> Iterator[str]:
    """Code-interpreter inputs anywhere in a cassette entry."""
    if isinstance(value, dict):
        if value.get("type") == "code_interpreter" and "input" in value:
            code = value["input"]
            yield "".join(code) if isinstance(code, list) else str(code)
        for item in value.values():
            yield from cassette_code(item)
    elif isinstance(value, list):
        for item in value:
            yield from cassette_code(item)


def vector_code(event: dict[str, Any]) -> Iterator[str]:
    """Code-interpreter inputs of a finished run step (deltas hold only fragments)."""
    if event.get("object") == "thread.run.step":
        for call in (event.get("step_details") or {}).get("tool_calls") or ():
            if call.get("type") == "code_interpreter":
                yield call["code_interpreter"]["input"]


def sources() -> Iterator[tuple[str, str]]:
    """(where, code) for every piece of Python the project ships or replays."""
    for folder in ("asst_magic", "tests", "bench"):
        for path in sorted((ROOT / folder).glob("**/*.py")):
            yield str(path.relative_to(ROOT)), path.read_text()
    for path in sorted(ROOT.glob("notebooks/*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code":
                yield path.name, cell.source
    for path in sorted([*ROOT.glob("notebooks/*.jsonl"), *ROOT.glob("tests/cassettes/*.jsonl")]):
        for line in path.read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                yield from ((path.name, code) for code in cassette_code(json.loads(line)))
    for path in sorted(ROOT.glob("tests/vectors/**/*.sse")):
        for line in path.read_text().splitlines():
            if line.startswith("data: {"):
                event = json.loads(line[len("data: ") :])
                yield from ((path.name, code) for code in vector_code(event))


def test_every_import_comes_from_a_declared_distribution() -> None:
    wanted, providers = declared(), packages_distributions()
    missing: dict[str, set[str]] = {}
    for where, code in sources():
        for module in imported(code):
            if module in sys.stdlib_module_names or module in LOCAL:
                continue
            if not {_normal(d) for d in providers.get(module, [])} & wanted:
                missing.setdefault(module, set()).add(where)
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


def test_the_check_sees_recorded_model_code() -> None:
    # The conformance vector's code does `import sympy`: the scan must reach it.
    modules = {m for where, code in sources() if where.endswith(".sse") for m in imported(code)}
    assert "sympy" in modules
