"""The live widget while a run is silent: code that runs for seconds, in an in-process shell."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from ipywidgets import Output, Widget
from test_magics import cell, magics, plain

CODE = "import time\ntime.sleep(1.5)\nprint('slept')"


@pytest.fixture
def live() -> Iterator[list[list[str]]]:
    """Every state the live widgets showed: all their texts, after each outputs assignment."""
    widgets: list[Output] = []
    states: list[list[str]] = []

    def record(change: Any) -> None:  # runs where the view assigns: the cell's thread
        states.append([_text(o) for w in widgets for o in w.outputs])

    def constructed(widget: Widget) -> None:
        if isinstance(widget, Output):
            widgets.append(widget)
            widget.observe(record, names="outputs")

    before = Widget._widget_construction_callback
    Widget.on_widget_constructed(constructed)
    try:
        yield states
    finally:
        Widget.on_widget_constructed(before)


def _text(output: dict[str, Any]) -> str:
    return str(output.get("text") or output.get("data", {}).get("text/plain", ""))


def readers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "asst-magic-reader"]


def test_held_back_code_and_running_status_show_while_the_code_runs(
    shell: Any, live: list[list[str]]
) -> None:
    # One repaint per 0.5 s: the code's last chunks arrive within the first repaint's
    # interval, then the server is silent for 1.5 s while the code sleeps.
    magics(shell).repaint_hz = 2
    outputs = cell(shell, "slow code")
    while_running = [
        state
        for state in live
        if CODE in state
        and any(t.startswith("running code · ") for t in state)
        and "slept\n" not in state  # the code's logs
    ]
    assert while_running, live  # the full code and "running code", before the logs came
    assert plain(outputs)[:2] == [CODE, "slept\n"]
    assert plain(outputs)[-1].startswith("completed")
    assert readers() == []  # the stream's reader thread ended with the stream


def test_elapsed_time_advances_while_the_server_is_silent(
    shell: Any, live: list[list[str]]
) -> None:
    magics(shell).repaint_hz = 4
    cell(shell, "slow code")
    shown = [t for state in live for t in state if t.startswith("running code · ")]
    seconds = [float(t.split(" · ")[1].removesuffix(" s")) for t in shown]
    assert len(set(seconds)) > 1  # repainted several times with no event arriving
    assert readers() == []
