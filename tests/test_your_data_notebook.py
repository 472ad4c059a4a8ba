"""notebooks/your-data.ipynb in a real kernel: %asst_code inserts the cell that follows it,
and that cell, run in the notebook, draws the assistant's plot byte for byte."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
IDS = re.compile(r"\b(run|thread)_[A-Za-z0-9]{24}\b")


def pngs(cell: Any) -> list[str]:
    return [o["data"]["image/png"] for o in cell["outputs"] if "image/png" in o.get("data", {})]


def test_asst_code_inserts_the_next_cell_which_reproduces_the_plot(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(NOTEBOOKS.parent))
    nb = nbformat.read(NOTEBOOKS / "your-data.ipynb", as_version=4)
    inserted: dict[int, str] = {}

    def on_executed(cell: Any, cell_index: int, execute_reply: dict[str, Any]) -> None:
        for payload in execute_reply["content"].get("payload", []):
            if payload.get("source") == "set_next_input":
                inserted[cell_index] = payload["text"]

    client = NotebookClient(
        nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    client.on_cell_executed = on_executed
    client.execute()
    ((index, text),) = inserted.items()
    assert nb.cells[index].source == "%asst_code"
    assert IDS.sub(r"\1_ID", text) == IDS.sub(r"\1_ID", nb.cells[index + 1].source)
    ask = next(c for c in nb.cells if c.source.startswith("%%assistant --var df"))
    assert pngs(ask) and pngs(nb.cells[index + 1]) == pngs(ask)
