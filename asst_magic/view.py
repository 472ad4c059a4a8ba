"""Show a run while it streams: the only code that touches ipywidgets or the display.

``RunView`` owns one ``Output`` widget, displayed once on the cell's thread. Each
transcript block lives in a child ``Output`` referenced from it, so a repaint
re-sends only the block that is still growing. When the run ends the widget is
replaced by ordinary outputs, so a saved notebook shows the transcript without
widget state. ``TextView`` streams plain text where there is no widget front end.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Hashable
from typing import Any, Protocol, TextIO

from asst_magic.accumulate import Snapshot
from asst_magic.render import Renderer, render_text, status_text

__all__ = ["DisplayPublisher", "OutputLike", "RunView", "TextView", "View"]

Clock = Callable[[], float]


class OutputLike(Protocol):
    """What the view needs from an ``ipywidgets.Output``."""

    outputs: Any
    model_id: str

    def close(self) -> None: ...


class DisplayPublisher(Protocol):
    """``shell.display_pub``: where display_data messages go."""

    def publish(
        self,
        data: dict[str, Any],
        metadata: dict[str, Any] | None = None,
        *,
        transient: dict[str, Any] | None = None,
        update: bool = False,
    ) -> None: ...

    def clear_output(self, wait: bool = False) -> None: ...


class View(Protocol):
    """A live view of one run."""

    @property
    def painted(self) -> bool:
        """Whether anything has been shown yet."""
        ...

    def update(self, snap: Snapshot, *, force: bool = False) -> None: ...

    def finish(self, snap: Snapshot) -> None: ...


class _Throttle:
    """At most ``hz`` repaints a second, like rich's ``Live(refresh_per_second=...)``."""

    def __init__(self, hz: float, clock: Clock) -> None:
        self.interval = 1.0 / hz if hz > 0 else 0.0
        self.clock = clock
        self.started = clock()
        self.last = -float("inf")
        self.repaints = 0

    def due(self, force: bool = False) -> bool:
        now = self.clock()
        if not force and now - self.last < self.interval:
            return False
        self.last = now
        self.repaints += 1
        return True

    def elapsed(self) -> float:
        return self.clock() - self.started


class RunView:
    """A live widget for one run, then the run's transcript as ordinary outputs."""

    def __init__(
        self,
        display_pub: DisplayPublisher,
        *,
        repaint_hz: float = 20.0,
        clock: Clock = time.monotonic,
        output_factory: Callable[[], OutputLike] | None = None,
    ) -> None:
        self._pub = display_pub
        self._throttle = _Throttle(repaint_hz, clock)
        self._new_output = output_factory or _ipywidgets_output
        self._renderer = Renderer()
        self._root: OutputLike | None = None
        self._slots: dict[Hashable, tuple[OutputLike, list[dict[str, Any]]]] = {}
        self._status: OutputLike | None = None
        self._displayed = False

    @property
    def repaints(self) -> int:
        """How many times the live widget was repainted."""
        return self._throttle.repaints

    @property
    def painted(self) -> bool:
        """Whether the live widget has been displayed."""
        return self._displayed

    def update(self, snap: Snapshot, *, force: bool = False) -> None:
        """Repaint if the throttle allows (or ``force``); cheap enough to call on every event."""
        if self._throttle.due(force):
            self._paint(snap)

    def finish(self, snap: Snapshot) -> None:
        """Replace the widget with the final outputs (ids in each output's metadata)."""
        outputs = self._renderer.render(snap, self._throttle.elapsed())
        if self._root is not None:
            # Frontends drop the widget when the first final output arrives; nbval (which
            # ignores clear_output) sees a widget view with nothing to compare, then these.
            self._pub.clear_output(wait=True)
        for output in outputs:
            self._pub.publish(output["data"], output["metadata"])
        self._close()

    def _paint(self, snap: Snapshot) -> None:
        root = self._root or self._show()
        added = False
        for key, outputs in self._renderer.blocks(snap):
            slot = self._slots.get(key)
            if slot is None:
                slot = (self._new_output(), [])
                added = True
            if slot[1] is not outputs:  # finished blocks keep their list: nothing re-sent
                slot[0].outputs = tuple(outputs)
                self._slots[key] = (slot[0], outputs)
        status = self._status or self._new_output()
        status.outputs = (
            {
                "output_type": "stream",
                "name": "stdout",
                "text": status_text(snap, self._throttle.elapsed()),
            },
        )
        if added or self._status is None:
            self._status = status
            children = [slot[0] for slot in self._slots.values()] + [status]
            root.outputs = tuple(_widget_output(child) for child in children)

    def _show(self) -> OutputLike:
        # Displayed from the cell's own thread: a display from a worker thread would land
        # in whichever cell is running then.
        self._root = self._new_output()
        self._displayed = True
        self._pub.publish(_widget_output(self._root)["data"], {})
        return self._root

    def _close(self) -> None:
        widgets = [slot[0] for slot in self._slots.values()] + [self._status, self._root]
        for widget in widgets:
            if widget is not None:
                widget.close()
        self._slots.clear()
        self._root = self._status = None


def _ipywidgets_output() -> OutputLike:
    import ipywidgets

    return ipywidgets.Output()


def _widget_output(widget: OutputLike) -> dict[str, Any]:
    view = {"version_major": 2, "version_minor": 0, "model_id": widget.model_id}
    data = {"application/vnd.jupyter.widget-view+json": view}
    return {"output_type": "display_data", "data": data, "metadata": {}}


class TextView:
    """Plain text to a stream (terminal IPython, no ipywidgets): code marked, images listed."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        repaint_hz: float = 20.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self._stream = stream
        self._throttle = _Throttle(repaint_hz, clock)
        self._shown = ""

    @property
    def repaints(self) -> int:
        """How many times new text was written."""
        return self._throttle.repaints

    @property
    def painted(self) -> bool:
        """Whether any text has been written."""
        return bool(self._shown)

    def update(self, snap: Snapshot, *, force: bool = False) -> None:
        """Write the text that arrived since the last write, if the throttle allows or ``force``."""
        if self._throttle.due(force):
            self._write(render_text(snap))

    def finish(self, snap: Snapshot) -> None:
        """Write the rest, then the status line."""
        self._write(render_text(snap))
        tail = "" if self._shown.endswith("\n") or not self._shown else "\n"
        self._out.write(f"{tail}[{status_text(snap, self._throttle.elapsed())}]\n")
        self._out.flush()

    @property
    def _out(self) -> TextIO:
        return self._stream or sys.stdout  # looked up late: IPython swaps sys.stdout per cell

    def _write(self, text: str) -> None:
        if text.startswith(self._shown):
            new = text[len(self._shown) :]
        else:  # an earlier block changed (a function result): show it from where it differs
            common = _common_prefix(text, self._shown)
            new = "\n" + text[common:]
        # Recorded first: an interrupt landing in write() must not make finish() repeat it.
        self._shown = text
        if new:
            self._out.write(new)
            self._out.flush()


def _common_prefix(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i
