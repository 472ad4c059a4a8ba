"""Which files in a thread's working directory an execution created or changed.

Pure filesystem reads: a listing before and after, compared by size and
modification time. Hidden entries (the kernel's own ``.ipython/``) are skipped and
the walk is bounded, so a run that writes thousands of files costs little.

>>> changed({"a.csv": (1, 10)}, {"a.csv": (2, 10), "b.png": (1, 5)})
['a.csv', 'b.png']
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["MAX_ENTRIES", "Listing", "changed", "listing"]

Listing = dict[str, tuple[int, int]]  # relative path -> (mtime in ns, size)
MAX_ENTRIES = 2_000


def listing(root: Path, limit: int = MAX_ENTRIES) -> Listing:
    """Regular files under ``root`` (relative POSIX paths), at most ``limit`` of them."""
    found: Listing = {}
    if not root.is_dir():
        return found
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = Path(folder, name)
            if path.is_symlink() or not path.is_file():
                continue  # a link could lead out of the working directory
            stat = path.stat()
            found[path.relative_to(root).as_posix()] = (stat.st_mtime_ns, stat.st_size)
            if len(found) >= limit:
                return found
    return found


def changed(before: Listing, after: Listing) -> list[str]:
    """Paths that are new in ``after`` or differ from ``before``, sorted."""
    return sorted(path for path, stamp in after.items() if before.get(path) != stamp)
