"""Code highlighted as it grows: finished lines once, the same HTML as one whole pass,
and the colours a reader knows from Pygments / JupyterLab."""

from __future__ import annotations

import html
import random
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pygments.lexers import PythonLexer
from pygments.token import STANDARD_TYPES

import asst_magic.live.highlight as highlight_module
from asst_magic.live.highlight import GrowingCode, highlight_code
from asst_magic.live.pylex import format_html, tokens

ROOT = Path(__file__).parents[1]
SOURCES = sorted((ROOT / "asst_magic").rglob("*.py"))
DOCSTRING = 'def f():\n    """One\n\n    two.\n    """\n    return f"{1}"\n\nx = 1\n'


def one_pass(code: str) -> str:
    highlight_module._RECENT.clear()
    return highlight_code(code)


def text_of(markup: str) -> str:
    return html.unescape(re.sub(r"</?span[^>]*>", "", markup))


def colour(kind: str) -> str:
    """What work.CODE_CSS paints a token class as (classes it leaves alone are plain)."""
    if kind in ("nf", "nc", "nb", "bp", "o", "ow"):
        return {"nc": "nf", "bp": "nb", "ow": "k"}.get(kind, kind)
    return kind[:1] if kind[:1] in ("k", "s", "c", "m") else ""


def colours(code: str, pairs: list[tuple[str, str]]) -> list[str]:
    out = [colour(kind) for kind, value in pairs for _ in value]
    assert len(out) == len(code)
    return out


@pytest.mark.parametrize("path", SOURCES[:12], ids=lambda p: p.name)
def test_highlighted_html_shows_exactly_the_code(path: Path) -> None:
    code = path.read_text(encoding="utf-8")
    assert text_of(one_pass(code)) == code.strip("\n") + "\n"


def test_colours_match_pygments_on_the_packages_own_code() -> None:
    pygments = PythonLexer()
    same = total = 0
    for path in SOURCES:
        code = path.read_text(encoding="utf-8")
        theirs = [
            (STANDARD_TYPES.get(kind) or STANDARD_TYPES.get(kind.parent, ""), value)
            for _, kind, value in pygments.get_tokens_unprocessed(code)
        ]
        for ours, reference, char in zip(
            colours(code, tokens(code)[0]), colours(code, theirs), code, strict=True
        ):
            total += 1
            same += ours == reference or char.isspace()
    assert same / total >= 0.999, f"{same / total:.4%} of {total:,} characters agree"


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("import os.path as p", [("kn", "import"), ("nn", "os.path"), ("k", "as"), ("nn", "p")]),
        ("from a.b import c", [("kn", "from"), ("nn", "a.b"), ("kn", "import")]),
        ("yield from gen()", [("k", "yield"), ("k", "from")]),
        ("def run(self):", [("k", "def"), ("nf", "run"), ("bp", "self")]),
        ("class Model(Base):", [("k", "class"), ("nc", "Model")]),
        ("@functools.cache", [("nd", "@functools.cache")]),
        ("x = a @ b", [("o", "="), ("o", "@")]),
        ("print(df.print, len)", [("nb", "print"), ("o", "."), ("nb", "len")]),
        ("raise ValueError(x)", [("k", "raise"), ("ne", "ValueError")]),
        ("match command:", [("k", "match")]),
        ("match = re.match(p, s)", [("o", "="), ("o", ".")]),
        (
            "x = 0x1F + 1_000 + 2.5e-3 + .5 + 3j",
            [
                ("o", "="),
                ("mh", "0x1F"),
                ("o", "+"),
                ("mi", "1_000"),
                ("o", "+"),
                ("mf", "2.5e-3"),
                ("o", "+"),
                ("mf", ".5"),
                ("o", "+"),
                ("mi", "3j"),
            ],
        ),
        (
            "ok = True and not None",
            [("o", "="), ("kc", "True"), ("ow", "and"), ("ow", "not"), ("kc", "None")],
        ),
        (
            "s = 'a' + \"b\"  # note",
            [("o", "="), ("s1", "'a'"), ("o", "+"), ("s2", '"b"'), ("c1", "# note")],
        ),
        (
            'f"{n:>{w}} {{x}}"',
            [
                ("sa", "f"),
                ("s2", '"'),
                ("si", "{"),
                ("si", ":"),
                ("s2", ">"),
                ("si", "{"),
                ("si", "}}"),
                ("s2", " "),
                ("se", "{{"),
                ("s2", "x"),
                ("se", "}}"),
                ("s2", '"'),
            ],
        ),
        (
            'f"{x[:2]!r}"',
            [("sa", "f"), ("s2", '"'), ("si", "{"), ("mi", "2"), ("si", "!r}"), ("s2", '"')],
        ),
        ('s = "open', [("o", "="), ("s2", '"open')]),
    ],
)
def test_token_classes(code: str, expected: list[tuple[str, str]]) -> None:
    spans = re.findall(r'<span class="(\w+)">([^<]*)</span>', one_pass(code))
    assert [(kind, html.unescape(text)) for kind, text in spans] == expected


@pytest.mark.parametrize("seed", range(3))
def test_growing_code_commits_what_one_pass_makes(seed: int) -> None:
    code = DOCSTRING + SOURCES[seed].read_text(encoding="utf-8")
    whole = one_pass(code)
    sizes = random.Random(seed)
    grown, committed, at = GrowingCode(), "", 0
    while at < len(code):
        at += sizes.randint(1, 80)
        done, open_html = grown.feed(code[:at])
        committed += done
    assert whole.startswith(committed)  # lines, once each, as in one pass
    assert committed + open_html + "\n" == whole
    # The final render starts from what the live view committed: the same HTML.
    assert highlight_code(code) == whole


def test_an_open_multi_line_string_stays_open_until_it_closes() -> None:
    grown = GrowingCode()
    done, open_html = grown.feed('x = 1\ns = """a\nb\n')
    assert "x" in done and '"""a' in open_html  # the string's lines wait for its end
    done, open_html = grown.feed('x = 1\ns = """a\nb\n"""\ny')
    assert '"""a' in done and open_html == "y"


PIECES = [*"abfr_xi019.e+-*/@=:#'\"\\{}()[] \t\n", "def ", "import ", '"""', "match "]
PYTHONISH = st.lists(st.sampled_from(PIECES), max_size=60).map("".join)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(code=PYTHONISH, cuts=st.lists(st.integers(0, 120), max_size=6))
def test_any_text_shows_exactly_and_grows_into_the_one_pass_html(
    code: str, cuts: list[int]
) -> None:
    whole = one_pass(code)
    assert text_of(whole) == code.strip("\n") + "\n"
    grown, committed, open_html = GrowingCode(), "", ""
    for at in [*sorted(cuts), len(code)]:
        done, open_html = grown.feed(code[:at])
        committed += done
    text = code.lstrip("\n")
    if text.strip("\n"):
        assert committed + open_html == format_html(tokens(text)[0]).removesuffix("\n")


def test_colours_do_not_depend_on_what_ipython_adds_to_builtins() -> None:
    # A kernel's builtins hold display() and get_ipython(); the same code looks the same
    # in a kernel, in the saved notebook's re-run, and here.
    assert one_pass("display(df)\nget_ipython()\nprint(df)") == (
        'display(df)\nget_ipython()\n<span class="nb">print</span>(df)\n'
    )
