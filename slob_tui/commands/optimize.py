"""`slob-tui optimize FILE...`: a seeded parameter search with walk-forward out-of-sample proof."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from slob_tui.core.models import Candle

from slob_tui.commands._file_args import DEFAULT_TZ

DEFAULT_STORAGE = "sqlite:///slob-optimize.db"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="candle or tick CSV (or CSV.gz) files of one symbol",
    )
    parser.add_argument(
        "--symbol",
        default=None,
        help="symbol of the rows (default: the first file name's first word)",
    )
    parser.add_argument(
        "--tz",
        default=None,
        metavar="ZONE",
        help=f"zone of naive timestamps (default: SLOB_TZ or {DEFAULT_TZ})",
    )
    parser.add_argument("--trials", type=int, default=64, help="trials per window (default 64)")
    parser.add_argument("--seed", type=int, default=0, help="sampler seed (default 0)")
    parser.add_argument(
        "--walk-forward",
        type=int,
        default=None,
        metavar="K",
        help="K windows: search on a fold, prove on the next (default: off)",
    )
    parser.add_argument(
        "--objective", default="total_r", help="total_r, expectancy or sqn (default total_r)"
    )
    parser.add_argument(
        "--min-trades",
        type=int,
        default=3,
        metavar="N",
        help="a trial with fewer closed trades is unusable (default 3)",
    )
    parser.add_argument(
        "--space",
        default=None,
        metavar="TOML",
        help="narrow the search: [params] name = [low, high] | [choices] | value",
    )
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="fix a strategy parameter (repeatable); it is no longer searched",
    )
    parser.add_argument("--jobs", type=int, default=1, help="local worker processes (default 1)")
    parser.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="run on a Dask distributed cluster, e.g. tcp://10.0.0.5:8786",
    )
    parser.add_argument(
        "--storage",
        default=DEFAULT_STORAGE,
        metavar="URL",
        help=f"Optuna storage; an interrupted study resumes (default {DEFAULT_STORAGE})",
    )
    parser.add_argument("--json", default=None, metavar="OUT", help="write the report as JSON")
    parser.add_argument("--no-plot", action="store_true", help="skip the equity curves")


def _check_counts(args: argparse.Namespace) -> None:
    from slob_tui.errors import UsageError

    if args.trials < 1:
        raise UsageError(f"--trials must be at least 1, got {args.trials}")
    if args.min_trades < 0:
        raise UsageError(f"--min-trades must be >= 0, got {args.min_trades}")
    if args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {args.jobs}")
    if args.scheduler is not None and args.jobs != 1:
        raise UsageError("--jobs and --scheduler exclude each other (the cluster sets the width)")


def load_candles(paths: list[str], symbol: str, tz: str) -> list[Candle]:
    """All files' engine candles merged in time order (a repeated minute is kept once)."""
    from slob_tui.commands._strategy_data import load_engine_candles
    from slob_tui.strategy.backtest import strictly_increasing

    candles: list[Candle] = []
    for path in paths:
        candles.extend(load_engine_candles(path, symbol, tz))
    candles.sort(key=lambda c: c.start)
    return strictly_increasing(candles)


def _progress(
    enabled: bool,
) -> tuple[AbstractContextManager[Any], Callable[[int, int], None] | None]:
    """A rich progress bar on a terminal; nothing when piped (logs stay clean)."""
    import contextlib

    if not enabled:
        return contextlib.nullcontext(), None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    bar = Progress("trials", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=True)
    task = bar.add_task("trials", total=None)

    def update(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    return bar, update


def run(args: argparse.Namespace) -> int:
    import json
    import sys
    from pathlib import Path

    from rich.console import Console

    from slob_tui.commands._file_args import file_tz
    from slob_tui.commands._strategy_data import params_for, symbol_for
    from slob_tui.errors import UsageError
    from slob_tui.research import report
    from slob_tui.research.objectives import objective_named
    from slob_tui.research.optimize import optimize
    from slob_tui.research.search import SearchSettings
    from slob_tui.research.space import default_space, load_space_file, narrow
    from slob_tui.strategy.params import parse_param_args

    _check_counts(args)
    objective = objective_named(args.objective)
    symbol = symbol_for(args.files[0], args.symbol)
    candles = load_candles(args.files, symbol, file_tz(args))
    base = params_for(symbol, candles, [])
    space = default_space(base)
    if args.space:
        space = load_space_file(space, args.space)
    fixed = parse_param_args(args.param)
    if fixed:
        coerced = base.with_overrides(fixed)
        space = narrow(space, {k: getattr(coerced, k) for k in fixed}, "--param")
    settings = SearchSettings(
        symbol, objective, args.min_trades, args.trials, args.seed, args.storage
    )
    bar, update = _progress(sys.stderr.isatty())
    with bar:
        result = optimize(
            candles, space, settings, args.walk_forward, args.jobs, args.scheduler, update
        )
    console = Console(width=None if sys.stdout.isatty() else 120)
    console.print(report.table(result))
    if not args.no_plot:
        print(report.equity_plot(result))
    print("best parameters (last window), for `slob-tui backtest`:")
    print("  " + (report.param_args(result) or "(no usable trial: nothing to trade)"))
    if args.json:
        text = json.dumps(report.to_json(result), indent=2, allow_nan=False)
        try:
            Path(args.json).write_text(text + "\n", encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write {args.json}: {exc.strerror or exc}") from exc
        print(f"wrote {args.json}")
    return 0
