"""The edges of a feed gap (issue 14, item 2): the minute forming when the local Alpaca went
away and the one forming when it came back got only part of their trades over the stream.
After the reconnect both are compared with REST bars and replaced where they differ; a feed
without REST history flags them incomplete."""

from __future__ import annotations

import asyncio

from slob_tui.core.clock import ManualClock
from slob_tui.core.event_payloads import payload_fields
from slob_tui.core.events import Event, EventType
from slob_tui.core.models import NS_PER_MINUTE, NS_PER_SECOND
from slob_tui.engine.aggregator import SaleConditionPolicy
from slob_tui.engine.engine import LiveTradingEngine
from slob_tui.feeds.alpaca import AlpacaWSFetcher
from slob_tui.feeds.alpaca_backfill import EdgeMinute, GapEdges, edge_bars
from slob_tui.feeds.alpaca_rest import AlpacaBarsClient
from slob_tui.storage.candles import CandleStore
from tests.fakes.alpaca import LocalAlpaca, Trade, fakepaca_trades

from .conftest import (
    KEY,
    SECRET,
    SLICE_END,
    SLICE_START,
    AggSink,
    fast_fetcher,
    ohlcv,
    wait_for,
)

AWAY_S = 100.0  # tape time that passes while the feed is away, as in the run
BATCH = 100


def cut_inside(tape: list[Trade], minute: int, offset_s: int) -> int:
    """A tape position on a frame boundary about `offset_s` into `minute`: the server goes
    down once it has served the trades before it."""
    at = next(i for i, t in enumerate(tape) if t.ts >= minute + offset_s * NS_PER_SECOND)
    return at - at % BATCH


def minute_of(ns: int) -> int:
    return ns - ns % NS_PER_MINUTE


async def test_edges_of_a_gap_are_repaired_and_the_store_equals_the_uninterrupted_run(
    spy_trades, reference_candles, tmp_path
):
    """The local Alpaca goes down 30-odd seconds into 09:40 and comes back 100 s of tape later,
    in 09:42. While it is away the engine's clock closes 09:40 with the trades it had (the
    stored partial candle of the issue), and 09:42 starts without its first trades. Both are
    repaired from REST bars: the stored candles equal the file's (which an uninterrupted run
    stores, `test_feed_end_to_end`), and DATA_QUALITY events name the two minutes."""
    db = tmp_path / "candles.db"
    dropped = SLICE_START + 10 * NS_PER_MINUTE
    cut = cut_inside(spy_trades, dropped, 30)
    last_served = spy_trades[cut - 1].ts
    returned = minute_of(last_served + int(AWAY_S * NS_PER_SECOND))
    assert minute_of(last_served) == dropped and spy_trades[cut].ts < dropped + NS_PER_MINUTE
    assert returned == dropped + 2 * NS_PER_MINUTE
    clock = ManualClock(SLICE_START)  # the engine's: the test moves it while the feed is away
    async with LocalAlpaca(spy_trades, KEY, SECRET, batch_size=BATCH, away_s=AWAY_S) as server:
        server.schedule(cut, "down")
        fetcher = fast_fetcher(server, edge_settle_s=0.0, edge_poll_s=0.02)
        engine = LiveTradingEngine(
            fetcher,
            store=CandleStore(db),
            clock=clock,
            policy=SaleConditionPolicy.alpaca_sip(),
            enable_tracker=False,
            clock_tick_s=0.02,
        )
        findings: list[Event] = []
        engine.bus.subscribe(EventType.DATA_QUALITY, findings.append)
        task = asyncio.create_task(engine.run())
        await wait_for(lambda: not server.up.is_set(), 60, "the local Alpaca down")
        # the frames still in the socket are read and aggregated before the clock moves
        await wait_for(
            lambda: (
                fetcher.state != "subscribed"
                and len(engine.buffer) == 0
                and getattr(engine.aggregator.forming("SPY"), "start", None) == dropped
            ),
            30,
            "the stream read to its end, 09:40 forming",
        )
        clock.set(dropped + NS_PER_MINUTE + engine.aggregator.grace_ns)
        await wait_for(
            lambda: engine.last_candle_start("SPY") == dropped, 30, "09:40 closed by the clock"
        )
        partial = engine.recent["SPY"][-1]
        await server.come_up()
        await wait_for(
            lambda: (
                (engine.last_candle_start("SPY") or 0) >= SLICE_END - 2 * NS_PER_MINUTE
                and fetcher.health()["edge_minutes_pending"] == 0
            ),
            60,
            "the slice and the repairs",
        )
        engine.request_stop("test done")
        await asyncio.wait_for(task, 30)
    async with CandleStore(db) as store:
        stored = await store.candles("SPY", SLICE_START, SLICE_END - NS_PER_MINUTE)
    assert ohlcv(stored) == ohlcv(reference_candles)
    expected = {c.start: c for c in reference_candles}
    assert partial.volume < expected[dropped].volume  # what the issue saw stored
    repaired = {e.data.details["candle_start"]: payload_fields(e.data) for e in findings
                if e.data.kind == "gap_edge_repaired"}  # fmt: skip
    assert sorted(repaired) == [dropped, returned]
    for start, data in repaired.items():
        assert data["before"]["volume"] < data["after"]["volume"] == expected[start].volume
        assert data["symbol"] == "SPY"
    # 09:30, where the stream began, was checked too: complete, so left alone
    assert fetcher.health()["edge_minutes_checked"] == 3
    assert fetcher.health()["edge_minutes_flagged"] == 0
    assert [c.backfilled for c in stored if c.start in repaired] == [True, True]


