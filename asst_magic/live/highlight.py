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

__all__ = ["GrowingCode", "highlight_lines"]


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
    from pygments import format as format_tokens
    from pygments.lexer import LexerContext

    if not text:
        return "", stack
    lexer, formatter = _tools()
    context = LexerContext(text, 0, stack=list(stack))
    tokens = [(kind, value) for _, kind, value in lexer.get_tokens_unprocessed(context=context)]
    return format_tokens(tokens, formatter), list(context.stack)


class GrowingCode:
    """One code block that only grows: each finished line is highlighted exactly once."""

    def __init__(self) -> None:
        self.done = 0  # characters of finished lines already highlighted
        self._stack = ["root"]

    def feed(self, code: str) -> tuple[str, str]:
        """HTML of lines finished since the last call, and HTML of the open last line."""
        end = code.rfind("\n") + 1
        fresh = ""
        if end > self.done:
            fresh, self._stack = highlight_lines(code[self.done : end], self._stack)
            self.done = end
        open_html, _ = highlight_lines(code[self.done :], self._stack)
        return fresh, open_html.removesuffix("\n")
