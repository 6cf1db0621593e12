"""Strategy throughput: tracker alone and the pure backtest, candles/s, medians of N runs.

    .venv/bin/python -m benchmarks.bench_strategy [--data ../shared/data] [--runs 7] [--profile]

Side by side in the same process: a floor (a loop calling a method that does nothing per
candle, the least any per-candle Python interface can cost) and the batch reference detector.
`--profile` prints where the tracker's time goes (cProfile, top functions).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

FILES = (
    ("NQ", "nq_1min_20231119_20231204_et.csv", "America/New_York"),
    ("BTC/USD", "btcperp_1min_20211231_20220201_utc.csv.gz", "UTC"),
)


class _Floor:
    __slots__ = ("n",)

    def __init__(self) -> None:
        self.n = 0

    def on_candle(self, candle: object) -> list:
        return []


def _median_rate(fn, n: int, runs: int) -> float:  # noqa: ANN001
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return n / statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data"))
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    data = Path(args.data)
    if not data.is_dir():
        print(f"bench_strategy: error: {data} not found (use --data)")
        return 2

    from slob_tui.feeds.files import load_candles
    from slob_tui.strategy.backtest import backtest
    from slob_tui.strategy.params import profile_for
    from slob_tui.strategy.reference import reference_setups
    from slob_tui.strategy.tracker import SetupTracker

    print(f"python {sys.version.split()[0]}, median of {args.runs} runs")
    print(
        f"{'file':8} {'candles':>8} {'floor':>12} {'tracker':>12} {'backtest':>12} "
        f"{'reference':>12}  (candles/s)"
    )
    for symbol, name, tz in FILES:
        candles = load_candles(data / name, symbol, tz)
        params = profile_for(symbol, candles[0].close)
        n = len(candles)

        def feed(make, candles=candles) -> None:  # noqa: ANN001
            on_candle = make().on_candle
            for c in candles:
                on_candle(c)

        floor = _median_rate(lambda f=feed: f(_Floor), n, args.runs)
        tracker = _median_rate(
            lambda f=feed, s=symbol, p=params: f(lambda: SetupTracker(s, p)), n, args.runs
        )
        bt = _median_rate(lambda c=candles, s=symbol, p=params: backtest(c, s, p), n, args.runs)
        ref = _median_rate(
            lambda c=candles, p=params: reference_setups(c, p), n, max(1, args.runs // 3)
        )
        print(f"{symbol:8} {n:>8} {floor:>12,.0f} {tracker:>12,.0f} {bt:>12,.0f} {ref:>12,.0f}")
        print(
            f"{'':8} tracker/reference {tracker / ref:.1f}x, tracker/floor "
            f"{tracker / floor:.2f}, backtest/tracker {bt / tracker:.2f}"
        )
        if args.profile:
            import cProfile
            import pstats

            prof = cProfile.Profile()
            prof.enable()
            feed(lambda s=symbol, p=params: SetupTracker(s, p))
            prof.disable()
            pstats.Stats(prof).sort_stats("tottime").print_stats(6)
    return 0


if __name__ == "__main__":
    sys.exit(main())