async def test_edges_equal_to_rest_bars_are_left_alone(spy_trades, reference_candles):
    """Cut on a minute boundary with the tape resuming on the next one (the fake's default):
    nothing was missed inside the edge minutes, so both compare equal and nothing changes."""
    async with LocalAlpaca(spy_trades, KEY, SECRET, batch_size=BATCH) as server:
        server.schedule(cut_inside(spy_trades, SLICE_START + 5 * NS_PER_MINUTE, 30), "drop")
        sink = AggSink()
        fetcher = fast_fetcher(server, edge_settle_s=0.0, edge_poll_s=0.02)
        task = asyncio.create_task(fetcher.run(sink))
        await wait_for(
            lambda: (
                (sink.last_candle_start("SPY") or 0) >= SLICE_END - 2 * NS_PER_MINUTE
                and fetcher.reconnects == 1
                and fetcher.health()["edge_minutes_pending"] == 0
            ),
            60,
            "the slice and the edge checks",
        )
        await fetcher.stop()
        await asyncio.wait_for(task, 10)
    assert fetcher.health()["edge_minutes_checked"] == 3  # with 09:30, where it began
    assert sink.repairs == []
    assert ohlcv(sink.final()) == ohlcv(reference_candles)


async def test_a_feed_without_rest_history_flags_both_edges_incomplete():
    """The `test` feed has no REST bars: the minutes on both sides of the gap are flagged,
    and the one the stream began in."""
    start = 10**18 - 10**18 % NS_PER_MINUTE
    tape = fakepaca_trades(start, 3000)
    dropped = start + 2 * NS_PER_MINUTE
    cut = cut_inside(tape, dropped, 30)
    returned = minute_of(tape[cut - 1].ts + int(AWAY_S * NS_PER_SECOND))
    async with LocalAlpaca(tape, KEY, SECRET, batch_size=BATCH, away_s=AWAY_S) as server:
        server.schedule(cut, "drop")
        sink = AggSink()
        fetcher = fast_fetcher(
            server, feed="test", symbols=("FAKEPACA",), stream_url=server.stream_url("test")
        )
        task = asyncio.create_task(fetcher.run(sink))
        await wait_for(
            lambda: fetcher.reconnects == 1 and fetcher.state == "subscribed", 30, "reconnected"
        )
        await fetcher.stop()
        await asyncio.wait_for(task, 10)
    flagged = [payload_fields(e.data) for e in sink.of_type(EventType.DATA_QUALITY)]
    assert [(d["kind"], d["candle_start"], d["edge"]) for d in flagged] == [
        ("incomplete_minute", start, "returned"),
        ("incomplete_minute", dropped, "dropped"),
        ("incomplete_minute", returned, "returned"),
    ]
    assert all("'test' feed" in d["reason"] and d["symbol"] == "FAKEPACA" for d in flagged)
    assert fetcher.health()["edge_minutes_flagged"] == 3
    assert server.bars_requests == 0


