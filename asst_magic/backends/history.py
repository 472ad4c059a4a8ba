"""A thread's past as ``*.completed`` events, in the order a transcript shows them.

Read with the ``openai`` client: the messages and the runs (``runs.list``), then each
run's steps. Every run ends with a ``thread.run.<status>`` event carrying the run
object itself, so a failed, cancelled or incomplete run is marked from what the
server says (``status``, ``last_error``, ``incomplete_details``), never guessed.
Files the past shows are fetched as they come, like a live run's.

>>> order = arrange([{"id": "m1", "role": "user", "created_at": 5}],
...                 [{"id": "r1", "created_at": 5, "status": "failed"}])
>>> [(kind, obj["id"]) for kind, obj in order]
[('message', 'm1'), ('run', 'r1')]
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from asst_magic.backends.base import RunEvent, file_refs, kept_refs

if TYPE_CHECKING:
    import openai

__all__ = ["HistoryReader", "arrange"]

Obj = dict[str, Any]
FetchFile = Callable[..., RunEvent]


class HistoryReader:
    """One thread's history over ``client``; ``fetch_file(file_id, keep=...)`` downloads.

    Example: ``HistoryReader(client, backend.fetch_file).events("thread_1")``.
    """

    def __init__(self, client: openai.OpenAI, fetch_file: FetchFile) -> None:
        self.client = client
        self.fetch_file = fetch_file

    def events(self, thread_id: str) -> Iterator[RunEvent]:
        """Each question, then the runs that answered it: their steps, messages and end."""
        threads = self.client.beta.threads
        messages = [m.to_dict() for m in threads.messages.list(thread_id, order="asc", limit=100)]
        runs = [r.to_dict() for r in threads.runs.list(thread_id, order="asc", limit=100)]
        for kind, obj in arrange(messages, runs):
            if kind == "run":
                owned = [m for m in messages if m.get("run_id") == obj["id"]]
                yield from self._run(thread_id, obj, owned)
            else:
                yield from self._completed("thread.message.completed", obj)

    def _run(self, thread_id: str, run: Obj, messages: list[Obj]) -> Iterator[RunEvent]:
        """A run's steps and messages in step order, then the run object as its end."""
        by_id = {m["id"]: m for m in messages}
        steps = self.client.beta.threads.runs.steps.list(
            run["id"], thread_id=thread_id, order="asc"
        )
        for step_obj in steps:
            step: Obj = step_obj.to_dict()
            details = step.get("step_details") or {}
            if details.get("type") == "tool_calls":
                yield from self._completed("thread.run.step.completed", step)
            message = by_id.pop((details.get("message_creation") or {}).get("message_id"), None)
            if message is not None:
                yield from self._completed("thread.message.completed", message)
        for message in by_id.values():  # one no step created (the server left it out)
            yield from self._completed("thread.message.completed", message)
        yield RunEvent(f"thread.run.{run.get('status') or 'completed'}", run)

    def _completed(self, name: str, obj: Obj) -> Iterator[RunEvent]:
        yield RunEvent(name, obj)
        kept = kept_refs(obj)
        for file_id in dict.fromkeys(file_refs(obj)):
            yield self.fetch_file(file_id, keep=file_id in kept)


def arrange(messages: list[Obj], runs: list[Obj]) -> list[tuple[str, Obj]]:
    """``("message", m)`` and ``("run", r)`` in transcript order: each run after its question.

    A run's own messages (``run_id``) are left out: the run shows them. A run with no
    message (it failed or was cancelled before it wrote one) goes to the first
    question after the previous run's that no run answered yet, unless that question
    was asked after the run began (``created_at``); runs and questions are both in
    creation order, so one run per question, as the magic makes them, lines up exactly.
    """
    known = {run["id"] for run in runs}
    turns = _turns([m for m in messages if m.get("run_id") not in known])
    if not turns and runs:
        turns = [[]]
    anchors = _anchors(messages, turns, known)
    placed = _place(turns, runs, anchors)
    order: list[tuple[str, Obj]] = []
    for n, turn in enumerate(turns):
        order += [("message", m) for m in turn]
        order += [("run", run) for run in runs if placed[run["id"]] == n]
    return order


def _turns(messages: list[Obj]) -> list[list[Obj]]:
    """The messages split before each question (a user message)."""
    turns: list[list[Obj]] = []
    for message in messages:
        if message.get("role") == "user" or not turns:
            turns.append([])
        turns[-1].append(message)
    return turns


def _anchors(messages: list[Obj], turns: list[list[Obj]], known: set[str]) -> dict[str, int]:
    """The turn of each run that wrote a message: the last question before that message."""
    turn_of = {m["id"]: n for n, turn in enumerate(turns) for m in turn}
    anchors: dict[str, int] = {}
    current = 0
    for message in messages:
        current = turn_of.get(message["id"], current)
        run_id = message.get("run_id")
        if run_id in known and run_id not in anchors:
            anchors[run_id] = current
    return anchors


def _place(turns: list[list[Obj]], runs: list[Obj], anchors: dict[str, int]) -> dict[str, int]:
    """The turn of every run: its anchor, else the first free question it can answer."""
    asked = [_asked(turn) for turn in turns]
    taken, placed, low = set(anchors.values()), {}, 0
    for i, run in enumerate(runs):
        turn = anchors.get(run["id"])
        if turn is None:
            later = [anchors[r["id"]] for r in runs[i + 1 :] if r["id"] in anchors]
            turn = _free_turn(asked, taken, low, max(low, min(later, default=len(turns) - 1)), run)
        placed[run["id"]] = turn
        taken.add(turn)
        low = turn
    return placed


def _free_turn(asked: list[float], taken: set[int], low: int, high: int, run: Obj) -> int:
    """Among turns ``low..high``: the first no run answered yet, asked before ``run`` began.

    Times are whole seconds: a question asked in the run's second may have come after
    it, but one asked in an earlier second came before, so the search starts at the
    latest of those.
    """
    began = float(run.get("created_at") or 0)
    window = range(low, high + 1)
    start = max([n for n in window if asked[n] < began], default=low)
    fits = [n for n in window if n >= start and asked[n] <= began]
    free = [n for n in fits if n not in taken]
    return free[0] if free else (fits[-1] if fits else low)


def _asked(turn: list[Obj]) -> float:
    """When the turn's question was asked (never, for messages before the first question)."""
    if turn and turn[0].get("role") == "user":
        return float(turn[0].get("created_at") or 0)
    return float("inf")
