"""What the data-quality validator costs: ticks/s with and without it, side by side.

Two views on the SPY trades of 2013-10-07 (250,601 prints, read once before any timing):
1. the aggregator alone vs validator + aggregator (the strictest view: the validator against
   the cheapest stage of the pipeline);
2. the engine pipeline (`LiveTradingEngine`: tick buffer, validator, aggregator, bus, candle
   store on disk, tracker) fed batches of 100 ticks, with the validator off vs on: the issue's
   "at most 15% of the pipeline's ticks/s";
3. the validator alone vs the floor of any per-tick check in Python: a loop that only reads
   each tick's time, price and size and compares them with bounds (what the validator's clean
   branch cannot do without), to show how much of its cost is the rules and how much is
   touching the ticks at all.
Medians of REPS runs, alternating the contenders inside each rep.

Run: .venv/bin/python -m benchmarks.bench_validator [--reps N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
SPY = DATA / "spy_trades_20131007_et.csv.gz"


def load_ticks() -> list[tuple]:
    from slob_tui.feeds.files import iter_tick_chunks

    ticks: list[tuple] = []
    for chunk in iter_tick_chunks(SPY, "SPY"):
        ticks.extend(chunk)
    return ticks


def run_aggregator(ticks: list[tuple], batch: int, validate: bool) -> float:
    from slob_tui.engine.aggregator import CandleAggregator, SaleConditionPolicy
    from slob_tui.engine.quality import DataQualityValidator

    agg = CandleAggregator(SaleConditionPolicy.spy_algoseek())
    validator = DataQualityValidator() if validate else None
    batches = [ticks[i : i + batch] for i in range(0, len(ticks), batch)]
    t0 = time.perf_counter()
    for b in batches:
        if validator is not None:
            b = validator.filter_ticks(b)
            validator.drain_events()
        for candle in agg.process(b):
            if validator is not None:
                validator.check_candle(candle)
    agg.flush()
    return time.perf_counter() - t0


def run_validator(ticks: list[tuple], batch: int) -> float:
    from slob_tui.engine.quality import DataQualityValidator

    validator = DataQualityValidator()
    batches = [ticks[i : i + batch] for i in range(0, len(ticks), batch)]
    t0 = time.perf_counter()
    for b in batches:
        validator.filter_ticks(b)
    return time.perf_counter() - t0


def run_floor(ticks: list[tuple], batch: int) -> float:
    """Reads and bounds-checks time, price and size of every tick; nothing else."""
    batches = [ticks[i : i + batch] for i in range(0, len(ticks), batch)]
    t0 = time.perf_counter()
    for b in batches:
        last, end, lo, hi = 0, 1 << 63, 0.0, 1e12
        for t in b:
            ts = t[1]
            if last <= ts < end and lo < t[2] < hi and 0 < t[3] < 1 << 30:
                last = ts
    return time.perf_counter() - t0


def run_engine(ticks: list[tuple], batch: int, validate: bool, tmp: Path, k: int) -> float:
    from slob_tui.engine.aggregator import SaleConditionPolicy
    from slob_tui.engine.engine import LiveTradingEngine
    from slob_tui.engine.quality import QualityPolicy
    from slob_tui.feeds.batches import BatchFeed
    from slob_tui.storage.candles import CandleStore

    batches = [ticks[i : i + batch] for i in range(0, len(ticks), batch)]
    engine = LiveTradingEngine(
        BatchFeed(batches), store=CandleStore(tmp / f"bench{k}.db"),
        policy=SaleConditionPolicy.spy_algoseek(), mode="REPLAY",
        quality=QualityPolicy() if validate else None,
    )  # fmt: skip
    t0 = time.perf_counter()
    asyncio.run(engine.run())
    return time.perf_counter() - t0


def side_by_side(reps: int, off: Any, on: Any) -> tuple[float, float]:
    a, b = [], []
    for _ in range(reps):
        a.append(off())
        b.append(on())
    return statistics.median(a), statistics.median(b)


def report(label: str, n: int, off_s: float, on_s: float) -> None:
    off_rate, on_rate = n / off_s, n / on_s
    cost = (1 - on_rate / off_rate) * 100
    print(f"{label}")
    print(f"  without validator: {off_rate:>12,.0f} ticks/s  ({off_s * 1e3:.1f} ms)")
    print(f"  with validator:    {on_rate:>12,.0f} ticks/s  ({on_s * 1e3:.1f} ms)")
    print(f"  cost: {cost:.1f}% of ticks/s ({(on_s - off_s) / n * 1e9:.0f} ns per tick)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args(argv)
    if not SPY.is_file():
        print(f"bench_validator: SPY ticks not found at {SPY}", file=sys.stderr)
        return 2
    ticks = load_ticks()
    n = len(ticks)
    print(f"SPY 2013-10-07: {n:,} trades, median of {args.reps} runs each, side by side")
    for batch in (1024, 100):
        off_s, on_s = side_by_side(
            args.reps,
            lambda b=batch: run_aggregator(ticks, b, False),
            lambda b=batch: run_aggregator(ticks, b, True),
        )
        report(f"aggregator alone vs validator + aggregator, batches of {batch}", n, off_s, on_s)
    with tempfile.TemporaryDirectory() as tmp:
        counter = iter(range(10_000))
        off_s, on_s = side_by_side(
            args.reps,
            lambda: run_engine(ticks, 100, False, Path(tmp), next(counter)),
            lambda: run_engine(ticks, 100, True, Path(tmp), next(counter)),
        )
    report("engine pipeline (buffer, aggregator, bus, store, tracker), batches of 100", n,
           off_s, on_s)  # fmt: skip
    floor_s, alone_s = side_by_side(
        args.reps, lambda: run_floor(ticks, 100), lambda: run_validator(ticks, 100)
    )
    print("validator alone vs the floor (read and compare ts, price, size), batches of 100")
    print(f"  floor loop:      {floor_s / n * 1e9:6.0f} ns per tick")
    print(f"  validator alone: {alone_s / n * 1e9:6.0f} ns per tick")
    return 0


if __name__ == "__main__":
    sys.exit(main())
