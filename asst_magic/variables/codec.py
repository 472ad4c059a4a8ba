"""Encode a notebook value for the code interpreter; decode what comes back, distrusting it.

Bytes from the sandbox are the model's: they are read only as Parquet (with the
declared size checked first), ``.npy`` with ``allow_pickle=False`` (header checked
against the payload), JSON, or a PNG (signature checked). Nothing is unpickled.

>>> decode("json", "json", encode("x", [1, 2], limit=100).data, limit=100)
[1, 2]
"""

from __future__ import annotations

import io
import json
import math
import sys
from dataclasses import dataclass
from typing import Any

__all__ = ["SUPPORTED_IN", "SUPPORTED_OUT", "Encoded", "VariableError", "decode", "encode"]

SUPPORTED_IN = (
    "pandas DataFrame or Series (as Parquet; needs pyarrow), numpy array (as .npy, not of "
    "dtype object), and JSON-able values (dict, list, str, int, float, bool, None)"
)
SUPPORTED_OUT = SUPPORTED_IN + ", and matplotlib figures (as PNG)"
# A Parquet file may expand this many times over the byte limit once in memory.
_EXPANSION = 8
_PNG = b"\x89PNG\r\n\x1a\n"
_INSTALL = "pip install 'asst-magic[data]'"


class VariableError(Exception):
    """A value that cannot move; the message names what is supported or what to do."""


@dataclass(frozen=True)
class Encoded:
    """A value ready to send: name, wire format, kind, type name, bytes, what the model is told."""

    name: str
    format: str
    kind: str
    type: str
    data: bytes
    description: str = ""

    @property
    def suffix(self) -> str:
        """The file suffix of the format, for an attached file: ``.parquet``."""
        return "." + self.format


def encode(name: str, value: Any, *, limit: int) -> Encoded:
    """Encode ``value`` for the kernel; ``VariableError`` if unsupported or over ``limit``."""
    type_name = type(value).__name__
    fmt, kind, data = _encode(name, value)
    if len(data) > limit:
        raise VariableError(
            f"{name} is {_size(len(data))} as {fmt}, over the {_size(limit)} limit for moving "
            "variables. Send a sample or a summary (e.g. df.sample(10_000)), or raise "
            "`%config AssistantMagics.max_var_bytes` (the local server also caps bodies: "
            "asst-magic serve --max-body-bytes)."
        )
    return Encoded(name, fmt, kind, type_name, data)


def _encode(name: str, value: Any) -> tuple[str, str, bytes]:
    pd, np = sys.modules.get("pandas"), sys.modules.get("numpy")
    if pd is not None and isinstance(value, pd.Series):
        frame = value.to_frame("__series__" if value.name is None else str(value.name))
        return "parquet", "series", _parquet_bytes(name, frame)
    if pd is not None and isinstance(value, pd.DataFrame):
        return "parquet", "dataframe", _parquet_bytes(name, value)
    if np is not None and isinstance(value, np.ndarray):
        return "npy", "ndarray", _npy_bytes(name, value)
    if np is not None and isinstance(value, np.generic):
        value = value.item()
    try:
        return "json", "json", json.dumps(value).encode()
    except (TypeError, ValueError, RecursionError):
        raise VariableError(
            f"{name} is a {_qualname(value)}, which --var cannot send. Supported: "
            f"{SUPPORTED_IN}. Convert it first, or save it to a file and use --file."
        ) from None


def _parquet_bytes(name: str, frame: Any) -> bytes:
    _require_pyarrow(name)
    buffer = io.BytesIO()
    try:
        frame.to_parquet(buffer)
    except Exception as exc:  # pyarrow's type errors: mixed object columns, int column names
        raise VariableError(
            f"{name} could not be written as Parquet ({type(exc).__name__}: {exc}). Give it "
            "string column names and one type per column, e.g. df.astype({'col': str})."
        ) from None
    return buffer.getvalue()


