"""`slob-tui replay FILE`: push a tick or candle file through the live pipeline into the store.

The same engine as live trading (buffer, aggregator, bus, tracker, store) runs over the file
with a clock driven by the data; at the end it prints what went through and what was stored.
"""

from __future__ import annotations

import argparse

from slob_tui.commands._file_args import add_file_arguments, file_tz


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_file_arguments(parser)
    parser.add_argument(
        "--no-ui", action="store_true", help="headless: print a summary, no console"
    )
    parser.add_argument(
        "--speed", default="max", metavar="X|max",
        help="data seconds per wall second, or max (default: max)",
    )  # fmt: skip
    parser.add_argument("--db", default=None, help="SQLite file (default: SLOB_DB_PATH)")
    parser.add_argument(
        "--exclude-conditions", default=None, metavar="C1,C2,...",
        help="sale-condition codes kept out of open/high/low/close (volume still counts)",
    )  # fmt: skip


def parse_speed(text: str) -> float | None:
    """'max' -> None (as fast as possible); otherwise a positive factor."""
    from slob_tui.commands._speed import parse_speed as parse

    return parse(text, allow_max=True)


def parse_conditions(text: str | None) -> tuple[str, ...] | None:
    from slob_tui.errors import UsageError

    if text is None:
        return None
    codes = tuple(c.strip() for c in text.split(",") if c.strip())
    if not codes:
        raise UsageError("--exclude-conditions needs at least one code, e.g. 20,20000020")
    return codes


def run(args: argparse.Namespace) -> int:
    import asyncio

    from slob_tui.config import load_settings
    from slob_tui.wiring import RunOptions, build_engine

    settings = load_settings()
    opts = RunOptions(
        feed="replay",
        symbols=(args.symbol,) if args.symbol else (),
        db=args.db or settings.db_path,
        speed=parse_speed(args.speed),
        replay_file=args.file,
        tz=file_tz(args),
        exclude_conditions=parse_conditions(args.exclude_conditions),
    )
    if not args.no_ui:
        from slob_tui.ui.launch import run_console

        return run_console(opts, settings, args)
    engine = build_engine(opts, settings)
    summary = asyncio.run(_replay(engine))
    print(summary)
    return 0


async def _replay(engine) -> str:  # noqa: ANN001 - LiveTradingEngine, imported lazily
    from slob_tui.storage.candles import CandleStore

    engine.install_signal_handlers()
    await engine.run()
    feed = engine.feed
    report = feed.report
    agg = engine.aggregator.stats()
    async with CandleStore(engine.store.path) as store:
        rows = await store.count(feed.symbol) if feed.kind == "ticks" else await store.count()
    lines = [
        f"replayed {feed.path.name} ({report.kind}, {feed.symbol}): {report.summary()}",
        f"  sent {feed.ticks_sent} ticks, {feed.candles_sent} candles; "
        f"aggregated {agg['ticks']} ticks into {agg['candles']} candles "
        f"({agg['gap_filled']} gap-filled), {agg['gaps_reported']} gaps reported, "
        f"{agg['late_ticks']} late ticks, {agg['excluded_from_ohlc']} kept out of OHLC, "
        f"{agg['duplicates']} duplicate candles",
        f"  store {engine.store.path}: {rows} candle rows",
    ]
    if report.bad_reasons:
        lines.append(f"  first bad row: line {report.bad_lines[0]}: {report.bad_reasons[0]}")
    unused = sorted(set(feed.exclude_conditions) - report.exclusions_seen)
    if feed.kind == "ticks" and unused:
        lines.append(f"  note: excluded condition(s) never seen in the file: {', '.join(unused)}")
    return "\n".join(lines)
