"""Highlight code that grows at its end: finished lines once, the open line on each call.

Pygments lexers restart from the top on every call, so highlighting a growing
block whole costs O(size) per repaint. ``GrowingCode`` keeps the lexer's state
stack at the last finished line and lexes only what follows it.

>>> code = GrowingCode()
>>> done, open_line = code.feed("x = 1\\ny")
>>> "x" in done and open_line.endswith("y</span>")
True
"""

from __future__ import annotations

import functools
from typing import Any

__all__ = ["GrowingCode", "highlight_code", "highlight_lines"]


@functools.cache
def _tools() -> tuple[Any, Any]:
    """A resumable Python lexer and a formatter that emits bare ``<span>``s (built once)."""
    from pygments.formatters import HtmlFormatter
    from pygments.lexer import ExtendedRegexLexer
    from pygments.lexers import PythonLexer

    class ResumablePython(ExtendedRegexLexer):
        """Python's rules under a lexer whose state stack survives between calls."""

        name = "resumable-python"
        tokens = PythonLexer.tokens
        flags = PythonLexer.flags

    return ResumablePython(), HtmlFormatter(nowrap=True)


def highlight_lines(text: str, stack: list[str]) -> tuple[str, list[str]]:
    """``text`` as HTML spans, lexed from ``stack``; returns the HTML and the stack after it."""
    tokens, stack, _ = _lex(text, stack)
    return _format(tokens), stack


def _lex(text: str, stack: list[str]) -> tuple[list[tuple[Any, str]], list[str], list[int]]:
    """Tokens, the final stack, and the token indexes where lexing could restart from root.

    A restart point is a line start where a new match begins in the root state:
    lexing the rest from there on its own gives the same tokens as one pass.
    """
    from pygments.lexer import LexerContext

    if not text:
        return [], stack, []
    lexer, _ = _tools()
    context = LexerContext(text, 0, stack=list(stack))
    tokens: list[tuple[Any, str]] = []
    restarts: list[int] = []
    for pos, kind, value in lexer.get_tokens_unprocessed(context=context):
        # While a token is handed out, context.pos is where its match began and the
        # stack is the state before that match (changes apply after its last token).
        if pos and text[pos - 1] == "\n" and pos == context.pos and context.stack == ["root"]:
            restarts.append(len(tokens))
        tokens.append((kind, value))
    return tokens, list(context.stack), restarts


def _format(tokens: list[tuple[Any, str]]) -> str:
    from pygments import format as format_tokens

    return format_tokens(tokens, _tools()[1]) if tokens else ""


def _normal(code: str) -> str:
    """The text Pygments' ``highlight()`` lexes: newlines unified, outer blank lines dropped."""
    return code.replace("\r\n", "\n").strip("\n") + "\n"


# The few most recent growing blocks: a finished block's final render starts from
# the lines its live view already highlighted, instead of lexing them again.
_RECENT: list[GrowingCode] = []


def highlight_code(code: str) -> str:
    """``code`` as HTML spans, exactly as one pass of Pygments' Python lexer makes them."""
    text = _normal(code)
    for grown in reversed(_RECENT):
        done = grown.committed()
        if done and text.startswith(done):
            rest, _ = highlight_lines(text[len(done) :], ["root"])
            return grown.committed_html() + rest
    return highlight_lines(text, ["root"])[0]


class GrowingCode:
    """One code block that only grows: each finished line is highlighted once.

    Lines are committed only where the lexer is back in its root state, so the
    committed HTML is exactly what one pass over the whole block makes; lines
    inside an open multi-line string stay with the open line until it closes.
    """

    def __init__(self) -> None:
        self.done = 0  # characters committed (highlighted for good)
        self._text = ""
        self._html: list[str] = []
        _RECENT.append(self)
        del _RECENT[:-8]

    def feed(self, code: str) -> tuple[str, str]:
        """HTML of lines committed since the last call, and HTML of the rest (the open part)."""
        self._text = text = code.replace("\r\n", "\n").lstrip("\n")
        finished = text.rfind("\n") + 1
        tokens, _, restarts = _lex(text[self.done :], ["root"])
        cut, length = 0, 0
        for index in restarts:  # the last restart point within the finished lines
            upto = sum(len(value) for _, value in tokens[cut:index])
            if self.done + length + upto > finished:
                break
            cut, length = index, length + upto
        fresh = _format(tokens[:cut])
        if fresh:
            self._html.append(fresh)
            self.done += length
        return fresh, _format(tokens[cut:]).removesuffix("\n")

    def committed(self) -> str:
        """The text whose HTML is final."""
        return self._text[: self.done]

    def committed_html(self) -> str:
        """The HTML of ``committed()``."""
        if len(self._html) > 1:
            self._html[:] = ["".join(self._html)]
        return self._html[0] if self._html else ""
