"""Health judged by progress (the last candle processed), not by a heartbeat."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from slob_tui.core.clock import Clock, WallClock
from slob_tui.core.health import PipelineHealth, Progress
from slob_tui.core.models import NS_PER_MINUTE, NS_PER_SECOND, Candle

log = logging.getLogger(__name__)

LATE_ONLY_AFTER_S = 60.0  # engine seconds of nothing but late ticks before health says so,
LATE_ONLY_AFTER_TICKS = 1000  # or this many (a replay's clock stands still on late ticks)


class HealthMonitor:
    """Tracks ticks, candles and connection state; `report()` says whether data still flows
    (the report's `pipeline` section; safe mode and faults are weighed in `HealthReport`).

    The engine is `stale` when no candle has closed for longer than `stale_after_s` of engine
    time while the market is open (by `market_open(now_ns)`, always open unless told), and
    `late_ticks` when ticks keep arriving but every one since the last candle (for at least
    `LATE_ONLY_AFTER_S` of engine time, or `LATE_ONLY_AFTER_TICKS` ticks) was late: data
    flows, yet nothing reaches a candle, as when the feed replays minutes the store already
    holds. That state is logged once.

    `wall` times "last candle N s ago" for people: engine time runs 60x in the demo and as
    fast as the data in a replay, so only wall seconds say how long the screen has stood still.
    """

    def __init__(
        self,
        clock: Clock,
        stale_after_s: float = 180.0,
        market_open: Callable[[int], bool] | None = None,
        wall: Clock | None = None,
    ) -> None:
        self.clock = clock
        self.wall: Clock = wall or WallClock()
        self.stale_after_ns = int(stale_after_s * NS_PER_SECOND)
        self.market_open = market_open or (lambda _ns: True)
        self.start_ns: int | None = None
        self.ticks = 0
        self.candles = 0
        self.candles_by_day: dict[int, int] = {}
        self.last_candle_start: int | None = None
        self.last_candle_seen_ns: int | None = None
        self.last_candle_wall_ns: int | None = None
        self.first_tick_ns: int | None = None  # progress is judged from here before a candle
        self.late_ticks = 0
        self.ticks_since_candle = 0
        self.late_since_candle = 0
        self._late_logged = False
        self.connected: bool | None = None
        self.reconnects = 0
        self.safe_mode = False
        self._rate_ticks = 0
        self._rate_t0 = time.monotonic()
        self.ticks_per_s = 0.0

    def started(self, now_ns: int) -> None:
        self.start_ns = now_ns

    def on_ticks(self, n: int, late: int = 0) -> None:
        """`n` ticks reached the aggregator; `late` of them were dropped as late."""
        if self.first_tick_ns is None and n:
            self.first_tick_ns = self.clock.now_ns()
        self.ticks += n
        self._rate_ticks += n
        self.ticks_since_candle += n
        self.late_ticks += late
        self.late_since_candle += late
        if late and not self._late_logged and self._late_only(self.clock.now_ns()):
            self._late_logged = True
            log.warning(
                "every tick since the last candle was late (%d ticks over %.0f s of engine "
                "time, none reached a candle): the feed is behind the stored candles or the "
                "clock",
                self.late_since_candle,
                self._since_progress_s(self.clock.now_ns()) or 0.0,
            )

    def _since_progress_s(self, now: int) -> float | None:
        ref = self.last_candle_seen_ns
        if ref is None:  # a demo resuming after its stored candles jumps its clock at start
            ref = self.first_tick_ns if self.first_tick_ns is not None else self.start_ns
        return (now - ref) / NS_PER_SECOND if ref is not None else None

    def _late_only(self, now: int) -> bool:
        since = self._since_progress_s(now)
        if self.late_since_candle == 0 or self.late_since_candle != self.ticks_since_candle:
            return False
        if self.late_since_candle >= LATE_ONLY_AFTER_TICKS:
            return True
        return since is not None and since >= LATE_ONLY_AFTER_S

    def on_candle(self, candle: Candle) -> None:
        self.candles += 1
        day = candle.start // (1440 * NS_PER_MINUTE)
        self.candles_by_day[day] = self.candles_by_day.get(day, 0) + 1
        self.last_candle_start = candle.start
        self.last_candle_seen_ns = self.clock.now_ns()
        self.last_candle_wall_ns = self.wall.now_ns()
        self.ticks_since_candle = self.late_since_candle = 0
        self._late_logged = False

    def _update_rate(self) -> None:
        now = time.monotonic()
        elapsed = now - self._rate_t0
        if elapsed >= 1.0:
            self.ticks_per_s = self._rate_ticks / elapsed
            self._rate_ticks = 0
            self._rate_t0 = now

    def report(self) -> PipelineHealth:
        self._update_rate()
        now = self.clock.now_ns()
        age_s = self._since_progress_s(now)
        last_end_age_s = (
            (now - self.last_candle_start - NS_PER_MINUTE) / NS_PER_SECOND
            if self.last_candle_start is not None
            else None
        )
        progress: Progress
        if self.start_ns is None:
            progress = "starting"
        elif (
            age_s is not None
            and age_s * NS_PER_SECOND > self.stale_after_ns
            and (self.market_open(now))
        ):
            progress = "stale"
        elif self._late_only(now):
            progress = "late_ticks"
        else:
            progress = "ok"
        today = now // (1440 * NS_PER_MINUTE)
        return PipelineHealth(
            progress=progress,
            ticks=self.ticks,
            ticks_per_s=round(self.ticks_per_s, 1),
            candles=self.candles,
            candles_today=self.candles_by_day.get(today, 0),
            last_candle_start=self.last_candle_start,
            last_candle_age_s=None if last_end_age_s is None else round(last_end_age_s, 1),
            last_candle_wall_age_s=None
            if self.last_candle_wall_ns is None
            else round((self.wall.now_ns() - self.last_candle_wall_ns) / NS_PER_SECOND, 1),
            since_progress_s=None if age_s is None else round(age_s, 1),
            late_ticks=self.late_ticks,
            late_since_candle=self.late_since_candle,
            connected=self.connected,
            reconnects=self.reconnects,
            safe_mode=self.safe_mode,
            uptime_s=None if self.start_ns is None else round((now - self.start_ns) / 1e9, 1),
        )
