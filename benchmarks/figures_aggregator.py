"""Aggregator: parsed SPY ticks -> 1-minute candles; ours vs Nautilus and the pandas floor.

No sale-condition exclusion on any side (`SaleConditionPolicy.none()`), so all three build the
same candles from the same 250,601 prints; that equality is asserted before any timing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from benchmarks import peers_nautilus
from benchmarks.inputs import load_spy_ticks, ours
from benchmarks.suite import (
    Context,
    Record,
    assert_same_rows,
    figure,
    goal,
    rate,
    side_by_side,
    speedup,
)

BATCH = 10_000  # the engine's default tick buffer size: what one consumer pass takes at most


def candle_rows(candles: list[Any]) -> list[tuple[int, float, float, float, float, float]]:
    """Minutes that had trades (gap-filled flat candles left out), in time order."""
    return [
        (c.start, c.open, c.high, c.low, c.close, c.volume) for c in candles if not c.gap_filled
    ]


def ours_aggregate(ticks: list[tuple[Any, ...]], batch: int = BATCH) -> Any:
    """A fresh aggregator; the returned call pushes every batch through it and flushes."""
    aggregator_cls = ours("slob_tui.engine.aggregator", "CandleAggregator")
    policy_cls = ours("slob_tui.engine.aggregator", "SaleConditionPolicy")
    batches = [ticks[i : i + batch] for i in range(0, len(ticks), batch)]

    def factory() -> Any:
        agg = aggregator_cls(policy=policy_cls.none())

        def run() -> list[Any]:
            out: list[Any] = []
            process = agg.process
            for b in batches:
                out += process(b)
            out += agg.flush()
            return out

        return run

    return factory


def pandas_resample(ts: Any, price: Any, size: Any) -> Any:
    """The vectorised floor: `resample("1min").ohlc()` on prices plus summed sizes."""
    import pandas as pd

    index = pd.DatetimeIndex(pd.to_datetime(ts, unit="ns", utc=True))
    prices = pd.Series(price, index=index)
    sizes = pd.Series(size, index=index)

    def factory() -> Any:
        def run() -> Any:
            frame = prices.resample("1min").ohlc()
            frame["volume"] = sizes.resample("1min").sum()
            return frame

        return run

    return factory


def pandas_rows(frame: Any) -> list[tuple[int, float, float, float, float, float]]:
    frame = frame.dropna()
    starts = frame.index.as_unit("ns").asi8.tolist()
    cols = [frame[c].tolist() for c in ("open", "high", "low", "close", "volume")]
    return list(zip(starts, *cols, strict=True))


@figure("aggregator", "parsed SPY ticks -> candles: ours vs Nautilus TimeBarAggregator and pandas")
def aggregator_figures(ctx: Context) -> Iterator[Record]:
    spy = load_spy_ticks(ctx)
    n = len(spy)
    ours_factory = ours_aggregate(spy.tuples)
    ours_rows = candle_rows(ours_factory()())

    reason = peers_nautilus.unavailable_reason()
    peer_name = peers_nautilus.label()
    peer_factory = None
    if reason is None:
        inst = peers_nautilus.instrument("SPY", "ARCA")
        nt_ticks = ctx.cached(
            "nt_spy_ticks", lambda: peers_nautilus.trade_ticks(inst, spy.ts, spy.price, spy.size)
        )

        def peer_factory() -> Any:
            return peers_nautilus.aggregator_run(inst, nt_ticks)

        assert_same_rows(ours_rows, peers_nautilus.bar_rows(peer_factory()()), peer_name)

    pd_factory = pandas_resample(spy.ts, spy.price, spy.size)
    assert_same_rows(ours_rows, pandas_rows(pd_factory()()), "pandas resample")

    vs_nt = side_by_side(ctx.reps, ours_factory, peer_factory)
    vs_pd = side_by_side(ctx.reps, ours_factory, pd_factory)
    ours_rate = rate(n, vs_nt.ours)
    nt_rate = rate(n, vs_nt.peer)
    ratio = speedup(ours_rate, nt_rate, True)
    text, met = goal("ticks/s", ours_rate, ratio, min_ratio=2, min_value=4e6)
    yield Record(
        "aggregator ticks/s vs Nautilus",
        ours_rate,
        "ticks/s",
        peer_name,
        nt_rate,
        ratio,
        text,
        met if reason is None else None,
        note=(
            f"{n:,} SPY ticks, {len(ours_rows)} candles equal on both sides, batches of {BATCH:,}"
            + (f"; peer unavailable: {reason}" if reason else "")
        ),
        reps=ctx.reps,
        extra=vs_nt.cpu_rates(n),
    )
    ours_rate2 = rate(n, vs_pd.ours)
    pd_rate = rate(n, vs_pd.peer)
    yield Record(
        "aggregator ticks/s vs pandas",
        ours_rate2,
        "ticks/s",
        "pandas resample('1min').ohlc()",
        pd_rate,
        speedup(ours_rate2, pd_rate, True),
        None,
        None,
        note="the vectorised floor: columns already in memory, no per-tick Python",
        reps=ctx.reps,
        extra=vs_pd.cpu_rates(n),
    )
