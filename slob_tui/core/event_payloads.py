"""What each event type carries: one frozen, slotted dataclass per `EventType`.

Where a domain model already says it (a closed candle, a setup transition) it is the payload
itself; everything else gets a small record here, whose field names are the keys the events'
dicts had, so the attach protocol's `dict` frames and the console's lines read as before.
`PAYLOAD_TYPES` in `events.py` pairs each event type with its class.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from typing import Any, TypeAlias

from slob_tui.core.models import OrderStatus, Side

# ---- data ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CandleGap:
    """Minutes the aggregator did not fill: `start` is the first missing minute, `end` the
    start of the candle after the gap."""

    symbol: str
    start: int
    end: int
    minutes: int


@dataclass(frozen=True, slots=True)
class CandleGapReport:
    """CANDLE_GAP: the gaps found since the last report; the first one's fields up front."""

    symbol: str
    start: int
    end: int
    minutes: int
    count: int
    gaps: tuple[CandleGap, ...]

    @classmethod
    def of(cls, gaps: tuple[CandleGap, ...]) -> CandleGapReport:
        first = gaps[0]
        return cls(first.symbol, first.start, first.end, first.minutes, len(gaps), gaps)


@dataclass(frozen=True, slots=True)
class LateTicks:
    """LATE_TICK: ticks dropped because their minute was already closed or stored."""

    count: int
    by_symbol: dict[str, int]


@dataclass(frozen=True, slots=True)
class DataQualityFinding:
    """DATA_QUALITY: one finding of the validator, the feed or the engine.

    `kind` names it (`missing_minutes`, `trade_correction`, `loop_stall`, ...); the values
    that differ from kind to kind are in `details`, shown and sent beside the fixed fields."""

    kind: str
    symbol: str = ""
    ts: int = 0
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BackfillCompleted:
    """BACKFILL_COMPLETED: minutes fetched from the source's REST history after a gap."""

    symbol: str
    candles: int
    start: int
    end: int


# ---- trading ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderPlaced:
    """ORDER_PLACED: the broker accepted a setup's entry (with its bracket's levels)."""

    client_order_id: str
    order_id: str
    symbol: str
    side: Side
    qty: float
    setup_id: str | None
    entry: float
    stop: float
    target: float
    emulated: bool


@dataclass(frozen=True, slots=True)
class OrderFilled:
    """ORDER_FILLED: one execution of one of our orders; `ts` is when it filled."""

    client_order_id: str
    order_id: str
    symbol: str
    side: Side
    qty: float
    price: float
    leg: str
    execution_id: str
    setup_id: str | None
    ts: int


@dataclass(frozen=True, slots=True)
class OrderRejected:
    """ORDER_REJECTED: refused before it was sent (`reason`) or by the broker."""

    client_order_id: str
    symbol: str
    setup_id: str | None
    reason: str = ""
    order_id: str = ""
    leg: str = "entry"
    status: OrderStatus = OrderStatus.REJECTED


@dataclass(frozen=True, slots=True)
class OrderCancelled:
    """ORDER_CANCELLED: cancelled or expired at the broker (`status` says which)."""

    client_order_id: str
    order_id: str
    symbol: str
    leg: str
    status: OrderStatus
    setup_id: str | None


@dataclass(frozen=True, slots=True)
class PositionChanged:
    """POSITION_CHANGED: the broker's net position after a fill; `avg_price` None when flat."""

    symbol: str
    qty: float
    avg_price: float | None


@dataclass(frozen=True, slots=True)
class KillSwitchNotice:
    """KILL_SWITCH: a kill carried out (`active`, what it cancelled and flattened), a reset
    (`active` false), or a request to kill (`request`: the executor carries it out)."""

    active: bool
    reason: str
    cancelled: tuple[str, ...] = ()
    flattened: tuple[str, ...] = ()
    request: bool = False

    @classmethod
    def requested(cls, reason: str) -> KillSwitchNotice:
        """A request to kill: not active until the executor has carried it out."""
        return cls(active=False, reason=reason, request=True)


@dataclass(frozen=True, slots=True)
class TradeClosed:
    """TRADE_CLOSED: an entry and the exit that closed it, as the trades table keeps them."""

    trade_id: str
    setup_id: str | None
    symbol: str
    direction: str
    qty: float
    entry_price: float
    exit_price: float
    entry_ts: int
    exit_ts: int
    exit_leg: str
    pnl: float
    planned_rr: float | None = None
    actual_rr: float | None = None


# ---- system -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EngineStarted:
    mode: str


@dataclass(frozen=True, slots=True)
class EngineStopped:
    reason: str


@dataclass(frozen=True, slots=True)
class FeedConnected:
    url: str
    feed: str


@dataclass(frozen=True, slots=True)
class FeedDisconnected:
    reason: str


@dataclass(frozen=True, slots=True)
class SafeModeChange:
    """SAFE_MODE: the feed entered (`on`) or left safe mode."""

    on: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class TradingHalted:
    reason: str


@dataclass(frozen=True, slots=True)
class ErrorReport:
    """ERROR: something failed that the operator should see. `kind` sorts the ones a reader
    acts on (`store_fault`, `store_recovered`, `store_give_up`, `candle_hook_failed`); `hook`
    names a failing candle consumer; `queued` is the candles waiting for a refused store."""

    error: str
    kind: str = ""
    hook: str = ""
    queued: int = 0


HealthPayload: TypeAlias = dict[str, Any]
"""HEALTH's payload, as it is today; the typed health report replaces it here."""


def payload_fields(payload: object) -> dict[str, Any]:
    """A payload as flat named values: what the console's lines and the attach protocol's
    `dict` frames show (a finding's details beside its fixed fields). An optional field
    left at its default is left out, as the dicts these records replace left it out."""
    if isinstance(payload, DataQualityFinding):
        fixed: dict[str, Any] = {"kind": payload.kind}
        if payload.symbol:
            fixed["symbol"] = payload.symbol
        if payload.ts:
            fixed["ts"] = payload.ts
        return {**fixed, **payload.details}
    if isinstance(payload, dict):
        return payload
    if is_dataclass(payload) and not isinstance(payload, type):
        values = {}
        for f in fields(payload):
            value = getattr(payload, f.name)
            if f.default is MISSING or value != f.default:
                values[f.name] = value
        return values
    return {}


def finding_from_fields(values: dict[str, Any]) -> DataQualityFinding:
    """The inverse of `payload_fields` for a finding."""
    rest = dict(values)
    kind = str(rest.pop("kind", "") or "unknown")
    symbol = str(rest.pop("symbol", "") or "")
    ts = int(rest.pop("ts", 0) or 0)
    return DataQualityFinding(kind, symbol, ts, rest)
