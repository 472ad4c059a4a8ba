"""Code highlighted as it grows: finished lines once, and the same HTML as one whole pass."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

import asst_magic.live.highlight as highlight_module
from asst_magic.live.highlight import GrowingCode, highlight_code

SOURCES = sorted((Path(__file__).parents[1] / "asst_magic").rglob("*.py"))[:12]
DOCSTRING = 'def f():\n    """One\n\n    two.\n    """\n    return f"{1}"\n\nx = 1\n'


def pygments_html(code: str) -> str:
    return highlight(code, PythonLexer(), HtmlFormatter(nowrap=True))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_one_pass_matches_pygments(path: Path) -> None:
    highlight_module._RECENT.clear()
    code = path.read_text(encoding="utf-8")
    assert highlight_code(code) == pygments_html(code)


@pytest.mark.parametrize("seed", range(3))
def test_growing_code_commits_what_one_pass_makes(seed: int) -> None:
    highlight_module._RECENT.clear()
    code = DOCSTRING + SOURCES[seed].read_text(encoding="utf-8")
    sizes = random.Random(seed)
    grown, committed, at = GrowingCode(), "", 0
    while at < len(code):
        at += sizes.randint(1, 80)
        done, open_html = grown.feed(code[:at])
        committed += done
    assert pygments_html(code).startswith(committed)  # lines, once each, as in one pass
    assert committed + open_html + "\n" == pygments_html(code)
    # The final render starts from what the live view committed: the same HTML.
    assert highlight_code(code) == pygments_html(code)


def test_an_open_multi_line_string_stays_open_until_it_closes() -> None:
    grown = GrowingCode()
    done, open_html = grown.feed('x = 1\ns = """a\nb\n')
    assert "x" in done and '"""a' in open_html  # the string's lines wait for its end
    done, open_html = grown.feed('x = 1\ns = """a\nb\n"""\ny')
    assert '"""a' in done and open_html.endswith("y</span>")
