"""Plain data shared by every layer: ticks, candles, setups, orders, fills, positions.

Time is always an integer of nanoseconds since the epoch, UTC. Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple

NS_PER_SECOND = 1_000_000_000
NS_PER_MINUTE = 60 * NS_PER_SECOND


class Tick(NamedTuple):
    """One trade print.

    A NamedTuple, not a dataclass, so that hot paths can index it positionally and feeds may
    emit plain tuples in the same field order without building an object per trade.
    """

    symbol: str
    ts: int
    price: float
    size: float
    exchange: str = ""
    conditions: str | tuple[str, ...] | None = None
    id: int | str | None = None


# Positional indexes into a tick tuple, for hot loops.
T_SYMBOL, T_TS, T_PRICE, T_SIZE, T_EXCHANGE, T_CONDITIONS, T_ID = range(7)


@dataclass(slots=True)
class Candle:
    """A 1-minute OHLCV candle covering [start, start + 60 s), stamped with its start."""

    symbol: str
    start: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    tick_count: int = 0
    gap_filled: bool = False
    backfilled: bool = False

    @property
    def end(self) -> int:
        return self.start + NS_PER_MINUTE

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Direction(StrEnum):
    SHORT = "SHORT"
    LONG = "LONG"


class SetupState(StrEnum):
    WATCHING_LIQ1 = "WATCHING_LIQ1"
    WATCHING_CONSOL = "WATCHING_CONSOL"
    WATCHING_LIQ2 = "WATCHING_LIQ2"
    WAITING_ENTRY = "WAITING_ENTRY"
    TRIGGERED = "TRIGGERED"
    INVALIDATED = "INVALIDATED"

    @property
    def is_terminal(self) -> bool:
        return self in (SetupState.TRIGGERED, SetupState.INVALIDATED)


class InvalidationReason(StrEnum):
    CONSOL_TIMEOUT = "CONSOL_TIMEOUT"
    LIQ2_TIMEOUT = "LIQ2_TIMEOUT"
    NO_WICK_NOT_FOUND = "NO_WICK_NOT_FOUND"
    RETRACE = "RETRACE"
    ENTRY_TIMEOUT = "ENTRY_TIMEOUT"
    BAD_RR = "BAD_RR"
    LOW_QUALITY = "LOW_QUALITY"
    MARKET_CLOSED = "MARKET_CLOSED"
    DATA_GAP = "DATA_GAP"


@dataclass(frozen=True, slots=True)
class SetupUpdate:
    """One transition of one setup candidate, as the tracker decided it on candle `index`.

    `levels` carries the numbers a trader wants to see at that moment (ref_high, ref_low,
    liq1_price, high, low, range_pct, quality, nw_index, entry, stop, target, rr, ...).
    """

    setup_id: str
    symbol: str
    direction: Direction
    state: SetupState
    prev_state: SetupState | None
    reason: str | None
    index: int
    time: int
    levels: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "setup_id": self.setup_id,
            "symbol": self.symbol,
            "direction": self.direction.value,
            "state": self.state.value,
            "prev_state": self.prev_state.value if self.prev_state else None,
            "reason": self.reason,
            "index": self.index,
            "time": self.time,
            "levels": dict(self.levels),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SetupUpdate:
        return cls(
            setup_id=d["setup_id"],
            symbol=d["symbol"],
            direction=Direction(d["direction"]),
            state=SetupState(d["state"]),
            prev_state=SetupState(d["prev_state"]) if d.get("prev_state") else None,
            reason=d.get("reason"),
            index=int(d["index"]),
            time=int(d["time"]),
            levels=dict(d.get("levels") or {}),
        )


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


class OrderStatus(StrEnum):
    PENDING_NEW = "pending_new"
    NEW = "new"
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REJECTED = "rejected"
    HELD = "held"

    @property
    def is_open(self) -> bool:
        return self in (
            OrderStatus.PENDING_NEW,
            OrderStatus.NEW,
            OrderStatus.ACCEPTED,
            OrderStatus.PARTIALLY_FILLED,
            OrderStatus.HELD,
        )


@dataclass(slots=True)
class OrderIntent:
    """What the executor wants the broker to do for one triggered setup."""

    setup_id: str
    symbol: str
    side: Side
    qty: float
    entry: float
    stop: float
    target: float
    client_order_id: str
    created_at: int = 0


@dataclass(slots=True)
class Order:
    id: str
    client_order_id: str
    symbol: str
    side: Side
    qty: float
    type: str
    status: OrderStatus
    leg: str = "entry"  # entry | stop | target
    parent_id: str | None = None
    limit_price: float | None = None
    stop_price: float | None = None
    filled_qty: float = 0.0
    filled_avg_price: float | None = None
    setup_id: str | None = None
    created_at: int = 0
    updated_at: int = 0


@dataclass(frozen=True, slots=True)
class Fill:
    order_id: str
    client_order_id: str
    symbol: str
    side: Side
    qty: float
    price: float
    ts: int
    execution_id: str


@dataclass(slots=True)
class Position:
    symbol: str
    qty: float
    avg_price: float
    last_price: float | None = None

    @property
    def unrealized_pnl(self) -> float:
        if self.last_price is None:
            return 0.0
        return (self.last_price - self.avg_price) * self.qty
