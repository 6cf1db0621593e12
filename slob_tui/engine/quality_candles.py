"""Candle-level data quality checks and the finding counters the validator shares.

Kept apart from `quality.py` so that the tick hot loop stays small: everything here runs once
per closed candle (or per trade correction), where a sort of a few dozen numbers is free.
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_left, insort
from collections import deque
from collections.abc import Iterable
from datetime import date
from typing import Any

from slob_tui.core.calendar import (
    US_EQUITY_TZ,
    MarketCalendar,
    cme_equity_sessions,
    us_equity_sessions,
    weekday_calendar,
)
from slob_tui.core.event_payloads import DataQualityFinding
from slob_tui.core.events import Event, EventType
from slob_tui.core.models import NS_PER_MINUTE, NS_PER_SECOND, Candle
from slob_tui.core.quality_policy import parse_market_hours

NS = NS_PER_SECOND
EXCHANGES = {"us": us_equity_sessions, "cme": cme_equity_sessions}  # SLOB_DQ_HOLIDAYS values


class Findings:
    """Counts by kind plus the `keep` worst examples of each kind (bounded memory)."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.counts: dict[str, int] = {}
        self._worst: dict[str, list[tuple[float, int, dict[str, Any]]]] = {}
        self._seq = 0

    def add(self, kind: str, symbol: str, ts: int, values: dict[str, Any], severity: float) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if not self.keep:
            return
        self._seq += 1
        heap = self._worst.setdefault(kind, [])
        item = (float(severity), -self._seq, {"symbol": symbol, "ts": ts, **values})
        if len(heap) < self.keep:
            heapq.heappush(heap, item)
        elif item[:2] > heap[0][:2]:
            heapq.heapreplace(heap, item)

    def worst(self) -> dict[str, list[dict[str, Any]]]:
        return {k: [x[2] for x in sorted(h, key=lambda x: x[:2], reverse=True)]
                for k, h in self._worst.items()}  # fmt: skip


REJECT_KINDS = frozenset(
    {"malformed", "bad_price", "bad_size", "fat_finger", "future_ts", "stale_ts", "duplicate_id"}
)
FLAG_KINDS = frozenset({"price_outlier", "out_of_order"})


class TickFindings:
    """Tick-level findings of one batch, grouped into one DATA_QUALITY event per kind and
    symbol (a burst of bad prints is one event with its count, not thousands)."""

    def __init__(self, findings: Findings) -> None:
        self.findings = findings
        self.batch: dict[tuple[str, Any], list[dict[str, Any]]] = {}

    def note(
        self, kind: str, symbol: str, ts: int, values: dict[str, Any], severity: float = 0.0
    ) -> None:
        self.findings.add(kind, symbol, ts, values, severity)
        items = self.batch.setdefault((kind, symbol), [])
        items.append({"ts": ts, **values} if len(items) < 3 else {})  # counted, not detailed

    def flush(self) -> list[Event]:
        events = []
        for (kind, symbol), items in self.batch.items():
            examples = [x for x in items if x]
            first = {k: v for k, v in examples[0].items() if k != "ts"}
            ts = examples[0]["ts"]
            details = {"count": len(items), **first, "examples": examples,
                       "action": "rejected" if kind in REJECT_KINDS else "flagged"}  # fmt: skip
            finding = DataQualityFinding(kind, symbol, ts, details)
            events.append(Event(EventType.DATA_QUALITY, ts, finding, "validator"))
        self.batch = {}
        return events


def market_calendar(policy: Any, extra_holidays: frozenset[date] = frozenset()) -> MarketCalendar:
    """The validator's market: `market_hours` on weekdays in `market_tz`, under an exchange's
    closed days and early closes: the US equity calendar when `holidays` is us (auto: in New
    York time), CME Globex's when it is cme."""
    window = parse_market_hours(policy.market_hours, policy.market_tz)
    holidays = policy.holidays
    if holidays == "auto":
        holidays = "us" if policy.market_tz == US_EQUITY_TZ else "none"
    exchange = EXCHANGES[holidays]() if holidays in EXCHANGES else None
    extra = extra_holidays if exchange is not None else frozenset()
    return weekday_calendar(window, policy.market_tz, exchange, extra)


class _CandleState:
    __slots__ = ("prev_start", "prev_close", "volumes", "ordered", "flat_run", "flat_since")

    def __init__(self, window: int) -> None:
        self.prev_start: int | None = None
        self.prev_close: float | None = None
        self.volumes: deque[float] = deque(maxlen=window)
        self.ordered: list[float] = []  # the same volumes sorted: a median without a sort
        self.flat_run = 0
        self.flat_since = 0


