"""The data dir on disk is private: 0700 directories, 0600 files (other users read nothing).

>>> make_private(Path("data"))  # doctest: +SKIP
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["make_private"]

_OTHERS = stat.S_IRWXG | stat.S_IRWXO


def make_private(data_dir: Path) -> None:
    """Create ``data_dir`` as 0700, or take group/other access off an existing one's tree.

    The walk runs only when the top directory is not yet private, so a data dir
    fixed once is not walked again at every start.
    """
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not data_dir.stat().st_mode & _OTHERS:
        return
    for root, dirs, files in os.walk(data_dir):
        for name in [*dirs, *files]:
            _private(Path(root) / name)
    _private(data_dir)


def _private(path: Path) -> None:
    try:
        mode = path.lstat().st_mode
        if not stat.S_ISLNK(mode):
            path.chmod(stat.S_IMODE(mode) & ~_OTHERS)
    except OSError:  # a file a kernel removed meanwhile, or not ours: leave it
        pass
