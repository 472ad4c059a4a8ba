"""The one interface every backend offers: a run as a stream of normalized events.

A backend yields ``RunEvent(name, data)``: the Assistants API stream events as
parsed JSON (``thread.message.delta``...), plus ``client.*`` events the magic adds
(``client.call`` for a function it runs, ``client.file`` for a fetched file,
``client.tick`` when the stream has been silent for ``Backend.tick`` seconds, so the
view can repaint what the throttle held back).
``Backend.stream_run`` owns the function-calling loop, so every backend has it.
"""

from __future__ import annotations

import contextlib
import io
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from asst_magic.accumulate import code_calls, image_ids

if TYPE_CHECKING:
    from asst_magic.backends.variables import Fetched
    from asst_magic.functions import CallOutcome, FunctionRegistry
    from asst_magic.variables import Encoded

__all__ = [
    "TICK",
    "Backend",
    "BackendError",
    "RunEvent",
    "RunRequest",
    "ThreadNotFound",
    "file_refs",
    "kept_refs",
]


class RunEvent(NamedTuple):
    """One stream event: its name and its decoded ``data``."""

    name: str
    data: Any


#: Yielded when the stream has been silent for ``Backend.tick`` seconds.
TICK = RunEvent("client.tick", None)


class BackendError(Exception):
    """A problem the user can fix; the message names it and the next step."""


class ThreadNotFound(BackendError):
    """The requested thread does not exist on the server."""

    def __init__(self, thread_id: str) -> None:
        super().__init__(
            f"thread {thread_id} not found. Start a new one with `%asst_thread new` "
            "(or `%%assistant --new`)."
        )
        self.thread_id = thread_id


@dataclass(frozen=True)
class RunRequest:
    """What one ``%%assistant`` cell asks for; ``thread_id=None`` starts a new thread."""

    message: str
    thread_id: str | None = None
    assistant_id: str | None = None
    model: str | None = None
    instructions: str | None = None
    files: tuple[Path, ...] = ()
    function_tools: list[dict[str, Any]] = field(default_factory=list)
    #: ``--var`` values: defined in the thread's kernel first, or attached as files.
    variables: tuple[Encoded, ...] = ()


class Backend(ABC):
    """An Assistants-compatible service, reached over HTTP."""

    #: Where requests go, for error messages.
    base_url: str = ""
    #: Where files the assistant makes are saved (links in the transcript point here).
    files_dir: Path = Path("assistant_files")
    #: Whether plots are saved there too (they are shown either way).
    save_images: bool = False
    #: Seconds of silence after which the stream yields a ``client.tick`` (None: never);
    #: a function is asked before each wait (the live view's trailing timer).
    tick: float | Callable[[], float] | None = None
    #: Words every run's status line carries, e.g. ``code network on``.
    status_notes: tuple[str, ...] = ()

    @abstractmethod
    def create_run(self, request: RunRequest) -> Iterator[RunEvent]:
        """Post the message and start a streamed run."""

    @abstractmethod
    def submit_tool_outputs(
        self, thread_id: str, run_id: str, outputs: list[dict[str, str]]
    ) -> Iterator[RunEvent]:
        """Submit function results; the run's stream continues."""

    @abstractmethod
    def cancel(self, thread_id: str, run_id: str | None) -> None:
        """Cancel the run (or, without an id, the thread's active run) and wait for it."""

    @abstractmethod
    def fetch_file(self, file_id: str, *, keep: bool = False) -> RunEvent:
        """Download a file the run produced: a ``client.file`` event.

        ``keep``: a file to offer for download (saved in ``files_dir``), not only a plot.
        """

    @abstractmethod
    def check_thread(self, thread_id: str) -> None:
        """Raise ``ThreadNotFound`` unless the thread exists."""

    @abstractmethod
    def create_thread(self) -> str:
        """A new, empty thread's id."""

    @abstractmethod
    def delete_thread(self, thread_id: str) -> None:
        """Delete a thread (best effort: used to drop a thread whose first run failed)."""

    @abstractmethod
    def history(self, thread_id: str) -> Iterator[RunEvent]:
        """The thread's past messages and tool steps as ``*.completed`` events, in order."""

    def close(self) -> None:
        """Release what the backend started (the local server, connections)."""
        return None

    def get_variable(self, thread_id: str, name: str, *, max_bytes: int) -> Fetched:
        """The bytes of a variable in the thread's code interpreter (untrusted: decode safely)."""
        raise BackendError(f"{type(self).__name__} cannot read the code interpreter's variables.")

    def stream_run(
        self, request: RunRequest, registry: FunctionRegistry | None = None
    ) -> Generator[RunEvent, None, None]:
        """The whole run: its events, files it shows, and any rounds of function calls."""
        stream = self.create_run(request)
        while True:
            required = yield from self._forward(stream)
            if required is None:
                return
            outputs = yield from run_functions(required, registry)
            stream = self.submit_tool_outputs(required["thread_id"], required["id"], outputs)

    def _forward(
        self, stream: Iterable[RunEvent]
    ) -> Generator[RunEvent, None, dict[str, Any] | None]:
        """Pass events on, fetch the files they show; return a ``requires_action`` run."""
        required: dict[str, Any] | None = None
        seen: set[str] = set()
        for event in stream:
            yield event
            name = event.name
            if name == "thread.run.requires_action":
                required = event.data
            elif name.endswith(".completed") and name != "thread.run.completed":
                kept = kept_refs(event.data)
                for file_id in file_refs(event.data):
                    if file_id not in seen:
                        seen.add(file_id)
                        yield self.fetch_file(file_id, keep=file_id in kept)
        return required


