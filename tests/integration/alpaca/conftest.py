"""Fixtures for the Alpaca feed tests: a slice of the real SPY tape, a sink on the real
aggregator, and the candles the same file gives when aggregated directly."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from slob_tui.config import Settings
from slob_tui.core.events import Event, EventType
from slob_tui.core.models import NS_PER_MINUTE, Candle
from slob_tui.engine.aggregator import CandleAggregator, SaleConditionPolicy
from slob_tui.feeds.alpaca import AlpacaWSFetcher
from slob_tui.feeds.files import iter_tick_chunks
from tests.fakes.alpaca import LocalAlpaca, Trade, load_algoseek_trades

KEY = "PKTESTKEY0000001"
SECRET = "sEcReT-never-leak-7f3a9c21"
SPY_FILE = "spy_trades_20131007_et.csv.gz"
SLICE_START = int(datetime(2013, 10, 7, 9, 30, tzinfo=ZoneInfo("America/New_York")).timestamp())
SLICE_START *= 1_000_000_000
SLICE_MINUTES = 30
SLICE_END = SLICE_START + SLICE_MINUTES * NS_PER_MINUTE


@pytest.fixture(scope="session")
def spy_trades(shared_data: Path) -> list[Trade]:
    """09:30-10:00 ET of the real SPY tape, with Alpaca-style conditions."""
    return load_algoseek_trades(shared_data / SPY_FILE, "SPY", SLICE_START, SLICE_END)


@pytest.fixture(scope="session")
def reference_candles(shared_data: Path) -> list[Candle]:
    """The slice aggregated straight from the file with the vendor codes' policy: what the
    whole pipeline must reproduce. The last minute is left out (it is still forming live)."""
    agg = CandleAggregator(policy=SaleConditionPolicy.spy_algoseek())
    out: list[Candle] = []
    for chunk in iter_tick_chunks(shared_data / SPY_FILE, "SPY"):
        part = [t for t in chunk if SLICE_START <= t[1] < SLICE_END]
        out.extend(agg.process(part))
        if chunk and chunk[-1][1] >= SLICE_END:
            break
    out.extend(agg.flush())
    return [c for c in out if c.start < SLICE_END - NS_PER_MINUTE]


def ohlcv(candles: list[Candle]) -> list[tuple[Any, ...]]:
    return [(c.symbol, c.start, c.open, c.high, c.low, c.close, c.volume) for c in candles]


class AggSink:
    """A FeedSink on the real `CandleAggregator` (SIP policy) that also checks the order:
    after a `put_candles`, no tick older than the candles' end arrives."""

    def __init__(self) -> None:
        self.agg = CandleAggregator(policy=SaleConditionPolicy.alpaca_sip())
        self.closed: list[Candle] = []
        self.events: list[Event] = []
        self.ticks = 0
        self.backfill_calls: list[list[Candle]] = []
        self.order_violations = 0
        self.corrections: list[tuple[Any, ...]] = []
        self.repairs: list[Candle] = []
        self._covered: dict[str, int] = {}

    def put_ticks(self, ticks: Any) -> None:
        batch = list(ticks)
        for t in batch:
            if t[1] < self._covered.get(t[0], 0):
                self.order_violations += 1
        self.ticks += len(batch)
        self.closed.extend(self.agg.process(batch))

    async def put_ticks_wait(self, ticks: Any) -> None:
        self.put_ticks(ticks)

    def apply_correction(self, *correction: Any) -> None:
        self.corrections.append(correction)

    async def put_candles(self, candles: Any) -> None:
        candles = list(candles)
        self.backfill_calls.append(candles)
        for c in candles:
            self._covered[c.symbol] = max(self._covered.get(c.symbol, 0), c.end)
            self.closed.extend(self.agg.ingest_candle(c))

    def repair_candle(self, candle: Candle) -> None:
        """As the engine does: a differing candle replaces the closed one of its minute."""
        for i, old in enumerate(self.closed):
            if old.symbol == candle.symbol and old.start == candle.start:
                if ohlcv([old]) != ohlcv([candle]):
                    self.closed[i] = candle
                    self.repairs.append(candle)
                return
        self.closed.append(candle)
        self.closed.sort(key=lambda c: c.start)
        self.repairs.append(candle)

    def set_time(self, ns: int) -> None:
        pass

    def feed_event(self, event: Event) -> None:
        self.events.append(event)

    def last_candle_start(self, symbol: str) -> int | None:
        return self.agg.last_closed_start(symbol)

    def of_type(self, kind: EventType) -> list[Event]:
        return [e for e in self.events if e.type is kind]

    def final(self) -> list[Candle]:
        return [c for c in self.closed if c.start < SLICE_END - NS_PER_MINUTE]


def settings_for(server: LocalAlpaca, key: str = KEY, secret: str = SECRET) -> Settings:
    return Settings(
        alpaca_api_key=key,
        alpaca_api_secret=secret,
        alpaca_data_stream_url=server.stream_url("iex"),
        alpaca_data_url=server.rest_url,
    )


def fast_fetcher(server: LocalAlpaca, **kw: Any) -> AlpacaWSFetcher:
    """A fetcher on the local server with test-speed backoff and the tape's clock."""
    opts: dict[str, Any] = dict(
        feed="iex",
        clock=server.clock,
        backoff_base_s=0.01,
        backoff_cap_s=0.05,
        safe_mode_probe_s=0.05,
        stall_timeout_s=2.0,
        handshake_timeout_s=2.0,
        seed=1,
    )
    settings = kw.pop("settings", None) or settings_for(server)
    opts.update(kw)
    symbols = opts.pop("symbols", ("SPY",))
    return AlpacaWSFetcher(settings, symbols, **opts)


async def wait_for(cond: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    """Poll `cond` until true; fail with `what` after `timeout` seconds (a hang guard, not a
    timing assertion)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what or cond}")
        await asyncio.sleep(0.01)


async def run_until_done(fetcher: AlpacaWSFetcher, sink: AggSink, timeout: float = 60.0) -> None:
    """Run the fetcher until the sink closed the slice's second-to-last minute, then stop."""
    task = asyncio.create_task(fetcher.run(sink))
    target = SLICE_END - 2 * NS_PER_MINUTE
    try:
        await wait_for(
            lambda: task.done() or (sink.last_candle_start("SPY") or 0) >= target,
            timeout,
            "the slice's candles",
        )
    finally:
        await fetcher.stop()
        await asyncio.wait_for(task, 10)
