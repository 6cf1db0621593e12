"""The engine's state as the console sees it: one immutable snapshot with a sequence number.

Widgets poll `engine.snapshot()` at 4 to 10 Hz and redraw only when `seq` changed, so the UI
cost does not grow with the tick rate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from slob_tui.core.health import HealthReport
from slob_tui.core.models import Candle, Order, Position, SetupUpdate


@dataclass(frozen=True, slots=True)
class SetupView:
    """One setup candidate: its latest update and the timeline of all its transitions."""

    setup_id: str
    symbol: str
    direction: str
    state: str
    reason: str | None
    timeline: tuple[SetupUpdate, ...]

    @property
    def latest(self) -> SetupUpdate:
        return self.timeline[-1]

    @property
    def is_live(self) -> bool:
        return self.state not in ("TRIGGERED", "INVALIDATED")


@dataclass(frozen=True, slots=True)
class EngineSnapshot:
    seq: int
    now_ns: int
    mode: str  # DEMO | REPLAY | PAPER | LIVE
    feed: str
    symbols: tuple[str, ...]
    paused: bool
    candles: dict[str, tuple[Candle, ...]]  # recent closed candles per symbol, oldest first
    forming: dict[str, Candle | None]  # the candle being built now, per symbol
    last_price: dict[str, float]
    setups: tuple[SetupView, ...]  # live first, then recently ended, newest first
    orders: tuple[Order, ...]
    positions: tuple[Position, ...]
    health: HealthReport
    events: tuple[Any, ...] = field(default=())  # recent notable bus events, oldest first
