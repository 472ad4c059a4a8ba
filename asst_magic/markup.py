"""Markdown the assistant wrote, made ready to display: math only where it was meant.

JupyterLab typesets every ``$`` pair it finds, so "$1.2M and Q2 $3.4M" turns into
italics. Here a ``$`` is math only when it opens and closes like TeX (``$x^2$``:
no space inside the delimiters, no digit right after the closing one); ``$$…$$``,
``\\(…\\)`` and ``\\[…\\]`` are math too (the last two rewritten to dollars, which
every renderer reads). Any other ``$`` is wrapped so MathJax skips it. Code spans
and fences are never touched. While the text still streams, open ``**``, code spans,
fences and ``$$`` are closed provisionally so they render without raw markers.

>>> for_display("Revenue was $1.2M; $x^2$ grows.")
'Revenue was <span class="mathjax_ignore">\\\\$</span>1.2M; $x^2$ grows.'
>>> for_display("Total: **562,", streaming=True)
'Total: **562,**'
"""

from __future__ import annotations

import re

__all__ = ["DOLLAR", "close_fence", "for_display", "html_block"]

#: A literal dollar sign: MathJax skips the element, Markdown unescapes the ``\\$``.
DOLLAR = '<span class="mathjax_ignore">\\$</span>'

_FENCE = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})")
_CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`).+?(?<!`)\1(?!`)", re.S)
_TOKEN = re.compile(r"\\\$|\$\$|\\\[|\\\(|\$")


def for_display(text: str, *, streaming: bool = False) -> str:
    """``text`` with literal dollars protected (and, while ``streaming``, open markup closed)."""
    out: list[str] = []
    blocks = _blocks(text)
    for n, (is_code, chunk) in enumerate(blocks):
        last = n == len(blocks) - 1
        if is_code:
            out.append(chunk + (_close_fence(chunk) if streaming and last else ""))
        else:
            out.append(_prose(chunk, streaming=streaming and last))
    return "".join(out)


def close_fence(text: str) -> str:
    """``text`` with a code fence it leaves open closed, so what follows it stays outside.

    >>> close_fence("```python\\nx = 1")
    '```python\\nx = 1\\n```'
    """
    blocks = _blocks(text)
    return text + _close_fence(blocks[-1][1]) if blocks and blocks[-1][0] else text


# In HTML text, these entities read as the characters; in Markdown they keep a raw HTML
# block on one line (a blank line would end it) and out of math and code-span pairing.
_TEXT_ENTITIES = str.maketrans({"\n": "&#10;", "$": "&#36;", "\\": "&#92;", "`": "&#96;"})
_TAG_ENTITIES = str.maketrans({"\n": " ", "$": "&#36;", "\\": "&#92;", "`": "&#96;"})
_TAG_OR_TEXT = re.compile(r"<[^>]*>|[^<]+")


def html_block(markup: str) -> str:
    """HTML as one raw line of Markdown that shows as the HTML itself does.

    Markdown ends a raw HTML block at a blank line, and JupyterLab pairs ``$`` and
    backticks across the whole source before it parses; entities avoid both.

    >>> html_block("<pre>a\\n\\n$x</pre>")
    '<pre>a&#10;&#10;&#36;x</pre>'
    """
    return _TAG_OR_TEXT.sub(
        lambda m: m[0].translate(_TAG_ENTITIES if m[0][0] == "<" else _TEXT_ENTITIES), markup
    )


def _blocks(text: str) -> list[tuple[bool, str]]:
    """``(is_code, chunk)``: fenced code blocks apart from the prose around them."""
    blocks: list[tuple[bool, str]] = []
    current: list[str] = []
    fence: str | None = None
    for line in text.splitlines(keepends=True):
        match = _FENCE.match(line)
        if fence is None and match:
            blocks.append((False, "".join(current)))
            current, fence = [line], match.group("fence")
        elif fence is not None and _closes(line, fence):
            blocks.append((True, "".join(current) + line))
            current, fence = [], None
        else:
            current.append(line)
    blocks.append((fence is not None, "".join(current)))
    return [b for b in blocks if b[1]]


def _closes(line: str, fence: str) -> bool:
    stripped = line.strip()
    return stripped.startswith(fence) and set(stripped) == {fence[0]}


def _close_fence(chunk: str) -> str:
    match, lines = _FENCE.match(chunk), chunk.splitlines()
    # The opening line is never its own closing one ("~~~\n" is open).
    if match is None or (len(lines) > 1 and _closes(lines[-1], match["fence"])):
        return ""
    return ("" if chunk.endswith("\n") else "\n") + match.group("fence")


def _prose(chunk: str, *, streaming: bool) -> str:
    """Protect dollars outside code spans; close what the stream left open."""
    out: list[str] = []
    end = 0
    for span in _CODE_SPAN.finditer(chunk):
        out.append(_dollars(chunk[end : span.start()]))
        out.append(span.group(0))
        end = span.end()
    rest = chunk[end:]
    tail = ""
    if streaming:
        rest, tail = _open_tail(rest)
    out.append(_dollars(rest, streaming=streaming))
    text = "".join(out)
    if streaming:
        text += tail + _close_emphasis("".join(out).rsplit("\n\n", 1)[-1] + tail)
    return text


def _open_tail(rest: str) -> tuple[str, str]:
    """An unclosed code span at the end: its text, closed; it is shown as code already."""
    tick = re.search(r"(?<!`)`+(?!`)", rest)
    if tick is None or "\n\n" in rest[tick.start() :]:
        return rest, ""
    return rest[: tick.start()], rest[tick.start() :] + tick.group(0)


def _close_emphasis(paragraph: str) -> str:
    plain = _CODE_SPAN.sub("", paragraph)
    return "**" if plain.count("**") % 2 else ""


def _dollars(text: str, *, streaming: bool = False) -> str:
    """Math kept (``\\(…\\)`` and ``\\[…\\]`` as dollars); every other ``$`` made literal."""
    out: list[str] = []
    pos = 0
    while (token := _TOKEN.search(text, pos)) is not None:
        out.append(text[pos : token.start()])
        kind, start = token.group(0), token.end()
        math = _math(text, kind, start, streaming=streaming)
        if math is None:
            out.append(DOLLAR if "$" in kind else kind)
            pos = start
            if kind == "$$":
                out.append(DOLLAR)
        else:
            out.append(math[0])
            pos = math[1]
    out.append(text[pos:])
    return "".join(out)


def _math(text: str, kind: str, start: int, *, streaming: bool) -> tuple[str, int] | None:
    """``(math in dollars, where it ends)`` when ``kind`` at ``start`` opens math, else None."""
    if kind == "$$":
        close = text.find("$$", start)
        if close < 0:
            return (f"$${text[start:]}$$", len(text)) if streaming else None
        return f"$${text[start:close]}$$", close + 2
    if kind in ("\\[", "\\("):
        closer = "\\]" if kind == "\\[" else "\\)"
        close = text.find(closer, start)
        if close < 0:
            return None
        fence = "$$" if kind == "\\[" else "$"
        # "\\( x \\)" is fine in LaTeX, but "$ x $" is not math in every renderer.
        return f"{fence}{text[start:close].strip()}{fence}", close + 2
    if kind == "$":
        end = _inline_close(text, start)
        return None if end is None else (f"${text[start:end]}$", end + 1)
    return None  # an escaped dollar: the author meant it literally


def _wordy(char: str) -> bool:
    return char.isalnum() or char == "_"


def _inline_close(text: str, start: int) -> int | None:
    """Where ``$x$`` closes: TeX-like opening and closing, within one paragraph."""
    if start >= len(text) or text[start].isspace() or text[start].isdigit() or text[start] == "$":
        return None
    i = text.find("$", start)
    while i >= 0:
        body = text[start:i]
        if "\n\n" in body:
            return None
        after = text[i + 1 : i + 2]
        # Pandoc's rule, plus no letter after: "$HOME:$PATH" is not math.
        if not text[i - 1].isspace() and text[i - 1] != "\\" and not _wordy(after):
            return i
        i = text.find("$", i + 1)
    return None
