"""What parsing Alpaca's market-data frames costs, side by side with alpaca-py's own path.

    .venv/bin/python -m benchmarks.bench_alpaca_frames [--data ../shared/data] [--runs 5]

The SPY day's 250,601 trades are packed as Alpaca frames of `--batch` trades (msgpack with
Timestamp `t`, and JSON with RFC 3339 nanosecond strings). Figures are medians of `--runs`:
- slob-tui `parse_frame` (msgpack, `timestamp=2` straight to int ns, one tuple per trade);
- slob-tui `parse_frame` on JSON frames (hand-written RFC 3339 parser);
- alpaca-py 0.44's path in `DataStream._consume` + `_cast` with `raw_data=False`: msgpack
  unpack, `Timestamp.to_datetime()`, a pydantic `Trade` per trade (its handlers get those).
The 12,477 XRP/ETH trades are packed in Alpaca's crypto layout (`T,S,p,s,t,i,tks`, float
sizes) and timed the same two ways (slob-tui msgpack, alpaca-py), against each other.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path


def _frames(data: Path, batch: int) -> tuple[list[bytes], list[str], int]:
    import msgpack

    from tests.fakes.alpaca.trades import load_algoseek_trades, rfc3339

    trades = load_algoseek_trades(data / "spy_trades_20131007_et.csv.gz", "SPY")
    packed, texts = [], []
    for i in range(0, len(trades), batch):
        chunk = trades[i : i + batch]
        rows = [{"T": "t", "S": t.symbol, "i": t.id, "x": t.exchange, "p": t.price, "s": t.size,
                 "c": list(t.conditions), "z": "B"} for t in chunk]  # fmt: skip
        pairs = list(zip(rows, chunk, strict=True))
        packed.append(
            msgpack.packb([{**r, "t": msgpack.Timestamp.from_unix_nano(t.ts)} for r, t in pairs])
        )
        texts.append(json.dumps([{**r, "t": rfc3339(t.ts)} for r, t in pairs]))
    return packed, texts, len(trades)


def _crypto_frames(data: Path, batch: int) -> tuple[list[bytes], int]:
    import csv

    import msgpack

    with open(data / "xrpeth_trades_20191011_20191013_utc.csv", newline="") as fh:
        rows = [{"T": "t", "S": "XRP/ETH", "p": float(r["price"]), "s": float(r["amount"]),
                 "t": msgpack.Timestamp.from_unix_nano(int(r["timestamp"]) * 1_000_000),
                 "i": int(r["id"]), "tks": "B" if r["side"] == "buy" else "S"}
                for r in csv.DictReader(fh)]  # fmt: skip
    return [msgpack.packb(rows[i : i + batch]) for i in range(0, len(rows), batch)], len(rows)


def _ours(frames: list) -> int:
    from slob_tui.feeds.alpaca_frames import parse_frame

    n = 0
    for f in frames:
        n += len(parse_frame(f).ticks)
    return n


def _alpaca_py(frames: list[bytes]) -> int:
    import msgpack
    from alpaca.data.models import Trade

    n = 0
    for f in frames:
        for msg in msgpack.unpackb(f):
            msg["t"] = msg["t"].to_datetime()
            Trade(msg["S"], msg)
            n += 1
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--batch", type=int, default=1000)
    args = ap.parse_args()
    packed, texts, total = _frames(args.data, args.batch)
    crypto, crypto_total = _crypto_frames(args.data, args.batch)
    cases = {
        "slob-tui parse_frame, msgpack": lambda: _ours(packed),
        "slob-tui parse_frame, JSON": lambda: _ours(texts),
        "alpaca-py unpack + Trade models": lambda: _alpaca_py(packed),
    }
    crypto_cases = {
        "slob-tui parse_frame, msgpack": lambda: _ours(crypto),
        "alpaca-py unpack + Trade models": lambda: _alpaca_py(crypto),
    }
    results: dict[str, float] = {}
    crypto_results: dict[str, list[float]] = {}
    for _ in range(args.runs):  # interleaved, so machine load hits every case alike
        for name, fn in cases.items():
            t0 = time.perf_counter()
            assert fn() == total
            results.setdefault(name, [])  # type: ignore[arg-type]
            results[name].append(time.perf_counter() - t0)  # type: ignore[union-attr]
        for name, fn in crypto_cases.items():
            t0 = time.perf_counter()
            assert fn() == crypto_total
            crypto_results.setdefault(name, []).append(time.perf_counter() - t0)
    for label, n, res in (
        (f"{total} SPY trades", total, results),
        (f"{crypto_total} XRP/ETH trades, crypto layout,", crypto_total, crypto_results),
    ):
        print(f"{label} in frames of {args.batch}; median of {args.runs} runs")
        peer = statistics.median(res["alpaca-py unpack + Trade models"])  # type: ignore[arg-type]
        for name, times in res.items():
            med = statistics.median(times)  # type: ignore[arg-type]
            print(
                f"  {name:34s} {med * 1000:8.1f} ms  {n / med / 1e6:6.2f} M trades/s  "
                f"x{peer / med:5.1f} vs alpaca-py"
            )


if __name__ == "__main__":
    main()
