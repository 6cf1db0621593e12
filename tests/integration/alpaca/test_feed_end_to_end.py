"""The fetcher against the local Alpaca serving real SPY trades gives the file's candles."""

from __future__ import annotations

import asyncio

from slob_tui.core.clock import ManualClock
from slob_tui.core.events import EventType
from slob_tui.core.models import NS_PER_MINUTE
from slob_tui.engine.aggregator import SaleConditionPolicy
from slob_tui.engine.engine import LiveTradingEngine
from slob_tui.storage.candles import CandleStore
from tests.fakes.alpaca import LocalAlpaca

from .conftest import (
    SECRET,
    SLICE_END,
    SLICE_START,
    AggSink,
    fast_fetcher,
    ohlcv,
    run_until_done,
    wait_for,
)


async def test_engine_with_fetcher_reproduces_file_candles(spy_trades, reference_candles, tmp_path):
    """Real engine, real store on disk, msgpack frames: the stored candles equal the direct
    aggregation of the file, and the secret is nowhere in the database file."""
    db = tmp_path / "candles.db"
    async with LocalAlpaca(spy_trades, "PKTESTKEY0000001", SECRET, batch_size=200) as server:
        fetcher = fast_fetcher(server)
        engine = LiveTradingEngine(
            fetcher,
            store=CandleStore(db),
            clock=ManualClock(SLICE_START),
            policy=SaleConditionPolicy.alpaca_sip(),
            enable_tracker=False,
        )
        task = asyncio.create_task(engine.run())
        target = SLICE_END - 2 * NS_PER_MINUTE
        await wait_for(
            lambda: task.done() or (engine.last_candle_start("SPY") or 0) >= target,
            60,
            "engine candles",
        )
        engine.request_stop("test done")
        await asyncio.wait_for(task, 20)
    async with CandleStore(db) as store:
        stored = await store.candles("SPY", SLICE_START, SLICE_END - NS_PER_MINUTE)
    assert len(reference_candles) == 29
    assert ohlcv(stored) == ohlcv(reference_candles)
    assert fetcher.ticks == len(spy_trades)
    assert SECRET.encode() not in db.read_bytes()


async def test_json_framing_gives_the_same_candles(spy_trades, reference_candles):
    async with LocalAlpaca(spy_trades, "PKTESTKEY0000001", SECRET) as server:
        sink = AggSink()
        fetcher = fast_fetcher(server, encoding="json")
        await run_until_done(fetcher, sink)
    assert ohlcv(sink.final()) == ohlcv(reference_candles)
    assert fetcher.rejected_messages == 0
    assert [e.type for e in sink.events][:1] == [EventType.FEED_CONNECTED]


async def test_cold_start_backfills_the_session_before_any_tick(spy_trades, reference_candles):
    """Started at 09:45 with an empty history: 09:30-09:44 come from REST bars, marked
    backfilled, before the first tick of the connection."""
    async with LocalAlpaca(spy_trades, "PKTESTKEY0000001", SECRET) as server:
        server.seek(SLICE_START + 15 * NS_PER_MINUTE)
        sink = AggSink()
        fetcher = fast_fetcher(server)
        await run_until_done(fetcher, sink)
    assert len(sink.backfill_calls) == 1
    first = sink.backfill_calls[0]
    assert [c.start for c in first] == [SLICE_START + k * NS_PER_MINUTE for k in range(15)]
    assert all(c.backfilled for c in first)
    assert sink.order_violations == 0
    assert ohlcv(sink.final()) == ohlcv(reference_candles)
    assert sink.of_type(EventType.BACKFILL_COMPLETED)[0].data.candles == 15


async def test_drop_mid_batch_is_backfilled_without_hole_or_duplicate(
    spy_trades, reference_candles
):
    async with LocalAlpaca(spy_trades, "PKTESTKEY0000001", SECRET) as server:
        server.schedule(len(spy_trades) // 3, "drop")
        sink = AggSink()
        fetcher = fast_fetcher(server)
        await run_until_done(fetcher, sink)
    assert fetcher.reconnects == 1
    assert fetcher.backfilled_candles >= 1
    starts = [c.start for c in sink.closed]
    assert len(starts) == len(set(starts))
    assert sink.order_violations == 0
    assert ohlcv(sink.final()) == ohlcv(reference_candles)
    kinds = [e.type for e in sink.events]
    assert kinds.count(EventType.FEED_CONNECTED) == 2
    assert EventType.FEED_DISCONNECTED in kinds


async def test_failing_backfill_ends_the_session_instead_of_leaving_a_hole(
    spy_trades, reference_candles
):
    """Bars fail four times: three tries in the first session, then the session is redone
    (its held ticks are not released into a hole) and the next one backfills."""
    async with LocalAlpaca(spy_trades, "PKTESTKEY0000001", SECRET) as server:
        server.seek(SLICE_START + 10 * NS_PER_MINUTE)
        server.bars_failures = 4
        sink = AggSink()
        fetcher = fast_fetcher(server)
        await run_until_done(fetcher, sink)
    assert fetcher.backfill_failures == 4
    assert fetcher.reconnects == 1
    finding = sink.of_type(EventType.DATA_QUALITY)[0].data
    assert finding.kind == "backfill_error" and finding.details["error"]
    assert sink.order_violations == 0
    assert ohlcv(sink.final()) == ohlcv(reference_candles)
