"""The checkpoint test: run the engine for N minutes and report pass or fail."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from slob_tui.node import TradingNode


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--minutes", type=float, default=5.0, help="how long to run (wall-clock minutes)"
    )
    parser.add_argument("--feed", choices=("demo", "alpaca"), default=None)
    parser.add_argument("--symbols", nargs="+", default=None, metavar="SYMBOL")
    parser.add_argument("--db", default=None, help="SQLite file (default: a fresh temp file)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--speed",
        default="60",
        metavar="X",
        help="demo market speed (market seconds per second, positive; default 60)",
    )


def checkpoint_report(
    engine: TradingNode, persisted: int, minutes: float
) -> tuple[bool, list[tuple[str, Any, bool]]]:
    """Rows of (check, value, passed); the run passes when every row does."""
    h = engine.health()
    feed = h.get("feed") or {}
    connected = feed.get("state") not in ("failed", "stopped_error") and engine.feed_error is None
    rows: list[tuple[str, Any, bool]] = [
        ("uptime", f"{h.get('uptime_s')} s (engine time), {minutes:g} min wall", True),
        ("connection", feed.get("state", "ok" if connected else "failed"), connected),
        ("ticks received", h["ticks"], h["ticks"] > 0),
        ("candles generated", h["candles"], h["candles"] > 0),
        ("candles persisted", persisted, persisted == h["candles"]),
        ("buffer drops", h["buffer"]["dropped"], h["buffer"]["dropped"] == 0),
        ("event handler errors", h["bus"]["handler_errors"], h["bus"]["handler_errors"] == 0),
    ]
    return all(r[2] for r in rows), rows


def run(args: argparse.Namespace) -> int:
    import asyncio
    import tempfile
    from pathlib import Path

    from rich.console import Console
    from rich.table import Table

    from slob_tui.errors import UsageError
    from slob_tui.node import TradingNode, from_args
    from slob_tui.storage.candles import count_stored

    if args.minutes <= 0:
        raise UsageError("--minutes must be positive")
    with tempfile.TemporaryDirectory() as tmp:
        if args.db is None:
            args.db = str(Path(tmp) / "check.db")
        args.duration = args.minutes * 60
        config = from_args(args)
        engine = TradingNode(config)

        async def go() -> int:
            engine.install_signal_handlers()
            await engine.run(duration=config.duration)
            return await asyncio.to_thread(count_stored, config.db)

        persisted = asyncio.run(go())
    ok, rows = checkpoint_report(engine, persisted, args.minutes)
    table = Table(title=f"slob-tui checkpoint ({config.feed})")
    for col in ("check", "value", "result"):
        table.add_column(col)
    for name, value, passed in rows:
        table.add_row(name, str(value), "[green]PASS[/]" if passed else "[red]FAIL[/]")
    console = Console(highlight=False)
    console.print(table)
    console.print("[bold green]PASS[/]" if ok else "[bold red]FAIL[/]")
    return 0 if ok else 1
