"""The SLOB strategy's phases (reference, trade, late, closed) of each day, in the trader's zone.

Not a market calendar: the market's own hours are `core/calendar.py`'s, which this asks for the
exchange-anchored trade window. Each local day's phases are computed once and cached as integer
nanoseconds, so the per-candle work of a caller is one integer compare against the end of the
current span. Saturday and Sunday have no windows: Friday's close to Monday's reference window
is closed. The anchored window is the exchange's regular 09:30-16:00 on every weekday, not
shortened by holidays or early closes: the vectorised reference (`strategy/reference.py`) and
every recorded backtest compute it so, and changing one without the other would split them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import IntEnum
from zoneinfo import ZoneInfo

from slob_tui.core.calendar import US_EQUITY_TZ, MarketCalendar, local_ns, weekday_calendar

NS = 1_000_000_000
EXCHANGE_HOURS = ((9, 30), (16, 0))  # the US equity regular session anchored windows follow


class Phase(IntEnum):
    CLOSED = 0
    REF = 1  # the reference session: REF_H / REF_L accumulate
    TRADE = 2  # setups may start and trade
    LATE = 3  # after the trade window but before close_time: live setups go on, none start


@dataclass(frozen=True, slots=True)
class Span:
    """A stretch of time `[start, end)` of one local day with one phase."""

    phase: Phase
    day: int  # the local date's proleptic ordinal
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class DayBounds:
    day: int
    day_start: int
    day_end: int
    ref_start: int
    ref_end: int
    trade_start: int
    trade_end: int
    close: int
    spans: tuple[Span, ...]


class SessionCalendar:
    """Where a timestamp falls: reference window, trade window, or closed."""

    def __init__(
        self,
        tz: str = "Europe/Stockholm",
        ref_window: tuple[tuple[int, int], tuple[int, int]] = ((9, 0), (15, 30)),
        trade_window: tuple[tuple[int, int], tuple[int, int]] = ((15, 30), (22, 0)),
        close_time: tuple[int, int] = (22, 0),
        anchor_to_exchange: bool = False,
    ) -> None:
        self.tz = ZoneInfo(tz)
        self.ref_window = ref_window
        self.trade_window = trade_window
        self.close_time = close_time
        self.anchor_to_exchange = anchor_to_exchange
        self.exchange: MarketCalendar | None = (
            weekday_calendar(EXCHANGE_HOURS, US_EQUITY_TZ) if anchor_to_exchange else None
        )
        self._cache: dict[int, DayBounds] = {}

    @classmethod
    def from_params(cls, params: object) -> SessionCalendar:
        """Build from a `SlobParams` (duck-typed: core must not import strategy)."""
        from_window = _split_window
        return cls(
            tz=params.session_tz,  # type: ignore[attr-defined]
            ref_window=from_window(params.ref_window),  # type: ignore[attr-defined]
            trade_window=from_window(params.trade_window),  # type: ignore[attr-defined]
            close_time=_hm(params.close_time),  # type: ignore[attr-defined]
            anchor_to_exchange=params.anchor_to_exchange,  # type: ignore[attr-defined]
        )

    def local_date(self, ts: int) -> date:
        return datetime.fromtimestamp(ts // NS, self.tz).date()

    def bounds(self, d: date) -> DayBounds:
        """The day's boundaries in ns UTC, computed once per local date."""
        key = d.toordinal()
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        if len(self._cache) > 4096:
            self._cache.clear()
        tz = self.tz
        day_start = local_ns(d, (0, 0), tz)
        day_end = local_ns(d + timedelta(days=1), (0, 0), tz)
        if d.weekday() >= 5:
            b = DayBounds(
                key,
                day_start,
                day_end,
                day_start,
                day_start,
                day_end,
                day_end,
                day_end,
                (Span(Phase.CLOSED, key, day_start, day_end),),
            )
            self._cache[key] = b
            return b
        ref_start = local_ns(d, self.ref_window[0], tz)
        ref_end = local_ns(d, self.ref_window[1], tz)
        session = self.exchange.session(d) if self.exchange is not None else None
        if session is not None:
            trade_start, trade_end, close = session.open, session.close, session.close
        else:
            trade_start = local_ns(d, self.trade_window[0], tz)
            trade_end = local_ns(d, self.trade_window[1], tz)
            close = local_ns(d, self.close_time, tz)
        ref_end = min(ref_end, trade_start)
        trade_end = min(trade_end, close)
        cuts = [
            (day_start, ref_start, Phase.CLOSED),
            (ref_start, ref_end, Phase.REF),
            (ref_end, trade_start, Phase.CLOSED),
            (trade_start, trade_end, Phase.TRADE),
            (trade_end, close, Phase.LATE),
            (close, day_end, Phase.CLOSED),
        ]
        spans = tuple(
            Span(p, key, max(a, day_start), min(b, day_end))
            for a, b, p in cuts
            if min(b, day_end) > max(a, day_start)
        )
        b = DayBounds(
            key, day_start, day_end, ref_start, ref_end, trade_start, trade_end, close, spans
        )
        self._cache[key] = b
        return b

    def span_at(self, ts: int) -> Span:
        """The span holding `ts`; callers keep it and re-ask only when `ts >= span.end`."""
        for span in self.bounds(self.local_date(ts)).spans:
            if span.start <= ts < span.end:
                return span
        raise AssertionError("spans cover the whole day")  # pragma: no cover

    def phase_at(self, ts: int) -> Phase:
        return self.span_at(ts).phase


def _hm(text: str) -> tuple[int, int]:
    hh, _, mm = text.strip().partition(":")
    return int(hh), int(mm)


def _split_window(text: str) -> tuple[tuple[int, int], tuple[int, int]]:
    a, _, b = text.partition("-")
    return _hm(a), _hm(b)
