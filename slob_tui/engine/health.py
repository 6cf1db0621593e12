"""Health judged by progress (the last candle processed), not by a heartbeat."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from slob_tui.core.clock import Clock
from slob_tui.core.models import NS_PER_MINUTE, NS_PER_SECOND, Candle


class HealthMonitor:
    """Tracks ticks, candles and connection state; `report()` says whether data still flows.

    The engine is `stale` when no candle has closed for longer than `stale_after_s` of engine
    time while the market is open (by `market_open(now_ns)`, always open unless told).
    """

    def __init__(
        self,
        clock: Clock,
        stale_after_s: float = 180.0,
        market_open: Callable[[int], bool] | None = None,
    ) -> None:
        self.clock = clock
        self.stale_after_ns = int(stale_after_s * NS_PER_SECOND)
        self.market_open = market_open or (lambda _ns: True)
        self.start_ns: int | None = None
        self.ticks = 0
        self.candles = 0
        self.candles_by_day: dict[int, int] = {}
        self.last_candle_start: int | None = None
        self.last_candle_seen_ns: int | None = None
        self.connected: bool | None = None
        self.reconnects = 0
        self.safe_mode = False
        self._rate_ticks = 0
        self._rate_t0 = time.monotonic()
        self.ticks_per_s = 0.0

    def started(self, now_ns: int) -> None:
        self.start_ns = now_ns

    def on_ticks(self, n: int) -> None:
        self.ticks += n
        self._rate_ticks += n

    def on_candle(self, candle: Candle) -> None:
        self.candles += 1
        day = candle.start // (1440 * NS_PER_MINUTE)
        self.candles_by_day[day] = self.candles_by_day.get(day, 0) + 1
        self.last_candle_start = candle.start
        self.last_candle_seen_ns = self.clock.now_ns()

    def _update_rate(self) -> None:
        now = time.monotonic()
        elapsed = now - self._rate_t0
        if elapsed >= 1.0:
            self.ticks_per_s = self._rate_ticks / elapsed
            self._rate_ticks = 0
            self._rate_t0 = now

    def report(self) -> dict[str, Any]:
        self._update_rate()
        now = self.clock.now_ns()
        ref = self.last_candle_seen_ns if self.last_candle_seen_ns is not None else self.start_ns
        age_s = (now - ref) / NS_PER_SECOND if ref is not None else None
        last_end_age_s = (
            (now - self.last_candle_start - NS_PER_MINUTE) / NS_PER_SECOND
            if self.last_candle_start is not None
            else None
        )
        if self.start_ns is None:
            status = "starting"
        elif self.safe_mode:
            status = "safe_mode"
        elif age_s is not None and age_s * NS_PER_SECOND > self.stale_after_ns and (
            self.market_open(now)
        ):
            status = "stale"
        else:
            status = "ok"
        today = now // (1440 * NS_PER_MINUTE)
        return {
            "status": status,
            "healthy": status in ("ok", "starting"),
            "ticks": self.ticks,
            "ticks_per_s": round(self.ticks_per_s, 1),
            "candles": self.candles,
            "candles_today": self.candles_by_day.get(today, 0),
            "last_candle_start": self.last_candle_start,
            "last_candle_age_s": None if last_end_age_s is None else round(last_end_age_s, 1),
            "since_progress_s": None if age_s is None else round(age_s, 1),
            "connected": self.connected,
            "reconnects": self.reconnects,
            "safe_mode": self.safe_mode,
            "uptime_s": None if self.start_ns is None else round((now - self.start_ns) / 1e9, 1),
        }
