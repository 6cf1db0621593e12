"""Which events become which alerts, each type on or off, without blocking the engine."""

from __future__ import annotations

import asyncio

import pytest

from slob_tui.config import ConfigError, load_settings
from slob_tui.core.event_payloads import (
    FeedDisconnected,
    KillSwitchNotice,
    SafeModeChange,
    TradeClosed,
)
from slob_tui.core.events import Event, EventType
from slob_tui.core.models import NS_PER_SECOND, Candle, Direction, SetupState, SetupUpdate
from slob_tui.engine.bus import EventBus
from slob_tui.ops.alerts import AlertConfig, AlertRouter
from tests.ops.conftest import T0

DAY = 86_400 * NS_PER_SECOND


class Inbox:
    """An async transport that keeps what it was given (and can fail on demand)."""

    def __init__(self, failures: int = 0) -> None:
        self.texts: list[str] = []
        self.failures = failures

    async def __call__(self, text: str) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("network down")
        self.texts.append(text)


def update(state: SetupState, reason: str | None = None) -> SetupUpdate:
    return SetupUpdate(
        "id",
        "NQ",
        Direction.LONG,
        state,
        None,
        reason,
        1,
        T0,
        {"entry": 100.5, "stop": 99.0, "target": 104.0, "rr": 2.33},
    )


def closed_trade(exit_leg: str = "target", pnl: float = 8.0) -> TradeClosed:
    return TradeClosed(
        "c1", "NQ-1", "NQ", "LONG", 2.0, 100.0, 104.0, T0, T0, exit_leg, pnl, None, None
    )


async def run_events(router: AlertRouter, events: list[Event]) -> None:
    bus = EventBus()
    router.attach(bus)
    router.start()
    for e in events:
        bus.emit(e)
    await router.stop()


async def test_each_alert_type_can_be_switched_off():
    events = [
        Event(EventType.SETUP_TRIGGERED, T0, update(SetupState.TRIGGERED)),
        Event(EventType.SAFE_MODE, T0, SafeModeChange(True, "feed stalled")),
        Event(EventType.SAFE_MODE, T0, SafeModeChange(False)),
    ]
    inbox = Inbox()
    await run_events(AlertRouter(inbox), events)
    assert inbox.texts == [
        "SETUP TRIGGERED NQ LONG at 10:00: entry 100.50 stop 99.00 target 104.00 rr 2.33",
        "SAFE MODE ON: no new orders (feed stalled)",
        "SAFE MODE OFF: trading resumes",
    ]
    quiet = Inbox()
    await run_events(
        AlertRouter(quiet, AlertConfig(setup_triggered=False, safe_mode=False)), events
    )
    assert quiet.texts == []


async def test_reconnect_storm_alerts_once_per_storm():
    inbox = Inbox()
    s = NS_PER_SECOND
    times = [
        T0,
        T0 + 10 * s,
        T0 + 20 * s,
        T0 + 30 * s,
        T0 + 40 * s,  # one storm
        T0 + 1000 * s,  # calm: one disconnect alone
        T0 + 2000 * s,
        T0 + 2001 * s,
        T0 + 2002 * s,
    ]  # a second storm
    events = [Event(EventType.FEED_DISCONNECTED, t, FeedDisconnected("closed")) for t in times]
    await run_events(AlertRouter(inbox, AlertConfig(storm_count=3, storm_window_s=60)), events)
    assert inbox.texts == ["RECONNECT STORM: 3 feed disconnects within 60 s"] * 2


async def test_daily_summary_when_the_day_turns():
    inbox = Inbox()
    candle = Candle("NQ", T0, 1, 1, 1, 1, 1)
    events = [
        Event(EventType.CANDLE_COMPLETED, T0, candle),
        Event(EventType.CANDLE_COMPLETED, T0 + 60 * NS_PER_SECOND, candle),
        Event(EventType.SETUP_STARTED, T0, update(SetupState.WATCHING_LIQ1)),
        Event(EventType.SETUP_INVALIDATED, T0, update(SetupState.INVALIDATED, "RETRACE")),
        Event(EventType.TRADE_CLOSED, T0, closed_trade("stop", -12.5)),
        Event(EventType.TRADE_CLOSED, T0, closed_trade("target", 40.0)),
        Event(EventType.CANDLE_COMPLETED, T0 + DAY, candle),
    ]
    router = AlertRouter(inbox, AlertConfig(setup_triggered=False, exits=False))
    await run_events(router, events)
    assert inbox.texts == [
        "DAILY SUMMARY 2024-03-04: 2 candles, 1 setups (0 triggered, 1 invalidated), 0 fills, "
        "2 trades closed, P&L +27.50"
    ]
    assert router.day is not None and router.day.day == "2024-03-05" and router.day.candles == 1


async def test_a_failing_transport_is_retried_then_given_up_without_blocking():
    inbox = Inbox(failures=1)
    router = AlertRouter(inbox, retries=1, retry_delay_s=0.01)
    router.start()
    router.post("one")
    await asyncio.wait_for(router.outbox.join(), 5)
    assert inbox.texts == ["one"] and router.sent == 1
    inbox.failures = 5
    router.post("two")
    await asyncio.wait_for(router.outbox.join(), 5)
    assert router.failed == 1 and inbox.texts == ["one"]
    await router.stop()


async def test_a_full_outbox_drops_the_oldest():
    router = AlertRouter(Inbox(), outbox_size=3)
    for i in range(5):  # no sender running: the outbox fills
        router.post(str(i))
    assert router.dropped == 2
    assert [router.outbox.get_nowait() for _ in range(3)] == ["2", "3", "4"]


def test_config_from_the_environment():
    settings = load_settings(
        env={"SLOB_ALERT_SETUP_TRIGGERED": "off", "SLOB_ALERT_STORM_COUNT": "5"}, dotenv=None
    )
    cfg = settings.alerts
    assert cfg.setup_triggered is False and cfg.storm_count == 5 and cfg.order_filled is True
    with pytest.raises(ConfigError, match="SLOB_ALERT_EXITS must be true or false"):
        load_settings(env={"SLOB_ALERT_EXITS": "maybe"}, dotenv=None)
    with pytest.raises(ConfigError, match="SLOB_ALERT_STORM_WINDOW_S must be positive"):
        load_settings(env={"SLOB_ALERT_STORM_WINDOW_S": "-1"}, dotenv=None)


async def test_exits_and_kill_switch_alerts():
    events = [
        Event(EventType.TRADE_CLOSED, T0, closed_trade()),
        Event(EventType.TRADE_CLOSED, T0, closed_trade("close", 1.0)),
        Event(EventType.KILL_SWITCH, T0, KillSwitchNotice.requested("cli")),  # a request only
        Event(EventType.KILL_SWITCH, T0, KillSwitchNotice(True, "telegram", ("a",), ("NQ", "ES"))),
        Event(EventType.KILL_SWITCH, T0, KillSwitchNotice(False, "reset")),
    ]
    inbox = Inbox()
    await run_events(AlertRouter(inbox), events)
    assert inbox.texts == [
        "TARGET HIT NQ LONG 2.00: entry 100.00 exit 104.00, P&L +8.00",
        "KILL SWITCH (telegram): 1 orders cancelled, positions closed: NQ, ES",
        "KILL SWITCH reset: new orders allowed again",
    ]
    quiet = Inbox()
    await run_events(AlertRouter(quiet, AlertConfig(exits=False)), events[:1])
    assert quiet.texts == []
