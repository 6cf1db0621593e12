"""Engines for console tests: a feed that produces nothing, candles pushed through the sinks.

`IdleFeed` is a real Feed (the protocol's five methods); the test drives the engine through its
sink methods (`put_candles`, `put_ticks`), so the whole pipeline (aggregator, store, tracker,
snapshot) runs as it does live.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from slob_tui.core.clock import ManualClock
from slob_tui.core.health import FeedHealth
from slob_tui.core.models import NS_PER_MINUTE, Candle
from slob_tui.engine.engine import LiveTradingEngine

NQ_FILE = "nq_1min_20231119_20231204_et.csv"
# 2023-11-20 15:10 UTC, inside the NQ file; a fixed clock keeps every screen deterministic.
T0 = 1_700_493_000_000_000_000


class IdleFeed:
    """A feed that connects and then waits for stop: the test pushes the data itself."""

    name = "test"

    def __init__(self, symbols: tuple[str, ...] = ("NQ",), mode: str = "DEMO") -> None:
        self.symbols = symbols
        self.mode = mode
        self.paused = False
        self.pause_calls = 0
        self.resume_calls = 0
        self._stop = asyncio.Event()

    async def run(self, sink: Any) -> None:
        await self._stop.wait()

    async def stop(self) -> None:
        self._stop.set()

    def pause(self) -> None:
        self.paused = True
        self.pause_calls += 1

    def resume(self) -> None:
        self.paused = False
        self.resume_calls += 1

    def health(self) -> FeedHealth:
        """A feed with no connection: the panel shows it as local."""
        return FeedHealth(name=self.name, state="local", counters={"paused": self.paused})


class ControlledEngine:
    """A bare engine presented with trading controls, as a node presents its own (tests of
    the surfaces that reach them: the console's K and live confirmation, Telegram)."""

    def __init__(self, engine: LiveTradingEngine, controls: Any) -> None:
        self.engine, self.controls = engine, controls

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)

    def trading_controls(self) -> Any:
        return self.controls


def make_engine(
    symbols: tuple[str, ...] = ("NQ",),
    db: Path | None = None,
    mode: str = "DEMO",
    now_ns: int = T0,
) -> LiveTradingEngine:
    from slob_tui.storage.candles import CandleStore

    store = CandleStore(db) if db is not None else None
    engine = LiveTradingEngine(
        IdleFeed(symbols, mode), store=store, clock=ManualClock(now_ns), clock_tick_s=0.05
    )
    engine.health_monitor.wall = ManualClock(now_ns)  # "last candle N s ago" is wall time
    return engine


def synthetic_candles(symbol: str, n: int, start_ns: int, base: float = 100.0) -> list[Candle]:
    """Deterministic zig-zag candles (no randomness), one per minute."""
    out = []
    price = base
    for i in range(n):
        step = ((i * 7) % 11 - 5) * 0.1
        o, c = price, price + step
        hi, lo = max(o, c) + 0.15 + (i % 3) * 0.05, min(o, c) - 0.1 - (i % 4) * 0.05
        out.append(
            Candle(
                symbol,
                start_ns + i * NS_PER_MINUTE,
                o,
                hi,
                lo,
                c,
                100 + (i * 37) % 400,
                tick_count=10,
            )
        )
        price = c
    return out


def screen_text(app: Any) -> str:
    """The current screen as plain text, one line per row (for assertions on what is shown)."""
    strips = app.screen._compositor.render_strips()
    return "\n".join(strip.text for strip in strips)
