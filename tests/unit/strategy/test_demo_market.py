"""The demo market: deterministic, draws SLOB setups both ways, ticks rebuild its candles."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import date
from typing import Any

from slob_tui.core.clock import ManualClock
from slob_tui.core.events import EventType
from slob_tui.core.models import NS_PER_MINUTE, Candle
from slob_tui.engine.aggregator import CandleAggregator
from slob_tui.engine.engine import LiveTradingEngine
from slob_tui.feeds.demo import DemoFeed, default_start, demo_candles, demo_ticks
from slob_tui.strategy.backtest import run_tracker

from .helpers import hm, sto_ns

START = sto_ns(15, 20, date(2026, 1, 6))


def test_seeded_output_is_deterministic() -> None:
    a = demo_candles(7, START, 240)
    assert a == demo_candles(7, START, 240)
    assert a != demo_candles(8, START, 240)
    assert len(a) == 240 and all(
        b.start - a_.start == NS_PER_MINUTE for a_, b in zip(a, a[1:], strict=False)
    )
    assert all(c.low <= min(c.open, c.close) <= max(c.open, c.close) <= c.high for c in a)


def test_a_few_market_hours_yield_triggered_setups_in_both_directions() -> None:
    day_start = sto_ns(0, 0, date(2026, 1, 6))
    candles = demo_candles(7, day_start, 3 * 24 * 60)
    events = run_tracker(candles, "NQ")
    triggered = [e.data for e in events if e.type is EventType.SETUP_TRIGGERED]
    assert Counter(u.direction.value for u in triggered).keys() == {"SHORT", "LONG"}
    first_start = next(e.data for e in events if e.type is EventType.SETUP_STARTED)
    assert hm(first_start.time) < "15:45"  # seen within minutes of the trade window
    assert triggered[0].time - START < 90 * NS_PER_MINUTE


def test_ticks_aggregate_back_to_the_candles() -> None:
    candles = demo_candles(3, START, 45)
    agg = CandleAggregator()
    built = agg.process(demo_ticks(3, START, 45)) + agg.flush()
    key = [(c.start, c.open, c.high, c.low, c.close, c.volume) for c in built]
    assert key == [(c.start, c.open, c.high, c.low, c.close, c.volume) for c in candles]


def test_default_start_is_a_weekday_at_1520_stockholm() -> None:
    saturday = sto_ns(12, 0, date(2026, 1, 10))
    assert default_start(saturday) == sto_ns(15, 20, date(2026, 1, 9))


class RecordingSink:
    """Collects what a feed pushes, in the FeedSink protocol's shape."""

    def __init__(self) -> None:
        self.candles: list[Candle] = []
        self.ticks: list[tuple[Any, ...]] = []
        self.times: list[int] = []

    def put_ticks(self, ticks: Any) -> None:
        self.ticks.extend(ticks)

    async def put_ticks_wait(self, ticks: Any) -> None:
        self.ticks.extend(ticks)

    async def put_candles(self, candles: Any) -> None:
        self.candles.extend(candles)

    def set_time(self, ns: int) -> None:
        self.times.append(ns)

    def feed_event(self, event: Any) -> None:
        pass

    def last_candle_start(self, symbol: str) -> int | None:
        return None


async def test_feed_pushes_reference_session_then_ticks_and_pauses() -> None:
    clock = ManualClock(START)
    feed = DemoFeed(seed=7, start=START, clock=clock, interval=0.001)
    sink = RecordingSink()
    task = asyncio.create_task(feed.run(sink))
    await asyncio.sleep(0.02)
    assert [hm(c.start) for c in (sink.candles[0], sink.candles[-1])] == ["09:00", "15:19"]
    assert len(sink.candles) == 380
    clock.advance(5 * NS_PER_MINUTE)
    await asyncio.sleep(0.02)
    assert sink.ticks == [t for t in demo_ticks(7, START, 6) if t[1] <= clock.now_ns()]
    assert sink.times[-1] == clock.now_ns()
    feed.pause()
    await asyncio.sleep(0.02)
    n = len(sink.ticks)
    clock.advance(2 * NS_PER_MINUTE)
    await asyncio.sleep(0.02)
    assert len(sink.ticks) == n and feed.health().state == "paused"
    feed.resume()
    await asyncio.sleep(0.02)
    assert len(sink.ticks) > n and feed.health().state == "running"
    await feed.stop()
    await asyncio.wait_for(task, 1)
    h = feed.health()
    assert h.state == "stopped" and h.counters["ticks"] == len(sink.ticks)
    assert h.counters["seed"] == 7


