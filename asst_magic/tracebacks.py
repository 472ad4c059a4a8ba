"""Read an IPython traceback out of code-interpreter logs: the error, the failing line, the frames.

Pure text in, text out; shared by the client (to show an error readably) and the
server (to send the model a compact traceback), like ``sse``.

>>> logs = "---\\nZeroDivisionError   Traceback (most recent call last)\\n"
>>> logs += "Cell In[2], line 2\\n----> 2 1/0\\n\\nZeroDivisionError: division by zero\\n"
>>> err = find_error(logs)
>>> (err.ename, err.evalue, err.line, err.source)
('ZeroDivisionError', 'division by zero', 2, '1/0')
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["CodeError", "compact_traceback", "find_error", "tidy_traceback"]

_HEADER = re.compile(r"^(?P<ename>[\w.]+)\s+Traceback \(most recent call last\)\s*$")
_RULE = re.compile(r"^-{3,}\s*$")
_SYNTAX_AT = re.compile(r"^\s*(?:Cell In\[\d+\]|File \S+), line \d+\s*$")
_SYNTAX_ERRORS = ("SyntaxError", "IndentationError", "TabError")
_FRAME = re.compile(r"^(?:Cell In\[\d+\], line \d+|File \S.*)")
_CELL = re.compile(r"Cell In\[\d+\]")
_ARROW = re.compile(r"^\s*-*>\s*(?P<line>\d+)\s?(?P<source>.*)$")
_NO_SOURCE = "'Could not get source, probably due dynamically evaluated source code.'"
# Where installed packages and the standard library live: shown from the package name on.
_LIB_PATH = re.compile(
    r"(?:~|/)[^\s:,]*?/(?:lib/python3\.\d+/(?:site-packages/)?|(?:site|dist)-packages/)"
    r"(?=[^\s/])"
)
_HEAD_MAX = 120  # a library frame's header lists every parameter: cut it for the model
_ELLIPSIS = re.compile(r"^\s*\(\.\.\.\)")


@dataclass(frozen=True)
class CodeError:
    """An error at the end of a code step's logs, split from what was printed before it."""

    before: str  # the logs printed before the traceback
    ename: str  # e.g. "KeyError"
    evalue: str  # e.g. "'revenue'"
    line: int | None  # the failing line of the assistant's code, when the traceback names it
    source: str | None  # that line's text
    traceback: str  # the traceback as IPython printed it (ANSI-free)
    after: str  # what followed it (the sandbox's own notes)

    @property
    def message(self) -> str:
        """``ename: evalue`` as Python prints it."""
        return f"{self.ename}: {self.evalue}" if self.evalue else self.ename


def find_error(logs: str) -> CodeError | None:
    """The traceback in ``logs`` (IPython's format), or None when the code did not raise."""
    lines = logs.split("\n")
    start = _traceback_start(lines)
    if start is None:
        return None
    ename = _last_ename(lines[start:])
    end = _error_line(lines, start, ename)
    if end is None:
        return None
    stop = end + 1
    while stop < len(lines) and lines[stop].strip() and not lines[stop].startswith("["):
        stop += 1  # a multi-line message
    message = "\n".join(lines[end:stop])
    evalue = message.split(":", 1)[1].strip() if ":" in message else ""
    line, source = _failing_line(lines[start:end])
    return CodeError(
        before="\n".join(lines[:start]) + ("\n" if start else ""),
        ename=ename.rsplit(".", 1)[-1],
        evalue=evalue,
        line=line,
        source=source,
        traceback="\n".join(lines[start:stop]).strip("\n") + "\n",
        after="\n".join(lines[stop:]).lstrip("\n"),
    )


def _traceback_start(lines: list[str]) -> int | None:
    for i, text in enumerate(lines):
        if _HEADER.match(text):
            return i - 1 if i and _RULE.match(lines[i - 1]) else i
        if _SYNTAX_AT.match(text) and any(
            lines[j].startswith(_SYNTAX_ERRORS) for j in range(i + 1, min(i + 5, len(lines)))
        ):
            return i
    return None


def _last_ename(lines: list[str]) -> str:
    names = [m.group("ename") for m in map(_HEADER.match, lines) if m]
    if names:
        return names[-1]
    syntax = [text.split(":")[0] for text in lines if text.startswith(_SYNTAX_ERRORS)]
    return syntax[-1] if syntax else "Error"


