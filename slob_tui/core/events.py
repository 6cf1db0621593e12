"""Typed events carried by the bus. Per-tick work never creates one.

Each event type has one payload class (`PAYLOAD_TYPES`): `Event.data` is their union, and a
subscriber reads it through `Event.payload(cls)`, which narrows the type and refuses a payload
of another class. `Event` is not generic: the bus dispatches on `type` at run time and keeps a
mixed history, so an `Event[P]` would be `Event[Any]` wherever events meet; the pairing of
type and class is checked where events are published instead (`check_payload`, the bus).
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeAlias, TypeVar, get_origin

from slob_tui.core.event_payloads import (
    BackfillCompleted,
    CandleGapReport,
    DataQualityFinding,
    EngineStarted,
    EngineStopped,
    ErrorReport,
    FeedConnected,
    FeedDisconnected,
    HealthPayload,
    KillSwitchNotice,
    LateTicks,
    OrderCancelled,
    OrderFilled,
    OrderPlaced,
    OrderRejected,
    PositionChanged,
    SafeModeChange,
    TradeClosed,
    TradingHalted,
)
from slob_tui.core.models import Candle, SetupUpdate


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


EventPayload: TypeAlias = (
    Candle
    | CandleGapReport
    | LateTicks
    | DataQualityFinding
    | BackfillCompleted
    | SetupUpdate
    | OrderPlaced
    | OrderFilled
    | OrderRejected
    | OrderCancelled
    | PositionChanged
    | KillSwitchNotice
    | TradeClosed
    | EngineStarted
    | EngineStopped
    | FeedConnected
    | FeedDisconnected
    | SafeModeChange
    | TradingHalted
    | HealthPayload
    | ErrorReport
)

PAYLOAD_TYPES: dict[EventType, type] = {
    EventType.CANDLE_COMPLETED: Candle,
    EventType.CANDLE_GAP: CandleGapReport,
    EventType.LATE_TICK: LateTicks,
    EventType.DATA_QUALITY: DataQualityFinding,
    EventType.BACKFILL_COMPLETED: BackfillCompleted,
    EventType.SETUP_STARTED: SetupUpdate,
    EventType.SETUP_TRANSITION: SetupUpdate,
    EventType.SETUP_TRIGGERED: SetupUpdate,
    EventType.SETUP_INVALIDATED: SetupUpdate,
    EventType.ORDER_PLACED: OrderPlaced,
    EventType.ORDER_FILLED: OrderFilled,
    EventType.ORDER_REJECTED: OrderRejected,
    EventType.ORDER_CANCELLED: OrderCancelled,
    EventType.POSITION_CHANGED: PositionChanged,
    EventType.KILL_SWITCH: KillSwitchNotice,
    EventType.TRADE_CLOSED: TradeClosed,
    EventType.ENGINE_STARTED: EngineStarted,
    EventType.ENGINE_STOPPED: EngineStopped,
    EventType.FEED_CONNECTED: FeedConnected,
    EventType.FEED_DISCONNECTED: FeedDisconnected,
    EventType.SAFE_MODE: SafeModeChange,
    EventType.TRADING_HALTED: TradingHalted,
    EventType.HEALTH: get_origin(HealthPayload) or HealthPayload,  # dict until it is a class
    EventType.ERROR: ErrorReport,
}
"""The one payload class of each event type."""

P = TypeVar("P")


class PayloadMismatchError(TypeError):
    """An event published with a payload of another class than its type's."""


@dataclass(slots=True)
class Event:
    """One thing that happened. `ts` is the engine time (ns UTC) at which it was decided."""

    type: EventType
    ts: int
    data: EventPayload
    source: str = ""

    def payload(self, cls: builtins.type[P]) -> P:
        """`data` as `cls`, the payload class a subscriber of this type expects."""
        data = self.data
        if not isinstance(data, cls):
            raise PayloadMismatchError(
                f"{self.type.value} carries {type(data).__name__}, not {cls.__name__}"
            )
        return data


def check_payload(event: Event) -> None:
    """Refuse an event whose payload is not its type's class (`PAYLOAD_TYPES`)."""
    expected = PAYLOAD_TYPES[event.type]
    if type(event.data) is not expected and not isinstance(event.data, expected):
        raise PayloadMismatchError(
            f"{event.type.value} needs a {expected.__name__} payload, "
            f"got {type(event.data).__name__}"
        )
