"""Show a run while it streams: the only code that touches ipywidgets or the display.

``RunView`` owns one live widget (``asst_magic.live``), displayed once on the
cell's thread. A repaint sends only what is new since the last one: appended
Markdown, finished code lines (highlighted once) and the open line, changed
status words; so the bytes sent grow with the answer, not with the number of
repaints. When the run ends the widget is replaced by ordinary outputs, so a
saved notebook shows the transcript without widget state. ``TextView`` streams
plain text where there is no widget front end.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, Protocol, TextIO

from asst_magic.accumulate import TERMINAL_STATUSES, Snapshot
from asst_magic.live import LiveDiff, LiveWidget, new_live_widget
from asst_magic.render import Renderer, render_text, status_parts, status_text

__all__ = ["DisplayPublisher", "RunView", "TextView", "View"]

Clock = Callable[[], float]


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

    def wait(self) -> float:
        """Seconds until held-back content is due (the stream's read timeout)."""
        ...

    def finish(self, snap: Snapshot) -> None: ...

    def note(self, text: str) -> None:
        """Show ``text`` as the status line at once (before the run exists)."""
        ...

    def discard(self) -> None:
        """Take back whatever was shown (the run never started)."""
        ...

    def elapsed(self) -> float:
        """Seconds since the view was made: the clock of the status line."""
        ...


# Repaints may cost at most this many bytes of overhead beyond the content they carry...
_ALLOWANCE = 2048
# ...except that held-back content is shown at least this often (seconds).
_HEARTBEAT = 1.0
# How long a stream may be silent before the view wakes anyway (Ctrl-C, elapsed time).
_IDLE = 0.25


class _Pacer:
    """When to repaint: at most ``hz`` a second, with a trailing repaint for held-back content.

    Like rich's ``Live(refresh_per_second=...)``, plus two guards: a repaint that took
    ``d`` seconds allows the next one only ``2 d`` later, so paint time never turns
    into a repaint per event; and the bytes a repaint adds beyond its content (ops,
    keys, the open code line sent again) stay within the content sent so far (plus
    ``_ALLOWANCE``), so slow, tiny deltas cannot multiply what the front end receives.
    """

    def __init__(self, hz: float, clock: Clock) -> None:
        self.interval = 1.0 / hz if hz > 0 else 0.0
        self.clock = clock
        self.started = clock()
        self.next = -float("inf")
        self.last = -float("inf")
        self.pending = False
        self.repaints = 0
        self.content = 0
        self.overhead = 0

    def due(self, force: bool = False) -> bool:
        """Whether to repaint now; otherwise the change waits for ``wait()``'s deadline."""
        now = self.clock()
        if force or now >= self._deadline():
            return True
        self.pending = True
        return False

    def painted(self, start: float, content: int, sent: int) -> None:
        """Record a repaint that began at ``start`` and sent ``sent`` bytes for ``content``."""
        took = self.clock() - start
        # repaint_hz = 0 asks for no throttle at all: every update repaints.
        self.next = start + max(self.interval, 2 * took) if self.interval else start
        self.last = start
        self.pending = False
        self.repaints += 1
        self.content += content
        self.overhead += max(0, sent - content)

    def idle(self) -> None:
        """A repaint found nothing to send."""
        self.pending = False

    def wait(self) -> float:
        """Seconds until held-back content is due, else the idle tick (the trailing timer)."""
        if not self.pending:
            return _IDLE
        return min(_IDLE, max(0.0, self._deadline() - self.clock()))

    def elapsed(self) -> float:
        return self.clock() - self.started

    def _deadline(self) -> float:
        if self.overhead <= self.content + _ALLOWANCE:
            return self.next
        return max(self.next, self.last + _HEARTBEAT)


class RunView:
    """A live widget for one run, then the run's transcript as ordinary outputs."""

    def __init__(
        self,
        display_pub: DisplayPublisher,
        *,
        repaint_hz: float = 25.0,
        clock: Clock = time.monotonic,
        widget_factory: Callable[[], LiveWidget] | None = None,
        collapse: str = "code",
    ) -> None:
        self._pub = display_pub
        self._pacer = _Pacer(repaint_hz, clock)
        self._new_widget = widget_factory or new_live_widget
        self._renderer = Renderer(collapse)
        self._diff = LiveDiff()
        self._widget: LiveWidget | None = None

    @property
    def repaints(self) -> int:
        """How many times the live widget was sent something."""
        return self._pacer.repaints

    @property
    def painted(self) -> bool:
        """Whether the run has shown anything (a "Starting…" line alone does not count)."""
        return self._widget is not None and self._pacer.repaints > 0

    def update(self, snap: Snapshot, *, force: bool = False) -> None:
        """Repaint if the pacer allows (or ``force``); cheap enough to call on every event."""
        if self._pacer.due(force):
            self._paint(snap)

    def wait(self) -> float:
        """Seconds the stream may stay silent before ``update`` should be called again."""
        return self._pacer.wait()

    def elapsed(self) -> float:
        """Seconds since the view was made."""
        return self._pacer.elapsed()

    def note(self, text: str) -> None:
        """Show the live widget at once with ``text`` as its status line (its clock runs).

        It is the same widget the run then streams into, so nothing else is displayed
        (nbval, which ignores clears, compares only the final outputs).
        """
        widget = self._widget or self._show()
        ops = self._diff.status(text, [], self._pacer.elapsed(), running=True, failed=False)
        widget.send_batch(ops)

    def discard(self) -> None:
        """Remove what was shown: a run that could not start leaves no output behind."""
        if self._widget is not None:
            self._pub.clear_output(wait=False)
            self._widget.close()
            self._widget = None

    def finish(self, snap: Snapshot) -> None:
        """Replace the widget with the final outputs (ids in each output's metadata)."""
        outputs = self._renderer.render(snap, self._pacer.elapsed())
        if self._widget is not None:
            # Frontends drop the widget when the first final output arrives; nbval (which
            # ignores clear_output) sees a widget view with nothing to compare, then these.
            self._pub.clear_output(wait=True)
        for output in outputs:
            self._pub.publish(output["data"], output["metadata"])
        if self._widget is not None:
            self._widget.close()
            self._widget = None

    def _paint(self, snap: Snapshot) -> None:
        start = self._pacer.clock()
        widget = self._widget or self._show()
        elapsed = start - self._pacer.started
        ops, content = self._diff.ops(self._renderer.live(snap, elapsed))
        before, after = status_parts(snap, elapsed)
        failed = snap.status in ("failed", "expired") or snap.error is not None
        running = snap.status not in TERMINAL_STATUSES and not snap.interrupted
        ops += self._diff.status(before, after, elapsed, running=running, failed=failed)
        if ops:
            self._pacer.painted(start, content, widget.send_batch(ops))
        else:
            self._pacer.idle()

    def _show(self) -> LiveWidget:
        # Displayed from the cell's own thread: a display from a worker thread would land
        # in whichever cell is running then.
        self._widget = self._new_widget()
        view = {"version_major": 2, "version_minor": 1, "model_id": self._widget.model_id}
        self._pub.publish({"application/vnd.jupyter.widget-view+json": view}, {})
        return self._widget


class TextView:
    """Plain text to a stream (terminal IPython, no ipywidgets): code marked, images listed."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        repaint_hz: float = 25.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self._stream = stream
        self._pacer = _Pacer(repaint_hz, clock)
        self._shown = ""

    def elapsed(self) -> float:
        """Seconds since the view was made."""
        return self._pacer.elapsed()

    def note(self, text: str) -> None:
        """Print ``text`` on its own line (e.g. while the local server starts)."""
        self._out.write(f"[{text}]\n")
        self._out.flush()

    def discard(self) -> None:
        """Nothing to take back: printed text stays."""
        return None

    @property
    def repaints(self) -> int:
        """How many times new text was written."""
        return self._pacer.repaints

    @property
    def painted(self) -> bool:
        """Whether any text has been written."""
        return bool(self._shown)

    def update(self, snap: Snapshot, *, force: bool = False) -> None:
        """Write the text that arrived since the last write, if the throttle allows or ``force``."""
        if self._pacer.due(force):
            start = self._pacer.clock()
            written = self._write(render_text(snap))
            if written:
                self._pacer.painted(start, written, written)
            else:
                self._pacer.idle()

    def wait(self) -> float:
        """Seconds until held-back text is due."""
        return self._pacer.wait()

    def finish(self, snap: Snapshot) -> None:
        """Write the rest, then the status line."""
        self._write(render_text(snap))
        tail = "" if self._shown.endswith("\n") or not self._shown else "\n"
        self._out.write(f"{tail}[{status_text(snap, self._pacer.elapsed())}]\n")
        self._out.flush()

    @property
    def _out(self) -> TextIO:
        return self._stream or sys.stdout  # looked up late: IPython swaps sys.stdout per cell

    def _write(self, text: str) -> int:
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
        return len(new)


def _common_prefix(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i
