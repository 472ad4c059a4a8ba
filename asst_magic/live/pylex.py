"""A one-regex Python lexer for highlighting code as the assistant writes it.

Pygments' Python lexer tries its rules one after another at every position
(about 1.5-3 ms per KB here); this one scans with a single compiled pattern and a
little context (the previous token, the start of a line): about 6 times faster on
real code, with half the HTML. Tokens carry Pygments' short class
names (``k``, ``kn``, ``nn``, ``s2``, ``c1``, ``mi``, ``nf``, ``nb``, ``o``, …) so the
same stylesheet colours them; names and punctuation need no class.

Every newline is a token of its own, and a lexer restarted at any line start
that ``tokens`` reports as a restart point gives the same tokens as one pass.

>>> [(kind, text) for kind, text in tokens("import os\\n")[0] if kind]
[('kn', 'import'), ('nn', 'os')]
"""

from __future__ import annotations

import builtins
import html
import keyword
import re
from collections.abc import Iterator

__all__ = ["format_html", "tokens"]

Token = tuple[str, str]  # (Pygments short class name, or "" for none; the text)

_PREFIX = r"(?:[rR][bBfF]?|[bBfF][rR]?|[uU])?"
_PATTERN = re.compile(
    rf"""
    (?P<nl>\n)
    |(?P<ws>[ \t\f\r]+|\\\r?\n)
    |(?P<comment>\#[^\n]*)
    |(?P<long>{_PREFIX}(?:\"\"\"(?:[^"\\]|\\[\s\S]|"(?!""))*(?:\"\"\"|\Z)
                      |'''(?:[^'\\]|\\[\s\S]|'(?!''))*(?:'''|\Z)))
    |(?P<short>{_PREFIX}(?:"(?:[^"\\\n]|\\[\s\S])*"?|'(?:[^'\\\n]|\\[\s\S])*'?))
    |(?P<mh>0[xX](?:_?[0-9a-fA-F])+|0[oO](?:_?[0-7])+|0[bB](?:_?[01])+)
    |(?P<mf>(?:\d(?:_?\d)*\.(?:\d(?:_?\d)*)?|\.\d(?:_?\d)*)(?:[eE][+-]?\d(?:_?\d)*)?[jJ]?
           |\d(?:_?\d)*[eE][+-]?\d(?:_?\d)*[jJ]?)
    |(?P<mi>\d(?:_?\d)*[jJ]?)
    |(?P<name>[^\W\d]\w*)
    |(?P<o>\*\*=?|//=?|>>=?|<<=?|->|:=|[-+*/%&|^~<>=!]=?|\.|@=?)
    |(?P<p>[()\[\]{{}}:,;])
    |(?P<other>.)
    """,
    re.VERBOSE,
)

_FIELD = re.compile(r"\{\{|\}\}|\{")
_NAMESPACE = {"import", "from"}
_OPERATOR_WORDS = {"and", "or", "not", "in", "is"}
_CONSTANTS = {"True", "False", "None"}
_KEYWORDS = set(keyword.kwlist) - _NAMESPACE - _OPERATOR_WORDS - _CONSTANTS
_SOFT = {"match", "case"}  # keywords only where a statement starts with them
_PSEUDO = {"self", "cls", "Ellipsis", "NotImplemented"}
_EXCEPTIONS = {
    name
    for name, value in vars(builtins).items()
    if isinstance(value, type) and issubclass(value, BaseException)
}
# Spelled out, not read from ``builtins``: IPython adds ``display`` and ``get_ipython``
# there, and the colours must not depend on where the code is shown.
_BUILTIN_NAMES = (
    "abs aiter all anext any ascii bin bool breakpoint bytearray bytes callable chr "
    "classmethod compile complex delattr dict dir divmod enumerate eval exec filter float "
    "format frozenset getattr globals hasattr hash hex id input int isinstance issubclass "
    "iter len list locals map max memoryview min next object oct open ord pow print "
    "property range repr reversed round set setattr slice sorted staticmethod str sum "
    "super tuple type vars zip __import__"
)
_BUILTINS = frozenset(_BUILTIN_NAMES.split())
_DEFINES = {"def": "nf", "class": "nc"}


