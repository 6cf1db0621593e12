"""The engine end to end with the real aggregator and a real SQLite store on disk."""

from __future__ import annotations

import asyncio

import pytest

from slob_tui.core.clock import ManualClock
from slob_tui.core.events import EventType
from slob_tui.core.health import FeedHealth
from slob_tui.core.models import NS_PER_MINUTE, Candle
from slob_tui.engine.engine import LiveTradingEngine
from slob_tui.storage.candles import CandleStore

T0 = 1_700_000_000 * 10**9 // NS_PER_MINUTE * NS_PER_MINUTE  # a minute boundary


class ListFeed:
    """Pushes prepared tick batches (and optional candles), then ends or waits."""

    name = "list"
    mode = "REPLAY"

    def __init__(self, batches, candles=(), wait_forever=False, symbols=("X",)):
        self.batches = batches
        self.candles = list(candles)
        self.wait_forever = wait_forever
        self.symbols = symbols
        self.paused = False
        self._stop = asyncio.Event()

    async def run(self, sink):
        if self.candles:
            await sink.put_candles(self.candles)
        for batch in self.batches:
            sink.set_time(batch[-1][1])
            await sink.put_ticks_wait(batch)
            await asyncio.sleep(0)
        if self.wait_forever:
            await self._stop.wait()

    async def stop(self):
        self._stop.set()

    def pause(self):
        self.paused = True

    def resume(self):
        self.paused = False

    def health(self):
        return FeedHealth(name="list", state="connected")


def minute_ticks(symbol, minute, prices):
    base = T0 + minute * NS_PER_MINUTE
    return [(symbol, base + i * 10**9, p, 1.0, "", None, None) for i, p in enumerate(prices)]


async def test_ticks_become_candles_in_the_store_and_on_the_bus(tmp_path):
    batches = [minute_ticks("X", m, [100 + m, 101 + m, 99 + m, 100.5 + m]) for m in range(5)]
    store = CandleStore(tmp_path / "e.db")
    engine = LiveTradingEngine(ListFeed(batches), store=store, enable_tracker=False)
    seen = []
    engine.bus.subscribe(EventType.CANDLE_COMPLETED, lambda e: seen.append(e.data))
    await engine.run()
    assert [c.start for c in seen] == [T0 + m * NS_PER_MINUTE for m in range(5)]
    assert seen[2].open == 102 and seen[2].high == 103 and seen[2].low == 101
    assert seen[2].close == 102.5 and seen[2].volume == 4 and seen[2].tick_count == 4
    async with CandleStore(tmp_path / "e.db") as again:
        stored = await again.candles("X")
    assert stored == seen  # the last, still-forming candle was closed and flushed at stop
    assert engine.health().pipeline.candles == 5 and engine.health().pipeline.ticks == 20


async def test_gap_is_filled_and_reported(tmp_path):
    batches = [minute_ticks("X", 0, [10.0]), minute_ticks("X", 3, [11.0])]
    engine = LiveTradingEngine(ListFeed(batches), store=None, enable_tracker=False)
    gaps = []
    engine.bus.subscribe(EventType.CANDLE_GAP, lambda e: gaps.append(e.data))
    closed = []
    engine.bus.subscribe(EventType.CANDLE_COMPLETED, lambda e: closed.append(e.data))
    await engine.run()
    assert [c.gap_filled for c in closed] == [False, True, True, False]
    assert closed[1].close == 10.0 and gaps == []


async def test_candles_handed_over_keep_their_order_with_ticks(tmp_path):
    backfill = [
        Candle("X", T0 + m * NS_PER_MINUTE, 5, 6, 4, 5, 10, 3, backfilled=True) for m in range(3)
    ]
    batches = [minute_ticks("X", 3, [7.0, 8.0]), minute_ticks("X", 4, [9.0])]
    engine = LiveTradingEngine(
        ListFeed(batches, candles=backfill), store=None, enable_tracker=False
    )
    closed = []
    engine.bus.subscribe(EventType.CANDLE_COMPLETED, lambda e: closed.append(e.data))
    await engine.run()
    assert [c.start for c in closed] == [T0 + m * NS_PER_MINUTE for m in range(5)]
    assert [c.backfilled for c in closed] == [True, True, True, False, False]


