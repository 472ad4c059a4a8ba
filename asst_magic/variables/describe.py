"""What the model is told about a ``--var`` value: type, shape, columns, a few rows (bounded).

>>> describe("n", 42)
'`n`: int = 42'
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["describe", "message_block"]

_MAX_CHARS = 1200  # per variable: the description must not crowd out the question
_ROWS = 3
_COLUMNS = 12
_HEADER = "[Variables from the user's notebook"


def describe(name: str, value: Any) -> str:
    """A short, deterministic description of ``value`` for the model."""
    pd, np = sys.modules.get("pandas"), sys.modules.get("numpy")
    if pd is not None and isinstance(value, pd.DataFrame):
        text = _frame(name, value)
    elif pd is not None and isinstance(value, pd.Series):
        text = _series(name, value)
    elif np is not None and isinstance(value, np.ndarray):
        text = _array(name, value)
    else:
        text = _plain(
            name, value.item() if np is not None and isinstance(value, np.generic) else value
        )
    return text if len(text) <= _MAX_CHARS else text[: _MAX_CHARS - 1] + "…"


def message_block(descriptions: Sequence[str], files: Sequence[str] = ()) -> str:
    """The block appended to the user's message; ``files`` when they travel as attachments."""
    if files:
        head = (
            f"{_HEADER}, attached as files: load each one in Python first, e.g. "
            "pd.read_parquet('/mnt/data/df.parquet'), np.load('/mnt/data/a.npy'), "
            "json.load(open('/mnt/data/x.json')). Files: " + ", ".join(files) + "]"
        )
    else:
        head = f"{_HEADER}, already defined in your Python session (code interpreter):]"
    return "\n\n" + head + "\n" + "\n".join(descriptions)


def _frame(name: str, frame: Any) -> str:
    rows, cols = frame.shape
    listed = [f"{c} ({t})" for c, t in list(frame.dtypes.items())[:_COLUMNS]]
    more = f", … {cols - _COLUMNS} more" if cols > _COLUMNS else ""
    sample = frame.head(_ROWS).to_string(max_cols=_COLUMNS, max_colwidth=24)
    return (
        f"`{name}`: pandas DataFrame, {rows} rows × {cols} columns\n"
        f"columns: {', '.join(listed)}{more}\nfirst rows:\n{sample}"
    )


def _series(name: str, series: Any) -> str:
    sample = series.head(_ROWS).to_string(max_rows=_ROWS)
    label = "" if series.name is None else f" named {series.name!r}"
    return (
        f"`{name}`: pandas Series{label}, {len(series)} values, dtype {series.dtype}\n"
        f"first values:\n{sample}"
    )


def _array(name: str, array: Any) -> str:
    import numpy as np

    preview = np.array2string(array, threshold=12, edgeitems=3, max_line_width=100)
    shape = "×".join(map(str, array.shape)) or "scalar"
    return f"`{name}`: numpy array, shape {shape}, dtype {array.dtype}\n{preview}"


def _plain(name: str, value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    preview = text if len(text) <= 300 else text[:299] + "…"
    if isinstance(value, dict):
        return f"`{name}`: dict with {len(value)} keys = {preview}"
    if isinstance(value, list | tuple):
        return f"`{name}`: list of {len(value)} items = {preview}"
    return f"`{name}`: {type(value).__name__} = {preview}"
