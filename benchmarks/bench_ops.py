"""What operations cost the engine: metrics on a replay, a scrape, a redacted log line.

    .venv/bin/python -m benchmarks.bench_ops [--data ../shared/data] [--runs 5]

Each figure is the median of `--runs` runs in this process, side by side with its peer:
- the SPY day replayed through the engine with the metrics exporter attached vs without it
  (the exporter counts bus events; nothing runs per tick);
- one /metrics render at the end of the replay, in milliseconds;
- one log record through a handler with the redaction installed vs the same handler on a
  logging setup without it.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import statistics
import tempfile
import time
from pathlib import Path

SPY = "spy_trades_20131007_et.csv.gz"


async def _replay(data: Path, with_metrics: bool) -> tuple[float, float, int]:
    from slob_tui.config import Settings
    from slob_tui.node import NodeConfig, TradingNode
    from slob_tui.ops.metrics import MetricsServer

    with tempfile.TemporaryDirectory() as tmp:
        config = NodeConfig(
            feed="replay",
            replay_file=str(data / SPY),
            symbols=("SPY",),
            db=f"{tmp}/c.db",
            speed=None,
            settings=Settings(),
        )
        engine = TradingNode(config)
        server = MetricsServer(engine, db_path=config.db) if with_metrics else None
        t0 = time.perf_counter()
        await engine.run()
        elapsed = time.perf_counter() - t0
        render_ms = 0.0
        if server is not None:
            r0 = time.perf_counter()
            server.render()
            render_ms = (time.perf_counter() - r0) * 1000
        return elapsed, render_ms, engine.health().pipeline.ticks


def _log_cost(n: int, redact: bool) -> float:
    """Seconds per record for `n` records through one StreamHandler into memory."""
    from slob_tui.ops import logs

    logger = logging.getLogger(f"bench.ops.{'redacted' if redact else 'plain'}")
    logger.propagate = False
    handler = logging.StreamHandler(io.StringIO())
    if redact:
        handler.addFilter(logs.RedactionFilter(logs.redactor()))
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    t0 = time.perf_counter()
    for i in range(n):
        logger.info("order %s filled at %.2f for %s", i, 101.25, "NQ-S-1-entry")
    return (time.perf_counter() - t0) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data"))
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    data = Path(args.data)

    plain, metered, renders = [], [], []
    ticks = 0
    for i in range(args.runs + 1):  # run 0 warms up; alternate so both see the same machine
        a, _, ticks = asyncio.run(_replay(data, False))
        b, render_ms, _ = asyncio.run(_replay(data, True))
        if i:
            plain.append(a)
            metered.append(b)
            renders.append(render_ms)
    p, m = statistics.median(plain), statistics.median(metered)
    print(f"replay {SPY}: {ticks} ticks")
    print(f"  without metrics  {p:.3f} s  ({ticks / p / 1e6:.2f} M ticks/s)")
    print(f"  with metrics     {m:.3f} s  ({ticks / m / 1e6:.2f} M ticks/s)  ratio {m / p:.3f}")
    print(f"  /metrics render  {statistics.median(renders):.2f} ms (median)")

    n = 20_000
    logging.setLogRecordFactory(logging.LogRecord)
    plain_log = statistics.median(_log_cost(n, False) for _ in range(args.runs))
    from slob_tui.ops.logs import install_redaction

    install_redaction(["123456789:AAHbenchTokenabcdefghijklmnopqrstuv", "alpaca-secret-value"])
    red_log = statistics.median(_log_cost(n, True) for _ in range(args.runs))
    print(f"log record, plain logging   {plain_log * 1e6:.2f} us")
    print(f"log record, redacted        {red_log * 1e6:.2f} us  ratio {red_log / plain_log:.2f}")


if __name__ == "__main__":
    main()
