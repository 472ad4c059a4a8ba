"""What the model reads back from a code step: its logs with any traceback made compact.

The user sees the whole traceback (collapsed) in the notebook; the model gets the
frames in its own code, the library frame that raised, and the error, so a pandas
``KeyError`` costs it ~60 tokens instead of ~800.

>>> compact_logs("4\\n")
'4\\n'
"""

from __future__ import annotations

from asst_magic.tracebacks import compact_traceback, find_error

__all__ = ["TRACEBACK_LIMIT", "compact_logs"]

TRACEBACK_LIMIT = 1200  # characters of traceback the model reads, at most


def compact_logs(logs: str, limit: int = TRACEBACK_LIMIT) -> str:
    """``logs`` with its traceback (if any) replaced by a compact one of at most ``limit`` chars."""
    error = find_error(logs)
    if error is None:
        return logs
    return error.before + compact_traceback(error, limit) + error.after