def run_functions(
    run: dict[str, Any], registry: FunctionRegistry | None
) -> Generator[RunEvent, None, list[dict[str, str]]]:
    """Run the calls a ``requires_action`` run asks for; return the outputs to submit.

    Each call is announced ``running`` just before it runs and reported right after, so
    the view shows which one is busy; the ``async def`` ones of a round run together, last.
    What a call prints is kept with it (``printed``): the final output replaces the cell's
    output area, so a plain print would vanish. Async calls that run together share one
    capture, shown under the first of them.
    """
    from asst_magic.functions import ToolCall, default_registry

    registry = registry if registry is not None else default_registry
    action = run.get("required_action") or {}
    raw = (action.get("submit_tool_outputs") or {}).get("tool_calls") or []
    calls = [ToolCall.from_dict(call) for call in raw]
    concurrent = [call for call in calls if _is_async(registry, call.name)]
    outcomes: dict[str, CallOutcome] = {}
    for batch in [[call] for call in calls if call not in concurrent] + [concurrent]:
        for call in batch:
            yield RunEvent("client.call", {"tool_call_id": call.id, "status": "running"})
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
            results = registry.execute(batch)
        for i, outcome in enumerate(results):
            outcomes[outcome.tool_call_id] = outcome
            yield RunEvent(
                "client.call", _call_state(outcome, printed.getvalue() if i == 0 else "")
            )
    return [outcomes[call.id].to_dict() for call in calls]


def _is_async(registry: FunctionRegistry, name: str) -> bool:
    entry = registry.get(name)
    return entry is not None and entry.is_async


def _call_state(outcome: CallOutcome, printed: str) -> dict[str, Any]:
    status = "error" if outcome.error else "done"
    return {
        "tool_call_id": outcome.tool_call_id,
        "status": status,
        "output": outcome.output,
        "error": outcome.error,
        "printed": printed,
    }


def file_refs(obj: dict[str, Any]) -> list[str]:
    """File ids a completed step or message shows: code images, image parts, file links,
    and the files an assistant message attaches (what its code wrote to /mnt/data)."""
    found = [file_id for ci in code_calls(obj) for file_id in image_ids(ci)]
    for part in obj.get("content") or ():
        if part.get("type") == "image_file":
            found.append(part["image_file"]["file_id"])
    return found + kept_refs(obj)


def kept_refs(obj: dict[str, Any]) -> list[str]:
    """The files among ``file_refs`` a user downloads: file links and attachments."""
    found = []
    for part in obj.get("content") or ():
        for note in (part.get("text") or {}).get("annotations") or ():
            if note.get("type") == "file_path":
                found.append(note["file_path"]["file_id"])
    if obj.get("role") == "assistant":
        found += [a["file_id"] for a in obj.get("attachments") or () if a.get("file_id")]
    return found


def dumps(value: Any) -> str:
    """Compact JSON, as sent on the wire."""
    return json.dumps(value, separators=(",", ":"))
