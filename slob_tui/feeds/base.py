"""What every feed shares beyond the engine's ports (`slob_tui/engine/ports.py`)."""

from __future__ import annotations

from slob_tui.engine.ports import Feed, FeedSink
from slob_tui.errors import SlobError

__all__ = ["Feed", "FeedError", "FeedSink"]


class FeedError(SlobError):
    """A feed cannot go on; the message says what to fix (a setting, a file)."""
