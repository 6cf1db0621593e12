"""Health panel: the one `HealthReport` as rows: status, feed, ticks, buffer, candles, store,
safe mode and the trading gate. Every row reads a field some component fills."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from slob_tui.core.health import HealthReport
from slob_tui.ui.format import size_bytes

STATUS_STYLE = {
    "ok": "green",
    "starting": "yellow",
    "stale": "bold red",
    "safe_mode": "bold red",
    "late_ticks": "bold red",
    "store_fault": "bold red",
    "failed": "bold red",
    "stopped": "yellow",
}
STATUS_TEXT = {"late_ticks": "ticks all late", "store_fault": "STORE FAULT"}
BAD_FEED_STATES = ("disconnected", "reconnecting", "failed", "closed", "safe_mode")
Row = tuple[str, str, str]  # label, value, style


def _feed_state(h: HealthReport) -> Row:
    """The feed's own state; a feed that names none shows the connection events' verdict."""
    label = h.feed.state
    if not label and h.pipeline.connected is not None:
        label = "connected" if h.pipeline.connected else "disconnected"
    if not label:
        return ("feed", "—", "dim")
    return ("feed", label, "red" if label in BAD_FEED_STATES else "green")


def _breaker(h: HealthReport) -> Row:
    """The trading gate: KILLED (kill switch), HALTED (e.g. the store refuses writes), or ok;
    n/a for a bare pipeline, which places no orders."""
    trading = h.trading
    if trading is None:
        return ("breaker", "n/a", "dim")
    if trading.kill_switch:
        return ("breaker", "KILLED", "bold red")
    if trading.halted or trading.gate_fault:
        return ("breaker", "HALTED", "bold red")
    return ("breaker", "ok", "green")


def _store(h: HealthReport, store_bytes: int | None) -> Row:
    size = size_bytes(store_bytes)
    if h.storage is not None and not h.storage.ok:
        return ("store", f"{size} FAULT", "bold red")
    return ("store", size, "")


def health_rows(h: HealthReport | None, store_bytes: int | None) -> list[Row]:
    """The figures shown, as plain rows (also what decides whether to redraw)."""
    if h is None:  # nothing reported yet
        return [
            ("status", "—", ""),
            ("feed", "—", "dim"),
            ("reconnects", "0", ""),
            ("ticks/s", "0", ""),
            ("buffer", "—", ""),
            ("candles today", "0", ""),
            ("last candle", "—", ""),
            ("store", size_bytes(store_bytes), ""),
            ("safe mode", "off", "green"),
            ("breaker", "n/a", "dim"),
        ]
    p, buf = h.pipeline, h.buffer
    util = 100.0 * buf.size / buf.maxsize if buf.maxsize else None
    age = p.last_candle_wall_age_s  # wall seconds: market time runs 60x in the demo
    status = h.status
    reconnects = h.reconnects
    safe = h.safe_mode
    return [
        ("status", STATUS_TEXT.get(status, status), STATUS_STYLE.get(status, "")),
        _feed_state(h),
        ("reconnects", str(reconnects), "yellow" if reconnects else ""),
        ("ticks/s", f"{p.ticks_per_s:,.0f}", ""),
        ("buffer", "—" if util is None else f"{util:.0f}%", "red" if (util or 0) > 80 else ""),
        ("candles today", str(p.candles_today), ""),
        ("last candle", "—" if age is None else f"{max(age, 0):.0f}s ago", ""),
        _store(h, store_bytes),
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
        rows = health_rows(None, None)
        super().__init__(render_health(rows), id=id)
        self._shown: list[Row] = rows
        self.border_title = "Health"

    def show(self, health: HealthReport, store_bytes: int | None) -> bool:
        rows = health_rows(health, store_bytes)
        if rows == self._shown:
            return False
        self._shown = rows
        self.update(render_health(rows))
        return True
