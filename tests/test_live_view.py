"""The live widget while a run is silent: code that runs for seconds, in an in-process shell."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from live_support import Replica, batches, recording_comms
from test_magics import cell, magics, plain

CODE = "import time\ntime.sleep(1.5)\nprint('slept')"


@pytest.fixture
def live() -> Iterator[list[dict[str, Any]]]:
    """Every comm message the live widgets sent (real anywidget objects, recorded comms)."""
    with recording_comms() as log:
        yield log


def states(log: list[dict[str, Any]]) -> list[list[str]]:
    """What the live view showed after each batch: part texts, then the status line."""
    replica, shown = Replica(), []
    for ops in batches(log):
        replica.apply(ops)
        shown.append(replica.texts())
    return shown


def readers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "asst-magic-reader"]


def test_held_back_code_and_running_status_show_while_the_code_runs(
    shell: Any, live: list[dict[str, Any]]
) -> None:
    # One repaint per 0.5 s: the code's last chunks arrive within the first repaint's
    # interval, then the server is silent for 1.5 s while the code sleeps.
    magics(shell).repaint_hz = 2
    outputs = cell(shell, "slow code")
    while_running = [
        state
        for state in states(live)
        if CODE in state
        and any(t.startswith("running code… · ") for t in state)
        and "slept\n" not in state  # the code's logs
    ]
    assert while_running, live  # the full code and "running code", before the logs came
    assert plain(outputs)[:2] == [CODE, "slept\n"]
    assert plain(outputs)[-1].startswith("completed")
    assert readers() == []  # the stream's reader thread ended with the stream


def test_the_front_end_ticks_the_clock_while_the_server_is_silent(
    shell: Any, live: list[dict[str, Any]]
) -> None:
    magics(shell).repaint_hz = 4
    cell(shell, "slow code")
    status = [op for ops in batches(live) for op in ops if op[0] == "status"]
    running = [op for op in status if op[1] == "running code…"]
    assert running and running[-1][4] is True  # the front end advances the elapsed time
    # Nothing is re-sent during the 1.5 s of silence: no two batches carry the same status.
    assert len({(op[1], op[2], op[4]) for op in status}) == len(status)
    assert readers() == []