async def test_clock_closes_a_quiet_candle_and_health_judges_progress(tmp_path):
    clock = ManualClock(T0)
    feed = ListFeed([minute_ticks("X", 0, [1.0, 2.0])], wait_forever=True)
    feed.mode = "DEMO"
    engine = LiveTradingEngine(
        feed, store=None, clock=clock, enable_tracker=False, clock_tick_s=0.01
    )
    engine.health_monitor.stale_after_ns = 120 * 10**9
    closed = []
    engine.bus.subscribe(EventType.CANDLE_COMPLETED, lambda e: closed.append(e.data))
    await engine.start()
    await asyncio.sleep(0.05)
    assert closed == []
    clock.set(T0 + NS_PER_MINUTE + 3 * 10**9)  # minute over plus more than the grace
    for _ in range(100):
        await asyncio.sleep(0.01)
        if closed:
            break
    assert len(closed) == 1 and closed[0].close == 2.0
    assert engine.health().status == "ok"
    clock.advance(200 * 10**9)
    assert engine.health().status == "stale"
    await engine.stop("test")
    assert engine.stopped and engine.stop_reason == "test"


async def test_restart_continues_after_stored_history(tmp_path):
    path = tmp_path / "r.db"
    first = [minute_ticks("X", m, [1.0 + m]) for m in range(3)]
    await LiveTradingEngine(ListFeed(first), store=CandleStore(path), enable_tracker=False).run()
    again = [minute_ticks("X", m, [1.0 + m]) for m in range(2, 5)]  # overlaps the stored minute 2
    engine = LiveTradingEngine(ListFeed(again), store=CandleStore(path), enable_tracker=False)
    await engine.run()
    async with CandleStore(path) as store:
        stored = await store.candles("X")
    assert [c.start for c in stored] == [T0 + m * NS_PER_MINUTE for m in range(5)]
    assert engine.resumed_from == {"X": T0 + 2 * NS_PER_MINUTE}
    assert engine.aggregator.stats()["late_ticks"] == 1


async def test_snapshot_sequence_moves_with_state(tmp_path):
    engine = LiveTradingEngine(
        ListFeed([minute_ticks("X", 0, [1.0])]), store=None, enable_tracker=False
    )
    s0 = engine.snapshot()
    await engine.run()
    s1 = engine.snapshot()
    assert s1.seq > s0.seq
    assert s1.candles["X"][-1].close == 1.0 and s1.mode == "REPLAY"


async def test_a_failing_feed_is_reported_and_the_engine_still_stops_cleanly(tmp_path):
    class Broken(ListFeed):
        async def run(self, sink):
            await sink.put_ticks_wait(minute_ticks("X", 0, [1.0]))
            raise RuntimeError("socket gone")

    engine = LiveTradingEngine(
        Broken([]), store=CandleStore(tmp_path / "b.db"), enable_tracker=False
    )
    with pytest.raises(RuntimeError, match="socket gone"):
        await engine.run()
    async with CandleStore(tmp_path / "b.db") as store:
        assert await store.count() == 1


async def test_batch_feed_hands_every_batch_over_and_stops_when_asked(tmp_path):
    from slob_tui.feeds.batches import BatchFeed

    batches = [minute_ticks("X", m, [1.0 + m, 2.0 + m]) for m in range(4)]
    feed = BatchFeed(batches)
    assert feed.symbols == ("X",) and feed.mode == "REPLAY"
    engine = LiveTradingEngine(feed, store=None, enable_tracker=False)
    await engine.run()
    assert feed.sent == 8 and engine.candles_processed == 4
    stopped = BatchFeed(batches)
    await stopped.stop()
    engine = LiveTradingEngine(stopped, store=None, enable_tracker=False)
    await engine.run()
    assert stopped.sent == 0 and stopped.health().state == "stopped"


