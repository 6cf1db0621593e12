"""One example payload of every event type, for tests that need a well-formed event of any type."""

from __future__ import annotations

from slob_tui.core.event_payloads import (
    BackfillCompleted,
    CandleGap,
    CandleGapReport,
    DataQualityFinding,
    EngineStarted,
    EngineStopped,
    ErrorReport,
    FeedConnected,
    FeedDisconnected,
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
from slob_tui.core.events import Event, EventPayload, EventType
from slob_tui.core.models import (
    Candle,
    Direction,
    OrderStatus,
    SetupState,
    SetupUpdate,
    Side,
)

T0 = 1_700_000_000_000_000_000
M = 60_000_000_000
CANDLE = Candle("NQ", T0, 100.0, 101.5, 99.25, 101.0, 42.0, 7, False, True)
UPDATE = SetupUpdate(
    "NQ-1", "NQ", Direction.SHORT, SetupState.TRIGGERED, SetupState.WAITING_ENTRY, None, 12, T0,
    {"entry": 100.5, "stop": 102.0, "target": 97.5, "rr": 2.0},
)  # fmt: skip
GAP = CandleGap("NQ", T0 + M, T0 + 5 * M, 4)

EXAMPLES: dict[EventType, EventPayload] = {
    EventType.CANDLE_COMPLETED: CANDLE,
    EventType.CANDLE_GAP: CandleGapReport.of((GAP, CandleGap("ES", T0, T0 + 4 * M, 4))),
    EventType.LATE_TICK: LateTicks(3, {"NQ": 2, "ES": 1}),
    EventType.DATA_QUALITY: DataQualityFinding(
        "volume_spike", "NQ", T0, {"volume": 900.0, "median": 100.0, "factor": 9.0}
    ),
    EventType.BACKFILL_COMPLETED: BackfillCompleted("NQ", 15, T0, T0 + 15 * M),
    EventType.SETUP_STARTED: UPDATE,
    EventType.SETUP_TRANSITION: UPDATE,
    EventType.SETUP_TRIGGERED: UPDATE,
    EventType.SETUP_INVALIDATED: UPDATE,
    EventType.ORDER_PLACED: OrderPlaced(
        "c1", "o1", "NQ", Side.SELL, 1.0, "NQ-1", 100.5, 102.0, 97.5, False
    ),
    EventType.ORDER_FILLED: OrderFilled(
        "c1", "o1", "NQ", Side.SELL, 1.0, 100.5, "entry", "x1", "NQ-1", T0 + M + 5
    ),
    EventType.ORDER_REJECTED: OrderRejected("c1", "NQ", "NQ-1", "risk: too many trades"),
    EventType.ORDER_CANCELLED: OrderCancelled(
        "c2", "o2", "NQ", "stop", OrderStatus.CANCELED, "NQ-1"
    ),
    EventType.POSITION_CHANGED: PositionChanged("NQ", -1.0, 100.5),
    EventType.KILL_SWITCH: KillSwitchNotice(True, "console", ("c2",), ("NQ",)),
    EventType.TRADE_CLOSED: TradeClosed(
        "c1",
        "NQ-1",
        "NQ",
        "SHORT",
        1.0,
        100.5,
        97.5,
        T0 + M,
        T0 + 9 * M,
        "target",
        60.0,
        2.0,
        2.0,
    ),  # fmt: skip
    EventType.ENGINE_STARTED: EngineStarted("DEMO"),
    EventType.ENGINE_STOPPED: EngineStopped("signal SIGTERM"),
    EventType.FEED_CONNECTED: FeedConnected("wss://example.invalid/v2/iex", "iex"),
    EventType.FEED_DISCONNECTED: FeedDisconnected("closed"),
    EventType.SAFE_MODE: SafeModeChange(True, "10 consecutive stream failures"),
    EventType.TRADING_HALTED: TradingHalted("store fault"),
    EventType.HEALTH: {"status": "ok", "feed": {"rows": 3}},
    EventType.ERROR: ErrorReport("disk full", "store_fault", queued=12),
}


def example_event(etype: EventType, ts: int = T0, source: str = "test") -> Event:
    return Event(etype, ts, EXAMPLES[etype], source)
