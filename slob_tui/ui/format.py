"""Small text formatters shared by the widgets (times in the display zone, prices, sizes)."""

from __future__ import annotations

from typing import Any

from slob_tui.core.models import NS_PER_MINUTE, SetupUpdate
from slob_tui.core.timefmt import hhmm, hhmmss, human, zone_label

__all__ = ["decided_at", "hhmm", "hhmmss", "human", "price", "size_bytes", "zone_label"]


def decided_at(update: SetupUpdate) -> int:
    """When a setup transition happened: at the close of the candle it is stamped with."""
    return update.time + NS_PER_MINUTE


def price(value: Any) -> str:
    """A price with as many decimals as it needs (at most 4)."""
    if value is None:
        return "—"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    text = f"{v:.4f}".rstrip("0")
    if text.endswith("."):
        text += "00"
    elif len(text.split(".")[1]) == 1:
        text += "0"
    return text


def size_bytes(n: int | None) -> str:
    if n is None:
        return "—"
    step = 1024.0
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < step or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= step
    return f"{n} B"
