"""``%asst_get`` and ``%asst_code``: the assistant's variables and code, into the notebook.

>>> %asst_get summary as table                                   # doctest: +SKIP
table ← DataFrame, 4 rows × 3 columns
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from asst_magic.accumulate import Snapshot, apply
from asst_magic.backends.base import BackendError
from asst_magic.magics import AssistantMagics
from asst_magic.parse import get_target

__all__ = ["DataMagics"]


@magics_class
class DataMagics(Magics):
    """Moves data and code out of the current thread; settings live on ``AssistantMagics``."""

    def __init__(self, shell: Any, assistant: AssistantMagics) -> None:
        super().__init__(shell=shell)
        self.assistant = assistant

    @magic_arguments()
    @argument("words", nargs="+", metavar="NAME [as LOCAL]", help="The variable to bring over.")
    @line_magic
    def asst_get(self, line: str) -> None:
        """Bring a variable from the thread's code interpreter (never unpickled).

        Example: ``%asst_get summary as table``.
        """
        from asst_magic.variables import decode
        from asst_magic.variables.notebook import summary

        try:
            name, local = get_target(parse_argstring(self.asst_get, line).words)
        except ValueError as exc:
            raise UsageError(f"%asst_get: {exc}.") from None
        limit = self.assistant.max_var_bytes
        with _errors(f"%asst_get {name}: "):
            fetched = self._backend().get_variable(self._thread(), name, max_bytes=limit)
            value = decode(fetched.format, fetched.kind, fetched.data, limit=limit)
        if fetched.format == "png":  # a figure is shown inline, and kept as an Image
            data, metadata = self._shell.display_formatter.format(value)
            self._shell.display_pub.publish(data=data, metadata=metadata)
        self._shell.user_ns[local] = value
        print(f"{local} ← {summary(value)}")

    @magic_arguments()
    @argument("--all", action="store_true", help="All the thread's code, run by run.")
    @argument("--run", metavar="ID", help="The code of this run of the thread.")
    @line_magic
    def asst_code(self, line: str) -> None:
        """Insert the code the assistant ran in the last run as a new cell below.

        Example: ``%asst_code --all``. In a terminal the code is printed.
        """
        from asst_magic.code_cell import code_cell, run_codes, saved_names

        args = parse_argstring(self.asst_code, line)
        thread_id = self._thread()
        with _errors("%asst_code: "):
            snap = self._history(thread_id)
        runs = _chosen(run_codes(snap), args.all, args.run, thread_id)
        messages = [snap.messages[key] for kind, key in snap.order if kind == "message"]
        files = {fid: f.get("path", "") for fid, f in snap.files.items()}
        text = code_cell(thread_id, runs, saved_names(messages, files), self.assistant.files_dir)
        if getattr(self.shell, "kernel", None) is None:
            print(text)
        else:
            self._shell.set_next_input(text, replace=False)

    @property
    def _shell(self) -> Any:
        assert self.shell is not None, "DataMagics needs a shell"
        return self.shell

    def _thread(self) -> str:
        thread_id = self.assistant.thread_id
        if thread_id is None:
            raise UsageError("No thread yet: run an %%assistant cell or `%asst_thread ID` first.")
        return thread_id

    def _backend(self) -> Any:
        return self.assistant.current_backend()

    def _history(self, thread_id: str) -> Snapshot:
        backend = self._backend()
        snap = Snapshot(thread_id=thread_id)
        for name, data in backend.history(thread_id):
            apply(snap, name, data)
        return snap


def _chosen(
    runs: list[tuple[str, list[str]]], every: bool, run_id: str | None, thread_id: str
) -> list[tuple[str, list[str]]]:
    """The runs ``%asst_code`` shows: the last one, ``--run ID``, or every run with code."""
    if every:
        picked = [(rid, codes) for rid, codes in runs if codes]
    elif run_id:
        picked = [(rid, codes) for rid, codes in runs if rid == run_id]
        if not picked:
            raise UsageError(f"%asst_code: no run {run_id} in thread {thread_id}.")
    else:
        picked = runs[-1:]
    if not any(codes for _, codes in picked):
        which = f"run {picked[0][0]}" if len(picked) == 1 else f"thread {thread_id}"
        raise UsageError(f"%asst_code: {which} ran no code.")
    return picked


@contextlib.contextmanager
def _errors(prefix: str) -> Iterator[None]:
    """Backend and refusal messages as ``UsageError``s: the message, no traceback."""
    from asst_magic.variables import VariableError

    try:
        yield
    except (BackendError, VariableError) as exc:
        raise UsageError(prefix + str(exc)) from None
