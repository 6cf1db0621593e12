"""The candle chart: a Line-API widget with half-block candles, volume and setup overlays.

It never reads the engine itself: the app hands it each new snapshot (at most a few times a
second, only when the engine's `seq` changed) and older candles it fetched from the store. The
whole grid is built once per change and `render_line` only returns the cached strips.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

from slob_tui.core.models import Candle
from slob_tui.engine.snapshot import EngineSnapshot, SetupView
from slob_tui.ui.format import hhmm, price
from slob_tui.ui.widgets.chart_model import Overlay, layout_candles, overlay_from_levels

AXIS_WIDTH = 10
STYLE_KEYS = (
    "up",
    "down",
    "forming",
    "ref",
    "box",
    "entry",
    "stop",
    "target",
    "liq",
    "vol-up",
    "vol-down",
    "axis",
    "title",
    "last",
)


def _has_box(view: SetupView) -> bool:
    return view.latest.levels.get("high") is not None and view.latest.levels.get("low") is not None


def pick_setups(
    setups: Sequence[SetupView], symbol: str
) -> tuple[SetupView | None, SetupView | None]:
    """(structure, trade): whose box/LIQ marks to draw, and whose entry/stop/target lines.

    The structure is the newest live candidate once it has a box, else the newest triggered
    setup (its box stays readable while the next candidate is still young), else the live one.
    The trade lines are those of the newest triggered setup.
    """
    mine = [v for v in setups if v.symbol == symbol]
    live = [v for v in mine if v.is_live]
    triggered = [v for v in mine if v.state == "TRIGGERED"]
    trade = triggered[0] if triggered else None
    if live and _has_box(live[0]):
        return live[0], trade
    if trade is not None:
        return trade, trade
    return (live[0] if live else None), None


class CandleChart(Widget, can_focus=True):
    """Live 1-minute candles of one symbol with volume and the selected setup's levels."""

    COMPONENT_CLASSES = {f"candle-chart--{k}" for k in STYLE_KEYS}

    DEFAULT_CSS = """
    CandleChart { height: 1fr; min-height: 8; }
    """

    def __init__(self, *, tz: str = "UTC", id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self.tz = tz
        self.symbol: str | None = None
        self.back = 0  # candles scrolled back from live
        self.history: list[Candle] = []
        self.older: dict[str, list[Candle]] = {}
        self.forming: Candle | None = None
        self.overlay: Overlay | None = None
        self.setup: SetupView | None = None
        self.last_price: float | None = None
        self.paused = False
        self.empty_message = "waiting for the first candle…"  # what an empty chart says
        self.ticks_seen = 0
        self.updates = 0
        self._strips: list[Strip] | None = None
        self._cache_key: tuple[Any, ...] = ()

    # ---- data in -------------------------------------------------------------------------
    def show(self, snapshot: EngineSnapshot, symbol: str | None) -> None:
        """Take the candles, forming candle and overlay of `symbol` from a new snapshot."""
        self.symbol = symbol
        self.ticks_seen = snapshot.health.pipeline.ticks
        recent = list(snapshot.candles.get(symbol, ())) if symbol else []
        first = recent[0].start if recent else None
        held = self.older.get(symbol or "", ())
        older = [c for c in held if first is None or c.start < first]
        self.history = older + recent
        self.forming = snapshot.forming.get(symbol) if symbol else None
        self.last_price = snapshot.last_price.get(symbol) if symbol else None
        self.paused = snapshot.paused
        structure, trade = pick_setups(snapshot.setups, symbol) if symbol else (None, None)
        self.setup = structure
        self.overlay = None
        times = [c.start for c in self.history]
        if structure is not None:
            u = structure.latest
            self.overlay = overlay_from_levels(
                u.levels, structure.direction, structure.state, u.index, u.time, times
            )
            if trade is not None and trade is not structure:
                t = trade.latest
                lines = overlay_from_levels(
                    t.levels, trade.direction, trade.state, t.index, t.time, times
                )
                self.overlay.entry, self.overlay.stop = lines.entry, lines.stop
                self.overlay.target, self.overlay.trigger_time = lines.target, lines.trigger_time
        self.updates += 1
        self._strips = None
        self.refresh()

    def add_older(self, symbol: str, candles: Sequence[Candle]) -> int:
        """Prepend candles read from the store; returns how many were new."""
        have = self.older.setdefault(symbol, [])
        first = have[0].start if have else (self.history[0].start if self.history else None)
        new = [c for c in candles if first is None or c.start < first]
        self.older[symbol] = new + have
        if new and symbol == self.symbol:
            self.history = new + self.history
            self._strips = None
            self.refresh()
        return len(new)

    def scroll_candles(self, delta: int) -> None:
        """Positive = newer. Stays within the history held."""
        limit = max(0, len(self.history) - 5)
        self.back = min(max(self.back - delta, 0), limit)
        self._strips = None
        self.refresh()

    def go_live(self) -> None:
        self.back = 0
        self._strips = None
        self.refresh()

    def needs_older(self) -> bool:
        """True when the scrolled window reaches the oldest candle held."""
        return len(self.history) - self.back < self.plot_width + 5

    @property
    def plot_width(self) -> int:
        return max(self.size.width - AXIS_WIDTH, 1)

    # ---- drawing -------------------------------------------------------------------------
    def _styles(self) -> dict[str, Style]:
        base = self.rich_style
        out = {"": base}
        for key in STYLE_KEYS:
            comp = self.get_component_rich_style(f"candle-chart--{key}", partial=True)
            out[key] = base + Style(color=comp.color, bold=comp.bold, dim=comp.dim)
        return out

    def _title(self, width: int) -> str:
        """Symbol, price and state first; the forming candle's OHLCV only where it fits."""
        if self.symbol is None:
            return " no symbol"
        if self.paused:
            state = "⏸ paused" + (f" ◀ {self.back} back" if self.back else "")
        else:
            state = f"◀ {self.back} back" if self.back else "● live"
        head = [f" {self.symbol}", price(self.last_price), state]
        if self.setup is not None:
            head.append(f"{self.setup.direction} {self.setup.state}")
        f = self.forming
        tails: list[list[str]] = [[]]
        if f is not None:
            ohlc = f"O {price(f.open)} H {price(f.high)} L {price(f.low)} C {price(f.close)}"
            tails = [[ohlc, f"V {f.volume:g}"], [ohlc], []]
        for tail in tails:
            text = "  ".join(head + tail)
            if len(text) <= width:
                return text
        return text[:width]

    def _build(self) -> list[Strip]:
        width, height = self.size.width, self.size.height
        st = self._styles()
        if height <= 0 or width <= 0:
            return []
        title = Strip([Segment(self._title(width).ljust(width), st["title"])], width)
        candles = list(self.history)
        if self.back:
            candles = candles[: max(len(candles) - self.back, 0)]
        elif self.forming is not None:
            candles.append(self.forming)
        if not candles:
            msg = self.empty_message if self.symbol else "no symbol selected"
            blank = Strip([Segment(" " * width, st[""])], width)
            body = [blank] * max(height - 1, 0)
            if body:
                mid = len(body) // 2
                body[mid] = Strip([Segment(msg.center(width), st["axis"])], width)
            return [title, *body]
        volume_rows = min(4, max(0, (height - 6) // 5))
        price_rows = max(height - 2 - volume_rows, 1)
        pw = max(width - AXIS_WIDTH, 1)
        var = self.app.theme_variables if self.is_attached else {}
        grid = layout_candles(
            candles,
            pw,
            price_rows,
            volume_rows,
            self.overlay,
            hollow_up=var.get("candle-body-up") == "hollow",
            hollow_down=var.get("candle-body-down") == "hollow",
            forming_start=self.forming.start if (self.forming and not self.back) else None,
        )
        last_row = None
        last = candles[-1].close
        if grid.hi > grid.lo:
            frac = (grid.hi - last) / (grid.hi - grid.lo)
            last_row = int(round(frac * (price_rows * 2 - 1))) // 2
        strips = [title]
        for r, row in enumerate(grid.rows):
            segs = [Segment(ch, st[key]) for ch, key in row]
            if len(row) < pw:
                segs.append(Segment(" " * (pw - len(row)), st[""]))
            if r < price_rows:
                if r == last_row:
                    label, key = f"▶{price(last)}", "last"
                else:
                    label, key = grid.axis[r], "axis"
            else:
                label, key = ("vol" if r == price_rows else ""), "axis"
            segs.append(Segment(f" {label}".ljust(AXIS_WIDTH)[:AXIS_WIDTH], st[key]))
            strips.append(Strip(segs, width))
        axis = [" "] * pw
        times = grid.columns
        x = 0
        while x < len(times):
            label = hhmm(times[x], self.tz)
            if label.endswith(("00", "15", "30", "45")) and x + 5 <= pw:
                axis[x : x + 5] = list(label)
                x += 7
            else:
                x += 1
        strips.append(Strip([Segment("".join(axis) + " " * AXIS_WIDTH, st["axis"])], width))
        return strips[:height]

    def render_line(self, y: int) -> Strip:
        key = (self.size, self.app.theme if self.is_attached else None)
        if self._strips is None or key != self._cache_key:
            self._strips = self._build()
            self._cache_key = key
        if y < len(self._strips):
            return self._strips[y]
        return Strip.blank(self.size.width, self.rich_style)
