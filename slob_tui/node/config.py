"""`NodeConfig`: the one typed configuration a node is built from.

The `--speed` flag of every command is read by `parse_speed` (`core/speed.py`) rather than by
argparse, so a bad value is one `slob-tui: error:` line with exit status 2 like every other bad
input.

Flags over settings over defaults: `from_args` turns the command line and the loaded `Settings`
(environment and `.env`) into one frozen object, so every part of the node reads the same
values and nothing is passed around in loose dicts.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

from slob_tui.config import STOP_TIMEOUT_S, FaultLimits, Settings, load_settings
from slob_tui.core.speed import parse_speed
from slob_tui.errors import UsageError
from slob_tui.strategy.params import SlobParams

FEEDS = ("demo", "replay", "alpaca")
DEFAULT_DB = "data/slob_tui.db"
__all__ = ["STOP_TIMEOUT_S", "FaultLimits", "NodeConfig", "from_args", "parse_speed"]


@dataclass(frozen=True)
class NodeConfig:
    feed: str = "demo"
    symbols: tuple[str, ...] = ()
    db: str = DEFAULT_DB
    duration: float | None = None
    live: bool = False
    live_confirmed: bool = False
    """`--live` was confirmed (typed in the console, or the headless flag)."""
    seed: int = 7
    speed: float | None = 60.0
    replay_file: str | None = None
    tz: str = "America/New_York"
    exclude_conditions: tuple[str, ...] | None = None
    validate: bool = True
    metrics_port: int | None = None
    """None: SLOB_METRICS_PORT decides; 0: off."""
    metrics_host: str | None = None
    params: SlobParams | None = None
    """Explicit strategy parameters for every symbol; None: each symbol's instrument profile."""
    settings: Settings = field(default_factory=Settings, repr=False)

    def __post_init__(self) -> None:
        if self.feed not in FEEDS:
            raise UsageError(f"unknown feed {self.feed!r}: choose one of {', '.join(FEEDS)}")
        if self.duration is not None and self.duration <= 0:
            raise UsageError("--duration must be a positive number of seconds")
        db = Path(self.db)
        if db.exists() and db.is_dir():
            raise UsageError(f"--db {self.db}: is a directory, expected a SQLite file path")

    @property
    def db_path(self) -> Path:
        return Path(self.db)

    @property
    def faults(self) -> FaultLimits:
        return self.settings.faults


def from_args(args: argparse.Namespace, settings: Settings | None = None) -> NodeConfig:
    """The configuration `slob-tui` (console or `--no-ui`) runs with."""
    settings = settings or load_settings()
    symbols = tuple(args.symbols) if getattr(args, "symbols", None) else settings.symbols
    return NodeConfig(
        feed=getattr(args, "feed", None) or settings.feed,
        symbols=tuple(s.strip() for s in symbols if s.strip()),
        db=getattr(args, "db", None) or settings.db_path,
        duration=getattr(args, "duration", None),
        live=bool(getattr(args, "live", False)),
        live_confirmed=bool(getattr(args, "live_confirmed", False)),
        seed=getattr(args, "seed", 7),
        speed=parse_speed(getattr(args, "speed", 60.0)),
        metrics_port=getattr(args, "metrics_port", None),
        metrics_host=getattr(args, "metrics_host", None) or None,
        settings=settings,
    )
