"""What the live widget must be told to catch up with the transcript: small append ops.

Pure bookkeeping, no widgets. ``LiveDiff`` remembers what each part has been
sent and turns the next list of ``LivePart``\\ s into ops that carry only what is
new: appended Markdown or log text, the HTML of code lines finished since the
last repaint (each highlighted once) plus the open line, and whole HTML only
for parts that are not streamed (images, function calls) when they change.

Ops (lists, for compact JSON):

* ``["part", n, mode, shell]``: a new part (numbered in order), or a new shell for it;
* ``["shell", n, shell]``: a streamed part's new shell, its content kept;
* ``["add", n, text]`` / ``["set", n, text]``: append to / replace a part's text;
* ``["code", n, done_html, open_html]``: append finished lines, replace the open one;
* ``["status", before, after, elapsed, running, failed]``: the status line (the
  front end ticks the elapsed time itself while ``running``).

>>> from asst_magic.render import LivePart
>>> diff = LiveDiff()
>>> diff.ops([LivePart("m", "markdown", "", "Hi")])[0]
[['part', 0, 'markdown', ''], ['add', 0, 'Hi']]
>>> diff.ops([LivePart("m", "markdown", "", "Hi there")])[0]
[['add', 0, ' there']]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from asst_magic.live.highlight import GrowingCode
from asst_magic.render import LivePart

__all__ = ["LiveDiff", "Op"]

Op = list[Any]


@dataclass(slots=True)
class _Sent:
    id: int  # the part's short name in ops (its place in the transcript)
    mode: str
    shell: str
    text: str = ""  # markdown / logs: what the front end has; code: the code it has seen
    code: GrowingCode | None = None
    open_html: str = ""
    open_len: int = 0


@dataclass(slots=True)
class LiveDiff:
    """Turns successive transcripts into the ops that bring the front end up to date."""

    _sent: dict[str, _Sent] = field(default_factory=dict)
    _status: tuple[Any, ...] | None = None

    def ops(self, parts: list[LivePart]) -> tuple[list[Op], int]:
        """The ops for ``parts``, and how many of their characters are content (not overhead)."""
        ops: list[Op] = []
        content = 0
        for part in parts:
            content += self._part_ops(part, ops)
        return ops, content

    def status(
        self, before: str, after: list[str], elapsed: float, *, running: bool, failed: bool
    ) -> list[Op]:
        """A status op when the words changed (the elapsed time alone ticks in the front end)."""
        words = (before, " · ".join(after), running, failed)
        if words == self._status:
            return []
        self._status = words
        return [["status", before, words[1], round(elapsed, 2), running, failed]]

    def _part_ops(self, part: LivePart, ops: list[Op]) -> int:
        sent = self._sent.get(part.key)
        if sent is not None and sent.mode == part.mode != "html" and sent.shell != part.shell:
            # A new summary around the same content (a code step finished): the page
            # moves what it has into the new shell; nothing streamed is sent again.
            ops.append(["shell", sent.id, part.shell])
            sent.shell = part.shell
        if sent is None or sent.mode != part.mode or sent.shell != part.shell:
            number = len(self._sent) if sent is None else sent.id
            code = GrowingCode() if part.mode == "code" else None
            sent = _Sent(number, part.mode, part.shell, code=code)
            self._sent[part.key] = sent
            ops.append(["part", sent.id, part.mode, part.shell])
            new_shell = len(part.shell) if part.mode == "html" else 0
        else:
            new_shell = 0
        if part.mode == "code":
            return new_shell + _code_ops(sent, part, ops)
        if part.mode == "html" or part.text == sent.text:
            return new_shell
        if part.text.startswith(sent.text):
            added = part.text[len(sent.text) :]
            ops.append(["add", sent.id, added])
        else:  # an earlier piece changed (a file link was filled in): send it whole
            added = part.text
            ops.append(["set", sent.id, added])
        sent.text = part.text
        return new_shell + len(added)


def _code_ops(sent: _Sent, part: LivePart, ops: list[Op]) -> int:
    assert sent.code is not None
    if not part.text.startswith(sent.text):  # never expected: code only grows
        sent.code, sent.open_html, sent.text = GrowingCode(), "", ""
        ops.append(["part", sent.id, part.mode, part.shell])
    if part.text == sent.text:
        return 0
    done, open_html = sent.code.feed(part.text)
    sent.text = part.text
    if not done and open_html == sent.open_html:
        return 0
    sent.open_html = open_html
    ops.append(["code", sent.id, done, open_html])
    open_len = len(part.text) - sent.code.done
    grown = max(0, open_len - sent.open_len) if not done else open_len
    sent.open_len = open_len
    return len(done) + grown  # what the open line gained is new content too
