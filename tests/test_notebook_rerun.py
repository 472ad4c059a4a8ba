"""Run All twice in one kernel: the second run gives the first run's transcript again.

The shipped notebooks' first cell points ASST_MAGIC_DATA_DIR at a new scratch dir,
so the second Run All talks to a new server and store: the thread of the first run
is not there, and the magic must start a new one (saying so in one line).
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from nbval.plugin import coalesce_streams, get_sanitize_patterns

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
PATTERNS = get_sanitize_patterns((NOTEBOOKS / "nbval_sanitize.cfg").read_text())
ALREADY_LOADED = "The asst_magic extension is already loaded."
NEW_THREAD = "New data directory (ASST_MAGIC_DATA_DIR changed), so a new thread: thread_"


def sanitized(outputs: list[Any]) -> list[str]:
    """Each output as nbval compares it: streams merged, ids, times and scratch paths masked.

    The kernel flushes stdout on a timer, so one print may arrive as one output or as
    several; nbval merges them before it compares, and so does this.
    """
    texts = []
    for output in coalesce_streams(copy.deepcopy(outputs)):
        text = json.dumps(
            {k: v for k, v in output.items() if k != "execution_count"}, ensure_ascii=False
        )
        for regex, replace in PATTERNS:
            text = re.sub(regex, replace, text)
        texts.append(text)
    return texts


def run_all_twice(name: str) -> tuple[list[Any], list[Any]]:
    """The notebook's code cells after a first and a second Run All in one kernel."""
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    client = NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    runs = []
    with client.setup_kernel():
        for _ in range(2):
            client.nb = copy.deepcopy(notebook)
            for index, cell in enumerate(client.nb.cells):
                client.execute_cell(cell, index)
            runs.append([c for c in client.nb.cells if c.cell_type == "code"])
        client.nb.cells.append(nbformat.v4.new_code_cell("%unload_ext asst_magic"))
        client.execute_cell(client.nb.cells[-1], len(client.nb.cells) - 1)
    return runs[0], runs[1]


def test_threads_notebook_run_all_twice_gives_the_same_transcript(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(NOTEBOOKS.parent))  # the kernel imports this checkout
    monkeypatch.setenv("HOME", str(tmp_path))  # nothing lands in the user's data dir
    first, second = run_all_twice("threads")
    notes = []
    for before, after in zip(first, second, strict=True):
        again = sanitized(after.outputs)
        notes += [text for text in again if ALREADY_LOADED in text or NEW_THREAD in text]
        again = [text for text in again if text not in notes]
        assert again == sanitized(before.outputs), after.source
    # IPython's own notice for %load_ext, then ours, once, in the first %%assistant cell.
    assert len(notes) == 2 and ALREADY_LOADED in notes[0] and NEW_THREAD in notes[1]
    assert second[1].source.startswith("%%assistant") and NEW_THREAD in json.dumps(
        second[1].outputs
    )
