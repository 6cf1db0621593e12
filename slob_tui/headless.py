"""Headless mode: the engine with a compact live log on the terminal (Rich), no Textual."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from rich.console import Console

from slob_tui.core.events import Event, EventType
from slob_tui.core.models import Candle, SetupUpdate


def _hhmm(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M")


class HeadlessLog:
    """Prints one line per notable event; candles only when `candles=True` (live)."""

    def __init__(self, console: Console | None = None, candles: bool = True) -> None:
        self.console = console or Console(highlight=False)
        self.candles = candles

    def __call__(self, event: Event) -> None:
        t = event.type
        if t is EventType.CANDLE_COMPLETED:
            if self.candles:
                c: Candle = event.data
                flag = " [dim](filled)[/]" if c.gap_filled else ""
                self.console.print(
                    f"[cyan]{_hhmm(c.start)}[/] {c.symbol} O {c.open:g} H {c.high:g} "
                    f"L {c.low:g} C {c.close:g} V {c.volume:g} n={c.tick_count}{flag}"
                )
        elif t.category.value == "setup":
            u: SetupUpdate = event.data
            colour = {"SETUP_TRIGGERED": "bold green", "SETUP_INVALIDATED": "yellow"}.get(
                t.name, "magenta"
            )
            lv = u.levels
            extra = ""
            if u.state.value == "TRIGGERED":
                extra = (
                    f" entry~{lv.get('entry')} stop {lv.get('stop')} target {lv.get('target')}"
                    f" rr {lv.get('rr')}"
                )
            reason = f" ({u.reason})" if u.reason else ""
            self.console.print(
                f"[{colour}]{_hhmm(u.time)} {u.symbol} {u.direction.value} "
                f"{u.state.value}{reason}[/]{extra}"
            )
        elif t in (EventType.HEALTH, EventType.CANDLE_GAP, EventType.LATE_TICK):
            return
        else:
            data: Any = event.data
            self.console.print(f"[bold]{t.name}[/] {data if data is not None else ''}")


async def _run(engine: Any, duration: float | None, log: HeadlessLog) -> None:
    engine.bus.subscribe(None, log)
    engine.install_signal_handlers()
    await engine.run(duration=duration)


def run_headless(opts: Any, settings: Any) -> int:
    from slob_tui.wiring import build_engine

    engine = build_engine(opts, settings)
    console = Console(highlight=False)
    console.print(
        f"[bold]slob-tui[/] headless — mode [bold]{engine.mode}[/], feed {opts.feed}, "
        f"db {opts.db}. Ctrl+C stops gracefully."
    )
    asyncio.run(_run(engine, opts.duration, HeadlessLog(console)))
    h = engine.health()
    console.print(
        f"stopped ({engine.stop_reason}): {h['ticks']} ticks, {h['candles']} candles, "
        f"{engine.setup_events} setup events"
    )
    return 0
