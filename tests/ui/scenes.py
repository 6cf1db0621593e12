"""Deterministic console scenes shared by the snapshot and pilot tests.

The triggered-setup scene replays real NQ candles (../shared/data) through the engine's sink up
to a few minutes after the real tracker triggers its first setup of 2023-11-20, so the overlays
on screen are the ones the strategy really produced.
"""

from __future__ import annotations

import asyncio
from functools import lru_cache
from pathlib import Path
from typing import Any

from slob_tui.core.models import NS_PER_MINUTE, Candle, Order, OrderStatus, Position, Side
from tests.ui.helpers import NQ_FILE, make_engine

FIRST_TRIGGER_INDEX = 1062  # NQ SHORT triggered at 2023-11-20 15:42 UTC (index in the file)


@lru_cache(maxsize=2)
def nq_candles(data_dir: str) -> tuple[Candle, ...]:
    from slob_tui.feeds.files import load_candles

    return tuple(load_candles(Path(data_dir) / NQ_FILE, "NQ"))


async def wait_engine_started(app: Any, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while app.engine is None or app.engine.health_monitor.start_ns is None:
        if loop.time() > deadline:
            raise AssertionError("engine did not start")
        await asyncio.sleep(0.01)


def triggered_engine(data_dir: Path, db: Path | None = None, after: int = 8) -> Any:
    """An engine (not started) whose clock sits just after the scene's last candle."""
    candles = nq_candles(str(data_dir))[: FIRST_TRIGGER_INDEX + after]
    engine = make_engine(("NQ",), db=db, now_ns=candles[-1].start + 2 * NS_PER_MINUTE)
    engine.scene_candles = candles  # type: ignore[attr-defined]
    return engine


async def feed_scene(app_or_pilot: Any) -> None:
    """Push the scene's candles once the engine runs, then redraw at once."""
    app = getattr(app_or_pilot, "app", app_or_pilot)
    await wait_engine_started(app)
    await app.engine.put_candles(list(app.engine.scene_candles))
    app.refresh_now()


def sample_orders(symbol: str = "NQ") -> tuple[list[Order], list[Position]]:
    """A bracket order and a position as the executor would report them."""
    t = 1_700_498_580_000_000_000
    orders = [
        Order(
            "o1",
            "slob-NQ-S-1",
            symbol,
            Side.SELL,
            1,
            "limit",
            OrderStatus.FILLED,
            "entry",
            limit_price=16015.0,
            filled_qty=1,
            filled_avg_price=16015.0,
            created_at=t,
            updated_at=t,
        ),
        Order(
            "o2",
            "slob-NQ-S-1-sl",
            symbol,
            Side.BUY,
            1,
            "stop",
            OrderStatus.NEW,
            "stop",
            parent_id="o1",
            stop_price=16022.25,
            created_at=t,
            updated_at=t + 1,
        ),
        Order(
            "o3",
            "slob-NQ-S-1-tp",
            symbol,
            Side.BUY,
            1,
            "limit",
            OrderStatus.NEW,
            "target",
            parent_id="o1",
            limit_price=15963.5,
            created_at=t,
            updated_at=t + 2,
        ),
    ]
    positions = [Position(symbol, -1, 16015.0, last_price=16004.25)]
    return orders, positions
