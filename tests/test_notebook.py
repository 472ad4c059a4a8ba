"""A notebook run in a real kernel (nbclient): the saved outputs hold the transcript."""

from __future__ import annotations

import base64
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

CASSETTE = Path(__file__).parent / "cassettes" / "magic.jsonl"
WIDGET = "application/vnd.jupyter.widget-view+json"


def notebook(*sources: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])


def test_saved_notebook_shows_the_transcript_without_widget_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASST_MAGIC_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ASST_MAGIC_CASSETTE", str(CASSETTE))
    # The kernel (and the server it starts) import asst_magic: installed, or from the repo.
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parents[1]))
    nb = notebook(
        "%load_ext asst_magic",
        "%%assistant\nhello",
        "%%assistant -o result\nplot it",
        "magics = get_ipython().magics_manager.registry['AssistantMagics']\n"
        "print(result.status, result.thread_id == magics.thread_id)",
        "%unload_ext asst_magic",
    )
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    path = tmp_path / "saved.ipynb"
    nbformat.write(nb, path)
    saved = nbformat.read(path, as_version=4)["cells"]

    hello = saved[1]["outputs"]
    assert [o["output_type"] for o in hello] == ["display_data", "display_data"]
    assert hello[0]["data"]["text/markdown"] == "Hello **world**!"
    assert hello[1]["data"]["text/plain"].startswith("completed · ")
    ids = hello[0]["metadata"]["asst_magic"]
    assert ids["thread_id"].startswith("thread_") and ids["run_id"].startswith("run_")

    code, logs, image, answer, _status = saved[2]["outputs"]
    assert '<span class="kn">import</span>' in code["data"]["text/html"]
    assert logs["data"]["text/plain"] == "42\n"
    assert base64.b64decode(image["data"]["image/png"]).startswith(b"\x89PNG")
    assert answer["data"]["text/markdown"] == "Here is the plot."
    assert answer["metadata"]["asst_magic"]["thread_id"] == ids["thread_id"]  # continued

    # One print can reach the notebook as several stream outputs (stdout is flushed on a timer).
    printed = "".join(o["text"] for o in saved[3]["outputs"] if o["output_type"] == "stream")
    assert printed == "completed True\n"
    every = [o for c in saved for o in c.get("outputs", [])]
    assert not any(WIDGET in o.get("data", {}) for o in every)
