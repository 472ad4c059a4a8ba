"""``%%assistant``, ``%asst_thread`` and ``%asst_functions``: switchboards over the backends."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Generator, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from asst_magic.accumulate import Snapshot, apply
from asst_magic.backends.base import Backend, BackendError, RunEvent, RunRequest
from asst_magic.parse import interpolate
from asst_magic.result import RunResult
from asst_magic.settings import AssistantSettings
from asst_magic.usage import EMPTY, EXAMPLES, cell_usage

if TYPE_CHECKING:
    from asst_magic.functions import FunctionRegistry
    from asst_magic.variables import Encoded
    from asst_magic.view import View

__all__ = ["AssistantMagics", "RunInterrupted"]


class RunInterrupted(KeyboardInterrupt):
    """The user interrupted a run; it was cancelled on the server and its output kept."""

    def __init__(self, run_id: str | None, *, confirmed: bool = True) -> None:
        super().__init__(run_id)
        self.run_id, self.confirmed = run_id, confirmed

    def _render_traceback_(self) -> list[str]:
        # IPython shows these lines instead of a traceback: the interrupt was the user's choice.
        run = f"Run {self.run_id}" if self.run_id else "The run"
        if not self.confirmed:
            return [
                f"{run} was interrupted while cancelling: it may still be running on the "
                "server. `%asst_thread new` starts a fresh thread if the next cell is refused."
            ]
        return [
            f"{run} was cancelled (interrupted). The thread is kept: the next cell continues it."
        ]


@magics_class
class AssistantMagics(AssistantSettings):
    """Talk to an assistant from notebook cells; the conversation continues cell to cell."""

    def __init__(
        self,
        shell: Any = None,
        *,
        environ: Mapping[str, str] | None = None,
        launcher: Callable[[Any], Any] | None = None,
    ) -> None:
        """``environ`` and ``launcher`` (how the local server starts) are seams for tests."""
        super().__init__(shell=shell, environ=environ)
        self._launcher = launcher
        self._threads: dict[str, str | None] = {}  # backend name -> its current thread
        self._backends: dict[str, tuple[Any, Backend]] = {}

    @magic_arguments()
    @argument("--thread", metavar="ID", help="Run on this existing thread.")
    @argument("--new", action="store_true", help="Start a fresh thread with this cell.")
    @argument("--assistant", metavar="ID", help="Assistant to run.")
    @argument("--model", metavar="M", help="Model for this run.")
    @argument("--instructions", metavar="TEXT", help="Extra instructions for this run.")
    @argument("--file", metavar="PATH", action="append", default=[], help="Attach (repeatable).")
    @argument("-o", "--output", metavar="NAME", help="Store the RunResult in this variable.")
    @argument("--backend", choices=("local", "assistants"), help="Override the backend.")
    @argument("--functions", metavar="NAMES", help="Comma-separated functions to offer, or none.")
    @argument(
        "--var", metavar="NAME", action="append", default=[], help="Share a variable (repeatable)."
    )
    @cell_magic
    def assistant(self, line: str, cell: str) -> None:
        """Send the cell to the assistant and stream the run live into this output."""
        args = parse_argstring(self.assistant, line)
        message = interpolate(cell, self._shell.user_ns)
        if not message.strip():
            raise UsageError(EMPTY + self.assistant.parser.format_usage())
        name = self._backend_name(args.backend)
        view = self._view()
        if self._will_start(name):
            view.note("Starting the local assistant server…")  # first use: takes seconds
        try:
            registry = self._offered(args.functions)
        except UsageError:
            view.discard()
            raise
        with _user_errors(view):
            dropped = self._drop_left_thread(name)
            request = self._request(args, message, registry, self._threads.get(name))
            backend = self._backend(name)
            snap = self._play(backend, backend.stream_run(request, registry), view)
        if dropped:  # after the run: the live view's final swap clears what came before
            print(_new_thread_note(dropped))
        self._adopt_thread(name, backend, request, snap)
        if args.output:
            result = RunResult.from_snapshot(snap, files_dir=self.files_dir)
            self._shell.user_ns[args.output] = result
        if snap.interrupted:
            # Re-raised so "Run All" stops here, as after any interrupted cell.
            raise RunInterrupted(snap.run.get("id"), confirmed=snap.status == "cancelled")

    @magic_arguments()
    @argument("action", nargs="?", default="", help="new, history, or a thread id.")
    @line_magic
    def asst_thread(self, line: str) -> None:
        """Show the session's thread; ``new`` starts one, an id switches, ``history`` replays.

        Example: ``%asst_thread history``.
        """
        action = parse_argstring(self.asst_thread, line).action
        with _user_errors():
            if not action:
                print(self.thread_id or "No thread yet: the next %%assistant cell starts one.")
            elif action == "new":
                self.thread_id = None
                print("The next %%assistant cell starts a new thread.")
            elif action == "history":
                self._history()
            else:
                self._backend(None).check_thread(action)
                self.thread_id = action
                print(f"Continuing thread {action}.")

    @magic_arguments()
    @argument("action", nargs="?", default="list", choices=("list", "remove"))
    @argument("name", nargs="?", help="The function to remove.")
    @line_magic
    def asst_functions(self, line: str) -> None:
        """List the functions offered to the assistant, or remove one.

        Example: ``%asst_functions remove get_weather``.
        """
        args = parse_argstring(self.asst_functions, line)
        registry = self._registry()
        if args.action == "remove":
            if not args.name or args.name not in registry.names():
                raise UsageError(f"No function named {args.name!r}: see `%asst_functions list`.")
            registry.remove(args.name)
            print(f"Removed {args.name}.")
            return
        print(registry.describe())

    @property
    def thread_id(self) -> str | None:
        """The current thread of the configured backend (what ``%asst_thread`` shows)."""
        name = self._backend_name(None)
        dropped = self._drop_left_thread(name)
        if dropped:
            print(_new_thread_note(dropped))
        return self._threads.get(name)

    @thread_id.setter
    def thread_id(self, value: str | None) -> None:
        self._threads[self._backend_name(None)] = value

    @property
    def _shell(self) -> Any:
        assert self.shell is not None, "AssistantMagics needs a shell"
        return self.shell

    def close(self) -> None:
        """Stop every backend this instance started (the local server among them)."""
        for _, backend in self._backends.values():
            backend.close()
        self._backends.clear()

    # -- helpers: the switchboard's wiring --------------------------------------------

    def _request(
        self, args: Any, message: str, registry: FunctionRegistry, current: str | None
    ) -> RunRequest:
        files = tuple(_existing_file(path) for path in args.file)
        return RunRequest(
            message=message,
            thread_id=None if args.new else (args.thread or current),
            assistant_id=args.assistant or self.assistant_id or None,
            model=args.model,
            instructions=args.instructions or self.instructions or None,
            files=files,
            function_tools=registry.tools(),
            variables=self._shared(args.var),
        )

    def _shared(self, names: list[str]) -> tuple[Encoded, ...]:
        """The ``--var`` values, encoded and described for the model."""
        from asst_magic.variables import VariableError
        from asst_magic.variables.notebook import shared

        try:
            return shared(names, self._shell.user_ns, limit=self.max_var_bytes)
        except VariableError as exc:
            raise UsageError(f"--var {exc}") from None

    def _offered(self, names: str | None) -> FunctionRegistry:
        """The functions this cell offers: all registered ones, or the ``--functions`` list."""
        from asst_magic.functions import UnknownFunctionError

        if names is None:
            return self._registry()
        wanted = [n.strip() for n in names.split(",") if n.strip() and n.strip() != "none"]
        try:
            return self._registry().subset(wanted)
        except UnknownFunctionError as exc:
            raise UsageError(f"--functions: {exc}. See `%asst_functions list`.") from None

    def _registry(self) -> FunctionRegistry:
        from asst_magic.functions import default_registry

        return default_registry

    def _backend_name(self, choice: str | None) -> str:
        """``local`` or ``assistants``: the ``--backend`` choice, else the configured one."""
        from asst_magic.backends.assistants import configured

        name = choice or self.backend
        if name == "auto":
            name = "assistants" if configured(self.environ) else "local"
        return name

    def current_backend(self) -> Backend:
        """The backend of the current thread (the configured one), started if need be."""
        with _user_errors():
            return self._backend(None)

    def _backend(self, choice: str | None) -> Backend:
        from asst_magic.backends.local import LocalBackend

        name = self._backend_name(choice)
        key = self._server_settings(name)
        cached = self._backends.get(name)
        if cached is None or cached[0] != key:
            if cached is not None:
                cached[1].close()  # e.g. new cassettes need a new local server
            self._backends[name] = cached = (key, self._make_backend(name))
        backend = cached[1]
        # Client-side settings apply at once, without restarting a server (and its kernels).
        backend.files_dir = Path(self.files_dir)
        backend.save_images = self.save_images or self._mode() == "text"
        if isinstance(backend, LocalBackend):
            backend.model = self._model()
        return backend

    def _drop_left_thread(self, name: str) -> str | None:
        """Forget the current thread once its data dir is left; returns the dropped id."""
        built, thread = self._backends.get(name), self._threads.get(name)
        data_dir = self._server_settings(name)[2:]  # () for a remote backend
        if built is None or not thread or built[0][2:] == data_dir:
            return None
        self._threads[name] = None
        return thread

    def _will_start(self, name: str) -> bool:
        """Whether this cell starts the local server (nothing running for these settings)."""
        cached = self._backends.get(name)
        return name == "local" and (cached is None or cached[0] != self._server_settings(name))

    def _make_backend(self, name: str) -> Backend:
        """A new backend; ``_backend`` then applies the client-side settings to it."""
        if name == "assistants":
            from asst_magic.backends.assistants import AssistantsBackend

            return AssistantsBackend(self.environ)
        from asst_magic.backends.local import LocalBackend, cassettes_from, data_dir_from

        mode, network = self._code_settings()
        return LocalBackend(
            data_dir=data_dir_from(self.environ),
            cassettes=cassettes_from(self._cassette()),
            model=self._model(),
            launcher=self._launcher,
            code_sandbox=mode,
            code_network=network,
        )

    def _play(
        self, backend: Backend, events: Generator[RunEvent, None, None], view: View
    ) -> Snapshot:
        """Consume the run on the cell's own thread, so an interrupt lands right here."""
        snap = Snapshot()
        for note in backend.status_notes:
            apply(snap, "client.note", note)
        # A silent stream wakes the view when held-back text is due (the trailing timer).
        backend.tick = view.wait
        try:
            for name, data in events:
                apply(snap, name, data)
                if name.startswith("thread.run.step."):  # when code stops growing, and ends
                    apply(snap, "client.clock", {"id": data["id"], "at": view.elapsed()})
                # A function is about to run (or just ran) in this thread: show it now,
                # whatever the throttle says, since nothing repaints while it runs.
                view.update(snap, force=name == "client.call")
        except KeyboardInterrupt:
            events.close()  # closes the HTTP stream before asking the server to cancel
            _cancel(backend, snap)
        except BackendError as exc:
            if not snap.run and not view.painted:
                raise  # nothing shown yet: the cell fails with the message alone
            # Shown in the status line, in place of the live output (never left stranded).
            apply(snap, "error", {"error": {"code": "connection_error", "message": str(exc)}})
        finally:
            events.close()
        view.finish(snap)
        return snap

    def _adopt_thread(
        self, name: str, backend: Backend, request: RunRequest, snap: Snapshot
    ) -> None:
        """A run that failed never leaves its new thread as the backend's current one."""
        if snap.status == "failed" or snap.error is not None:
            if request.thread_id is None and snap.thread_id:
                backend.delete_thread(snap.thread_id)
            return
        self._threads[name] = snap.thread_id or self._threads.get(name)

    def _history(self) -> None:
        from asst_magic.turns import read_turns, show_history

        if (thread_id := self.thread_id) is None:
            raise UsageError("No thread yet: run an %%assistant cell or `%asst_thread ID` first.")
        turns = read_turns(self._backend(None).history(thread_id), thread_id)
        pub = self._shell.display_pub if self._mode() == "widget" else None
        show_history(turns, thread_id, pub, collapse=self.collapse)

    def _view(self) -> View:
        from asst_magic.view import RunView, TextView

        if self._mode() == "widget":
            pub = self._shell.display_pub
            return RunView(pub, repaint_hz=self.repaint_hz, collapse=self.collapse)
        return TextView(repaint_hz=self.repaint_hz)


