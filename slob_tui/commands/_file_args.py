"""The flags every file command shares (replay, backtest, parity, validate)."""

from __future__ import annotations

import argparse

DEFAULT_TZ = "America/New_York"  # config.Settings.tz default, named in --help


def add_file_arguments(parser: argparse.ArgumentParser, params: bool = False) -> None:
    """FILE, --symbol and --tz; with `params`, the repeatable --param NAME=VALUE too."""
    parser.add_argument(
        "file", metavar="FILE",
        help="tick or candle file (CSV, CSV.gz or Parquet), or a folder or glob of daily files",
    )  # fmt: skip
    parser.add_argument(
        "--quiet", action="store_true", help="no progress bar (there is none in a pipe either)"
    )
    parser.add_argument(
        "--symbol", default=None,
        help="symbol of the file's rows (default: the file name's first word)",
    )  # fmt: skip
    parser.add_argument(
        "--tz", default=None, metavar="ZONE",
        help=f"zone of naive timestamps in the file (default: SLOB_TZ or {DEFAULT_TZ})",
    )  # fmt: skip
    if params:
        parser.add_argument(
            "--param", action="append", default=[], metavar="NAME=VALUE",
            help="override a strategy parameter (repeatable), e.g. min_rr=1.5",
        )  # fmt: skip


def file_tz(args: argparse.Namespace) -> str:
    """--tz, else the SLOB_TZ setting (environment or .env; New York by default)."""
    if args.tz:
        tz: str = args.tz
        return tz
    from slob_tui.config import load_settings

    return load_settings().tz
