"""The code the assistant ran as one notebook cell: ``%asst_code`` and ``RunResult.code``.

``/mnt/data/NAME`` paths become where the magic saved the file the run linked as
that name, else ``FILES_DIR/NAME``.

>>> print(code_cell("thread_1", [("run_1", ["df.to_csv('/mnt/data/a.csv')"])], {}, "out"))
# asst_magic: code the assistant ran in run run_1 (thread thread_1)
df.to_csv('out/a.csv')
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath
from typing import Any

from asst_magic.accumulate import Snapshot, code_calls

__all__ = ["code_cell", "run_codes", "saved_names"]

_MOUNT = re.compile(r"(?:sandbox:)?/mnt/data(?:/([^\s'\"`)\]},;]+))?/?")


def code_cell(
    thread_id: str | None,
    runs: Sequence[tuple[str, Sequence[str]]],
    saved: Mapping[str, str],
    files_dir: str,
) -> str:
    """One cell of the runs' code, headed by a comment naming the thread and run(s)."""
    if len(runs) == 1:
        head = f"# asst_magic: code the assistant ran in run {runs[0][0]} (thread {thread_id})"
        blocks = list(runs[0][1])
    else:
        head = f"# asst_magic: code the assistant ran in thread {thread_id} ({len(runs)} runs)"
        blocks = [f"# run {run_id}\n" + "\n\n".join(codes) for run_id, codes in runs]
    body = "\n\n".join(block.strip("\n") for block in blocks)
    return head + "\n" + rewrite_paths(body, saved, files_dir)


def rewrite_paths(code: str, saved: Mapping[str, str], files_dir: str) -> str:
    """Replace ``/mnt/data`` paths by local ones: saved files first, else under ``files_dir``."""
    root = files_dir.rstrip("/") or "."

    def local(match: re.Match[str]) -> str:
        name = match.group(1)
        if not name:
            return root
        return saved.get(name, f"{root}/{name}")

    return _MOUNT.sub(local, code)


def saved_names(messages: Sequence[dict[str, Any]], files: Mapping[str, str]) -> dict[str, str]:
    """``NAME -> local path`` for each ``sandbox:/mnt/data/NAME`` link the magic saved."""
    names: dict[str, str] = {}
    for message in messages:
        for part in message.get("content") or ():
            for note in (part.get("text") or {}).get("annotations") or ():
                file_id = (note.get("file_path") or {}).get("file_id")
                path = files.get(file_id or "")
                if note.get("type") == "file_path" and path:
                    names[PurePosixPath(note.get("text", "")).name] = path
    return names


def run_codes(snap: Snapshot) -> list[tuple[str, list[str]]]:
    """Each run of a thread's snapshot with the code it ran, in order (runs without code too)."""
    runs: dict[str, list[str]] = {}
    for kind, key in snap.order:
        obj = snap.steps[key] if kind == "step" else snap.messages[key]
        run_id = obj.get("run_id")
        if not run_id:
            continue
        codes = runs.setdefault(run_id, [])
        if kind == "step":
            codes += [ci.get("input") or "" for ci in code_calls(obj)]
    return list(runs.items())