def _error_line(lines: list[str], start: int, ename: str) -> int | None:
    short = ename.rsplit(".", 1)[-1]
    for i in range(len(lines) - 1, start, -1):
        head = lines[i].split(":", 1)[0]
        if head in (ename, short) or head.endswith(f".{short}"):
            return i
    return None


def _failing_line(lines: list[str]) -> tuple[int | None, str | None]:
    """The arrow line of the last frame in the assistant's own code (``Cell In[...]``)."""
    last = _last_section(lines)
    in_cell = False
    found: tuple[int | None, str | None] = (None, None)
    for text in last:
        if _FRAME.match(text) or _SYNTAX_AT.match(text):
            in_cell = "Cell In[" in text
            if in_cell and _SYNTAX_AT.match(text):
                found = (int(text.rsplit("line", 1)[1]), None)
        elif in_cell and (arrow := _ARROW.match(text)):
            found = (int(arrow.group("line")), arrow.group("source").strip())
    if found[0] is not None and found[1] is None:  # a SyntaxError: the line follows
        idx = next(i for i, t in enumerate(last) if _SYNTAX_AT.match(t))
        found = (found[0], last[idx + 1].strip() if idx + 1 < len(last) else None)
    return found


def _last_section(lines: list[str]) -> list[str]:
    """The frames of the exception that was raised last (chained ones come before it)."""
    starts = [i for i, text in enumerate(lines) if _HEADER.match(text)]
    return lines[starts[-1] + 1 :] if starts else lines


def tidy_traceback(traceback: str) -> str:
    """The traceback without noise: short library paths, no sandbox cell counter or rules.

    >>> tidy_traceback("File /v/lib/python3.11/site-packages/pandas/io/common.py:9, in f()")
    'File pandas/io/common.py:9, in f()\\n'
    """
    kept = []
    for text in traceback.split("\n"):
        if _RULE.match(text) or text.strip().endswith(_NO_SOURCE):
            continue
        text = _CELL.sub("Code", _LIB_PATH.sub("", text))
        text = _HEADER.sub("Traceback (most recent call last):", text)
        kept.append(text)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip("\n") + "\n"


def compact_traceback(error: CodeError, limit: int = 1200) -> str:
    """The raised exception's frames in the assistant's code, the library frame that raised,
    and the error: what a model needs to fix its code, in at most ``limit`` characters."""
    tidy = tidy_traceback(error.traceback)
    if not any(map(_HEADER.match, error.traceback.split("\n"))):  # a SyntaxError: no frames
        return tidy if len(tidy) <= limit else tidy[: limit - 5] + " ...\n"
    frames = _frames(tidy_traceback("\n".join(_last_section(error.traceback.split("\n")))))
    kept: list[str] = []
    skipped = 0
    for n, (head, arrow) in enumerate(frames):
        if head.startswith("Code") or n == len(frames) - 1:
            if skipped:
                kept.append(f"  ... {skipped} library frame{'s' * (skipped > 1)} ...")
                skipped = 0
            head = head if len(head) <= _HEAD_MAX else head[: _HEAD_MAX - 4] + " ..."
            kept.append(f"  {head}" + (f"\n    {arrow}" if arrow else ""))
        else:
            skipped += 1
    tail = error.message
    if len(tail) > limit // 2:
        tail = tail[: limit // 2] + " ..."
    body = _fit(["Traceback (most recent call last):", *kept], limit - len(tail) - 2)
    return f"{body}\n{tail}\n"


def _fit(lines: list[str], room: int) -> str:
    """``lines`` joined, dropping middle frames (then cutting) until they fit in ``room``."""
    head, rest = lines[:2], lines[2:]
    while rest and len("\n".join([*head, "  ...", *rest])) > room:
        rest.pop(0)  # the frames nearest the error matter most: keep those
    text = "\n".join(lines if len(rest) == len(lines) - 2 else [*head, "  ...", *rest])
    return text if len(text) <= room else text[: max(room - 4, 0)] + " ..."


def _frames(tidy: str) -> list[tuple[str, str | None]]:
    """``(header, the line it stopped at)`` per frame."""
    frames: list[tuple[str, str | None]] = []
    for text in tidy.split("\n"):
        if text.startswith(("Code,", "File ")):
            frames.append((text.strip(), None))
        elif frames and not _ELLIPSIS.match(text) and (arrow := _ARROW.match(text)):
            frames[-1] = (frames[-1][0], arrow.group("source").strip())
    return frames