async def test_edges_whose_rest_bars_cannot_be_had_are_flagged(spy_trades):
    """REST answers 500 to every request after the reconnect's backfill: the edge minutes are
    retried under the backfill's policy, then flagged with the reason; the stream goes on."""
    dropped = SLICE_START + 5 * NS_PER_MINUTE
    async with LocalAlpaca(spy_trades, KEY, SECRET, batch_size=BATCH) as server:
        server.schedule(cut_inside(spy_trades, dropped, 30), "drop")
        sink = AggSink()
        fetcher = fast_fetcher(server, edge_settle_s=0.0, edge_poll_s=0.5)
        task = asyncio.create_task(fetcher.run(sink))
        await wait_for(lambda: len(sink.backfill_calls) == 1, 30, "the reconnect's backfill")
        server.bars_failures = 1000
        await wait_for(
            lambda: {d["candle_start"] for d in flags(sink)} >= {dropped, dropped + NS_PER_MINUTE},
            30,
            "the two flags",
        )
        await fetcher.stop()
        await asyncio.wait_for(task, 10)
    # 09:30, where the stream began, was checked or (REST failing by then) flagged
    flagged = [d for d in flags(sink) if d["candle_start"] >= dropped]
    assert [(d["candle_start"], d["edge"]) for d in flagged] == [
        (dropped, "dropped"),
        (dropped + NS_PER_MINUTE, "returned"),
    ]
    assert all(d["reason"] == "REST bars failed 3 times: bars request returned HTTP 500"
               for d in flagged)  # fmt: skip
    health = fetcher.health()
    assert health["edge_minutes_checked"] + health["edge_minutes_flagged"] == 3
    assert fetcher.reconnects == 1


def flags(sink: AggSink) -> list[dict]:
    return [payload_fields(e.data) for e in sink.of_type(EventType.DATA_QUALITY)]


async def test_edge_bars_asks_for_the_edge_minutes_only(spy_trades, reference_candles):
    """Two edges 18 minutes apart: two requests of one minute each, not the 19 between."""
    first, last = SLICE_START + 2 * NS_PER_MINUTE, SLICE_START + 20 * NS_PER_MINUTE
    edges = [EdgeMinute("SPY", first, "dropped"), EdgeMinute("SPY", last, "returned")]
    async with LocalAlpaca(spy_trades, KEY, SECRET) as server:
        server.seek(SLICE_END)
        client = AlpacaBarsClient(server.rest_url, KEY, SECRET)
        bars = await edge_bars(client, edges)
    expected = {c.start: c for c in reference_candles}
    assert ohlcv([bars[e] for e in edges]) == ohlcv([expected[first], expected[last]])
    assert client.requests == 2


def test_gap_edges_wait_for_the_sink_to_close_the_minute_and_for_the_bar():
    sink = AggSink()
    edges = GapEdges()
    t0 = SLICE_START + 5 * NS_PER_MINUTE
    added = edges.add(
        ["SPY"], {"SPY": t0 + 31 * NS_PER_SECOND}, t0 + 2 * NS_PER_MINUTE + 11 * NS_PER_SECOND
    )
    assert [(e.start, e.side) for e in added] == [
        (t0, "dropped"),
        (t0 + 2 * NS_PER_MINUTE, "returned"),
    ]
    assert edges.add(["SPY"], {"SPY": t0 + 40 * NS_PER_SECOND}, t0) == []  # both waiting
    assert edges.add(["QQQ"], {}, t0) == [EdgeMinute("QQQ", t0, "returned")]  # nothing fed yet
    edges.done(edges.pending[-1:])
    late = t0 + 10 * NS_PER_MINUTE
    assert edges.due(sink, late, 0) == []  # the sink has closed nothing yet
    sink.put_ticks([("SPY", t0 + NS_PER_SECOND, 1.0, 1, "V", ("@",), 1),
                    ("SPY", t0 + NS_PER_MINUTE, 1.0, 1, "V", ("@",), 2)])  # fmt: skip
    assert edges.due(sink, t0 + NS_PER_MINUTE + 4 * NS_PER_SECOND, 5 * NS_PER_SECOND) == []
    assert edges.due(sink, t0 + NS_PER_MINUTE + 5 * NS_PER_SECOND, 5 * NS_PER_SECOND) == added[:1]
    edges.done(added[:1])
    assert edges.pending == added[1:]