def _npy_bytes(name: str, array: Any) -> bytes:
    import numpy as np

    if array.dtype.hasobject:
        raise VariableError(
            f"{name} is a numpy array of dtype object, which can only travel pickled (never "
            "done here). Convert it to a numeric or string dtype, or a list."
        )
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def decode(fmt: str, kind: str, data: bytes, *, limit: int) -> Any:
    """Read a value the kernel wrote; ``VariableError`` for anything unsafe or malformed."""
    if len(data) > limit:
        raise VariableError(f"the value is {_size(len(data))}, over the {_size(limit)} limit.")
    readers = {"parquet": _read_parquet, "npy": _read_npy, "json": _read_json, "png": _read_png}
    reader = readers.get(fmt)
    if reader is None:
        raise VariableError(
            f"the server sent an unknown format {fmt!r}. Supported: {SUPPORTED_OUT}."
        )
    value = reader(data, limit)
    if fmt == "parquet" and kind == "series":
        column = value.columns[0]
        value = value[column].rename(None if column == "__series__" else column)
    return value


def _read_parquet(data: bytes, limit: int) -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise VariableError(
            f"a DataFrame arrives as Parquet, which needs pyarrow: {_INSTALL}."
        ) from None
    if len(data) < 12 or data[:4] != b"PAR1" or data[-4:] != b"PAR1":
        raise VariableError("the kernel's Parquet file is malformed (no PAR1 markers).")
    try:
        meta = pq.ParquetFile(io.BytesIO(data)).metadata
        _check_declared(meta, limit)
        return pq.read_table(io.BytesIO(data)).to_pandas()
    except VariableError:
        raise
    except Exception as exc:  # pyarrow errors, MemoryError: a broken or hostile file
        raise VariableError(f"the kernel's Parquet file could not be read ({exc}).") from None


def _check_declared(meta: Any, limit: int) -> None:
    """Refuse a file whose metadata declares more data than the limit allows in memory."""
    declared = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    cells = meta.num_rows * max(meta.num_columns, 1)
    ceiling = limit * _EXPANSION
    if max(declared, cells * 8) > ceiling:
        raise VariableError(
            f"the kernel's Parquet file declares {meta.num_rows:,} rows × {meta.num_columns} "
            f"columns ({_size(max(declared, cells * 8))} in memory), over the "
            f"{_size(ceiling)} allowed for a {_size(limit)} limit; not read. Ask the "
            "assistant for a smaller result."
        )


def _read_npy(data: bytes, limit: int) -> Any:
    import numpy as np
    from numpy.lib import format as npformat

    buffer = io.BytesIO(data)
    try:
        version = npformat.read_magic(buffer)
        readers = {(1, 0): npformat.read_array_header_1_0, (2, 0): npformat.read_array_header_2_0}
        if version not in readers:
            raise ValueError(f"unsupported .npy version {version}")
        shape, _, dtype = readers[version](buffer)
    except ValueError as exc:
        raise VariableError(f"the kernel's .npy file is malformed ({exc}).") from None
    if dtype.hasobject:
        raise VariableError(
            "the kernel's .npy file holds Python objects (dtype object), which only a pickle "
            "can carry; refused. Ask the assistant for a numeric array or a list."
        )
    declared = math.prod(shape) * dtype.itemsize
    if declared != len(data) - buffer.tell():
        raise VariableError(
            f"the kernel's .npy file declares {declared:,} bytes of data but holds "
            f"{len(data) - buffer.tell():,}; refused."
        )
    return np.load(io.BytesIO(data), allow_pickle=False)


def _read_json(data: bytes, limit: int) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise VariableError(f"the kernel's JSON could not be read ({exc}).") from None


def _read_png(data: bytes, limit: int) -> Any:
    from IPython.display import Image

    if not data.startswith(_PNG):
        raise VariableError("the kernel's figure is not a PNG image; refused.")
    return Image(data=data, format="png")


def _require_pyarrow(name: str) -> None:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise VariableError(
            f"{name} is a DataFrame, sent as Parquet, which needs pyarrow in this kernel: "
            f"{_INSTALL}."
        ) from None


def _qualname(value: Any) -> str:
    kind = type(value)
    return kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"


def _size(n: int) -> str:
    """``1.5 MB``: bytes for people."""
    if n < 1000:
        return f"{n} bytes"
    value, unit = n / 1000, "kB"
    for bigger in ("MB", "GB"):
        if value < 1000:
            break
        value, unit = value / 1000, bigger
    return f"{value:.1f} {unit}"
