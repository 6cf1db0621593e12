"""`slob-tui replay FILE`: push a tick or candle file through the live pipeline into a store.

The same engine as live trading (buffer, aggregator, validator, bus, tracker, paper orders,
store) runs over the file with a clock driven by the data; at the end it prints what went
through, what was dropped and why, the setups, trades and P&L, and what was stored. The store
is a temporary database unless `--db` names one, so a replay never meets the live engine's
kill switch, orders or candles.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from slob_tui.commands._file_args import add_file_arguments, file_tz

if TYPE_CHECKING:
    from slob_tui.commands._file_progress import RowProgress
    from slob_tui.core.events import Event
    from slob_tui.engine.bus import EventBus
    from slob_tui.engine.engine import LiveTradingEngine
    from slob_tui.feeds.replay import ReplayFeed
    from slob_tui.node import TradingNode


SWITCH_INTERVAL_S = 0.0005  # while a headless replay runs (see `run`)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_file_arguments(parser)
    parser.add_argument(
        "--no-ui", action="store_true", help="headless: print a summary, no console"
    )
    parser.add_argument(
        "--speed", default="max", metavar="X|max",
        help="data seconds per wall second, or max (default: max)",
    )  # fmt: skip
    parser.add_argument(
        "--db", default=None, metavar="FILE",
        help="SQLite file to replay into (default: a temporary one, deleted at the end; "
        "never the live SLOB_DB_PATH unless named here)",
    )  # fmt: skip
    parser.add_argument(
        "--exclude-conditions", default=None, metavar="C1,C2,...",
        help="sale-condition codes kept out of open/high/low/close (volume still counts)",
    )  # fmt: skip


def parse_speed(text: str) -> float | None:
    """'max' -> None (as fast as possible); otherwise a positive factor."""
    from slob_tui.core.speed import parse_speed as parse

    return parse(text, allow_max=True)


def parse_conditions(text: str | None) -> tuple[str, ...] | None:
    from slob_tui.errors import UsageError

    if text is None:
        return None
    codes = tuple(c.strip() for c in text.split(",") if c.strip())
    if not codes:
        raise UsageError("--exclude-conditions needs at least one code, e.g. 20,20000020")
    return codes


class ReplayTally:
    """Setups, orders and closed trades seen on the engine's bus during one replay."""

    def __init__(self) -> None:
        self.setups_started = 0
        self.setups_triggered = 0
        self.setups_invalidated = 0
        self.orders_filled = 0
        self.orders_rejected = 0
        self.trades = 0
        self.wins = 0
        self.pnl = 0.0

    def attach(self, bus: EventBus) -> None:
        from slob_tui.core.events import EventType

        counters = {
            EventType.SETUP_STARTED: "setups_started",
            EventType.SETUP_TRIGGERED: "setups_triggered",
            EventType.SETUP_INVALIDATED: "setups_invalidated",
            EventType.ORDER_FILLED: "orders_filled",
            EventType.ORDER_REJECTED: "orders_rejected",
        }

        def count(event: Event) -> None:
            name = counters[event.type]
            setattr(self, name, getattr(self, name) + 1)

        for etype in counters:
            bus.subscribe(etype, count)
        bus.subscribe(EventType.TRADE_CLOSED, self._trade)

    def _trade(self, event: Event) -> None:
        from slob_tui.core.event_payloads import TradeClosed

        pnl = event.payload(TradeClosed).pnl
        self.trades += 1
        self.wins += pnl > 0
        self.pnl += pnl

    def lines(self) -> list[str]:
        """The summary's setups and trades lines."""
        return [
            f"  setups: {self.setups_started} started, {self.setups_triggered} triggered, "
            f"{self.setups_invalidated} invalidated; orders: {self.orders_filled} fills, "
            f"{self.orders_rejected} rejected",
            f"  trades: {self.trades} closed ({self.wins} won), P&L {self.pnl:+,.2f} (paper)",
        ]


class _PrintedOnce(logging.Filter):
    """Drops the engine's 'feed ... failed' record when the feed's error is a `SlobError`:
    the command line prints that error itself, as its one line. (The record's arguments are
    already formatted away by the redaction factory, so the engine's `feed_error`, set just
    before the record is made, says what failed.)"""

    def __init__(self, engine: Any) -> None:
        super().__init__()
        self.engine = engine

    def filter(self, record: logging.LogRecord) -> bool:
        from slob_tui.errors import SlobError

        failed = isinstance(getattr(self.engine, "feed_error", None), SlobError)
        return not (failed and record.getMessage().startswith("feed "))


@contextmanager
def replay_database(db: str | None) -> Iterator[tuple[str, bool]]:
    """(path, temporary): `--db` as given, else a fresh database in a temporary folder that
    is deleted afterwards. A replay never writes into the live database (SLOB_DB_PATH),
    whose kill switch, orders and candles belong to the live engine."""
    import tempfile
    from pathlib import Path

    if db:
        yield db, False
        return
    with tempfile.TemporaryDirectory(prefix="slob-replay-") as folder:
        yield str(Path(folder) / "replay.db"), True


