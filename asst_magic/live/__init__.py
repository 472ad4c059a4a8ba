"""The live view's parts that are not the view itself: ops, code highlighting, the widget."""

from __future__ import annotations

from asst_magic.live.highlight import GrowingCode
from asst_magic.live.ops import LiveDiff
from asst_magic.live.widget import LiveWidget, new_live_widget

__all__ = ["GrowingCode", "LiveDiff", "LiveWidget", "new_live_widget"]
