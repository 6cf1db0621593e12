"""Backtest: candles -> tracker + paper fills, on the NQ and BTC-PERP files.

Ours is the pure backtest of `strategy/backtest.py` (what `slob-tui backtest` runs) and the
tracker alone. The peer is NautilusTrader's `BacktestEngine` fed the same candles as external
1-minute bars to a strategy whose `on_bar` only keeps the bar: the engine's own cost per bar,
with no strategy logic, measured in the same run. (The seed claimed 10 k ticks/s for its
backtest; that claim is quoted in the notes, not measured.)
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

from benchmarks import peers_nautilus
from benchmarks.inputs import BTC_CANDLES, NQ_CANDLES, load_candles, ours
from benchmarks.suite import Context, Record, figure, goal, rate, side_by_side, speedup

FILES = (
    ("NQ", NQ_CANDLES, "America/New_York", "XCME"),
    ("BTC-PERP", BTC_CANDLES, "UTC", "BINANCE"),
)


def backtest_call(candles: list[Any], symbol: str) -> Callable[[], Any]:
    """The pure backtest over `candles`, called the way its signature asks."""
    run_backtest = ours("slob_tui.strategy.backtest", "run_backtest")
    names = inspect.signature(run_backtest).parameters
    kwargs: dict[str, Any] = {}
    if "symbol" in names:
        kwargs["symbol"] = symbol
    return lambda: run_backtest(candles, **kwargs)


def tracker_call(candles: list[Any], symbol: str) -> Callable[[], int]:
    """A fresh tracker fed every candle; returns how many setup events it emitted."""
    tracker_cls = ours("slob_tui.strategy.tracker", "SetupTracker")

    def run() -> int:
        on_candle = tracker_cls(symbol).on_candle
        events = 0
        for candle in candles:
            events += len(on_candle(candle))
        return events

    return run


@figure("backtest", "candles -> tracker + paper fills (NQ, BTC-PERP) vs Nautilus bar backtest")
def backtest_figures(ctx: Context) -> Iterator[Record]:
    reason = peers_nautilus.unavailable_reason()
    peer_name = peers_nautilus.label() + " BacktestEngine (bars, empty on_bar)"
    for symbol, name, tz, venue in FILES:
        candles = load_candles(ctx, name, symbol, tz)
        n = len(candles)
        ours_run = backtest_call(candles, symbol)
        ours_run()  # a first run must succeed before anything is timed
        peer_factory = None
        if reason is None:
            inst = peers_nautilus.instrument(symbol.replace("-", ""), venue)

            def peer_factory(inst: Any = inst, candles: list[Any] = candles) -> Any:
                return peers_nautilus.backtest_bars_run(inst, candles)

            seen = peer_factory()()
            if seen != n:
                raise AssertionError(f"Nautilus strategy saw {seen} bars of {n} {symbol} candles")
        timing = side_by_side(ctx.reps, lambda r=ours_run: r, peer_factory)
        ours_rate, peer_rate = rate(n, timing.ours), rate(n, timing.peer)
        text, met = goal("candles/s", ours_rate, min_value=1e6)
        yield Record(
            f"backtest {symbol} candles/s",
            ours_rate,
            "candles/s",
            peer_name,
            peer_rate,
            speedup(ours_rate, peer_rate, True),
            text,
            met,
            note=f"{n:,} candles, tracker + paper fills; seed's claim was 10 k ticks/s"
            + (f"; peer unavailable: {reason}" if reason else ""),
            reps=ctx.reps,
            extra=timing.cpu_rates(n),
        )
        tracker_run = tracker_call(candles, symbol)
        tr_timing = side_by_side(ctx.reps, lambda r=tracker_run: r, None)
        tr_rate = rate(n, tr_timing.ours)
        text, met = goal("candles/s", tr_rate, min_value=1e6)
        yield Record(
            f"tracker alone {symbol} candles/s",
            tr_rate,
            "candles/s",
            goal=text,
            met=met,
            note=f"{n:,} candles through SetupTracker.on_candle",
            reps=ctx.reps,
            extra=tr_timing.cpu_rates(n),
        )
