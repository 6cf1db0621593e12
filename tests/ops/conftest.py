"""A feed the test drives by hand, so stalls and resumptions happen exactly when asked."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from slob_tui.core.clock import ManualClock
from slob_tui.core.events import Event
from slob_tui.core.health import FeedHealth
from slob_tui.core.models import NS_PER_MINUTE, NS_PER_SECOND

# Monday 2024-03-04 15:00 UTC (10:00 New York): the market is open.
T0 = 1_709_564_400 * NS_PER_SECOND


class ScriptedFeed:
    """A real `Feed`: it pushes whatever batches or events the test queues, in order."""

    name = "scripted"
    mode = "PAPER"

    def __init__(self, symbols: Sequence[str] = ("NQ",)) -> None:
        self.symbols = tuple(symbols)
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.paused = False
        self.reconnects = 0

    async def run(self, sink: Any) -> None:
        while True:
            item = await self.queue.get()
            if item is None:
                return
            if isinstance(item, Event):
                sink.feed_event(item)
            else:
                sink.put_ticks(item)

    async def stop(self) -> None:
        self.queue.put_nowait(None)

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False

    def health(self) -> FeedHealth:
        return FeedHealth(
            name=self.name, state="paused" if self.paused else "running",
            reconnects=self.reconnects, counters={"paused": self.paused},
        )  # fmt: skip

    def push(self, ticks: list[tuple[Any, ...]]) -> None:
        self.queue.put_nowait(ticks)


def minute_ticks(symbol: str, minute: int, price: float, n: int = 5) -> list[tuple[Any, ...]]:
    """`n` trades inside minute `minute` after T0."""
    start = T0 + minute * NS_PER_MINUTE
    step = NS_PER_MINUTE // (n + 1)
    return [
        (symbol, start + (i + 1) * step, price + i * 0.25, 1.0, "", None, None) for i in range(n)
    ]


async def settle(predicate: Any, timeout: float = 5.0) -> None:
    """Wait (briefly, by polling the loop) until the engine has caught up."""

    async def wait() -> None:
        while not predicate():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(wait(), timeout)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)
