"""Typed events carried by the bus. Per-tick work never creates one."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class EventCategory(StrEnum):
    DATA = "data"
    SETUP = "setup"
    TRADING = "trading"
    SYSTEM = "system"


class EventType(StrEnum):
    # data
    CANDLE_COMPLETED = "candle_completed"
    CANDLE_GAP = "candle_gap"
    LATE_TICK = "late_tick"
    DATA_QUALITY = "data_quality"
    BACKFILL_COMPLETED = "backfill_completed"
    # setup
    SETUP_STARTED = "setup_started"
    SETUP_TRANSITION = "setup_transition"
    SETUP_TRIGGERED = "setup_triggered"
    SETUP_INVALIDATED = "setup_invalidated"
    # trading
    ORDER_PLACED = "order_placed"
    ORDER_FILLED = "order_filled"
    ORDER_REJECTED = "order_rejected"
    ORDER_CANCELLED = "order_cancelled"
    POSITION_CHANGED = "position_changed"
    KILL_SWITCH = "kill_switch"
    TRADE_CLOSED = "trade_closed"
    # system
    ENGINE_STARTED = "engine_started"
    ENGINE_STOPPED = "engine_stopped"
    FEED_CONNECTED = "feed_connected"
    FEED_DISCONNECTED = "feed_disconnected"
    SAFE_MODE = "safe_mode"
    TRADING_HALTED = "trading_halted"
    HEALTH = "health"
    ERROR = "error"

    @property
    def category(self) -> EventCategory:
        return _CATEGORY[self]


_CATEGORY: dict[EventType, EventCategory] = {}
for _t in EventType:
    if _t.name.startswith(("CANDLE", "LATE", "DATA", "BACKFILL")):
        _CATEGORY[_t] = EventCategory.DATA
    elif _t.name.startswith("SETUP"):
        _CATEGORY[_t] = EventCategory.SETUP
    elif _t.name.startswith(("ORDER", "POSITION", "KILL", "TRADE_")):
        _CATEGORY[_t] = EventCategory.TRADING
    else:
        _CATEGORY[_t] = EventCategory.SYSTEM


@dataclass(slots=True)
class Event:
    """One thing that happened. `ts` is the engine time (ns UTC) at which it was decided."""

    type: EventType
    ts: int
    data: Any = None
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
