"""The default command: the console, or the engine headless with --no-ui."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-ui", action="store_true", help="run the engine headless")
    parser.add_argument(
        "--feed", choices=("demo", "replay", "alpaca"), default=None,
        help="market data source (default: SLOB_FEED or demo)",
    )
    parser.add_argument(
        "--symbols", nargs="+", default=None, metavar="SYMBOL",
        help="symbols to watch (default: NQ for demo, QQQ for Alpaca stocks)",
    )
    parser.add_argument("--db", default=None, help="SQLite file (default: SLOB_DB_PATH)")
    parser.add_argument(
        "--duration", type=float, default=None, metavar="SECONDS", help="stop after this long"
    )
    parser.add_argument("--seed", type=int, default=7, help="demo market seed")
    parser.add_argument(
        "--speed", default="60", metavar="X",
        help="demo market speed (market seconds per second, positive; default 60)",
    )  # fmt: skip
    parser.add_argument("--live", action="store_true", help="trade real money (asks to confirm)")
    parser.add_argument(
        "--i-understand-live-trading", action="store_true", dest="live_confirmed",
        help="confirm --live without a prompt (headless)",
    )
    parser.add_argument(
        "--metrics-port", type=int, default=None, metavar="PORT",
        help="serve Prometheus /metrics and /healthz on this port (default: SLOB_METRICS_PORT, "
        "0 = off)",
    )
    parser.add_argument(
        "--metrics-host", default=None, metavar="HOST",
        help="address for --metrics-port (default: SLOB_METRICS_HOST or 127.0.0.1)",
    )
    parser.add_argument(
        "--log-file", default=None, metavar="PATH",
        help="headless: also log to this rotating file (secrets redacted)",
    )


def options_from_args(args: argparse.Namespace):  # noqa: ANN201 - RunOptions, lazily imported
    """Flags over settings over defaults."""
    from slob_tui.commands._speed import parse_speed
    from slob_tui.config import load_settings
    from slob_tui.wiring import RunOptions

    settings = load_settings()
    symbols = tuple(args.symbols) if getattr(args, "symbols", None) else settings.symbols
    opts = RunOptions(
        feed=getattr(args, "feed", None) or settings.feed,
        symbols=tuple(s.strip() for s in symbols if s.strip()),
        db=getattr(args, "db", None) or settings.db_path,
        duration=getattr(args, "duration", None),
        live=bool(getattr(args, "live", False)),
        seed=getattr(args, "seed", 7),
        speed=parse_speed(getattr(args, "speed", 60.0)),
    )
    if getattr(args, "metrics_port", None) is not None:
        opts.extra["metrics_port"] = args.metrics_port
    if getattr(args, "metrics_host", None):
        opts.extra["metrics_host"] = args.metrics_host
    opts.extra["live_confirmed"] = bool(getattr(args, "live_confirmed", False))
    if opts.duration is not None and opts.duration <= 0:
        from slob_tui.errors import UsageError

        raise UsageError("--duration must be a positive number of seconds")
    return opts, settings


def run(args: argparse.Namespace) -> int:
    from slob_tui.errors import UsageError

    opts, settings = options_from_args(args)
    if opts.live and args.no_ui and not args.live_confirmed:
        raise UsageError(
            "--live trades real money: add --i-understand-live-trading to confirm (headless)"
        )
    if args.no_ui:
        from slob_tui.headless import run_headless
        from slob_tui.ops.logs import setup_logging

        setup_logging(
            settings.log_level, secrets=settings.secrets(),
            log_file=getattr(args, "log_file", None),
        )

        return run_headless(opts, settings)
    from slob_tui.ui.launch import run_console

    return run_console(opts, settings, args)
