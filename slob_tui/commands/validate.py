"""`slob-tui validate FILE`: run the data-quality validator over a tick or candle file.

Ticks go through the validator and then the aggregator (as in the live pipeline), so candle
checks see the candles the strategy would; a candle file is checked candle by candle. Prints
counts by kind and the worst examples with their times; `--json OUT` writes the same report.
"""

from __future__ import annotations

import argparse
from typing import Any

from slob_tui.commands._file_args import add_file_arguments, file_tz
from slob_tui.commands._file_report import describe_order, order_json

POLICIES = ("plain", "none", "spy-algoseek", "alpaca-sip")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_file_arguments(parser)
    parser.add_argument(
        "--conditions", choices=POLICIES, default="plain",
        help="sale-condition policy of the aggregator (default plain: only prints flagged "
        "suspicious stay out of OHLC)",
    )  # fmt: skip
    parser.add_argument(
        "--market-hours", default=None, metavar="HH:MM-HH:MM|always",
        help="when minutes may not be missing (default: SLOB_DQ_MARKET_HOURS or 09:30-16:00)",
    )  # fmt: skip
    parser.add_argument("--json", default=None, metavar="OUT", help="also write the report here")


def validate_file(
    path: str, symbol: str, tz: str, policy: Any, sale_policy: Any, progress: Any = None
) -> dict[str, Any]:
    """The report as a dict: what was read, counts by kind, worst examples; `progress` (a
    `RowProgress`) is told the rows read after each chunk."""
    from slob_tui.engine.aggregator import CandleAggregator
    from slob_tui.engine.quality import DataQualityValidator
    from slob_tui.feeds.files import ReadReport, detect_kind, iter_candle_chunks, iter_tick_chunks

    kind = detect_kind(path)
    read = ReadReport(str(path))
    validator = DataQualityValidator(policy, sale_policy=sale_policy)
    candles = 0
    if kind == "ticks":
        agg = CandleAggregator(sale_policy)
        for chunk in iter_tick_chunks(path, symbol, tz, report=read):
            for c in agg.process(validator.filter_ticks(chunk)):
                validator.check_candle(c)
                candles += 1
            if progress is not None:
                progress.update(read.rows)
        for c in agg.flush():
            validator.check_candle(c)
            candles += 1
    else:
        for bars in iter_candle_chunks(path, symbol, tz, report=read):
            for bar in bars:
                validator.check_candle(bar)
                candles += 1
            if progress is not None:
                progress.update(read.rows)
    validator.drain_events()
    return {
        "file": str(path),
        "kind": kind,
        "symbol": symbol,
        "rows": read.rows,
        "unreadable_rows": read.bad_rows,
        "candles": candles,
        "time_order": order_json(read),
        "stats": validator.stats(),
        "worst": validator.examples(),
    }


def _time(ns: Any, tz: str) -> str:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    if not isinstance(ns, int) or ns <= 0:
        return "-"
    return datetime.fromtimestamp(ns / 1e9, ZoneInfo(tz)).isoformat(timespec="milliseconds")


def render(report: dict[str, Any], tz: str) -> str:
    """Plain text: totals, counts by kind, the worst examples with their local times."""
    st = report["stats"]
    lines = [
        f"{report['file']}: {report['kind']}, symbol {report['symbol']}, {report['rows']:,} rows"
        f" ({report['unreadable_rows']} unreadable), {report['candles']:,} candles checked",
    ]
    if report["kind"] == "ticks":
        lines.append(
            f"ticks: {st['ticks']:,} in, {st['passed']:,} passed, {st['rejected']:,} rejected, "
            f"{st['flagged']:,} flagged"
        )
    file_facts = describe_order(report["time_order"], report["rows"], report["kind"], tz)
    lines.extend(file_facts)
    if not st["by_kind"] and not file_facts:
        lines.append("no findings")
    for kind, count in sorted(st["by_kind"].items(), key=lambda kv: -kv[1]):
        lines.append(f"{kind:>16}: {count:,}")
        for ex in report["worst"].get(kind, []):
            rest = ", ".join(f"{k}={v}" for k, v in ex.items() if k not in ("symbol", "ts"))
            lines.append(f"{'':>18}{_time(ex.get('ts'), tz)}  {rest}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    import json
    from dataclasses import replace
    from pathlib import Path

    from slob_tui.commands._file_progress import file_progress
    from slob_tui.config import load_settings
    from slob_tui.engine.aggregator import SaleConditionPolicy
    from slob_tui.errors import SlobError, UsageError
    from slob_tui.feeds.sources import expand

    settings = load_settings()
    tz = file_tz(args)
    path = Path(args.file)
    symbol = args.symbol or expand(args.file).default_symbol()
    policy = settings.quality
    if args.market_hours:
        try:
            policy = replace(policy, market_hours=args.market_hours)
        except SlobError as exc:
            raise UsageError(f"--market-hours: {exc}") from exc
    sale = {
        "plain": SaleConditionPolicy,
        "none": SaleConditionPolicy.none,
        "spy-algoseek": SaleConditionPolicy.spy_algoseek,
        "alpaca-sip": SaleConditionPolicy.alpaca_sip,
    }[args.conditions]()
    bar = file_progress(args.file, args.quiet, "validate")
    try:
        report = validate_file(str(path), symbol, tz, policy, sale, bar)
    finally:
        bar.close()
    print(render(report, tz))
    if args.json:
        try:
            Path(args.json).write_text(json.dumps(report, indent=2, default=str) + "\n")
        except OSError as exc:
            raise UsageError(f"--json {args.json}: cannot write: {exc.strerror}") from exc
    return 0