def run(args: argparse.Namespace) -> int:
    import asyncio

    speed = parse_speed(args.speed)
    tz = file_tz(args)
    conditions = parse_conditions(args.exclude_conditions)
    feed = None
    switch_interval = sys.getswitchinterval()
    if args.no_ui:
        from slob_tui.feeds.replay import ReplayFeed

        # Headless, the file is parsed from here on, in the reader thread, while the node and
        # the database are loaded and opened (and the settings, when --tz spared `file_tz`
        # reading them): a fifth to a third of a second.
        feed = ReplayFeed(
            args.file, symbol=args.symbol, tz=tz, speed=speed, exclude_conditions=conditions
        )
        feed.start_reading()
        # The engine lets the GIL go at every SQLite call and select(); the reader thread then
        # holds it for up to a switch interval (5 ms by default) between its own releases. At
        # 0.5 ms the engine got it back sooner: four SPY days 0.81 s instead of 0.88-0.90 s
        # (0.2 ms was no better).
        sys.setswitchinterval(SWITCH_INTERVAL_S)
    try:
        from slob_tui.config import load_settings
        from slob_tui.node import NodeConfig, TradingNode

        # Redis holds the live engine's hot state (kill switch, book): a replay keeps its own
        # in its database.
        settings = load_settings().model_copy(update={"redis_url": ""})
        with replay_database(args.db) as (db, temporary):
            config = NodeConfig(
                feed="replay",
                symbols=(args.symbol,) if args.symbol else (),
                db=db,
                speed=speed,
                replay_file=args.file,
                tz=tz,
                exclude_conditions=conditions,
                settings=settings,
            )
            if feed is None:
                from slob_tui.ui.launch import run_console

                return run_console(config)
            node = TradingNode(config, feed=feed)
            tally = ReplayTally()
            tally.attach(node.bus)
            quiet = _PrintedOnce(node.engine)
            engine_log = logging.getLogger("slob_tui.engine.engine")
            engine_log.addFilter(quiet)
            try:
                summary = asyncio.run(_replay(node, tally, tz, temporary, args.quiet))
            finally:
                engine_log.removeFilter(quiet)
    finally:
        if feed is not None:
            feed.stop_reading()
        sys.setswitchinterval(switch_interval)
    print(summary)
    return 0


def _dropped_candles(report: Any, duplicates: int) -> str | None:
    """The aggregator's dropped candle rows, split by cause (the file's order, the store)."""
    if not duplicates:
        return None
    backwards = report.order.backwards
    repeated = report.order.repeated if report.kind == "candles" else 0
    stored = max(0, duplicates - backwards - repeated)
    return (
        f"  {duplicates} candle rows dropped (at or before a minute already closed): "
        f"{backwards} out of time order, {repeated} repeated minutes, {stored} already stored"
    )


def _validator_line(engine: LiveTradingEngine) -> str | None:
    validator = engine.validator
    if validator is None:
        return None
    st = validator.stats()
    if not st["by_kind"]:
        return "  validator: no findings"
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(st["by_kind"].items()))
    return f"  validator: {kinds}; {st['rejected']} ticks rejected, {st['flagged']} flagged"


async def _follow(feed: ReplayFeed, bar: RowProgress) -> None:
    """The progress bar follows the rows the feed has read, four times a second."""
    import asyncio

    while True:
        bar.update(feed.report.rows)
        await asyncio.sleep(0.25)


async def _replay(
    node: TradingNode, tally: ReplayTally, tz: str, temporary: bool, quiet: bool = False
) -> str:
    import asyncio

    from slob_tui.commands._file_progress import file_progress
    from slob_tui.commands._file_report import order_lines
    from slob_tui.feeds.replay import ReplayFeed
    from slob_tui.storage.candles import count_stored

    node.install_signal_handlers()
    feed = node.engine.feed
    assert isinstance(feed, ReplayFeed), "a replay node runs a ReplayFeed"
    bar = file_progress(str(getattr(feed, "path", "")), quiet, "replay")
    follow = asyncio.create_task(_follow(feed, bar))
    try:
        await node.run()
    finally:
        follow.cancel()
        await asyncio.gather(follow, return_exceptions=True)
        bar.update(feed.report.rows)
        bar.close()
    engine = node.engine
    sink = engine.store
    assert sink is not None, "a replay node writes its candles to a store"
    report = feed.report
    agg = engine.aggregator.stats()
    symbol = feed.symbol if feed.kind == "ticks" else None
    rows = await asyncio.to_thread(count_stored, sink.path, symbol)
    where = (
        "a temporary database, deleted now (--db FILE keeps one)" if temporary else str(sink.path)
    )
    lines = [f"replayed {feed.path.name} ({report.kind}, {feed.symbol}): {report.summary()}"]
    lines.extend(f"  {line}" for line in order_lines(report, tz))
    lines.append(
        f"  sent {feed.ticks_sent} ticks, {feed.candles_sent} candles; "
        f"aggregated {agg['ticks']} ticks into {agg['candles']} candles "
        f"({agg['gap_filled']} gap-filled), {agg['gaps_reported']} gaps reported, "
        f"{agg['late_ticks']} late ticks, {agg['excluded_from_ohlc']} kept out of OHLC"
    )
    for line in (_dropped_candles(report, agg["duplicates"]), _validator_line(engine)):
        if line:
            lines.append(line)
    lines.extend(tally.lines())
    lines.append(f"  store {where}: {rows} candle rows")
    if report.bad_reasons:
        lines.append(f"  first bad row: line {report.bad_lines[0]}: {report.bad_reasons[0]}")
    unused = sorted(set(feed.exclude_conditions) - report.exclusions_seen)
    if feed.kind == "ticks" and unused:
        lines.append(f"  note: excluded condition(s) never seen in the file: {', '.join(unused)}")
    return "\n".join(lines)
