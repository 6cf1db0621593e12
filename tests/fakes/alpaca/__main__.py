"""Run the local Alpaca by hand:

    python -m tests.fakes.alpaca --trades ../shared/data/spy_trades_20131007_et.csv.gz \
        --port 8765 --rest-port 8766 --start 09:30 --minutes 60 --speed 10

Prints the URLs and the keys to put in `.env` (ALPACA_DATA_STREAM_URL, ALPACA_DATA_URL,
ALPACA_API_BASE_URL), then serves until interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from .server import LocalAlpaca
from .trades import fakepaca_trades, load_algoseek_trades


def _parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m tests.fakes.alpaca",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--trades", type=Path, help="AlgoSeek tick CSV (.gz ok); default FAKEPACA")
    p.add_argument("--symbol", default="SPY", help="symbol to serve the file's trades as")
    p.add_argument("--date", default="2013-10-07", help="the file's trading day (ET)")
    p.add_argument("--start", default="09:30", help="first minute to serve, ET (HH:MM)")
    p.add_argument("--minutes", type=int, default=60, help="how many minutes to serve")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--rest-port", type=int, default=0)
    p.add_argument("--speed", type=float, default=1.0, help="replay speed, 0 = as fast as read")
    p.add_argument("--batch", type=int, default=100, help="trades per frame")
    p.add_argument("--key", default="PKLOCALKEY")
    p.add_argument("--secret", default="local-secret")
    return p.parse_args()


async def _main(args: argparse.Namespace) -> None:
    if args.trades:
        if not args.trades.is_file():
            raise SystemExit(f"no such trades file: {args.trades}")
        day = datetime.fromisoformat(f"{args.date}T{args.start}").replace(
            tzinfo=ZoneInfo("America/New_York")
        )
        start = int(day.timestamp()) * 1_000_000_000
        trades = load_algoseek_trades(
            args.trades, args.symbol, start, start + args.minutes * 60_000_000_000
        )
    else:
        trades = fakepaca_trades(time.time_ns(), args.minutes * 600)
    server = LocalAlpaca(trades, args.key, args.secret, batch_size=args.batch, speed=args.speed)
    await server.start(args.port, args.rest_port)
    print(
        f"{len(trades)} trades; stream {server.stream_url('iex')} (also /v2/sip, /v2/test, "
        f"/v1beta3/crypto/us); REST {server.rest_url}; trade_updates "
        f"{server.trading_stream_url}; key {args.key}",
        flush=True,
    )
    await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        asyncio.run(_main(_parse_args()))
    except KeyboardInterrupt:
        pass
