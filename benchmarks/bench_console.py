"""The console's cost: CPU against `--no-ui` on the same feed, redraw rate, tick-to-chart
latency, and start-up (`slob-tui --help`, first frame). Prints medians.

    .venv/bin/python -m benchmarks.bench_console [--duration 60] [--rate 10000] [--repeats 1]
                                                 [--startup-runs 11] [--skip-load]

The feed is the demo market (`feeds/demo.py`'s pure `demo_candles`) played at `--rate` trade
prints per wall second: each market minute is split into `rate` prints (open, extremes, a walk
inside the range, close), one market minute per wall second, batches every 50 ms. The same feed
drives (a) the engine headless, as `slob-tui --no-ui` runs it, and (b) the console app headless
(Textual renders every frame into a virtual 160x50 screen), one after the other in this process.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

NS = 1_000_000_000
MINUTE = 60 * NS
BATCH_S = 0.05


class RateFeed:
    """Demo-market prints at a fixed rate; market time advances one minute per wall second."""

    name = "demo-rate"
    mode = "DEMO"

    def __init__(self, rate: int, seed: int = 7, symbol: str = "NQ") -> None:
        from slob_tui.feeds.demo import default_start, demo_candles

        self.symbols = (symbol,)
        self.rate = rate
        self.start = default_start(1_764_000_000 * NS)
        self.candles = demo_candles(seed, self.start, 24 * 60, symbol)
        self.rng = random.Random(seed)
        self.sent: list[tuple[float, int]] = []  # (perf_counter at put, cumulative ticks)
        self.total = 0
        self._stop = asyncio.Event()
        self.paused = False

    def _minute_ticks(self, i: int) -> list[tuple]:
        c = self.candles[i % len(self.candles)]
        start = self.start + i * MINUTE
        n = self.rate
        prices = [c.open, c.high, c.low]
        p = (c.high + c.low) / 2
        step = (c.high - c.low) / 20 or 0.25
        for _ in range(n - 4):
            p = min(max(p + self.rng.uniform(-step, step), c.low), c.high)
            prices.append(p)
        prices.append(c.close)
        gap = MINUTE // (n + 1)
        return [
            (c.symbol, start + k * gap, px, 1.0, "DEMO", None, None) for k, px in enumerate(prices)
        ]

    async def run(self, sink: Any) -> None:
        per_batch = max(1, int(self.rate * BATCH_S))
        minute = 0
        t0 = time.perf_counter()
        batch_no = 0
        while not self._stop.is_set():
            ticks = self._minute_ticks(minute)
            for k in range(0, len(ticks), per_batch):
                if self._stop.is_set():
                    return
                if not self.paused:
                    batch = ticks[k : k + per_batch]
                    sink.set_time(batch[-1][1])
                    sink.put_ticks(batch)
                    self.total += len(batch)
                    self.sent.append((time.perf_counter(), self.total))
                batch_no += 1
                delay = t0 + batch_no * BATCH_S - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                else:
                    await asyncio.sleep(0)
            minute += 1

    async def stop(self) -> None:
        self._stop.set()

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False

    def health(self) -> Any:
        from slob_tui.core.health import FeedHealth

        return FeedHealth(name=self.name, state="running", counters={"ticks": self.total})


def _engine(feed: RateFeed, db: Path) -> Any:
    from slob_tui.core.clock import ManualClock
    from slob_tui.engine.engine import LiveTradingEngine
    from slob_tui.storage.candles import CandleStore

    return LiveTradingEngine(
        feed, store=CandleStore(db), clock=ManualClock(feed.start), mode="DEMO"
    )


async def _headless(rate: int, duration: float, db: Path) -> dict[str, float]:
    feed = RateFeed(rate)
    engine = _engine(feed, db)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await engine.run(duration)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return {"cpu_s": cpu, "wall_s": wall, "ticks": engine.health().pipeline.ticks}


async def _console(rate: int, duration: float, db: Path) -> dict[str, Any]:
    from slob_tui.ui.app import create_app
    from slob_tui.ui.widgets.candle_chart import CandleChart

    feed = RateFeed(rate)
    engine = _engine(feed, db)
    app = create_app(engine, theme="slob-dark", tz="UTC")
    seen: list[tuple[float, int]] = []
    cpu0, wall0 = time.process_time(), time.perf_counter()
    async with app.run_test(headless=True, size=(160, 50)):
        chart = app.query_one(CandleChart)
        original = chart.show

        def show(snapshot: Any, symbol: str | None) -> None:
            original(snapshot, symbol)
            seen.append((time.perf_counter(), chart.ticks_seen))

        chart.show = show  # type: ignore[method-assign]
        redraws0 = app.redraws
        t_start = time.perf_counter()
        await asyncio.sleep(duration)
        redraw_rate = (app.redraws - redraws0) / (time.perf_counter() - t_start)
        await app.graceful_quit("benchmark done")
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    latencies = []
    j = 0
    for t_put, total in feed.sent:
        while j < len(seen) and seen[j][1] < total:
            j += 1
        if j == len(seen):
            break
        latencies.append(seen[j][0] - t_put)
    latencies.sort()

    def p(q: float) -> float:
        if not latencies:
            return float("nan")
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    return {
        "cpu_s": cpu,
        "wall_s": wall,
        "ticks": engine.health().pipeline.ticks,
        "redraws_per_s": redraw_rate,
        "lat_p50_ms": p(0.50),
        "lat_p99_ms": p(0.99),
        "lat_n": len(latencies),
    }


def measure_load(rate: int = 10_000, duration: float = 60.0) -> dict[str, dict[str, Any]]:
    """One headless run and one console run on the same feed, for the benchmark suite."""
    with tempfile.TemporaryDirectory() as tmp:
        return {
            "headless": asyncio.run(_headless(rate, duration, Path(tmp) / "h.db")),
            "console": asyncio.run(_console(rate, duration, Path(tmp) / "c.db")),
        }


def _help_cmd() -> list[str]:
    script = Path(sys.executable).with_name("slob-tui")
    return (
        [str(script), "--help"]
        if script.is_file()
        else [sys.executable, "-m", "slob_tui", "--help"]
    )


def _wall(cmd: list[str], env: dict[str, str] | None = None) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env=env, timeout=60)
    return time.perf_counter() - t


FIRST_FRAME = """
import asyncio, os, sys, tempfile, time
from slob_tui.core.health import FeedHealth
from slob_tui.ui.app import create_app
from slob_tui.node import NodeConfig, TradingNode
async def main():
    db = os.path.join(tempfile.mkdtemp(), "ff.db")
    app = create_app(TradingNode(NodeConfig(db=db)), theme="slob-dark")
    async with app.run_test(headless=True, size=(120, 40)) as pilot:
        await pilot.pause()
        print("FIRST_FRAME", flush=True)
        await app.graceful_quit("measured")
