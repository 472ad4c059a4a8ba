"""``sandbox:/mnt/data/...`` links in streamed text, held back until whole.

OpenAI's servers send an annotation in the same ``thread.message.delta`` as the text
it covers. A link can arrive split across model chunks, so text that ends in what
may still grow into a link waits for the next chunk (or the end of the message);
all other text goes out at once, in the chunks it came in.
"""

from __future__ import annotations

import re

__all__ = ["LINK_PREFIX", "LinkBuffer", "link_spans"]

LINK_PREFIX = "sandbox:/mnt/data/"
# A link's body runs up to whitespace, a closing bracket or a quote; trailing
# sentence punctuation ("see sandbox:/mnt/data/a.csv.") is not part of it.
_BODY = re.compile(r"(?<!\w)sandbox:/mnt/data/[^\s)\]\"'<>]*")
_TRAILING = ".,;:!?"


def link_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every sandbox link in ``text``.

    Example: ``link_spans("[a](sandbox:/mnt/data/a.csv).")`` is ``[(4, 27)]``.
    """
    spans = []
    for match in _BODY.finditer(text):
        end = match.start() + len(match.group(0).rstrip(_TRAILING))
        if end > match.start() + len(LINK_PREFIX):
            spans.append((match.start(), end))
    return spans


class LinkBuffer:
    """Passes streamed text through, holding it while it ends in an unfinished link.

    Example: ``feed("[a](sandbox:/mnt/")`` gives ``""``; then ``feed("data/a.csv) ok")``
    gives ``"[a](sandbox:/mnt/data/a.csv) ok"``, the link whole in one piece.
    """

    def __init__(self) -> None:
        self._held = ""

    def feed(self, text: str) -> str:
        """The text ready to send once ``text`` has arrived ("" while holding)."""
        buffer = self._held + text
        if _may_grow_into_link(buffer):
            self._held = buffer
            return ""
        self._held = ""
        return buffer

    def flush(self) -> str:
        """Whatever is still held, at the end of the message."""
        held, self._held = self._held, ""
        return held


def _may_grow_into_link(buffer: str) -> bool:
    """Whether more text could extend a link at the end of ``buffer``."""
    if any(match.end() == len(buffer) for match in _BODY.finditer(buffer)):
        return True
    for size in range(min(len(LINK_PREFIX), len(buffer)), 0, -1):
        start = len(buffer) - size
        if LINK_PREFIX.startswith(buffer[start:]) and (start == 0 or not _word(buffer[start - 1])):
            return True
    return False


def _word(char: str) -> bool:
    return char.isalnum() or char == "_"
