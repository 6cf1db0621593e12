"""`slob-tui backtest FILE`: the live tracker with paper fills over a candle or tick file."""

from __future__ import annotations

import argparse

from slob_tui.commands._file_args import add_file_arguments, file_tz


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_file_arguments(parser, params=True)
    parser.add_argument("--json", default=None, metavar="OUT",
                        help="also write params, setups and stats as JSON to OUT")
    parser.add_argument("--no-plot", action="store_true", help="skip the equity curve")


def iso(ns: int | None) -> str | None:
    """ISO 8601 UTC with a Z, or None."""
    if ns is None:
        return None
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


SETUP_KEYS = ("id", "symbol", "direction", "state", "reason", "liq1_time", "liq2_time",
              "trigger_time", "entry_time", "entry", "stop", "target", "quality", "outcome",
              "exit_time", "exit", "r_multiple")


def report_json(result) -> dict:  # noqa: ANN001 - BacktestResult, imported lazily
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


def format_report(result, symbol: str, path: str) -> str:  # noqa: ANN001
    st = result.stats
    lines = [f"backtest {symbol} on {path}: {st['candles']} candles, {st['setups']} setups"]
    for direction, counts in sorted(st["by_direction"].items()):
        parts = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        lines.append(f"  {direction:5}  {parts}")
    if st["by_reason"]:
        lines.append("  invalidated: " + ", ".join(
            f"{k} {v}" for k, v in sorted(st["by_reason"].items())))
    wr = "n/a" if st["win_rate"] is None else f"{st['win_rate'] * 100:.1f}%"
    avg = "n/a" if st["avg_r"] is None else f"{st['avg_r']:+.2f}R"
    lines.append(f"  trades {st['trades']} (wins {st['wins']}, losses {st['losses']}, "
                 f"open {st['open']}, cancelled {st['cancelled']}), win rate {wr}")
    lines.append(f"  average {avg}, total {st['total_r']:+.2f}R, points {st['points']:+.2f}, "
                 f"max drawdown {st['max_drawdown_r']:.2f}R")
    for s in result.setups:
        if s.outcome:
            r = "" if s.r_multiple is None else f" {s.r_multiple:+.2f}R"
            lines.append(f"  {iso(s.trigger_time)} {s.direction:5} entry {s.entry} stop "
                         f"{s.stop} target {s.target} -> {s.outcome}{r}")
    return "\n".join(lines)


def equity_plot(result) -> str:  # noqa: ANN001
    import plotext as plt

    if not result.equity:
        return "  (no closed trades: no equity curve)"
    plt.clear_figure()
    plt.theme("clear")  # plain characters: readable in logs and pipes
    plt.plotsize(72, 14)
    plt.plot(list(range(len(result.equity) + 1)), [0.0] + [r for _, r in result.equity])
    plt.title("equity (cumulative R per closed trade)")
    return plt.build()


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from slob_tui.commands._strategy_data import load_engine_candles, params_for, symbol_for
    from slob_tui.errors import UsageError
    from slob_tui.strategy.backtest import backtest

    symbol = symbol_for(args.file, args.symbol)
    candles = load_engine_candles(args.file, symbol, file_tz(args))
    params = params_for(symbol, candles, args.param)
    result = backtest(candles, symbol, params)
    print(format_report(result, symbol, args.file))
    if not args.no_plot:
        print(equity_plot(result))
    if args.json:
        text = json.dumps(report_json(result), indent=2, allow_nan=False)
        try:
            Path(args.json).write_text(text + "\n", encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write {args.json}: {exc.strerror or exc}") from exc
        print(f"wrote {args.json}")
    return 0
