"""NautilusTrader as the peer: its `TimeBarAggregator` and its `BacktestEngine`.

Boundary convention: ours is [start, start + 60 s) stamped at the start. Nautilus defaults to
left-open intervals stamped at the close; we configure it instead of converting its output:
`interval_type="right-open"` with `timestamp_on_close=False` (for the engine,
`time_bars_interval_type="right-open"`, `time_bars_timestamp_on_close=False`). That setting
only moves the stamp; which minute a trade exactly on the boundary joins depends on whether the
timer fires before the trade is handled. Our loop around the standalone aggregator fires due
timers first. `BacktestEngine` handles the data first, so its ticks get `ts_init` 1 ns after
`ts_event` (received a nanosecond after the trade: two SPY prints sit exactly on a minute).
Nautilus also emits flat zero-volume bars for minutes without trades (`build_with_no_updates`);
ours fills short gaps with flat candles marked `gap_filled`. Both are left out of the equality
check, which compares the minutes that had trades.

Nautilus is a bench-only extra (`pip install -e '.[bench]'`): without it every peer value is
recorded as unavailable with the import error as the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Row = tuple[int, float, float, float, float, float]


def unavailable_reason() -> str | None:
    """None when the peer can run here, else why not."""
    try:
        import nautilus_trader  # noqa: F401
        from nautilus_trader.backtest.engine import BacktestEngine  # noqa: F401
        from nautilus_trader.data.aggregation import TimeBarAggregator  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - any import failure means "not here"
        return f"nautilus_trader not importable ({type(exc).__name__}: {exc})"
    return None


def label() -> str:
    try:
        import nautilus_trader

        return f"NautilusTrader {nautilus_trader.__version__}"
    except Exception:  # noqa: BLE001
        return "NautilusTrader"


def instrument(symbol: str = "SPY", venue: str = "ARCA") -> Any:
    """An equity with 2 price decimals and whole shares (fits SPY, and NQ's quarter points)."""
    from nautilus_trader.test_kit.providers import TestInstrumentProvider

    return TestInstrumentProvider.equity(symbol, venue)


def trade_ticks(inst: Any, ts: Any, price: Any, size: Any, init_delay_ns: int = 0) -> list[Any]:
    """`TradeTick`s built from arrays in one call (outside any timing).

    `init_delay_ns` sets `ts_init` that much after `ts_event` (see `backtest_ticks_run`).
    """
    import numpy as np
    from nautilus_trader.model.data import TradeTick

    stamps = ts.astype(np.uint64)
    inits = stamps + np.uint64(init_delay_ns)
    return TradeTick.from_raw_arrays_to_list(
        inst.id,
        inst.price_precision,
        inst.size_precision,
        price.astype(np.float64),
        size.astype(np.float64),
        np.zeros(len(ts), dtype=np.uint8),
        [str(i) for i in range(len(ts))],
        stamps,
        inits,
    )


def minute_bar_type(inst: Any, source: str = "INTERNAL") -> Any:
    from nautilus_trader.model.data import BarType

    return BarType.from_str(f"{inst.id}-1-MINUTE-LAST-{source}")


def aggregator_run(inst: Any, ticks: list[Any]) -> Callable[[], list[Any]]:
    """A fresh `TimeBarAggregator` on a test clock; the returned call aggregates every tick.

    The clock only advances when a tick reaches the next timer, so the loop costs one compare
    per tick on top of `handle_trade_tick`; that is as lean as driving it from Python gets.
    """
    from nautilus_trader.common.component import TestClock
    from nautilus_trader.data.aggregation import TimeBarAggregator

    bar_type = minute_bar_type(inst)
    bars: list[Any] = []
    clock = TestClock()
    clock.set_time(int(ticks[0].ts_init))
    agg = TimeBarAggregator(
        inst,
        bar_type,
        bars.append,
        clock,
        interval_type="right-open",
        timestamp_on_close=False,
    )
    timer = str(bar_type.standard())

    def run() -> list[Any]:
        handle = agg.handle_trade_tick
        advance = clock.advance_time
        next_close = clock.next_time_ns(timer)
        for tick in ticks:
            ts = tick.ts_init
            if ts >= next_close:
                for event in advance(ts):
                    event.handle()
                next_close = clock.next_time_ns(timer)
            handle(tick)
        for event in advance(next_close):  # close the last minute, as our flush() does
            event.handle()
        return bars

    return run


def bar_rows(bars: list[Any]) -> list[Row]:
    """Minutes that had trades, as (start, open, high, low, close, volume)."""
    rows = []
    for bar in bars:
        volume = bar.volume.as_double()
        if volume <= 0:
            continue
        rows.append(
            (
                int(bar.ts_event),
                bar.open.as_double(),
                bar.high.as_double(),
                bar.low.as_double(),
                bar.close.as_double(),
                volume,
            )
        )
    return rows


def _engine(venue: str, right_open: bool) -> Any:
    from nautilus_trader.backtest.config import BacktestEngineConfig
    from nautilus_trader.backtest.engine import BacktestEngine
    from nautilus_trader.config import LoggingConfig
    from nautilus_trader.data.config import DataEngineConfig
    from nautilus_trader.model.currencies import USD
    from nautilus_trader.model.enums import AccountType, OmsType
    from nautilus_trader.model.identifiers import Venue
    from nautilus_trader.model.objects import Money

    data_cfg = (
        DataEngineConfig(time_bars_interval_type="right-open", time_bars_timestamp_on_close=False)
        if right_open
        else DataEngineConfig()
    )
    engine = BacktestEngine(
        config=BacktestEngineConfig(
            logging=LoggingConfig(bypass_logging=True), data_engine=data_cfg
        )
    )
    engine.add_venue(
        venue=Venue(venue),
        oms_type=OmsType.NETTING,
        account_type=AccountType.CASH,
        starting_balances=[Money(10_000_000, USD)],
        base_currency=USD,
    )
    return engine


def _bar_strategy(bar_type: str) -> Any:
    """A minimal strategy: subscribe to one bar type and keep every bar `on_bar` receives."""
    from nautilus_trader.config import StrategyConfig
    from nautilus_trader.model.data import BarType
    from nautilus_trader.trading.strategy import Strategy

    class BarSinkConfig(StrategyConfig, frozen=True):
        bar_type: str

    class BarSink(Strategy):
        def __init__(self, config: BarSinkConfig) -> None:
            super().__init__(config)
            self.bars: list[Any] = []

        def on_start(self) -> None:
            self.subscribe_bars(BarType.from_str(self.config.bar_type))

        def on_bar(self, bar: Any) -> None:
            self.bars.append(bar)

    return BarSink(BarSinkConfig(bar_type=bar_type))


def _closing_quote(inst: Any, ns: int, price: float) -> Any:
    """A quote at `ns`: it moves the engine's clock without touching trade bars."""
    from nautilus_trader.model.data import QuoteTick
    from nautilus_trader.model.objects import Price, Quantity

    px = Price(price, inst.price_precision)
    qty = Quantity(1, inst.size_precision)
    return QuoteTick(inst.id, px, px, qty, qty, ns, ns)


def backtest_ticks_run(inst: Any, ticks: list[Any]) -> Callable[[], list[Any]]:
    """A `BacktestEngine` loaded with trade ticks (untimed); the call runs it to the end.

    Pass ticks built with `init_delay_ns=1`: the engine handles the data stamped at a time
    before the timers due at that time, so a trade exactly on a minute boundary would land in
    the minute that ends there; received 1 ns later it lands in the minute that starts there,
    as ours does. The engine's clock only moves with data, so a quote just after the end of the
    last minute makes it build that minute's bar, as our engine's flush closes the last candle.
    """
    engine = _engine(str(inst.id.venue), right_open=True)
    engine.add_instrument(inst)
    last = ticks[-1]
    minute = 60_000_000_000
    end_ns = (int(last.ts_init) // minute + 1) * minute
    engine.add_data([*ticks, _closing_quote(inst, end_ns + 1, last.price.as_double())])
    strategy = _bar_strategy(str(minute_bar_type(inst)))
    engine.add_strategy(strategy)

    def run() -> list[Any]:
        engine.run()
        bars = list(strategy.bars)
        engine.dispose()
        return bars

    return run


def backtest_bars_run(inst: Any, candles: list[Any]) -> Callable[[], int]:
    """A `BacktestEngine` fed external 1-minute bars; the call runs it and returns bars seen."""
    import numpy as np
    from nautilus_trader.model.data import Bar

    bar_type = minute_bar_type(inst, "EXTERNAL")
    n = len(candles)
    cols = np.empty((6, n), dtype=np.float64)
    for i, c in enumerate(candles):
        cols[:, i] = (c.open, c.high, c.low, c.close, c.volume, 0.0)
    stamps = np.fromiter((c.start + 60_000_000_000 for c in candles), np.uint64, n)
    bars = Bar.from_raw_arrays_to_list(
        bar_type,
        inst.price_precision,
        0,
        cols[0],
        cols[1],
        cols[2],
        cols[3],
        np.round(cols[4]),
        stamps,
        stamps,
    )
    engine = _engine(str(inst.id.venue), right_open=False)
    engine.add_instrument(inst)
    engine.add_data(bars)
    strategy = _bar_strategy(str(bar_type))
    engine.add_strategy(strategy)

    def run() -> int:
        engine.run()
        seen = len(strategy.bars)
        engine.dispose()
        return seen

    return run
