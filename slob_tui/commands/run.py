"""The default command: the console, or the engine headless with --no-ui."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-ui", action="store_true", help="run the engine headless")
    parser.add_argument(
        "--feed",
        choices=("demo", "replay", "alpaca"),
        default=None,
        help="market data source (default: SLOB_FEED or demo)",
    )
    parser.add_argument(
        "--symbols",
        nargs="+",
        default=None,
        metavar="SYMBOL",
        help="symbols to watch (default: NQ for demo, QQQ for Alpaca stocks)",
    )
    parser.add_argument("--db", default=None, help="SQLite file (default: SLOB_DB_PATH)")
    parser.add_argument(
        "--duration", type=float, default=None, metavar="SECONDS", help="stop after this long"
    )
    parser.add_argument(
        "--tz", default=None, metavar="ZONE",
        help="zone every time is shown in (default: SLOB_TZ or America/New_York)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=7, help="demo market seed")
    parser.add_argument(
        "--speed", default="60", metavar="X",
        help="demo market speed (market seconds per second, positive; default 60)",
    )  # fmt: skip
    parser.add_argument("--live", action="store_true", help="trade real money (asks to confirm)")
    parser.add_argument(
        "--i-understand-live-trading",
        action="store_true",
        dest="live_confirmed",
        help="confirm --live without a prompt (headless)",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        metavar="PORT",
        help="serve Prometheus /metrics and /healthz on this port (default: SLOB_METRICS_PORT, "
        "0 = off)",
    )
    parser.add_argument(
        "--metrics-host",
        default=None,
        metavar="HOST",
        help="address for --metrics-port (default: SLOB_METRICS_HOST or 127.0.0.1)",
    )
    parser.add_argument(
        "--log-file",
        default=None,
        metavar="PATH",
        help="headless: also log to this rotating file (secrets redacted)",
    )


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from slob_tui.core.timefmt import zone
    from slob_tui.errors import UsageError
    from slob_tui.node import from_args

    config = from_args(args)
    tz = getattr(args, "tz", None) or config.settings.tz
    zone(tz)  # an unknown zone is one line and exit 2
    config = replace(config, tz=tz)
    if config.live and args.no_ui and not config.live_confirmed:
        raise UsageError(
            "--live trades real money: add --i-understand-live-trading to confirm (headless)"
        )
    if args.no_ui:
        from slob_tui.headless import run_headless
        from slob_tui.ops.logs import setup_logging

        settings = config.settings
        setup_logging(
            settings.log_level, secrets=settings.secrets(),
            log_file=getattr(args, "log_file", None),
        )  # fmt: skip
        return run_headless(config)
    from slob_tui.ui.launch import run_console

    return run_console(config)
