"""Small text formatters shared by the widgets (times in the display zone, prices, sizes)."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo


@lru_cache(maxsize=8)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def hhmm(ns: int, tz: str = "UTC") -> str:
    """Engine time (ns UTC) as HH:MM in the display zone."""
    return datetime.fromtimestamp(ns / 1e9, UTC).astimezone(zone(tz)).strftime("%H:%M")


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
