"""`slob-tui parity FILE`: prove no look-ahead on a file; exit 1 on any violation."""

from __future__ import annotations

import argparse

from slob_tui.commands._file_args import add_file_arguments, file_tz
from slob_tui.commands._file_report import dropped_line, order_lines, skipped_line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_file_arguments(parser, params=True)


def run(args: argparse.Namespace) -> int:
    from collections import Counter

    from slob_tui.commands._strategy_data import load_file_candles, params_for, symbol_for
    from slob_tui.strategy.parity import check_parity

    symbol = symbol_for(args.file, args.symbol)
    tz = file_tz(args)
    loaded = load_file_candles(args.file, symbol, tz)
    candles = loaded.candles
    params = params_for(symbol, candles, args.param)
    rep = check_parity(
        candles, symbol, params, json_every=97, literal_every=max(1, len(candles) // 10)
    )
    counts = Counter((s.direction, s.reason or s.state) for s in rep.tracker)
    print(f"parity {symbol} on {args.file}: {rep.candles} candles")
    read = loaded.read
    facts = [skipped_line(read), *order_lines(read, tz),
             dropped_line(loaded.dropped_candles, loaded.late_ticks)]  # fmt: skip
    for fact in facts:
        if fact:
            print(f"  {fact}")
    print(
        f"  prefix invariance: {rep.prefix_checked} candles restored from snapshots "
        f"({rep.json_checked} through JSON), {rep.literal_prefixes} literal prefix runs"
    )
    print(
        f"  setups: tracker {len(rep.tracker)}, reference {len(rep.reference)}; "
        + ", ".join(f"{d} {k} {v}" for (d, k), v in sorted(counts.items()))
    )
    for v in rep.violations[:20]:
        print(f"  VIOLATION {v}")
    print(
        "verdict: PASS (no look-ahead, tracker matches the reference)"
        if rep.ok
        else f"verdict: FAIL ({len(rep.violations)} violations)"
    )
    return 0 if rep.ok else 1