def _new_thread_note(dropped: str) -> str:
    return (
        "New data directory (ASST_MAGIC_DATA_DIR changed), so a new thread: "
        f"{dropped} stays in the previous one."
    )


def _cancel(backend: Backend, snap: Snapshot) -> None:
    """Cancel the run on the server; a second Ctrl-C (or a lost server) stops waiting for it."""
    confirmed = True
    if snap.thread_id:
        try:
            backend.cancel(snap.thread_id, snap.run.get("id"))
        except (KeyboardInterrupt, BackendError):
            confirmed = False
    apply(snap, "client.cancelled", {"confirmed": confirmed})


def _existing_file(path: str) -> Path:
    resolved = Path(path).expanduser()
    if not resolved.is_file():
        raise UsageError(f"--file {path}: no such file (looked in {Path.cwd()}).")
    return resolved


@contextlib.contextmanager
def _user_errors(view: View | None = None) -> Iterator[None]:
    """Backend errors become ``UsageError``s: IPython shows the message, not a traceback.

    A ``view`` that showed "Starting…" is taken back first: only the message is left.
    """
    try:
        yield
    except BackendError as exc:
        if view is not None:
            view.discard()
        raise UsageError(str(exc)) from None


AssistantMagics.assistant.__doc__ = cell_usage(
    AssistantMagics.assistant.parser,
    "assistant",
    "Send the cell to the assistant and stream the run live into this output; the next\n"
    "cell continues the same thread. Settings: %config AssistantMagics (see README).",
    EXAMPLES,
)
