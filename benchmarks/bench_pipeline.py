"""Data-layer figures on the real SPY ticks: reader, aggregator, whole replay pipeline, store, RSS.

    .venv/bin/python -m benchmarks.bench_pipeline [--data ../shared/data] [--runs 5] [--quick]

Every figure is the median of `--runs` runs in this process (the first run of each is a warm-up
and not counted). Goals from issue 2: aggregator >= 4 M ticks/s, whole pipeline >= 1 M ticks/s,
store >= 300 k candles/s, memory flat (RSS after 10 M ticks ~ RSS after 1 M).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import gzip
import io
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from slob_tui.core.health import FeedHealth

SPY = "spy_trades_20131007_et.csv.gz"
SPY_CODES = ("20", "20000020", "20100000", "20100200")
DAY_NS = 86_400 * 1_000_000_000


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * resource.getpagesize() / 1e6


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def median_time(fn: Callable[[], Any], runs: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def csv_module_reader(path: Path, symbol: str) -> list[tuple]:
    """The peer for the reader choice: the csv module and datetime.fromisoformat per row."""
    out = []
    with io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8") as fh:
        rows = csv.reader(fh)
        next(rows)
        for ts, price, size, exch, cond, _susp in rows:
            ns = int(datetime.fromisoformat(ts).timestamp() * 1000) * 1_000_000
            out.append((symbol, ns, float(price), int(size), exch, cond, None))
    return out


def chunk_reader(path: Path, symbol: str, reader: str = "auto") -> list[tuple]:
    from slob_tui.feeds.files import iter_tick_chunks

    out: list[tuple] = []
    for chunk in iter_tick_chunks(path, symbol, reader=reader):
        out += chunk
    return out


class CyclingFeed:
    """Replays the file's ticks `cycles` times, a day later each time, recording RSS."""

    name = "bench-cycle"
    mode = "REPLAY"

    def __init__(self, path: Path, cycles: int, marks: tuple[int, ...]) -> None:
        self.path = path
        self.cycles = cycles
        self.symbols = ("SPY",)
        self.marks = list(marks)
        self.rss_at: dict[int, float] = {}
        self.sent = 0

    async def run(self, sink: Any) -> None:
        from slob_tui.feeds.files import iter_tick_chunks

        for k in range(self.cycles):
            shift = k * DAY_NS
            for chunk in iter_tick_chunks(self.path, "SPY", chunk_rows=50_000):
                if shift:
                    chunk = [(s, t + shift, p, q, e, c, i) for s, t, p, q, e, c, i in chunk]
                for i in range(0, len(chunk), 20_000):
                    batch = chunk[i : i + 20_000]
                    sink.set_time(batch[0][1])
                    await sink.put_ticks_wait(batch)
                    sink.set_time(batch[-1][1])
                    self.sent += len(batch)
                    while self.marks and self.sent >= self.marks[0]:
                        self.rss_at[self.marks.pop(0)] = rss_mb()
                    await asyncio.sleep(0)

    async def stop(self) -> None: ...

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    def health(self) -> FeedHealth:
        return FeedHealth(name=self.name, state="running", counters={"sent": self.sent})


class MemoryFeed:
    """Pre-parsed ticks handed over in batches: the pipeline without the file reader."""

    name = "bench-memory"
    mode = "REPLAY"

    def __init__(self, ticks: list[tuple]) -> None:
        self.ticks = ticks
        self.symbols = ("SPY",)

    async def run(self, sink: Any) -> None:
        for i in range(0, len(self.ticks), 20_000):
            batch = self.ticks[i : i + 20_000]
            sink.set_time(batch[0][1])
            await sink.put_ticks_wait(batch)
            sink.set_time(batch[-1][1])
            await asyncio.sleep(0)

    async def stop(self) -> None: ...

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    def health(self) -> FeedHealth:
        return FeedHealth(name=self.name, state="running")


