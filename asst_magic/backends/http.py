"""A backend over the ``openai`` SDK: the SDK for auth, URLs and errors, our own event path.

Streams are read as raw bytes (``with_streaming_response``) and decoded with
``SSEDecoder`` + ``json.loads``: turning every event into a pydantic model costs
~50× more than the whole rest of the magic's event path.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from asst_magic.backends.base import (
    TICK,
    Backend,
    BackendError,
    RunEvent,
    RunRequest,
    ThreadNotFound,
)
from asst_magic.backends.reader import ChunkReader
from asst_magic.sse import DONE, REASONING_HEADER, SSEDecoder

if TYPE_CHECKING:
    import openai

    from asst_magic.backends.variables import Fetched, VariablesAPI

__all__ = ["SDKBackend", "decode_events", "unique_path"]

_ACTIVE = ("queued", "in_progress", "requires_action", "cancelling")
_CANCEL_WAIT = 10.0
# Ask the local server for the model's reasoning as extra events (others ignore the header).
_REASONING = {REASONING_HEADER: "1"}


def decode_events(chunks: Iterator[bytes | None]) -> Iterator[RunEvent]:
    """Server-sent event bytes to ``RunEvent``s; ``data: [DONE]`` becomes ``done``.

    A ``None`` chunk (the reader's timer) becomes a ``client.tick`` event.
    """
    decoder, loads = SSEDecoder(), json.loads
    for chunk in chunks:
        if chunk is None:
            yield TICK
            continue
        for name, data in decoder.feed(chunk):
            yield RunEvent(name, None if data == DONE else loads(data))
    for name, data in decoder.flush():
        yield RunEvent(name, None if data == DONE else loads(data))


class SDKBackend(Backend):
    """Any Assistants API v2 server reachable with an ``openai`` client."""

    #: ``--var`` values travel as attached files (any Assistants server) instead of
    #: being defined in the thread's kernel through the asst-magic variables API.
    attaches_variables = False

    def __init__(
        self, client: openai.OpenAI, *, hint: str, files_dir: Path = Path("assistant_files")
    ) -> None:
        self.client = client
        self.base_url = str(client.base_url).rstrip("/")
        self.files_dir = files_dir
        self._hint = hint
        self._assistant_tools: dict[str, list[dict[str, Any]]] = {}
        self._variables: VariablesAPI | None = None
        _quiet_sdk_deprecation(+1)
        self._quiet = True

    def close(self) -> None:
        """Close the HTTP connections; the last backend to close lets the SDK warn again."""
        self.client.close()
        if self._variables is not None:
            self._variables.close()
        if self._quiet:
            self._quiet = False
            _quiet_sdk_deprecation(-1)

    def default_assistant(self) -> str:
        """The assistant to use when the cell and the configuration name none."""
        raise BackendError("No assistant configured: pass --assistant ID or set ASSISTANT_ID.")

    # -- runs ---------------------------------------------------------------------

    def create_run(self, request: RunRequest) -> Iterator[RunEvent]:
        """Start a streamed run: create-and-run for a new thread, else add the message first."""
        with self._errors():
            assistant_id = request.assistant_id or self.default_assistant()
            options = self._run_options(request, assistant_id)
            request, created = self._place_variables(request)
            message = self._message(request)
            if request.thread_id is None:
                threads: Any = self.client.beta.threads.with_streaming_response
                opened = threads.create_and_run(thread={"messages": [message]}, **options)
                return self._stream(opened)
            thread_id = request.thread_id
            self.check_thread(thread_id)
            self._tools_of(assistant_id)  # an unknown assistant fails before the message is posted
            posted = self.client.beta.threads.messages.create(thread_id, **message)
            runs: Any = self.client.beta.threads.runs.with_streaming_response
            opened = runs.create(thread_id, **options)
        # A run that is refused leaves no unanswered message in the thread's history.
        return self._stream(opened, undo=lambda: self._undo(thread_id, posted.id, created))

    def _undo(self, thread_id: str, message_id: str, created: bool) -> None:
        self._delete_message(thread_id, message_id)
        if created:
            self.delete_thread(thread_id)

    # -- variables (``--var``, ``%asst_get``) ------------------------------------------

    def _place_variables(self, request: RunRequest) -> tuple[RunRequest, bool]:
        """Define ``--var`` values in the thread's kernel (a new thread is made for them)."""
        if not request.variables or self.attaches_variables:
            return request, False
        created = request.thread_id is None
        thread_id = request.thread_id or self.create_thread()
        try:
            for value in request.variables:
                self._variables_api().put(
                    thread_id, value.name, value.format, value.kind, value.data
                )
        except BaseException:
            if created:
                self.delete_thread(thread_id)
            raise
        return replace(request, thread_id=thread_id), created

    def get_variable(self, thread_id: str, name: str, *, max_bytes: int) -> Fetched:
        """The bytes of ``name`` from the thread's kernel (the asst-magic variables API)."""
        return self._variables_api().get(thread_id, name, max_bytes=max_bytes)

    def _variables_api(self) -> VariablesAPI:
        from asst_magic.backends.variables import VariablesAPI

        if self._variables is None:
            self._variables = VariablesAPI(self.base_url, self.client.api_key)
        return self._variables

    def submit_tool_outputs(
        self, thread_id: str, run_id: str, outputs: list[dict[str, str]]
    ) -> Iterator[RunEvent]:
        """Submit function results and continue the run's stream."""
        runs = self.client.beta.threads.runs.with_streaming_response
        with self._errors():
            tool_outputs: Any = outputs
            opened = runs.submit_tool_outputs(
                run_id,
                thread_id=thread_id,
                tool_outputs=tool_outputs,
                stream=True,
                extra_headers=_REASONING,
            )
        return self._stream(opened)

    def _stream(self, opened: Any, undo: Callable[[], None] | None = None) -> Iterator[RunEvent]:
        with self._errors(), contextlib.ExitStack() as stack:
            try:
                response = stack.enter_context(opened)  # the request is sent here
            except Exception:
                if undo is not None:
                    undo()
                raise
            yield from decode_events(ChunkReader(response).chunks(self.tick))

    def _delete_message(self, thread_id: str, message_id: str) -> None:
        with contextlib.suppress(_api_error()):  # cleanup: the original error matters more
            self.client.beta.threads.messages.delete(message_id, thread_id=thread_id)

    def _run_options(self, request: RunRequest, assistant_id: str) -> dict[str, Any]:
        options: dict[str, Any] = {"assistant_id": assistant_id, "stream": True}
        options["extra_headers"] = _REASONING
        if request.model:
            options["model"] = request.model
        if request.instructions:
            options["instructions"] = request.instructions
        if request.function_tools:
            options["tools"] = self._tools_of(assistant_id) + request.function_tools
        return options

    def _tools_of(self, assistant_id: str) -> list[dict[str, Any]]:
        """The assistant's own tools, kept when a cell adds functions (fetched once)."""
        import openai

        if assistant_id not in self._assistant_tools:
            try:
                assistant = self.client.beta.assistants.retrieve(assistant_id)
            except openai.NotFoundError:
                raise BackendError(
                    f"No assistant {assistant_id} at {self.base_url}. Check `%config "
                    "AssistantMagics.assistant_id` (or ASSISTANT_ID), or drop --assistant."
                ) from None
            tools = [t.to_dict() for t in assistant.tools if t.type != "function"]
            self._assistant_tools[assistant_id] = tools
        return self._assistant_tools[assistant_id]

    def _message(self, request: RunRequest) -> dict[str, Any]:
        from asst_magic.variables import message_block

        text = request.message
        uploads: list[tuple[str, Path | bytes]] = [(p.name, p) for p in request.files]
        if request.variables:
            sent = request.variables if self.attaches_variables else ()
            attached: list[tuple[str, Path | bytes]] = [(v.name + v.suffix, v.data) for v in sent]
            uploads += attached
            names = [name for name, _ in attached]
            # The cell's trailing newline would otherwise sit between question and block.
            text = text.rstrip() + message_block([v.description for v in request.variables], names)
        message: dict[str, Any] = {"role": "user", "content": text}
        if uploads:
            message["attachments"] = [
                {"file_id": self._upload(name, data), "tools": [{"type": "code_interpreter"}]}
                for name, data in uploads
            ]
        return message

    def _upload(self, name: str, content: Path | bytes) -> str:
        if isinstance(content, bytes):
            return self.client.files.create(file=(name, content), purpose="assistants").id
        with content.open("rb") as handle:
            return self.client.files.create(file=(name, handle), purpose="assistants").id

    def cancel(self, thread_id: str, run_id: str | None) -> None:
        """Cancel the run (or the thread's active runs) and wait until it has stopped."""
        with self._errors():
            run_ids = [run_id] if run_id else self._active_runs(thread_id)
            for rid in run_ids:
                with contextlib.suppress(_api_error()):  # it may have just finished
                    self.client.beta.threads.runs.cancel(rid, thread_id=thread_id)
                self._wait_stopped(thread_id, rid)

    def _active_runs(self, thread_id: str) -> list[str]:
        runs = self.client.beta.threads.runs.list(thread_id, limit=5)
        return [run.id for run in runs.data if run.status in _ACTIVE]

    def _wait_stopped(
        self, thread_id: str, run_id: str, clock: Callable[[], float] = time.monotonic
    ) -> None:
        deadline, pause = clock() + _CANCEL_WAIT, 0.02
        while clock() < deadline:
            run = self.client.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
            if run.status not in _ACTIVE:
                return
            time.sleep(pause)  # the polling contract: the server settles the cancel
            pause = min(pause * 2, 0.5)

    # -- threads and files ----------------------------------------------------------

    def check_thread(self, thread_id: str) -> None:
        """Raise ``ThreadNotFound`` unless the thread exists."""
        import openai

        with self._errors():
            try:
                self.client.beta.threads.retrieve(thread_id)
            except openai.NotFoundError:
                raise ThreadNotFound(thread_id) from None

    def create_thread(self) -> str:
        """A new, empty thread."""
        with self._errors():
            return self.client.beta.threads.create().id

    def delete_thread(self, thread_id: str) -> None:
        """Delete a thread, ignoring failures (it is cleanup)."""
        with contextlib.suppress(Exception):
            self.client.beta.threads.delete(thread_id)

    def fetch_file(self, file_id: str, *, keep: bool = False) -> RunEvent:
        """Download a file; a ``client.file`` event with its bytes, name and saved path.

        Files are saved in ``files_dir`` under their own names (``name (2).csv`` when a
        different file already has that name); plots only with ``save_images``.
        """
        with self._errors():
            content = self.client.files.content(file_id).read()
            name = self._file_name(file_id)
        data = {"file_id": file_id, "content": content, "name": name, "path": None}
        if keep or self.save_images or not content.startswith(b"\x89PNG"):
            self.files_dir.mkdir(parents=True, exist_ok=True)
            path = unique_path(self.files_dir, name, content)
            path.write_bytes(content)
            data["path"] = path.as_posix()
        return RunEvent("client.file", data)

    def _file_name(self, file_id: str) -> str:
        import openai

        try:
            filename = Path(self.client.files.retrieve(file_id).filename).name
        except openai.APIError:
            filename = file_id
        return re.sub(r"[^\w. ()-]", "_", filename).strip(". ") or file_id

    def history(self, thread_id: str) -> Iterator[RunEvent]:
        """Past messages in order; an assistant message comes with its run's code steps."""
        from asst_magic.backends.history import HistoryReader

        self.check_thread(thread_id)
        with self._errors():
            yield from HistoryReader(self.client, self.fetch_file).events(thread_id)

    # -- errors -----------------------------------------------------------------------

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """SDK errors become ``BackendError``s that say what failed and what to do."""
        import httpx2
        import openai

        try:
            yield
        except openai.APIConnectionError as exc:
            raise BackendError(
                f"No assistant server at {self.base_url} ({_reason(exc)}). {self._hint}"
            ) from None
        except httpx2.TransportError as exc:
            raise BackendError(
                f"The connection to {self.base_url} broke during the run ({exc}). "
                "Run the cell again."
            ) from None
        except openai.NotFoundError as exc:
            raise BackendError(f"{_api_message(exc).rstrip('.')} (from {self.base_url}).") from None
        except openai.APIStatusError as exc:
            raise BackendError(
                f"The assistant server at {self.base_url} answered {exc.status_code}: "
                f"{_api_message(exc)}"
            ) from None


# The SDK marks Assistants endpoints deprecated with varying messages: match any message,
# but only for warnings raised from this package's backends.
_DEPRECATION = ("", r"asst_magic\.backends\.")
_quiet_backends = [0]


def unique_path(folder: Path, name: str, content: bytes) -> Path:
    """``folder/name``, or ``name (2).ext``, ``(3)``… when a different file holds the name.

    The same bytes under the same name reuse the file, so running a notebook again does
    not pile up copies.
    """
    stem, suffix = Path(name).stem, Path(name).suffix
    path, n = folder / name, 1
    while path.exists() and path.read_bytes() != content:
        n += 1
        path = folder / f"{stem} ({n}){suffix}"
    return path


def _quiet_sdk_deprecation(change: int) -> None:
    """Ignore the SDK's Assistants deprecation warnings for our own calls while a backend is open.

    We speak the Assistants protocol on purpose (to our own server or a compatible one);
    the filter matches only warnings raised from this package's backends, so a user's own
    Assistants calls still warn, and it is removed when the last backend closes.
    """
    message, module = _DEPRECATION
    _quiet_backends[0] += change
    if change > 0:  # (again: something may have reset the filters since, as pytest does)
        warnings.filterwarnings("ignore", message, DeprecationWarning, module)
    elif change < 0 and _quiet_backends[0] == 0:
        ours = ("ignore", message or None, DeprecationWarning, module)
        filters: list[Any] = warnings.filters  # type: ignore[assignment]  # a list at runtime
        filters[:] = [f for f in filters if _filter_key(f) != ours]


def _filter_key(entry: Any) -> tuple[Any, ...]:
    action, msg, category, module, _ = entry
    return (action, getattr(msg, "pattern", msg), category, getattr(module, "pattern", module))


def _api_error() -> type[Exception]:
    import openai

    return openai.APIError


def _api_message(exc: Any) -> str:
    body: Any = exc.body if isinstance(exc.body, dict) else {}
    error: Any = body.get("error", body)
    return str(error.get("message") or exc.message) if isinstance(error, dict) else str(exc)


def _reason(exc: Exception) -> str:
    cause = exc.__cause__ or exc.__context__
    text = str(cause or exc) or type(cause or exc).__name__
    return "connection refused" if "refused" in text.lower() else text
