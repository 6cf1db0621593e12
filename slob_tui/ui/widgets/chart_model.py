"""The candle chart's pure layout: candles and setup levels -> a grid of (glyph, style key).

Kept apart from the widget so that it is testable without a terminal and so the widget only
turns the grid into Strips. Half blocks give two price steps per text row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from slob_tui.core.models import Candle

# Half-cell kinds.
_NONE, _WICK, _BODY = 0, 1, 2

FILLED = {
    (_BODY, _BODY): "█",
    (_BODY, _NONE): "▀",
    (_NONE, _BODY): "▄",
    (_BODY, _WICK): "█",
    (_WICK, _BODY): "█",
    (_WICK, _WICK): "│",
    (_WICK, _NONE): "╵",
    (_NONE, _WICK): "╷",
}
HOLLOW = {
    (_BODY, _BODY): "┃",
    (_BODY, _NONE): "╹",
    (_NONE, _BODY): "╻",
    (_BODY, _WICK): "┃",
    (_WICK, _BODY): "┃",
    (_WICK, _WICK): "│",
    (_WICK, _NONE): "╵",
    (_NONE, _WICK): "╷",
}
VOLUME = " ▁▂▃▄▅▆▇█"

Cell = tuple[str, str]  # glyph, style key ("" = plain)


@dataclass
class Overlay:
    """What to draw over the candles for one setup (levels from the tracker's SetupUpdate)."""

    direction: str = ""
    state: str = ""
    ref_high: float | None = None
    ref_low: float | None = None
    box_high: float | None = None
    box_low: float | None = None
    box_start: int | None = None  # ns
    box_end: int | None = None
    liq1: tuple[int, float] | None = None  # (time ns, price)
    liq2: tuple[int, float] | None = None
    entry: float | None = None
    stop: float | None = None
    target: float | None = None
    trigger_time: int | None = None

    def prices(self) -> list[float]:
        out = [self.box_high, self.box_low, self.entry, self.stop, self.target]
        if self.liq1:
            out.append(self.liq1[1])
        if self.liq2:
            out.append(self.liq2[1])
        return [p for p in out if p is not None]


def _time_at(index: int, anchor_index: int, anchor_time: int, times: Sequence[int]) -> int | None:
    """The start time of the tracker's candle `index`, by position relative to a known one."""
    try:
        pos = times.index(anchor_time)
    except ValueError:
        return None
    target = pos - (anchor_index - index)
    if 0 <= target < len(times):
        return times[target]
    return None


def overlay_from_levels(
    levels: dict[str, Any],
    direction: str,
    state: str,
    index: int,
    time: int,
    candle_times: Sequence[int],
) -> Overlay:
    """Turn a SetupUpdate's levels into chart coordinates (times, prices)."""
    ov = Overlay(direction=direction, state=state)
    ov.ref_high = levels.get("ref_high")
    ov.ref_low = levels.get("ref_low")
    ov.box_high = levels.get("high")
    ov.box_low = levels.get("low")
    if levels.get("liq1_time") is not None and levels.get("liq1_price") is not None:
        ov.liq1 = (int(levels["liq1_time"]), float(levels["liq1_price"]))
    if levels.get("liq2_time") is not None and levels.get("liq2_price") is not None:
        ov.liq2 = (int(levels["liq2_time"]), float(levels["liq2_price"]))
    idx = [levels[k] for k in ("high_index", "low_index") if levels.get(k) is not None]
    if idx:
        first = min(idx)
        ov.box_start = _time_at(first, index, time, candle_times)
        if ov.box_start is None and ov.liq1 is not None:
            ov.box_start = ov.liq1[0]
        ov.box_end = ov.liq2[0] if ov.liq2 else time
    if state == "TRIGGERED":
        ov.entry = levels.get("entry")
        ov.stop = levels.get("stop")
        ov.target = levels.get("target")
        ov.trigger_time = levels.get("trigger_time", time)
    return ov


@dataclass
class ChartLayout:
    rows: list[list[Cell]]
    axis: list[str]  # right-hand price labels per price row ("" if none)
    lo: float
    hi: float
    columns: list[int] = field(default_factory=list)  # candle start per plot column


def _sub(price: float, lo: float, hi: float, subrows: int) -> int:
    if hi <= lo:
        return subrows // 2
    s = int(round((hi - price) / (hi - lo) * (subrows - 1)))
    return min(max(s, 0), subrows - 1)


def layout_candles(
    candles: Sequence[Candle],
    width: int,
    price_rows: int,
    volume_rows: int,
    overlay: Overlay | None = None,
    hollow_up: bool = False,
    hollow_down: bool = False,
    forming_start: int | None = None,
) -> ChartLayout:
    """The plot grid for the last `width` candles: price rows, then volume rows.

    Style keys: up, down, forming, ref, box, entry, stop, target, liq, vol-up, vol-down.
    """
    visible = list(candles[-width:]) if width > 0 else []
    rows: list[list[Cell]] = [[(" ", "")] * width for _ in range(price_rows + volume_rows)]
    if not visible or price_rows <= 0:
        return ChartLayout(rows, [""] * price_rows, 0.0, 0.0)
    lo = min(c.low for c in visible)
    hi = max(c.high for c in visible)
    span = max(hi - lo, abs(hi) * 1e-4, 1e-9)
    off_scale: list[tuple[str, float]] = []
    if overlay is not None:
        # Levels may widen the scale by at most half the candles' range on each side, so the
        # candles always fill half the rows; a trade level beyond that is named at the edge.
        trade = {"entry": overlay.entry, "stop": overlay.stop, "target": overlay.target}
        near = [(p, span * 0.5) for p in trade.values()]
        near += [(p, span * 0.5) for p in overlay.prices() if p not in trade.values()]
        near += [(p, span * 0.25) for p in (overlay.ref_high, overlay.ref_low)]
        c_lo, c_hi = lo, hi
        for p, reach in near:
            if p is not None and c_lo - reach <= p <= c_hi + reach:
                lo, hi = min(lo, p), max(hi, p)
        off_scale = [
            (k, p)
            for k, p in trade.items()
            if p is not None and not c_lo - span * 0.5 <= p <= c_hi + span * 0.5
        ]
    pad = (hi - lo) * 0.02
    lo, hi = lo - pad, hi + pad
    sub_n = price_rows * 2
    times = [c.start for c in visible]
    col_of = {t: i for i, t in enumerate(times)}

    def hline(price: float | None, style: str, glyph: str, x0: int = 0, x1: int = width) -> None:
        if price is None or not lo <= price <= hi:
            return
        r = _sub(price, lo, hi, sub_n) // 2
        for x in range(max(x0, 0), min(x1, width)):
            rows[r][x] = (glyph, style)

    def col_for(ns: int | None, clamp: bool) -> int | None:
        if ns is None:
            return None
        if ns in col_of:
            return col_of[ns]
        if not clamp:
            return None
        return 0 if ns < times[0] else (width - 1 if ns > times[-1] else None)

    if overlay is not None:
        hline(overlay.ref_high, "ref", "╌")
        hline(overlay.ref_low, "ref", "╌")
        x0 = col_for(overlay.box_start, True)
        x1 = col_for(overlay.box_end, True)
        if x0 is not None and x1 is not None and overlay.box_high is not None:
            hline(overlay.box_high, "box", "┄", x0, x1 + 1)
            hline(overlay.box_low, "box", "┄", x0, x1 + 1)
            if overlay.box_low is not None:
                top = _sub(max(overlay.box_high, overlay.box_low), lo, hi, sub_n) // 2
                bot = _sub(min(overlay.box_high, overlay.box_low), lo, hi, sub_n) // 2
                for r in range(top, bot + 1):
                    for x in (x0, x1):
                        rows[r][x] = ("┆", "box")
        tx = col_for(overlay.trigger_time, True) if overlay.trigger_time else 0
        for level, style in (
            (overlay.target, "target"),
            (overlay.stop, "stop"),
            (overlay.entry, "entry"),
        ):
            hline(level, style, "─", tx or 0)
    for x, c in enumerate(visible):
        up = c.close >= c.open
        style = "forming" if c.start == forming_start else ("up" if up else "down")
        table = HOLLOW if (hollow_up if up else hollow_down) else FILLED
        wt, wb = _sub(c.high, lo, hi, sub_n), _sub(c.low, lo, hi, sub_n)
        bt = _sub(max(c.open, c.close), lo, hi, sub_n)
        bb = _sub(min(c.open, c.close), lo, hi, sub_n)
        for r in range(wt // 2, wb // 2 + 1):
            kinds = []
            for s in (2 * r, 2 * r + 1):
                if bt <= s <= bb:
                    kinds.append(_BODY)
                elif wt <= s <= wb:
                    kinds.append(_WICK)
                else:
                    kinds.append(_NONE)
            glyph = table.get((kinds[0], kinds[1]))
            if glyph:
                rows[r][x] = (glyph, style)
    if overlay is not None:
        above = overlay.direction == "SHORT"
        for mark, label in ((overlay.liq1, "1"), (overlay.liq2, "2")):
            if mark is None:
                continue
            mx = col_for(mark[0], False)
            if mx is None or not lo <= mark[1] <= hi:
                continue
            r = _sub(mark[1], lo, hi, sub_n) // 2 + (-1 if above else 1)
            if 0 <= r < price_rows:
                rows[r][mx] = (label, "liq")
    if volume_rows > 0:
        vmax = max(c.volume for c in visible) or 1.0
        steps = volume_rows * 8
        for x, c in enumerate(visible):
            level = int(round(c.volume / vmax * steps))
            style = "vol-up" if c.close >= c.open else "vol-down"
            for i in range(volume_rows):
                fill = min(max(level - i * 8, 0), 8)
                if fill:
                    rows[price_rows + volume_rows - 1 - i][x] = (VOLUME[fill], style)
    axis = [""] * price_rows
    step = max(2, price_rows // 5)
    for r in range(0, price_rows, step):
        p = hi - (r * 2 + 0.5) / (sub_n - 1) * (hi - lo) if sub_n > 1 else hi
        axis[r] = f"{p:.2f}"
    for key, p in off_scale:  # e.g. "▲T 16020.2": off the top of the scale
        r = 0 if p > hi else price_rows - 1
        axis[r] = f"{'▲' if p > hi else '▼'}{key[0].upper()}{p:.1f}"
    return ChartLayout(rows, axis, lo, hi, times)
