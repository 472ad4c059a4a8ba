"""Turn a kernel's IOPub messages into sandbox outputs: ANSI-free, coalesced, capped."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from asst_magic.server.code_interpreter.sandbox import ImageOutput, LogsOutput, SandboxOutput

__all__ = ["OutputCollector", "strip_ansi"]

# CSI sequences (colours, cursor moves), OSC sequences (titles, links), and
# the remaining two-byte escapes.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")


def strip_ansi(text: str) -> str:
    """Remove terminal escape sequences (IPython colours its tracebacks)."""
    return _ANSI.sub("", text)


class OutputCollector:
    """Collects one execution's outputs in order, within a character and image budget.

    Text beyond ``max_chars`` is dropped as it arrives, so a run that prints
    without end costs no memory here (the kernel also stops printed text at the
    budget before sending it).
    """

    def __init__(self, max_chars: int, max_images: int) -> None:
        self.max_chars = max_chars
        self.max_images = max_images
        self._ready: list[SandboxOutput] = []
        self._text: list[str] = []
        self._used = 0
        self._images = 0
        self.truncated = False
        self.dropped_images = 0
        self._dropped_error: str | None = None

    def add(self, msg: dict[str, Any]) -> None:
        """Take in one IOPub message of the execution."""
        content = msg.get("content", {})
        match msg.get("msg_type"):
            case "stream":
                self.add_text(strip_ansi(content.get("text", "")))
            case "error":
                self._add_error(content)
            case "execute_result" | "display_data":
                self._add_bundle(content.get("data", {}))
            case _:  # status, execute_input, clear_output, update_display_data, ...
                pass

    def _add_error(self, content: dict[str, Any]) -> None:
        """A traceback; if it no longer fits, keep its last line for the marker."""
        text = strip_ansi("\n".join(content.get("traceback", []))) + "\n"
        if self._used >= self.max_chars:
            evalue = content.get("evalue")
            self._dropped_error = content.get("ename", "an error") + (
                f": {evalue}" if evalue else ""
            )
        self.add_text(text)

    def _add_bundle(self, data: dict[str, Any]) -> None:
        """A display or result: its PNG if it has one, else its plain text."""
        png = data.get("image/png")
        if isinstance(png, str):
            try:
                self.add_image(base64.b64decode(png))
                return
            except (binascii.Error, ValueError):
                pass
        text = data.get("text/plain")
        if isinstance(text, str):
            self.add_text(strip_ansi(text) + "\n")

    def add_text(self, text: str) -> None:
        """Append text, dropping what exceeds the budget."""
        room = self.max_chars - self._used
        if len(text) > room:
            self.truncated = True
            text = text[: max(room, 0)]
        if text:
            self._used += len(text)
            self._text.append(text)

    def add_image(self, png: bytes) -> None:
        """Append an image, or count it once the image budget is spent."""
        if self._images >= self.max_images:
            self.dropped_images += 1
            return
        self._images += 1
        self._flush_text()
        self._ready.append(ImageOutput(png))

    def add_note(self, text: str) -> None:
        """Append the sandbox's own message (timeout, lost kernel); never truncated."""
        self._text.append(text)

    def _flush_text(self) -> None:
        """Close the current run of text into one ``LogsOutput``."""
        if self._text:
            self._ready.append(LogsOutput("".join(self._text)))
            self._text = []

    def take(self) -> list[SandboxOutput]:
        """Everything collected since the last call, consecutive text joined."""
        self._flush_text()
        ready, self._ready = self._ready, []
        return ready

    def truncation_note(self) -> str | None:
        """The visible marker for what was dropped, or None if nothing was."""
        parts = []
        if self.truncated:
            parts.append(
                f"\n[output truncated: only the first {self.max_chars:,} characters are shown; "
                "print less, e.g. df.head() or a summary]\n"
            )
        if self._dropped_error:
            parts.append(f"[the code then raised {self._dropped_error}]\n")
        if self.dropped_images:
            parts.append(
                f"[{self.dropped_images} more images not shown (limit {self.max_images})]\n"
            )
        return "".join(parts) or None
