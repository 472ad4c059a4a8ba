"""Math only where the author meant math; half-written Markdown closed while it streams;
raw HTML kept whole inside Markdown."""

from __future__ import annotations

import html

import pytest

from asst_magic.markup import DOLLAR, close_fence, for_display, html_block

D = DOLLAR

# text -> what the renderer gets (finished text)
FINISHED = [
    # currency stays text
    ("Revenue was $1.2M and Q2 $3.4M.", f"Revenue was {D}1.2M and Q2 {D}3.4M."),
    ("It costs US$5 or C$7.", f"It costs US{D}5 or C{D}7."),
    ("$5 to $10", f"{D}5 to {D}10"),
    ("A lone $ sign", f"A lone {D} sign"),
    (
        "Set $ASST_MAGIC_CASSETTE or $ASST_MAGIC_MODEL",
        f"Set {D}ASST_MAGIC_CASSETTE or {D}ASST_MAGIC_MODEL",
    ),
    ("PATH is $HOME/bin:$PATH", f"PATH is {D}HOME/bin:{D}PATH"),
    ("already escaped \\$5", f"already escaped {D}5"),
    ("between $ 5 and 6 $", f"between {D} 5 and 6 {D}"),
    # math renders
    ("Inline $x^2$ here", "Inline $x^2$ here"),
    ("$\\alpha$ and $\\beta$", "$\\alpha$ and $\\beta$"),
    ("Display $$\\hat{\\beta} = (X^TX)^{-1}X^Ty$$", "Display $$\\hat{\\beta} = (X^TX)^{-1}X^Ty$$"),
    ("paren \\(a+b\\) math", "paren $a+b$ math"),
    ("spaced \\( x = 1 \\).", "spaced $x = 1$."),
    ("bracket \\[c = d\\] math", "bracket $$c = d$$ math"),
    ("$$\na\n$$", "$$\na\n$$"),
    # both in one sentence
    ("Costs $5 and $x^2$ here", f"Costs {D}5 and $x^2$ here"),
    ("$x$ costs $3", f"$x$ costs {D}3"),
    # code is never touched
    ("Use `$HOME` here", "Use `$HOME` here"),
    ("```bash\necho $HOME $5\n```\nthen $5", f"```bash\necho $HOME $5\n```\nthen {D}5"),
    ("``a`$`b`` and $1", f"``a`$`b`` and {D}1"),
    # math does not run across paragraphs
    ("$a\n\nb$", f"{D}a\n\nb{D}"),
    # an unclosed $$ in a finished text is literal
    ("$$ unclosed", f"{D}{D} unclosed"),
    # nothing to do
    ("plain **bold** text", "plain **bold** text"),
]


@pytest.mark.parametrize(("text", "shown"), FINISHED)
def test_math_only_where_the_author_meant_math(text: str, shown: str) -> None:
    assert for_display(text) == shown


# half-written text -> what the live view shows
STREAMING = [
    ("Total: **562,", "Total: **562,**"),
    ("Total: **562,** and **7", "Total: **562,** and **7**"),
    ("Run `df.head", "Run `df.head`"),
    ("```python\nimport pandas", "```python\nimport pandas\n```"),
    ("```python\nimport pandas\n", "```python\nimport pandas\n```"),
    ("~~~\nx", "~~~\nx\n~~~"),
    ("~~~\n", "~~~\n~~~"),  # the opening line alone does not close itself
    ("$$\\hat{\\beta} = (X", "$$\\hat{\\beta} = (X$$"),
    ("**bold `code", "**bold `code`**"),
    ("done **a** and `b`", "done **a** and `b`"),
    ("`**` is bold syntax", "`**` is bold syntax"),
    ("costs $5", f"costs {D}5"),
    ("```\ncode\n```\nthen **x", "```\ncode\n```\nthen **x**"),
]


@pytest.mark.parametrize(("text", "shown"), STREAMING)
def test_half_written_markdown_is_closed_provisionally(text: str, shown: str) -> None:
    assert for_display(text, streaming=True) == shown


@pytest.mark.parametrize(("text", "_"), STREAMING)
def test_a_finished_text_is_never_closed_for_the_author(text: str, _: str) -> None:
    assert not for_display(text).endswith(("**", "`", "$$")) or text.endswith(("**", "`"))


# raw HTML in a Markdown output (a history turn) -> one line, nothing for math or code spans
HTML_BLOCKS = [
    ("<pre>a\n\nb</pre>", "<pre>a&#10;&#10;b</pre>"),  # a blank line would end the block
    ('<div\nclass="x">', '<div class="x">'),  # inside a tag a newline is only a space
    ("<pre>$5 and $x$</pre>", "<pre>&#36;5 and &#36;x&#36;</pre>"),
    ("<code>`a` \\(b\\)</code>", "<code>&#96;a&#96; &#92;(b&#92;)</code>"),
    ('<a title="$1">x</a>', '<a title="&#36;1">x</a>'),
    ("<b>a &lt; b</b>", "<b>a &lt; b</b>"),
]


@pytest.mark.parametrize(("markup", "block"), HTML_BLOCKS)
def test_html_becomes_one_raw_markdown_line_that_shows_the_same(markup: str, block: str) -> None:
    assert html_block(markup) == block
    # The same characters once the browser reads the entities.
    assert html.unescape(block) == html.unescape(markup.replace("<div\nclass", "<div class"))


def test_close_fence_closes_only_an_open_fence() -> None:
    assert close_fence("Text\n```python\nx = 1") == "Text\n```python\nx = 1\n```"
    assert close_fence("~~~\n") == "~~~\n~~~"
    assert close_fence("```\nx\n```\nafter") == "```\nx\n```\nafter"
    assert close_fence("no fence") == "no fence"