asyncio.run(main())
"""


def _first_frame() -> float:
    t = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", FIRST_FRAME],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    seen = None
    for line in proc.stdout:
        if line.startswith("FIRST_FRAME"):
            seen = time.perf_counter() - t
            break
    _, err = proc.communicate(timeout=60)
    if seen is None:
        raise SystemExit(f"first frame never came: {err.strip().splitlines()[-1:]}")
    return seen


def _slowest_imports(cmd: list[str], top: int = 5) -> list[tuple[int, str]]:
    env = dict(os.environ, PYTHONPROFILEIMPORTTIME="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
    rows = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, _, rest = line.partition(":")
        parts = [x.strip() for x in rest.split("|")]
        if len(parts) == 3 and parts[1].isdigit():
            rows.append((int(parts[1]), parts[2]))
    return sorted(rows, reverse=True)[:top]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=60.0, help="seconds per load run")
    ap.add_argument("--rate", type=int, default=10_000, help="ticks per wall second")
    ap.add_argument("--repeats", type=int, default=1, help="load runs per mode (median)")
    ap.add_argument("--startup-runs", type=int, default=11)
    ap.add_argument("--skip-load", action="store_true", help="only the start-up figures")
    args = ap.parse_args(argv)
    if args.duration <= 0 or args.rate <= 0 or args.repeats <= 0:
        ap.error("--duration, --rate and --repeats must be positive")
    med = statistics.median

    help_s = [_wall(_help_cmd()) for _ in range(args.startup_runs)]
    bare_s = [_wall([sys.executable, "-c", "pass"]) for _ in range(args.startup_runs)]
    print(
        f"start-up  slob-tui --help        median {med(help_s) * 1000:7.1f} ms   (goal <= 150)"
        f"   peer python -c pass {med(bare_s) * 1000:.1f} ms"
    )
    for us, name in _slowest_imports(_help_cmd()):
        print(f"          slowest import (cumulative) {us / 1000:7.1f} ms  {name}")
    ff = [_first_frame() for _ in range(max(3, args.startup_runs // 2))]
    print(f"start-up  first frame (120x40)    median {med(ff) * 1000:7.1f} ms   (goal <= 700)")
    if args.skip_load:
        return 0

    runs: dict[str, list[dict[str, Any]]] = {"headless": [], "console": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for mode in ("headless", "console"):
                db = Path(tmp) / f"{mode}{r}.db"
                fn = _headless if mode == "headless" else _console
                runs[mode].append(asyncio.run(fn(args.rate, args.duration, db)))
    for mode, rs in runs.items():
        core = med(x["cpu_s"] / x["wall_s"] for x in rs) * 100
        tps = med(x["ticks"] / x["wall_s"] for x in rs)
        print(
            f"load      {mode:<9} CPU {med(x['cpu_s'] for x in rs):7.2f} s over "
            f"{med(x['wall_s'] for x in rs):5.1f} s = {core:5.1f}% of a core, "
            f"{tps:,.0f} ticks/s processed"
        )
    extra = (
        med(x["cpu_s"] / x["wall_s"] for x in runs["console"])
        - med(x["cpu_s"] / x["wall_s"] for x in runs["headless"])
    ) * 100
    print(f"load      console minus --no-ui  {extra:+.1f}% of a core          (goal <= +15%)")
    c = runs["console"]
    print(
        f"load      chart redraws          median {med(x['redraws_per_s'] for x in c):5.1f}/s"
        f"        (goal <= 10)"
    )
    print(
        f"load      tick -> chart state    p50 {med(x['lat_p50_ms'] for x in c):6.1f} ms, "
        f"p99 {med(x['lat_p99_ms'] for x in c):6.1f} ms over "
        f"{int(med(x['lat_n'] for x in c))} batches   (goal p99 <= 200)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