async def test_engine_on_the_demo_feed_sees_a_triggered_setup() -> None:
    feed = DemoFeed(seed=7, start=START, speed=4000, interval=0.01)
    engine = LiveTradingEngine(feed, clock=ManualClock(START))
    triggered: list = []
    engine.bus.subscribe(EventType.SETUP_TRIGGERED, triggered.append)
    await engine.run(duration=2.0)  # 2 s wall at 4000x is about 133 market minutes
    assert triggered and triggered[0].data.symbol == "NQ"


def test_demo_clock_runs_accelerated_and_stands_still_while_paused() -> None:
    from slob_tui.feeds.demo import DemoClock

    wall = ManualClock(1_000 * 10**9)
    clock = DemoClock(START, 60.0, wall)
    wall.advance(2 * 10**9)
    assert clock.now_ns() == START + 2 * NS_PER_MINUTE
    clock.pause()
    wall.advance(5 * 10**9)
    assert clock.now_ns() == START + 2 * NS_PER_MINUTE
    clock.resume()
    wall.advance(1 * 10**9)
    assert clock.now_ns() == START + 3 * NS_PER_MINUTE
    # once the feed reports what it delivered, the engine never sees time beyond it
    clock.show(START + NS_PER_MINUTE)
    assert clock.now_ns() == START + NS_PER_MINUTE
    assert clock.market_ns() == START + 3 * NS_PER_MINUTE
    feed = DemoFeed(start=START)
    assert isinstance(feed.clock, DemoClock)  # the engine's wiring takes `feed.clock`


async def test_engine_with_the_feeds_own_clock_closes_candles_on_market_time() -> None:
    feed = DemoFeed(seed=7, start=START, speed=3000, interval=0.01)
    engine = LiveTradingEngine(feed, clock=feed.clock)
    candles: list = []
    engine.bus.subscribe(EventType.CANDLE_COMPLETED, candles.append)
    await engine.run(duration=1.0)
    live = [e.data for e in candles if e.data.start >= START][:-1]  # the last: cut by the stop
    assert live and all(c.volume > 0 and not c.gap_filled for c in live)
    assert [c.start for c in live] == [START + i * NS_PER_MINUTE for i in range(len(live))]

    def ohlcv(c: Candle) -> tuple:
        return (c.start, c.open, c.high, c.low, c.close, c.volume)

    assert [ohlcv(c) for c in live] == [ohlcv(c) for c in demo_candles(7, START, len(live))]


def _ar1(xs: list[float]) -> float:
    m = sum(xs) / len(xs)
    num = sum((a - m) * (b - m) for a, b in zip(xs, xs[1:], strict=False))
    return num / sum((a - m) ** 2 for a in xs)


def test_the_market_is_not_straight_ramps_volatility_clusters_volume_is_a_u() -> None:
    """Issue 15 item 13: it should look like a market, scripted setups and all."""
    day = date(2026, 1, 6)
    candles = demo_candles(7, sto_ns(0, 0, day), 24 * 60)
    ref = [c for c in candles if sto_ns(9, 0, day) <= c.start < sto_ns(15, 30, day)]
    moves = [abs(b.close - a.close) for a, b in zip(ref, ref[1:], strict=False)]
    assert _ar1(moves) > 0.05  # big moves follow big moves
    assert len(set(moves)) > 8  # not a staircase of equal steps (prices on the 0.25 grid)
    session = [c for c in candles if sto_ns(15, 30, day) <= c.start < sto_ns(22, 0, day)]
    first, last = session[:30], session[-30:]
    middle = session[len(session) // 2 - 30 : len(session) // 2 + 30]

    def mean_volume(cs: list[Candle]) -> float:
        return sum(c.volume for c in cs) / len(cs)

    assert mean_volume(first) > 1.8 * mean_volume(middle)  # a busy open,
    assert mean_volume(last) > 1.8 * mean_volume(middle)  # a busy close, a quiet lunch
    night = [c for c in candles if c.start < sto_ns(9, 0, day)]
    assert mean_volume(night) < mean_volume(middle)


def test_the_demo_never_trips_the_validators_volume_spike() -> None:
    """A volume spike is a data-quality finding; the demo's open must not look like one."""
    from slob_tui.engine.quality import QualityPolicy

    factor, window = QualityPolicy().volume_spike_factor, QualityPolicy().volume_window
    candles = demo_candles(7, sto_ns(0, 0, date(2026, 1, 5)), 5 * 24 * 60)
    for i in range(20, len(candles)):
        recent = sorted(c.volume for c in candles[max(0, i - window) : i])
        median = recent[len(recent) // 2]
        assert candles[i].volume < factor * median * 0.8, candles[i]