class _Context:
    """What the classes of the next names depend on; reset at every line start."""

    __slots__ = ("after", "at_start", "decorator", "namespace")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Back to a line start: nothing seen yet."""
        self.after = ""  # the previous significant token's text
        self.at_start = True  # no significant token yet on this line
        self.namespace = False  # inside "import a.b" / "from a.b": names are modules
        self.decorator = False  # inside "@name.attr" at a line start


def tokens(text: str) -> tuple[list[Token], list[int]]:
    """The tokens of ``text``, and the indexes of tokens a lexer could restart from.

    >>> tokens("x = 1\\ny")[1]  # "y" starts a line the lexer can restart at
    [6]
    """
    out: list[Token] = []
    restarts: list[int] = []
    context = _Context()
    for kind, value in _scan(text, context):
        if kind == "nl":
            out.append(("", value))
            restarts.append(len(out))
            context.reset()
        else:
            out.append((kind, value))
    if restarts and restarts[-1] == len(out):
        restarts.pop()  # the text ends with a newline: nothing starts there yet
    return out, restarts


def _scan(text: str, context: _Context) -> Iterator[Token]:
    for match in _PATTERN.finditer(text):
        group = match.lastgroup or "other"
        value = match.group()
        if group in ("nl", "ws"):
            yield group if group == "nl" else "", value
            continue
        kind = _classify(group, value, text, match.end(), context)
        context.after, context.at_start = value, False
        if kind[:1] == "s" and "f" in _prefix(value).lower():
            yield from _fstring(value, kind)
        else:
            yield kind, value


def _classify(group: str, value: str, text: str, end: int, context: _Context) -> str:
    if group == "name":
        return _name(value, text, end, context)
    if context.decorator and (group != "o" or value != "."):
        context.decorator = False
    if group == "long":
        return "sd" if context.at_start else "s2"
    if group == "short":
        return "s1" if value.lstrip("rRbBuUfF")[:1] == "'" else "s2"
    if group == "comment":
        return "c1"
    if group == "o":
        return _operator(value, context)
    return group if group in ("mh", "mf", "mi") else ""


def _operator(value: str, context: _Context) -> str:
    if value == ".":
        if context.namespace:
            return "nn"
        if context.decorator:
            return "nd"
    if value == "@" and context.at_start:
        context.decorator = True
        return "nd"
    return "o"


def _name(value: str, text: str, end: int, context: _Context) -> str:
    if context.decorator:
        return "nd"
    if context.namespace:
        if value == "import":  # "from a.b import c": the names after it are plain
            context.namespace = False
            return "kn"
        return "k" if value == "as" else "nn"
    if value in _NAMESPACE and context.at_start:
        context.namespace = True
        return "kn"
    before = context.after
    if before in _DEFINES:
        return _DEFINES[before]
    if before == ".":
        return ""
    return _word(value, text, end, context)


def _word(value: str, text: str, end: int, context: _Context) -> str:
    if value in _KEYWORDS or value in _NAMESPACE:  # "yield from", "raise … from …"
        return "k"
    if value in _OPERATOR_WORDS:
        return "ow"
    if value in _CONSTANTS:
        return "kc"
    if value in _SOFT and context.at_start and _starts_statement(text, end):
        return "k"
    if value in _PSEUDO:
        return "bp"
    if value in _EXCEPTIONS:
        return "ne"
    return "nb" if value in _BUILTINS else ""


def _starts_statement(text: str, end: int) -> bool:
    """``match x:`` is a statement; ``match = …``, ``match(…)``, ``match.x`` are not."""
    stop = text.find("\n", end)
    rest = text[end : stop if stop >= 0 else len(text)].strip()
    return bool(rest) and rest[0] not in "=.,):" and rest.endswith(":")


def _prefix(value: str) -> str:
    """A string literal's prefix (``r``, ``b``, ``f``, ``rb``, …)."""
    return value[: len(value) - len(value.lstrip("rRbBuUfF"))]


def _fstring(value: str, kind: str) -> Iterator[Token]:
    """An f-string as Pygments shows it: ``{``/``}`` and the code inside them as code."""
    prefix = _prefix(value)
    body = value[len(prefix) :]
    yield "sa", prefix
    quote = body[:3] if body[:3] in ('"""', "'''") else body[:1]
    closed = len(body) >= 2 * len(quote) and body.endswith(quote)
    inner = body[len(quote) : len(body) - len(quote) if closed else len(body)]
    yield kind, quote
    yield from _replacements(inner, kind)
    if closed:
        yield kind, quote


def _replacements(inner: str, kind: str) -> Iterator[Token]:
    """Literal text, ``{{`` escapes, and ``{expression!r:spec}`` fields, in order."""
    at = 0
    while found := _FIELD.search(inner, at):
        yield kind, inner[at : found.start()]
        at = found.end()
        if found.group() in ("{{", "}}"):
            yield "se", found.group()
            continue
        end = _field_end(inner, at)
        yield from _field(inner[at:end], kind)
        yield "si", inner[end : end + 1]
        at = end + 1
    yield kind, inner[at:]


def _field_end(inner: str, at: int, stops: str = "}") -> int:
    """The first of ``stops`` from ``at`` outside brackets and quotes, or the text's end."""
    depth, quote = 0, ""
    for index in range(at, len(inner)):
        char = inner[index]
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif depth == 0 and char in stops and not _comparison(inner, index):
            return index
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
    return len(inner)


def _comparison(inner: str, index: int) -> bool:
    """``!=``, ``==``, ``<=``, ``>=`` and ``:=`` are operators inside a field, not its end."""
    char, after = inner[index], inner[index + 1 : index + 2]
    return (char in "!=" and after == "=") or (char == "=" and inner[index - 1 : index] in "=!<>:")


def _field(text: str, kind: str) -> Iterator[Token]:
    """``{`` then the expression as code, then ``=``, ``!r``, ``:`` and the spec as string."""
    yield "si", "{"
    split = _field_end(text, 0, "!:=")
    yield from tokens(text[:split])[0]
    spec = text.find(":", split)
    if split < len(text):
        marks = text[split : spec + 1] if spec >= 0 else text[split:]
        yield "si", marks
        yield from _replacements(text[split + len(marks) :], kind)


def format_html(items: list[Token]) -> str:
    """Tokens as HTML: each classed run in one ``<span class="…">``, the rest as text.

    >>> format_html([("k", "def"), ("", " "), ("nf", "f")])
    '<span class="k">def</span> <span class="nf">f</span>'
    """
    parts: list[str] = []
    kind, run = "", ""
    for next_kind, value in items:
        if not value:
            continue
        if next_kind != kind:
            parts.append(_span(kind, run))
            kind, run = next_kind, value
        else:
            run += value
    parts.append(_span(kind, run))
    return "".join(parts)


def _span(kind: str, text: str) -> str:
    if not text:
        return ""
    escaped = html.escape(text, quote=False)
    return f'<span class="{kind}">{escaped}</span>' if kind else escaped
