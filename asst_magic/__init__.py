"""``%%assistant``: stream an assistant run live into a Jupyter notebook.

>>> %load_ext asst_magic                                        # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from asst_magic.magics import AssistantMagics
from asst_magic.result import CallResult, RunResult

if TYPE_CHECKING:
    from asst_magic.functions import function

__all__ = [
    "AssistantMagics",
    "CallResult",
    "RunResult",
    "function",
    "load_ipython_extension",
    "unload_ipython_extension",
]

_MAGIC_NAMES = {
    "cell": ("assistant",),
    "line": ("asst_thread", "asst_functions", "asst_get", "asst_code"),
}


def __getattr__(name: str) -> Any:
    # The function-calling registry is imported when first used, not at load.
    if name == "function":
        from asst_magic.functions import function

        return function
    raise AttributeError(f"module 'asst_magic' has no attribute {name!r}")


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext asst_magic``: register the magics; nothing starts until first use."""
    from asst_magic.data_magics import DataMagics

    magics = AssistantMagics(ipython)
    ipython.register_magics(magics)
    ipython.register_magics(DataMagics(ipython, magics))
    if getattr(ipython, "kernel", None) is not None:
        # A notebook: what a first cell needs is imported now, so it shows "Starting…" at
        # once (the live widget's machinery, the view, the backend choice).
        import importlib

        from asst_magic.live.widget import preload

        for module in ("asst_magic.backends.assistants", "asst_magic.view"):
            importlib.import_module(module)
        preload()


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext asst_magic``: stop what the magics started and remove them."""
    manager = ipython.magics_manager
    manager.registry.pop("DataMagics", None)
    magics = manager.registry.pop(AssistantMagics.__name__, None)
    if magics is not None:
        magics.close()
        if magics in ipython.configurables:
            ipython.configurables.remove(magics)
    for kind, names in _MAGIC_NAMES.items():
        for name in names:
            manager.magics[kind].pop(name, None)
