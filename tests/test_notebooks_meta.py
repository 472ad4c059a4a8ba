"""The shipped notebooks, read without running them: what a reader sees before pressing Run.

``pytest --nbval notebooks/`` re-executes them; these checks fail fast, and with a
clear message, when a notebook and its replay cassette drift apart or when a saved
output would not show without a live kernel.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager

from asst_magic.parse import interpolate

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NAMES = ["quickstart", "functions", "threads"]
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _notebook(name: str) -> Any:
    return nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)


def _code_cells(name: str) -> list[Any]:
    return [c for c in _notebook(name).cells if c.cell_type == "code"]


def _assistant_cells(name: str) -> list[Any]:
    return [c for c in _code_cells(name) if c.source.startswith("%%assistant")]


def _cassette_users(name: str) -> set[str]:
    lines = (NOTEBOOKS / f"{name}.jsonl").read_text().splitlines()
    entries = [json.loads(line) for line in lines if line.strip() and not line.startswith("#")]
    return {e["user"].strip() for e in entries}


def _literal_names(name: str) -> dict[str, Any]:
    """Variables the notebook assigns from literals (``metric = "monthly churn"``)."""
    names: dict[str, Any] = {}
    python = TransformerManager()  # magics become get_ipython() calls, as IPython runs them
    for cell in _code_cells(name):
        for node in ast.parse(python.transform_cell(cell.source)).body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
                names.update({t.id: node.value.value for t in node.targets if hasattr(t, "id")})
    return names


@pytest.mark.parametrize("name", NAMES)
def test_first_cell_says_offline_with_cassette_and_how_to_use_a_real_model(name: str) -> None:
    first = _notebook(name).cells[0]
    assert first.cell_type == "markdown"
    assert "offline" in first.source and f"{name}.jsonl" in first.source
    assert "real model" in first.source and "OPENAI_API_KEY" in first.source


@pytest.mark.parametrize("name", NAMES)
def test_notebook_replays_its_own_cassette_in_a_fresh_data_dir(name: str) -> None:
    setup = _code_cells(name)[0].source
    assert f'%config AssistantMagics.cassette = "{name}.jsonl"' in setup
    assert 'os.environ["ASST_MAGIC_DATA_DIR"] = scratch.name' in setup
    assert (NOTEBOOKS / f"{name}.jsonl").is_file()


@pytest.mark.parametrize("name", NAMES)
def test_every_assistant_message_has_a_cassette_entry(name: str) -> None:
    users, namespace = _cassette_users(name), _literal_names(name)
    for cell in _assistant_cells(name):
        message = interpolate(cell.source.split("\n", 1)[1], namespace).strip()
        assert message in users, f"{name}.jsonl has no entry for {message!r}"


@pytest.mark.parametrize("name", NAMES)
def test_saved_runs_are_static_completed_transcripts(name: str) -> None:
    """No widget views or widget state: the transcript shows on GitHub and without a kernel."""
    nb = _notebook(name)
    assert "widgets" not in nb.metadata
    for cell in _code_cells(name):
        assert cell.execution_count is not None, f"unexecuted cell: {cell.source[:40]!r}"
        assert all(WIDGET_VIEW not in o.get("data", {}) for o in cell.outputs)
    for cell in _assistant_cells(name):
        status = cell.outputs[-1]["data"]["text/plain"]
        assert re.match(r"completed · \d+\.\d s · \d+ tokens$", status), status


def test_quickstart_transcript_has_highlighted_code_logs_and_plot() -> None:
    analysis = next(c for c in _assistant_cells("quickstart") if "--file sales.csv" in c.source)
    html = "".join(o["data"].get("text/html", "") for o in analysis.outputs)
    assert '<span class="kn">import</span>' in html
    assert "2024    691990" in html
    assert any("image/png" in o["data"] for o in analysis.outputs)
