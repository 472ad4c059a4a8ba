"""``python -m asst_magic.server serve ...``."""

from __future__ import annotations

import sys

from asst_magic.server.cli import main

__all__: list[str] = []

if __name__ == "__main__":
    sys.exit(main())
