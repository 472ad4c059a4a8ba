"""The live widget: a small anywidget that receives append-only batches of ops.

Each repaint sends one comm ``update`` whose state holds a single new key
(``b1``, ``b2``, ...) with that repaint's ops; the front end's model keeps every
key, so the view replays them in order whenever it renders. Nothing on the
kernel side keeps the batches, and the widget is closed when the run ends (the
cell then holds plain outputs). The Markdown library (marked, MIT) travels in a
second widget made once per kernel, so a run sends only its own content.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

__all__ = ["LiveWidget", "new_live_widget", "preload"]

_HERE = Path(__file__).parent

# Sets the page-wide renderer the live views wait for (see ``library()`` in live.js).
_LIBRARY_TAIL = """
const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" };
function initialize() {
  const g = globalThis;
  if (!g.__asstMagicMarkdown) {
    let resolve;
    const ready = new Promise((r) => (resolve = r));
    g.__asstMagicMarkdown = { ready, resolve, render: null };
  }
  const md = new Marked({ gfm: true, async: false });
  md.use({ renderer: { html: (token) => token.text.replace(/[&<>"]/g, (c) => ESCAPES[c]) } });
  g.__asstMagicMarkdown.render = (text) => md.parse(text);
  g.__asstMagicMarkdown.resolve();
}
export default { initialize };
"""


class LiveWidget:
    """What the view needs from the live widget (the real one is an anywidget)."""

    model_id: str

    def send_batch(self, ops: list[Any]) -> int:
        """Send one repaint's ops; returns the bytes of the message."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


@functools.cache
def _classes() -> tuple[type[Any], type[Any]]:
    import anywidget
    import traitlets

    class MarkdownLibrary(anywidget.AnyWidget):
        """Ships marked to the page once; never displayed."""

        _esm = (_HERE / "marked.esm.js").read_text(encoding="utf-8") + _LIBRARY_TAIL

    class LiveRun(anywidget.AnyWidget):
        """One run's live transcript."""

        _esm = (_HERE / "live.js").read_text(encoding="utf-8")
        batches = traitlets.Int(0)  # not synced: how many batches were sent

    return MarkdownLibrary, LiveRun


_library: list[Any] = []


def _ensure_library() -> None:
    """Make the Markdown library widget, again if something closed it (``Widget.close_all``)."""
    if not _library or _library[0].comm is None:
        _library[:] = [_classes()[0]()]


class _AnyLive(LiveWidget):
    def __init__(self) -> None:
        _ensure_library()
        self._widget = _classes()[1]()
        self.model_id = self._widget.model_id

    def send_batch(self, ops: list[Any]) -> int:
        self._widget.batches += 1
        state = {f"b{self._widget.batches}": ops}
        message = {"method": "update", "state": state, "buffer_paths": []}
        comm = self._widget.comm
        if comm is not None:
            comm.send(message)
        return len(_json(message).encode("utf-8", "surrogateescape"))

    def close(self) -> None:
        self._widget.close()


def _json(message: dict[str, Any]) -> str:
    import json

    return json.dumps(message, ensure_ascii=False)  # as jupyter_client packs it


def preload() -> None:
    """Import the widget machinery and send the Markdown library now (``%load_ext`` in a
    kernel), not on a first cell: the first live view then shows "Starting…" at once."""
    _ensure_library()


def new_live_widget() -> LiveWidget:
    """A live widget whose ops reach the front end over the widget's comm."""
    return _AnyLive()
