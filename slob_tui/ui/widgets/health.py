"""Health panel: feed connection and reconnects, ticks/s, buffer, candles, store, safety state."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from slob_tui.ui.format import size_bytes

STATUS_STYLE = {
    "ok": "green",
    "starting": "yellow",
    "stale": "bold red",
    "safe_mode": "bold red",
    "late_ticks": "bold red",
    "failed": "bold red",
    "stopped": "yellow",
}
STATUS_TEXT = {"late_ticks": "ticks all late"}
Row = tuple[str, str, str]  # label, value, style


def _section(h: dict[str, Any], key: str) -> dict[str, Any]:
    """`h[key]` when it is a dict (a nested section of the health report), else empty."""
    value = h.get(key)
    return value if isinstance(value, dict) else {}


def _feed_state(h: dict[str, Any]) -> Row:
    feed = _section(h, "feed")
    state = feed.get("state")
    connected = h.get("connected")
    if state:
        label = str(state)
    elif connected is None:
        label = "local" if feed else "—"
    else:
        label = "connected" if connected else "disconnected"
    bad = label in ("disconnected", "reconnecting", "failed", "closed")
    return ("feed", label, "red" if bad else ("dim" if label == "—" else "green"))


def _breaker(h: dict[str, Any]) -> Row:
    """Circuit breaker / halt / kill switch from the execution (or risk) health source."""
    for name in ("execution", "risk", "executor"):
        src = h.get(name)
        if isinstance(src, dict) and src:
            if src.get("kill_switch"):
                return ("breaker", "KILLED", "bold red")
            tripped = src.get("circuit_breaker") or src.get("halted") or src.get("tripped")
            return ("breaker", "TRIPPED" if tripped else "ok", "bold red" if tripped else "green")
    return ("breaker", "n/a", "dim")


def health_rows(h: dict[str, Any], store_bytes: int | None) -> list[Row]:
    """The figures shown, as plain rows (also what decides whether to redraw)."""
    feed = _section(h, "feed")
    buf = _section(h, "buffer")
    util = None
    if buf.get("maxsize"):
        util = 100.0 * float(buf.get("size", 0)) / float(buf["maxsize"])
    age = h.get("last_candle_wall_age_s")  # wall seconds: market time runs 60x in the demo
    status = str(h.get("status", "—"))
    reconnects = max(int(h.get("reconnects", 0) or 0), int(feed.get("reconnects", 0) or 0))
    safe = bool(h.get("safe_mode") or feed.get("safe_mode"))
    return [
        ("status", STATUS_TEXT.get(status, status), STATUS_STYLE.get(status, "")),
        _feed_state(h),
        ("reconnects", str(reconnects), "yellow" if reconnects else ""),
        ("ticks/s", f"{float(h.get('ticks_per_s', 0) or 0):,.0f}", ""),
        ("buffer", "—" if util is None else f"{util:.0f}%", "red" if (util or 0) > 80 else ""),
        ("candles today", str(h.get("candles_today", 0)), ""),
        ("last candle", "—" if age is None else f"{max(age, 0):.0f}s ago", ""),
        ("store", size_bytes(store_bytes), ""),
        ("safe mode", "ON" if safe else "off", "bold red" if safe else "green"),
        _breaker(h),
    ]


def render_health(rows: list[Row]) -> Table:
    t = Table.grid(padding=(0, 1))
    t.add_column(style="dim")
    t.add_column()
    for label, value, style in rows:
        t.add_row(label, Text(value, style=style))
    return t


class HealthPanel(Static):
    """Redrawn only when a shown figure changed."""

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002
        rows = health_rows({}, None)
        super().__init__(render_health(rows), id=id)
        self._shown: list[Row] = rows
        self.border_title = "Health"

    def show(self, health: dict[str, Any], store_bytes: int | None) -> bool:
        rows = health_rows(health, store_bytes)
        if rows == self._shown:
            return False
        self._shown = rows
        self.update(render_health(rows))
        return True
