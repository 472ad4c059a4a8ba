"""Decode one string field of a JSON object while its text is still arriving.

A model calling the code interpreter streams ``{"code": "import math\\nprint(1)"}``
in arbitrary fragments; the user should see the code as it is written, not when
the JSON closes. ``StringFieldDecoder`` is fed fragments and returns the newly
decoded characters of the chosen field, even when a fragment ends inside an
escape (``\\`` | ``n``, or ``\\u00`` | ``e9``, or half a surrogate pair).

>>> decoder = StringFieldDecoder("code")
>>> decoder.feed('{"code": "print(1)\\\\'), decoder.feed('nx"}'), decoder.finish()
('print(1)', '\\nx', '')
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["JSONStringReader", "StringFieldDecoder"]

_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_PLAIN = re.compile(r'[^"\\]+')
_WHITESPACE = " \t\r\n"
_FALLBACK_KEYS = ("code", "input", "source", "script", "python")


class JSONStringReader:
    """Decode the body of one JSON string (after its opening quote), incrementally."""

    def __init__(self) -> None:
        self._escape = ""  # an escape sequence cut off by the fragment's end
        self._high_surrogate = ""
        self.closed = False

    def read(self, text: str, pos: int) -> tuple[str, int]:
        """Decode from ``text[pos:]``; return the new characters and where reading stopped."""
        out: list[str] = []
        while pos < len(text) and not self.closed:
            if self._escape:
                pos = self._read_escape(text, pos, out)
                continue
            plain = _PLAIN.match(text, pos)
            if plain:
                self._emit(plain.group(), out)
                pos = plain.end()
            elif text[pos] == '"':
                self.closed = True
                pos += 1
            else:
                self._escape = "\\"
                pos += 1
        if self.closed:
            self._emit("", out)
        return "".join(out), pos

    def _read_escape(self, text: str, pos: int, out: list[str]) -> int:
        need = 6 if self._escape[1:2] == "u" else 2
        take = need - len(self._escape)
        self._escape += text[pos : pos + take]
        pos += take
        if len(self._escape) >= 2 and self._escape[1] != "u":
            self._emit(_ESCAPES.get(self._escape[1], self._escape[1]), out)
            self._escape = ""
        elif len(self._escape) == 6:
            self._emit_code_point(self._escape[2:], out)
            self._escape = ""
        return pos

    def _emit_code_point(self, hex_digits: str, out: list[str]) -> None:
        try:
            point = int(hex_digits, 16)
        except ValueError:
            self._emit("\ufffd", out)
            return
        if 0xD800 <= point < 0xDC00:
            self._emit("", out)  # a pending high surrogate with no partner becomes U+FFFD
            self._high_surrogate = chr(point)
        elif 0xDC00 <= point < 0xE000 and self._high_surrogate:
            pair = (self._high_surrogate + chr(point)).encode("utf-16", "surrogatepass")
            self._high_surrogate = ""
            out.append(pair.decode("utf-16"))
        else:
            self._emit(chr(point) if not 0xDC00 <= point < 0xE000 else "\ufffd", out)

    def _emit(self, text: str, out: list[str]) -> None:
        if self._high_surrogate:
            out.append("\ufffd")
            self._high_surrogate = ""
        if text:
            out.append(text)


class StringFieldDecoder:
    """Stream the decoded value of ``field`` from a JSON object's text, fragment by fragment.

    Liberal in what it takes: arguments that are not a JSON object (a model that
    sends bare code) are passed through as they are, and when the object has no
    ``field`` the value of a likely key (or its only string) is used at ``finish``.
    """

    def __init__(self, field: str) -> None:
        self._field = field
        self._raw: list[str] = []
        self._state = "start"
        self._key = JSONStringReader()
        self._key_text = ""
        self._value: JSONStringReader | None = None
        self._skip_depth = 0
        self._skip_string: JSONStringReader | None = None
        self.emitted = False

    def feed(self, fragment: str) -> str:
        """Consume one fragment of the arguments text; return newly decoded field text."""
        self._raw.append(fragment)
        out: list[str] = []
        pos = 0
        while pos < len(fragment) and self._state != "done":
            pos = self._step(fragment, pos, out)
        decoded = "".join(out)
        self.emitted = self.emitted or bool(decoded)
        return decoded

    def finish(self) -> str:
        """The arguments are complete: return what the stream could not yield incrementally."""
        if self.emitted:
            return ""
        raw = "".join(self._raw)
        try:
            value = json.loads(raw) if raw.strip() else {}
        except ValueError:
            return raw if self._state == "raw" else ""
        return _likely_string(value, self._field)

    def _step(self, text: str, pos: int, out: list[str]) -> int:
        state = self._state
        if state == "raw":
            out.append(text[pos:])
            return len(text)
        if state == "value":
            return self._read_value(text, pos, out)
        if state == "key":
            decoded, pos = self._key.read(text, pos)
            self._key_text += decoded
            if self._key.closed:
                self._state = "colon"
            return pos
        if state == "skip":
            return self._skip(text, pos)
        char = text[pos]
        if char in _WHITESPACE:
            return pos + 1
        self._on_structural(char)
        return pos + 1 if self._state != "raw" else pos

    def _on_structural(self, char: str) -> None:
        state = self._state
        if state == "start":
            self._state = "object" if char == "{" else "raw"
        elif state == "object" and char == '"':
            self._key, self._key_text, self._state = JSONStringReader(), "", "key"
        elif state == "object" and char == "}":
            self._state = "done"
        elif state == "colon" and char == ":":
            self._state = "value_start"
        elif state == "value_start":
            self._start_value(char)

    def _start_value(self, char: str) -> None:
        if char == '"' and self._key_text == self._field and not self.emitted:
            self._value, self._state = JSONStringReader(), "value"
            return
        self._state, self._skip_depth = "skip", 0
        if char in "{[":
            self._skip_depth = 1
        elif char == '"':
            self._skip_string = JSONStringReader()

    def _read_value(self, text: str, pos: int, out: list[str]) -> int:
        assert self._value is not None
        decoded, pos = self._value.read(text, pos)
        out.append(decoded)
        if self._value.closed:
            self._state = "object"
        return pos

    def _skip(self, text: str, pos: int) -> int:
        """Skip the rest of a value that is not the field (strings, nesting, scalars)."""
        if self._skip_string is not None:
            _, pos = self._skip_string.read(text, pos)
            if self._skip_string.closed:
                self._skip_string = None
                self._end_skip_if_flat()
            return pos
        char = text[pos]
        if char == '"':
            self._skip_string = JSONStringReader()
        elif char in "{[":
            self._skip_depth += 1
        elif char in "}]" and self._skip_depth:
            self._skip_depth -= 1
            self._end_skip_if_flat()
        elif self._skip_depth == 0 and char in ",}":
            self._state = "object" if char == "," else "done"
        return pos + 1

    def _end_skip_if_flat(self) -> None:
        if self._skip_depth == 0:
            self._state = "object"


def _likely_string(value: Any, field: str) -> str:
    """The field's value, else a likely key's, else the object's only string value."""
    if isinstance(value, str):
        return value
    if not isinstance(value, dict):
        return ""
    for key in (field, *_FALLBACK_KEYS):
        if isinstance(value.get(key), str):
            return str(value[key])
    strings = [v for v in value.values() if isinstance(v, str)]
    return strings[0] if len(strings) == 1 else ""