class CandleChecks:
    """OHLC sanity, volume spike, frozen feed and missing minutes, per symbol."""

    def __init__(
        self, policy: Any, findings: Findings, sale_policy: Any = None,
        hours: MarketCalendar | None = None,
    ) -> None:  # fmt: skip
        self.policy = policy
        self.findings = findings
        self.sale_policy = sale_policy
        self.hours = hours if hours is not None else market_calendar(policy)
        self._state: dict[str, _CandleState] = {}
        self.pending: list[tuple[str, int, int, Any, str, Any]] = []
        self.adjusted: list[Candle] = []
        self.checked = 0

    def _event(self, kind: str, c: Candle, values: dict[str, Any], severity: float) -> Event:
        self.findings.add(kind, c.symbol, c.start, values, severity)
        finding = DataQualityFinding(kind, c.symbol, c.start, values)
        return Event(EventType.DATA_QUALITY, c.start, finding, "validator")

    def check(self, c: Candle) -> list[Event]:
        self.checked += 1
        out: list[Event] = []
        st = self._state.get(c.symbol)
        if st is None:
            st = self._state[c.symbol] = _CandleState(self.policy.volume_window)
        o, h, lo, cl, v = c.open, c.high, c.low, c.close, c.volume
        nums = (o, h, lo, cl, v)
        sane = all(isinstance(x, int | float) and math.isfinite(x) for x in nums) and (
            0 < lo <= min(o, cl) and max(o, cl) <= h and v >= 0
        )
        if not sane:
            out.append(self._event("ohlc_invalid", c, {"open": o, "high": h, "low": lo,
                                   "close": cl, "volume": v}, 1.0))  # fmt: skip
        if st.prev_start is not None and c.start > st.prev_start + NS_PER_MINUTE:
            missing = self.hours.open_minutes(st.prev_start + NS_PER_MINUTE, c.start)
            if missing:
                out.append(
                    self._event(
                        "missing_minutes",
                        c,
                        {"from": st.prev_start + NS_PER_MINUTE, "to": c.start, "minutes": missing},
                        missing,
                    )
                )
        if c.gap_filled and self.hours.is_open_minute(c.start):
            out.append(self._event("missing_minutes", c, {"from": c.start, "to": c.end,
                                   "minutes": 1, "filled": True}, 1.0))  # fmt: skip
        if sane and not c.gap_filled:
            out.extend(self._volume(st, c))
            out.extend(self._frozen(st, c))
        st.prev_start = max(c.start, st.prev_start or c.start)
        if sane:
            st.prev_close = cl
        return out

    def _volume(self, st: _CandleState, c: Candle) -> list[Event]:
        out = []
        vols, ordered = st.volumes, st.ordered
        if len(vols) >= self.policy.volume_min_candles:
            med = ordered[len(ordered) // 2]
            if med > 0 and c.volume > self.policy.volume_spike_factor * med:
                out.append(self._event("volume_spike", c, {"volume": c.volume, "median": med,
                           "factor": round(c.volume / med, 1)}, c.volume / med))  # fmt: skip
        if len(vols) == vols.maxlen:
            del ordered[bisect_left(ordered, vols[0])]
        vols.append(c.volume)
        insort(ordered, c.volume)
        return out

    def _frozen(self, st: _CandleState, c: Candle) -> list[Event]:
        flat = c.open == c.high == c.low == c.close == st.prev_close
        if not flat or not self.hours.is_open_minute(c.start):
            st.flat_run = 0
            return []
        if st.flat_run == 0:
            st.flat_since = c.start
        st.flat_run += 1
        if st.flat_run != self.policy.frozen_minutes:
            return []
        return [self._event("frozen_feed", c, {"price": c.close, "since": st.flat_since,
                            "minutes": st.flat_run}, st.flat_run)]  # fmt: skip

    # ------------------------------------------------------------------ corrections
    def correction(
        self,
        symbol: str,
        ts: int,
        trade_id: Any,
        exchange: str,
        corrected: Any,
        recent: Iterable[tuple[Any, ...]],
        closed: bool,
        forgotten: int,
    ) -> Event | None:
        """`forgotten`: no tick after this time has been let go of (`recent` has them all)."""
        item = (symbol, ts - ts % NS_PER_MINUTE, ts, trade_id, exchange, corrected)
        if not closed:
            self.pending.append(item)
            return None
        return self._apply(item, recent, forgotten)

    def settle(
        self, candle: Candle, recent: Iterable[tuple[Any, ...]], forgotten: int
    ) -> list[Event]:
        """Corrections waiting for this candle's minute (or an earlier one) to close."""
        due = [p for p in self.pending if p[0] == candle.symbol and p[1] <= candle.start]
        if not due:
            return []
        self.pending = [p for p in self.pending if p not in due]
        return [self._apply(p, recent, forgotten) for p in due]

    def _apply(
        self, item: tuple[Any, ...], recent: Iterable[tuple[Any, ...]], forgotten: int
    ) -> Event:
        symbol, minute, ts, trade_id, exchange, corrected = item
        # a minute some of whose ticks may be gone cannot be recomputed: reported only
        kept = forgotten < minute
        end = minute + NS_PER_MINUTE
        ticks = [t for t in recent if t[0] == symbol and minute <= t[1] < end] if kept else []
        found = -1
        for i, t in enumerate(ticks):
            if t[6] == trade_id and (not exchange or t[4] == exchange):
                found = i
                break
        before = self._ohlcv(ticks)
        after_ticks = list(ticks)
        if found >= 0:
            orig = after_ticks.pop(found)
            if corrected is not None:
                price, size, cond = corrected
                after_ticks.insert(found, (symbol, orig[1], price, size, orig[4], cond, trade_id))
        after = self._ohlcv(after_ticks)
        kind = "trade_cancel" if corrected is None else "trade_correction"
        details = {"candle_start": minute, "id": trade_id, "found": found >= 0, "kept": kept,
                   "before": before, "after": after}  # fmt: skip
        if found >= 0 and after is not None:
            self.adjusted.append(Candle(symbol, minute, *after, tick_count=len(after_ticks)))
        self.findings.add(kind, symbol, ts, {"id": trade_id, "found": found >= 0}, 1.0)
        finding = DataQualityFinding(kind, symbol, ts, details)
        return Event(EventType.DATA_QUALITY, ts, finding, "validator")

    def _ohlcv(
        self, ticks: list[tuple[Any, ...]]
    ) -> tuple[float, float, float, float, float] | None:
        if not ticks:
            return None
        decide = self.sale_policy.decide if self.sale_policy is not None else None
        prices = [t[2] for t in ticks if decide is None or decide(t[5])] or [ticks[-1][2]]
        return (prices[0], max(prices), min(prices), prices[-1], sum(t[3] for t in ticks))
