"""Code the server runs in a thread's kernel to define a variable or to write one to a file.

The kernel is the model's: whatever these snippets report back is untrusted. They
move values only as Parquet, ``.npy`` (``allow_pickle=False``), JSON or PNG, and
print one status line, ``<nonce> {json}``, that the server looks for.

>>> "pd.read_parquet" in load_code("df", "/mnt/data/.v", "parquet", "dataframe", "n1")
True
"""

from __future__ import annotations

__all__ = ["FORMATS", "dump_code", "load_code"]

#: The wire formats a variable may travel in, and the kinds each one carries.
FORMATS = {
    "parquet": ("dataframe", "series"),
    "npy": ("ndarray",),
    "json": ("json",),
    "png": ("figure",),
}

# Files are opened with Python's ``open``: outside a real sandbox, only Python-level
# file APIs see ``/mnt/data`` mapped onto the thread's working directory.
_LOAD = """
def _asst_magic_load(name, path, fmt, kind, nonce):
    import io, json, os
    def say(**fields):
        print("\\n" + nonce + " " + json.dumps(fields))
    try:
        with open(path, "rb") as f:
            data = f.read()
    finally:
        try:
            os.remove(path)
        except OSError:
            pass
    try:
        if fmt == "parquet":
            import pandas as pd
            value = pd.read_parquet(io.BytesIO(data))
            if kind == "series":
                column = value.columns[0]
                value = value[column].rename(None if column == "__series__" else column)
        elif fmt == "npy":
            import numpy as np
            value = np.load(io.BytesIO(data), allow_pickle=False)
        else:
            value = json.loads(data)
    except Exception as exc:
        return say(status="error", message=f"{type(exc).__name__}: {exc}")
    get_ipython().user_ns[name] = value
    say(status="ok")
"""

_DUMP = """
def _asst_magic_dump(name, path, nonce):
    import json, sys
    def say(**fields):
        print("\\n" + nonce + " " + json.dumps(fields))
    namespace = get_ipython().user_ns
    if name not in namespace or name.startswith("_"):
        return say(status="missing")
    value = namespace[name]
    pd, np = sys.modules.get("pandas"), sys.modules.get("numpy")
    figure = getattr(sys.modules.get("matplotlib.figure"), "Figure", None)
    axes = getattr(sys.modules.get("matplotlib.axes"), "Axes", None)
    kind = type(value).__name__
    try:
        if np is not None and isinstance(value, np.generic):
            value = value.item()
        with open(path, "wb") as f:
            if pd is not None and isinstance(value, pd.Series):
                column = "__series__" if value.name is None else str(value.name)
                value.to_frame(column).to_parquet(f)
                fmt, kind = "parquet", "series"
            elif pd is not None and isinstance(value, pd.DataFrame):
                value.to_parquet(f)
                fmt, kind = "parquet", "dataframe"
            elif np is not None and isinstance(value, np.ndarray):
                np.save(f, value, allow_pickle=False)
                fmt, kind = "npy", "ndarray"
            elif (figure and isinstance(value, figure)) or (axes and isinstance(value, axes)):
                getattr(value, "figure", value).savefig(f, format="png")
                fmt, kind = "png", "figure"
            else:
                try:
                    text = json.dumps(value)
                except (TypeError, ValueError, RecursionError):
                    return say(status="unsupported", type=type(value).__module__ + "." + kind)
                f.write(text.encode())
                fmt, kind = "json", "json"
    except Exception as exc:
        return say(status="error", type=kind, message=f"{type(exc).__name__}: {exc}")
    say(status="ok", format=fmt, kind=kind, type=type(value).__name__)
"""


def load_code(name: str, path: str, fmt: str, kind: str, nonce: str) -> str:
    """Kernel code that reads ``path`` (then deletes it) and binds the value to ``name``."""
    call = f"_asst_magic_load({name!r}, {path!r}, {fmt!r}, {kind!r}, {nonce!r})"
    return f"{_LOAD}\ntry:\n    {call}\nfinally:\n    del _asst_magic_load\n"


def dump_code(name: str, path: str, nonce: str) -> str:
    """Kernel code that writes the value of ``name`` to ``path`` in a supported format."""
    call = f"_asst_magic_dump({name!r}, {path!r}, {nonce!r})"
    return f"{_DUMP}\ntry:\n    {call}\nfinally:\n    del _asst_magic_dump\n"
