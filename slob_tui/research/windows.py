"""Walk-forward windows: the data cut into K + 1 folds of whole session days.

Window k searches on fold k and is scored once on fold k + 1, so every out-of-sample span is
as long as its in-sample span (their scores compare directly), out-of-sample spans never
overlap each other, and none overlaps its own in-sample span. Folds break at session-day
boundaries because a SLOB setup lives inside one day: a cut mid-day would hand the tracker
half a reference window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from slob_tui.core.models import NS_PER_MINUTE, Candle
from slob_tui.errors import UsageError


@dataclass(frozen=True, slots=True)
class Span:
    """Candles `[lo, hi)` of the loaded list, covering `[start_ns, end_ns)`."""

    lo: int
    hi: int
    start_ns: int
    end_ns: int

    def slice(self, candles: list[Candle]) -> list[Candle]:
        return candles[self.lo : self.hi]


@dataclass(frozen=True, slots=True)
class Window:
    """One search span and the span its choice is proven on (None: no walk-forward)."""

    index: int
    in_sample: Span
    out_of_sample: Span | None


def _span(candles: list[Candle], lo: int, hi: int) -> Span:
    return Span(lo, hi, candles[lo].start, candles[hi - 1].start + NS_PER_MINUTE)


def session_days(candles: list[Candle], tz: str) -> list[int]:
    """Index of the first candle of each calendar day in `tz` (candles in time order)."""
    zone = ZoneInfo(tz)
    starts: list[int] = []
    last = None
    for i, c in enumerate(candles):
        day = datetime.fromtimestamp(c.start / 1e9, UTC).astimezone(zone).date()
        if day != last:
            starts.append(i)
            last = day
    return starts


def whole_span(candles: list[Candle]) -> list[Window]:
    """The single window of a search without walk-forward."""
    if not candles:
        raise UsageError("no candles to optimize on")
    return [Window(0, _span(candles, 0, len(candles)), None)]


def walk_forward(candles: list[Candle], k: int, tz: str) -> list[Window]:
    """K windows over K + 1 folds of (nearly) equal numbers of session days."""
    if k < 1:
        raise UsageError(f"--walk-forward must be at least 1, got {k}")
    days = session_days(candles, tz)
    folds = k + 1
    if len(days) < folds:
        raise UsageError(
            f"too few candles for {k} walk-forward windows: {len(days)} session days, "
            f"need at least {folds} (one per fold)"
        )
    bounds = [days[len(days) * i // folds] for i in range(folds)] + [len(candles)]
    spans = [_span(candles, bounds[i], bounds[i + 1]) for i in range(folds)]
    return [Window(i, spans[i], spans[i + 1]) for i in range(k)]
