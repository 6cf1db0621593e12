"""The composition root: builds an engine with its feed, store and adapters from options.

Every mode (console, headless, replay, check) builds its engine here, so a part added once
(a broker, the validator, metrics) is there in all of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slob_tui.config import Settings
from slob_tui.errors import UsageError

FEEDS = ("demo", "replay", "alpaca")


@dataclass
class RunOptions:
    feed: str = "demo"
    symbols: tuple[str, ...] = ()
    db: str = "data/slob_tui.db"
    duration: float | None = None
    live: bool = False
    seed: int = 7
    speed: float | None = 60.0
    replay_file: str | None = None
    tz: str = "America/New_York"
    exclude_conditions: tuple[str, ...] | None = None
    validate: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


def _make_feed(opts: RunOptions, settings: Settings) -> Any:
    if opts.feed == "demo":
        from slob_tui.feeds.demo import DemoFeed

        return DemoFeed(symbols=opts.symbols or ("NQ",), seed=opts.seed, speed=opts.speed or 60.0)
    if opts.feed == "replay":
        if not opts.replay_file:
            raise UsageError("--feed replay needs a file: use `slob-tui replay FILE`")
        from slob_tui.feeds.replay import ReplayFeed

        return ReplayFeed(
            opts.replay_file,
            symbol=opts.symbols[0] if opts.symbols else None,
            tz=opts.tz,
            speed=opts.speed,
            exclude_conditions=opts.exclude_conditions,
        )
    if opts.feed == "alpaca":
        if not settings.has_alpaca_keys:
            raise UsageError(
                "--feed alpaca needs ALPACA_API_KEY and ALPACA_API_SECRET (in .env or the "
                "environment); without keys use the demo feed"
            )
        from slob_tui.feeds.alpaca import AlpacaWSFetcher

        return AlpacaWSFetcher(settings, opts.symbols or None, feed=settings.alpaca_feed)
    raise UsageError(f"unknown feed {opts.feed!r}: choose one of {', '.join(FEEDS)}")


def _policy_for(opts: RunOptions, feed: Any) -> Any:
    from slob_tui.engine.aggregator import SaleConditionPolicy

    if opts.exclude_conditions is not None:
        return SaleConditionPolicy(opts.exclude_conditions)
    if opts.feed == "alpaca":
        return SaleConditionPolicy.alpaca_sip()
    return SaleConditionPolicy()


def build_engine(opts: RunOptions, settings: Settings | None = None) -> Any:
    """An engine ready to `run()`; nothing is started or opened yet."""
    from slob_tui.config import load_settings
    from slob_tui.engine.engine import LiveTradingEngine
    from slob_tui.storage.candles import CandleStore

    settings = settings or load_settings()
    feed = _make_feed(opts, settings)
    db = Path(opts.db)
    if db.exists() and db.is_dir():
        raise UsageError(f"--db {opts.db}: is a directory, expected a SQLite file path")
    db.parent.mkdir(parents=True, exist_ok=True)
    store = CandleStore(db)
    engine = LiveTradingEngine(
        feed,
        store=store,
        clock=getattr(feed, "clock", None),
        policy=_policy_for(opts, feed),
        mode="LIVE" if opts.live else None,
    )
    engine.options = opts
    engine.settings = settings
    if opts.validate:
        from slob_tui.engine.quality import attach_validator

        attach_validator(engine, opts, settings)
    from slob_tui.ops.wiring import attach_ops

    engine.ops = attach_ops(engine, opts, settings)
    from slob_tui.execution.wiring import attach_execution

    attach_execution(engine, opts, settings)
    return engine