class CorrectingFeed(ListFeed):
    """Ticks with trade ids, then a cancel of a closed minute's high and a correction of a
    trade in the minute still forming."""

    async def run(self, sink):
        await super().run(sink)
        await asyncio.sleep(0.05)  # let the engine take the ticks
        high = self.batches[0][1]
        sink.apply_correction("X", high[1], high[6], "", None)
        late = self.batches[1][0]
        sink.apply_correction("X", late[1], late[6], "", (50.0, 1.0, ()))


async def test_trade_cancels_and_corrections_fix_the_candles(tmp_path):
    from slob_tui.engine.quality import QualityPolicy
    from slob_tui.storage.candles import CandleStore as Store

    def with_ids(minute, prices, first_id):
        return [(*t[:6], first_id + i) for i, t in enumerate(minute_ticks("X", minute, prices))]

    batches = [with_ids(0, [100.0, 105.0, 99.0, 101.0], 10), with_ids(1, [101.0, 102.0], 20)]
    path = tmp_path / "c.db"
    hooked, findings = [], []
    engine = LiveTradingEngine(
        CorrectingFeed(batches),
        store=Store(path),
        enable_tracker=False,
        quality=QualityPolicy(),
        candle_consumers=[hooked.append],
    )
    engine.bus.subscribe(EventType.DATA_QUALITY, lambda e: findings.append(e.data))
    await engine.run()
    async with Store(path) as store:
        stored = await store.candles("X")
    assert [c.high for c in stored] == [101.0, 102.0]  # the cancelled 105 print is gone
    assert stored[0].volume == 3 and stored[0].tick_count == 3
    assert stored[1].open == 50.0 and stored[1].low == 50.0  # corrected before it closed
    assert hooked[1].open == 50.0  # what the hooks and the tracker saw
    kinds = [f.kind for f in findings if f.kind.startswith("trade_")]
    assert kinds == ["trade_cancel", "trade_correction"]
    assert engine.recent["X"][0].high == 101.0


class StallingFeed(ListFeed):
    """Hands over seven ticks of a minute, then the event loop stalls (a VM pause, SIGSTOP)
    while the wall clock jumps 90 s; the last three ticks of that minute, received before the
    pause, are read from the socket only after the engine's consumer has had its turn."""

    mode = "LIVE"

    def __init__(self, clock: ManualClock) -> None:
        super().__init__([])
        self.clock = clock

    async def run(self, sink):
        import time

        first = minute_ticks("X", 0, [100.0, 101.0, 99.0, 100.5, 100.0, 100.2, 100.1])
        rest = [(s, ts + 10 * 10**9, p, z, c, x, i) for s, ts, p, z, c, x, i in
                minute_ticks("X", 0, [102.0, 98.0, 100.3])]  # fmt: skip
        sink.put_ticks(first)
        await asyncio.sleep(0.2)  # the consumer aggregates them
        self.clock.set(T0 + 90 * 10**9)
        time.sleep(0.6)  # the whole loop is stopped, as under SIGSTOP
        await asyncio.sleep(0.05)  # the consumer wakes first, with the clock 90 s on
        sink.put_ticks(rest)
        await asyncio.sleep(0.2)


async def test_a_stalled_loop_loses_no_tick_the_feed_had_received():
    clock = ManualClock(T0 + 5 * 10**9)
    late, stalls = [], []
    engine = LiveTradingEngine(
        StallingFeed(clock),
        store=None,
        clock=clock,
        clock_tick_s=0.02,
        stall_report_s=0.3,
        stall_settle_s=0.5,
        enable_tracker=False,
    )
    engine.bus.subscribe(EventType.LATE_TICK, late.append)
    engine.bus.subscribe(
        EventType.DATA_QUALITY,
        lambda e: stalls.append(e.data) if e.data.kind == "loop_stall" else None,
    )
    await engine.run()
    (candle,) = engine.recent["X"]
    assert candle.tick_count == 10 and (candle.high, candle.low, candle.close) == (
        102.0,
        98.0,
        100.3,
    )
    assert late == [] and engine.aggregator.stats()["late_ticks"] == 0
    assert len(stalls) == 1 and stalls[0].details["seconds"] > 0.3
    assert engine.health().loop_stalls == 1
