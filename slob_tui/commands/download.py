"""`slob-tui download SYMBOL... --start DATE --end DATE [--bars|--trades] --out DIR`.

Alpaca's history into daily Parquet files (`feeds/history.py`), which `replay`, `backtest` and
`validate` read as a folder: `slob-tui replay DIR/SPY/trades`. Running the same command again
fetches only what is missing, so an interrupted download resumes where it stopped.
"""

from __future__ import annotations

import argparse
from datetime import date


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("symbols", nargs="+", metavar="SYMBOL", help="e.g. SPY QQQ BTC/USD")
    parser.add_argument("--start", required=True, metavar="DATE", help="first day, YYYY-MM-DD")
    parser.add_argument("--end", required=True, metavar="DATE", help="last day (inclusive)")
    kind = parser.add_mutually_exclusive_group()
    kind.add_argument("--trades", dest="kind", action="store_const", const="trades",
                      help="every trade (the default)")  # fmt: skip
    kind.add_argument("--bars", dest="kind", action="store_const", const="bars",
                      help="1-minute bars")  # fmt: skip
    parser.set_defaults(kind="trades")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="folder for DIR/SYMBOL/{trades,bars}/YYYY-MM-DD.parquet")  # fmt: skip
    parser.add_argument(
        "--feed", default=None, choices=("sip", "iex"),
        help="stock feed (default: ALPACA_FEED when sip or iex, else sip)",
    )  # fmt: skip
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def parse_day(text: str, flag: str) -> date:
    from slob_tui.errors import UsageError

    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{flag} must be a date like 2024-01-02, got {text!r}") from None


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from slob_tui.commands._file_progress import progress
    from slob_tui.config import load_settings
    from slob_tui.errors import UsageError
    from slob_tui.feeds.history import Downloader, DownloadRequest, PageSource

    start, end = parse_day(args.start, "--start"), parse_day(args.end, "--end")
    if end < start:
        raise UsageError(f"--end {end} is before --start {start}")
    symbols = tuple(dict.fromkeys(s.strip().upper() for s in args.symbols if s.strip()))
    if not symbols:
        raise UsageError("name at least one symbol, e.g. SPY")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: is a file, expected a folder")
    settings = load_settings()
    if not settings.has_alpaca_keys:
        raise UsageError(
            "download needs ALPACA_API_KEY and ALPACA_API_SECRET (in .env or the environment)"
        )
    feed = args.feed or (settings.alpaca_feed if settings.alpaca_feed in ("sip", "iex") else "sip")
    request = DownloadRequest(symbols, start, end, args.kind, out, feed)
    source = PageSource(
        settings.alpaca_api_key.get_secret_value(),
        settings.alpaca_api_secret.get_secret_value(),
        settings.alpaca_data_url or None,
    )
    bar = progress(f"download {args.kind}", None, args.quiet, unit=args.kind)
    done = [0]

    def advance(rows: int) -> None:
        done[0] += rows
        bar.update(done[0])

    try:
        tally = Downloader(source, request, on_rows=advance).run()
    finally:
        bar.close()
    print(
        f"downloaded {tally.rows} {args.kind} rows in {tally.pages} pages: "
        f"{tally.days_written} day files written, {tally.days_skipped} already there, "
        f"{tally.days_empty} days without data, {tally.retries} retries; in {out}"
    )
    return 0
