"""nbval with notebooks/nbval_sanitize.cfg: library versions don't fail a notebook, changes do.

Each test saves a one-cell notebook whose stored output is highlighted code, then
lets nbval re-run it (a real kernel, real Pygments) and compare, as ``pytest --nbval``
does for the shipped notebooks.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook, new_output

SANITIZE = Path(__file__).resolve().parents[1] / "notebooks" / "nbval_sanitize.cfg"
CELL = """\
from IPython.display import HTML
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

HTML(highlight('print("hi", \\'there\\')', PythonLexer(), HtmlFormatter()))"""
# The same code as another Pygments release saved it: 2.20 escaped quotes (&quot;,
# &#39;), and releases differ in token classes and in where spans split.
OTHER_PYGMENTS = (
    '<div class="highlight"><pre><span></span><span class="n">print</span>'
    '<span class="p">(</span><span class="s2">&quot;</span><span class="s2">hi</span>'
    '<span class="s2">&quot;</span><span class="p">,</span><span class="w"> </span>'
    '<span class="sa">&#39;there&#39;</span><span class="p">)</span>\n</pre></div>\n'
)


def nbval(tmp_path: Path, saved_html: str) -> subprocess.CompletedProcess[str]:
    """Run nbval on a notebook whose saved output is ``saved_html``."""
    output = new_output(
        "execute_result",
        {"text/html": saved_html, "text/plain": "<IPython.core.display.HTML object>"},
        execution_count=1,
    )
    notebook = new_notebook(cells=[new_code_cell(CELL, outputs=[output], execution_count=1)])
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    path = tmp_path / "highlight.ipynb"
    nbformat.write(notebook, path)
    command = [sys.executable, "-m", "pytest", "--nbval", str(path), "-q", "-p", "no:cacheprovider"]
    command += ["--nbval-sanitize-with", str(SANITIZE), "--rootdir", str(tmp_path)]
    return subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=120)


def test_output_saved_by_another_pygments_release_still_matches(tmp_path: Path) -> None:
    result = nbval(tmp_path, OTHER_PYGMENTS)
    assert result.returncode == 0, result.stdout


def test_a_real_change_in_the_highlighted_code_still_fails(tmp_path: Path) -> None:
    result = nbval(tmp_path, OTHER_PYGMENTS.replace(">hi<", ">bye<"))
    assert result.returncode == 1, result.stdout
    assert "1 failed" in result.stdout