async def test_a_restart_repairs_the_minute_the_stop_flushed_and_the_one_it_began_in(
    spy_trades, reference_candles, tmp_path
):
    """The engine stops while the local Alpaca is down 30 s into 09:40: the graceful stop
    flushes 09:40 with the trades it had. A new engine on the same database and local Alpaca
    (back 100 s of tape later) starts in 09:42: both minutes are repaired from REST bars and
    the stored candles equal the uninterrupted run's."""
    db = tmp_path / "candles.db"
    dropped = SLICE_START + 10 * NS_PER_MINUTE
    cut = cut_inside(spy_trades, dropped, 30)
    returned = minute_of(spy_trades[cut - 1].ts + int(AWAY_S * NS_PER_SECOND))

    def engine_on(fetcher: AlpacaWSFetcher) -> LiveTradingEngine:
        return LiveTradingEngine(
            fetcher,
            store=CandleStore(db),
            clock=ManualClock(SLICE_START),
            policy=SaleConditionPolicy.alpaca_sip(),
            enable_tracker=False,
            clock_tick_s=0.02,
        )

    async with LocalAlpaca(spy_trades, KEY, SECRET, batch_size=BATCH, away_s=AWAY_S) as server:
        server.schedule(cut, "down")
        first = fast_fetcher(server, edge_settle_s=0.0, edge_poll_s=0.02)
        before = engine_on(first)
        task = asyncio.create_task(before.run())
        await wait_for(lambda: not server.up.is_set(), 60, "the local Alpaca down")
        await wait_for(
            lambda: (
                first.state != "subscribed"
                and len(before.buffer) == 0
                and getattr(before.aggregator.forming("SPY"), "start", None) == dropped
            ),
            30,
            "the stream read to its end, 09:40 forming",
        )
        before.request_stop("restart")
        await asyncio.wait_for(task, 30)
        async with CandleStore(db) as store:
            flushed = (await store.candles("SPY", dropped, dropped + NS_PER_MINUTE))[0]
        await server.come_up()
        second = fast_fetcher(server, edge_settle_s=0.0, edge_poll_s=0.02)
        after = engine_on(second)
        findings: list[Event] = []
        after.bus.subscribe(EventType.DATA_QUALITY, findings.append)
        task = asyncio.create_task(after.run())
        await wait_for(
            lambda: (
                (after.last_candle_start("SPY") or 0) >= SLICE_END - 2 * NS_PER_MINUTE
                and second.health()["edge_minutes_pending"] == 0
            ),
            60,
            "the slice and the repairs",
        )
        after.request_stop("test done")
        await asyncio.wait_for(task, 30)
    async with CandleStore(db) as store:
        stored = await store.candles("SPY", SLICE_START, SLICE_END - NS_PER_MINUTE)
    assert ohlcv(stored) == ohlcv(reference_candles)
    assert flushed.volume < {c.start: c for c in reference_candles}[dropped].volume
    repaired = [e.data.details["candle_start"] for e in findings
                if e.data.kind == "gap_edge_repaired"]  # fmt: skip
    assert repaired == [dropped, returned]


async def test_a_pause_is_a_gap_too_its_edges_are_checked(spy_trades, reference_candles):
    """Paused, the feed drops the ticks of every minute but the current one: the minute the
    pause began in and the one it ended in are checked against REST bars like a gap's."""
    async with LocalAlpaca(spy_trades, KEY, SECRET, speed=600) as server:
        sink = AggSink()
        fetcher = fast_fetcher(server, edge_settle_s=0.0, edge_poll_s=0.02)
        task = asyncio.create_task(fetcher.run(sink))
        await wait_for(lambda: fetcher.ticks > 8000, 20, "streaming past 09:31")
        fetcher.pause()
        paused_at = fetcher.ticks
        await wait_for(lambda: fetcher.ticks > paused_at + 3000, 20, "ticks while paused")
        fetcher.resume()
        await wait_for(
            lambda: (
                (sink.last_candle_start("SPY") or 0) >= SLICE_END - 2 * NS_PER_MINUTE
                and fetcher.health()["edge_minutes_pending"] == 0
            ),
            60,
            "the slice and the edge checks",
        )
        await fetcher.stop()
        await asyncio.wait_for(task, 10)
    assert fetcher.paused_dropped > 0
    assert fetcher.health()["edge_minutes_checked"] == 3  # 09:30, the pause's two edges
    assert ohlcv(sink.final()) == ohlcv(reference_candles)
