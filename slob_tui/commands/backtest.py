"""`slob-tui backtest FILE`: the live tracker with paper fills over a candle or tick file."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from slob_tui.commands._strategy_data import FileCandles
    from slob_tui.strategy.backtest import BacktestResult

from slob_tui.commands._file_args import add_file_arguments, file_tz
from slob_tui.commands._file_report import (
    dropped_line,
    local_time,
    order_lines,
    plural,
    skipped_line,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_file_arguments(parser, params=True)
    parser.add_argument(
        "--json",
        default=None,
        metavar="OUT",
        help="also write params, setups and stats as JSON to OUT",
    )
    parser.add_argument("--no-plot", action="store_true", help="skip the equity curve")


def iso(ns: int | None) -> str | None:
    """ISO 8601 UTC with a Z, or None (the --json document's machine times)."""
    if ns is None:
        return None
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


SETUP_KEYS = (
    "id",
    "symbol",
    "direction",
    "state",
    "reason",
    "liq1_time",
    "liq2_time",
    "trigger_time",
    "entry_time",
    "entry",
    "stop",
    "target",
    "quality",
    "outcome",
    "exit_time",
    "exit",
    "r_multiple",
)


def report_json(result: BacktestResult) -> dict[str, Any]:
    """The `--json` document: params, one row per setup (SETUP_KEYS), stats."""
    setups = []
    for s in result.setups:
        row = {k: getattr(s, k) for k in SETUP_KEYS}
        for k in ("liq1_time", "liq2_time", "trigger_time", "entry_time", "exit_time"):
            row[k] = iso(row[k])
        setups.append(row)
    stats = dict(result.stats)
    stats["equity"] = [[iso(t), r] for t, r in result.equity]
    return {"params": result.params, "setups": setups, "stats": stats}


def _when(ns: int | None, tz: str) -> str:
    return "-" if ns is None else local_time(ns, tz, seconds=False)


def summary_lines(
    result: BacktestResult, symbol: str, path: str, loaded: FileCandles, tz: str
) -> list[str]:
    """The header, what was read and dropped, counts by direction and the totals."""
    st = result.stats
    read = loaded.read
    lines = [f"backtest {symbol} on {path}: {st['candles']} candles, {st['setups']} setups "
             f"(times in {tz})",
             f"  read {plural(read.rows, 'row')} ({read.kind})"]  # fmt: skip
    facts = [skipped_line(read), *order_lines(read, tz),
             dropped_line(loaded.dropped_candles, loaded.late_ticks)]  # fmt: skip
    lines.extend(f"  {fact}" for fact in facts if fact)
    for direction, counts in sorted(st["by_direction"].items()):
        parts = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        lines.append(f"  {direction:5}  {parts}")
    if st["by_reason"]:
        lines.append("  invalidated: " + ", ".join(
            f"{k} {v}" for k, v in sorted(st["by_reason"].items())))  # fmt: skip
    wr = "n/a" if st["win_rate"] is None else f"{st['win_rate'] * 100:.1f}%"
    avg = "n/a" if st["avg_r"] is None else f"{st['avg_r']:+.2f}R"
    lines.append(f"  trades {st['trades']} (wins {st['wins']}, losses {st['losses']}, "
                 f"open {st['open']}, cancelled {st['cancelled']}), win rate {wr}")  # fmt: skip
    lines.append(f"  average {avg}, total {st['total_r']:+.2f}R, points {st['points']:+.2f}, "
                 f"max drawdown {st['max_drawdown_r']:.2f}R")  # fmt: skip
    return lines


OUTCOME_STYLE = {"win": "green", "loss": "red"}


def trades_table(result: BacktestResult, tz: str) -> Table:
    """One row per setup that reached an entry: entry and exit with their times in `tz`."""
    from rich import box
    from rich.table import Table

    table = Table(title=f"trades (times in {tz})", box=box.SIMPLE_HEAD, title_justify="left")
    for name in ("entry time", "dir", "entry", "stop", "target", "exit time", "exit",
                 "outcome", "R"):  # fmt: skip
        numeric = name in ("entry", "stop", "target", "exit", "R")
        table.add_column(name, justify="right" if numeric else "left", no_wrap=True)
    for s in result.setups:
        if not s.outcome:
            continue
        r = "" if s.r_multiple is None else f"{s.r_multiple:+.2f}"
        style = OUTCOME_STYLE.get(s.outcome, "")
        table.add_row(_when(s.entry_time or s.trigger_time, tz), s.direction, _num(s.entry),
                      _num(s.stop), _num(s.target), _when(s.exit_time, tz), _num(s.exit),
                      f"[{style}]{s.outcome}[/]" if style else s.outcome, r)  # fmt: skip
    return table


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.10g}"


def equity_plot(result: BacktestResult) -> str:
    """The equity curve as plotext text (it may carry colour codes; the console drops them
    when the output is not a terminal)."""
    import plotext as plt

    if not result.equity:
        return "  (no closed trades: no equity curve)"
    plt.clear_figure()
    plt.theme("clear")
    plt.plotsize(72, 14)
    plt.plot(list(range(len(result.equity) + 1)), [0.0] + [r for _, r in result.equity])
    plt.title("equity (cumulative R per closed trade)")
    text: str = plt.build()  # plotext is untyped
    return text


def output_console() -> Console:
    """Colour only on a terminal; piped output is plain text at least 120 columns wide so the
    trade table is never cut."""
    from rich.console import Console

    console = Console(highlight=False)
    if not console.is_terminal and console.width < 120:
        console.width = 120
    return console


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from rich.text import Text

    from slob_tui.commands._file_progress import file_progress
    from slob_tui.commands._strategy_data import load_file_candles, params_for, symbol_for
    from slob_tui.errors import UsageError
    from slob_tui.strategy.backtest import backtest

    symbol = symbol_for(args.file, args.symbol)
    tz = file_tz(args)
    bar = file_progress(args.file, args.quiet, "backtest")
    try:
        loaded = load_file_candles(args.file, symbol, tz, bar)
    finally:
        bar.close()
    params = params_for(symbol, loaded.candles, args.param)
    result = backtest(loaded.candles, symbol, params)
    console = output_console()
    for line in summary_lines(result, symbol, args.file, loaded, tz):
        console.print(line, markup=False, soft_wrap=True)
    if any(s.outcome for s in result.setups):
        console.print(trades_table(result, tz))
    if not args.no_plot:
        console.print(Text.from_ansi(equity_plot(result)))
    if args.json:
        text = json.dumps(report_json(result), indent=2, allow_nan=False)
        try:
            Path(args.json).write_text(text + "\n", encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write {args.json}: {exc.strerror or exc}") from exc
        console.print(f"wrote {args.json}", markup=False)
    return 0