def run_engine(feed: Any, policy: Any) -> Any:
    from slob_tui.engine.engine import LiveTradingEngine
    from slob_tui.storage.candles import CandleStore

    with tempfile.TemporaryDirectory() as tmp:
        engine = LiveTradingEngine(feed, store=CandleStore(Path(tmp) / "b.db"), policy=policy)
        asyncio.run(engine.run())
    return engine


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="RSS at 1 M and 2 M ticks only")
    args = parser.parse_args(argv)
    path = Path(args.data) / SPY
    if not path.is_file():
        print(f"bench_pipeline: error: {path} not found (use --data)")
        return 2

    from slob_tui.core.models import Candle
    from slob_tui.engine.aggregator import CandleAggregator, SaleConditionPolicy
    from slob_tui.feeds.replay import ReplayFeed
    from slob_tui.storage.candles import CandleStore

    runs = args.runs
    ticks = chunk_reader(path, "SPY")
    n = len(ticks)
    print(f"SPY 2013-10-07: {n} ticks; medians of {runs} runs")

    t_fast = median_time(lambda: chunk_reader(path, "SPY"), runs)
    t_pd = median_time(lambda: chunk_reader(path, "SPY", "pandas"), runs)
    t_csv = median_time(lambda: csv_module_reader(path, "SPY"), max(1, runs // 2))
    print(f"reader: pyarrow (default) {n / t_fast / 1e6:5.2f} M rows/s | pandas chunks "
          f"{n / t_pd / 1e6:5.2f} M rows/s | csv module {n / t_csv / 1e6:5.2f} M rows/s "
          f"(pyarrow {t_csv / t_fast:.1f}x the csv module)")  # fmt: skip

    policy = SaleConditionPolicy(SPY_CODES)

    def aggregate(batch: int) -> None:
        agg = CandleAggregator(policy)
        for i in range(0, n, batch):
            agg.process(ticks[i : i + batch])
        agg.flush()

    for batch in (n, 100_000, 20_000, 1_000):
        t = median_time(lambda b=batch: aggregate(b), runs)
        print(f"aggregator alone, batches of {batch:>7}: {n / t / 1e6:6.2f} M ticks/s (goal >= 4)")

    def pipeline_file() -> None:
        engine = run_engine(ReplayFeed(path, symbol="SPY"), policy)
        assert engine.aggregator.stats()["ticks"] == n, "ticks lost in the pipeline"

    t = median_time(pipeline_file, max(3, runs // 2))
    print(f"replay --speed max pipeline (file -> store): {n / t / 1e6:6.2f} M ticks/s (goal >= 1)")

    def pipeline_memory() -> None:
        engine = run_engine(MemoryFeed(ticks), policy)
        assert engine.aggregator.stats()["ticks"] == n

    t = median_time(pipeline_memory, max(3, runs // 2))
    print(f"pipeline from parsed ticks (no reader):      {n / t / 1e6:6.2f} M ticks/s")

    def store_write(count: int = 200_000) -> float:
        base = 1_381_147_200 * 1_000_000_000
        candles = [Candle("SPY", base + i * 60_000_000_000, 1.0 + i, 2.0, 0.5, 1.5, 100, 10)
                   for i in range(count)]  # fmt: skip

        async def go() -> float:
            with tempfile.TemporaryDirectory() as tmp:
                async with CandleStore(Path(tmp) / "s.db") as store:
                    t0 = time.perf_counter()
                    await store.upsert_many(candles)
                    return time.perf_counter() - t0

        return count / asyncio.run(go())

    rates = [store_write() for _ in range(runs + 1)][1:]
    print(f"store bulk upsert (new rows, 200 k): {statistics.median(rates) / 1e3:6.0f} k candles/s "
          f"(goal >= 300)")  # fmt: skip

    ticks.clear()  # the memory figures start without the parsed day held
    marks = (1_000_000, 2_000_000) if args.quick else (1_000_000, 10_000_000)
    cycles = -(-marks[-1] // n)
    feed = CyclingFeed(path, cycles, marks)
    before = rss_mb()
    t0 = time.perf_counter()
    engine = run_engine(feed, policy)
    elapsed = time.perf_counter() - t0
    print(f"memory: RSS before {before:.0f} MB; " + "; ".join(
        f"after {m / 1e6:.0f} M ticks {r:.0f} MB" for m, r in feed.rss_at.items())
        + f"; peak RSS {peak_rss_mb():.0f} MB")  # fmt: skip
    print(
        f"  ({feed.sent} ticks through the engine in {elapsed:.1f} s, "
        f"{engine.aggregator.stats()['candles']} candles)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
