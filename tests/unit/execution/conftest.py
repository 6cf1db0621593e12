"""Shared helpers: candles, triggered setups, and a paper broker with a state store on disk."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from slob_tui.brokers.paper import PaperBroker
from slob_tui.core.clock import ManualClock
from slob_tui.core.events import Event, EventType
from slob_tui.core.models import NS_PER_MINUTE, Candle, Direction, SetupState, SetupUpdate
from slob_tui.core.retry import RetryPolicy
from slob_tui.engine.bus import EventBus
from slob_tui.execution.executor import OrderExecutor
from slob_tui.execution.risk import RiskLimits
from slob_tui.storage.state import StateManager

T0 = 1_700_000_040 * 1_000_000_000  # 2023-11-14 22:14 UTC, a minute boundary


def candle(i: int, o: float, h: float, lo: float, c: float, symbol: str = "NQ") -> Candle:
    return Candle(symbol, T0 + i * NS_PER_MINUTE, o, h, lo, c, 10.0)


def triggered(
    i: int,
    direction: Direction,
    entry: float,
    stop: float,
    target: float,
    symbol: str = "NQ",
    liq2: int | None = None,
) -> SetupUpdate:
    t = T0 + i * NS_PER_MINUTE
    liq2_time = T0 + (liq2 if liq2 is not None else i - 3) * NS_PER_MINUTE
    sid = f"{symbol}-{direction.value}-{t}"
    return SetupUpdate(
        sid,
        symbol,
        direction,
        SetupState.TRIGGERED,
        SetupState.WAITING_ENTRY,
        None,
        i,
        t,
        {"entry": entry, "stop": stop, "target": target, "rr": 2.0, "liq2_time": liq2_time},
    )


def trigger_event(u: SetupUpdate) -> Event:
    return Event(EventType.SETUP_TRIGGERED, u.time, u, "test")


@dataclass
class Rig:
    state: StateManager
    broker: PaperBroker
    executor: OrderExecutor
    bus: EventBus
    clock: ManualClock
    events: list[Event]
    sleeps: list[float]

    def of(self, etype: EventType) -> list[Any]:
        return [e.data for e in self.events if e.type is etype]

    async def feed(self, *candles: Candle) -> None:
        for c in candles:
            self.clock.set(c.end)
            await self.broker.on_candle(c)


async def make_rig(
    db: Path,
    limits: RiskLimits | None = None,
    balance: float = 1e6,
    broker: PaperBroker | None = None,
) -> Rig:
    state = await StateManager(db).open()

    async def persist(book: dict) -> None:
        await state.set_value("paper_book", book)

    if broker is None:
        broker = PaperBroker(balance, persist=persist)
        book = await state.get_value("paper_book")
        if book:
            broker.load(book)
    bus = EventBus()
    clock = ManualClock(T0)
    sleeps: list[float] = []

    async def fake_sleep(s: float) -> None:
        sleeps.append(s)

    ex = OrderExecutor(
        broker,
        state,
        bus,
        limits=limits,
        clock=clock,
        retry=RetryPolicy(attempts=4, base_s=0.5),
        sleep=fake_sleep,
        max_signal_age_s=0,
    )
    events: list[Event] = []
    bus.subscribe(None, events.append)
    await ex.load()
    return Rig(state, broker, ex, bus, clock, events, sleeps)


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    r = await make_rig(tmp_path / "state.db")
    yield r
    await r.state.close()
