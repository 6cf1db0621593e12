"""Headless mode: the engine with a compact live log on the terminal (Rich), no Textual."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rich.console import Console

from slob_tui.core.events import Event, EventType
from slob_tui.core.models import Candle, SetupUpdate

if TYPE_CHECKING:
    from slob_tui.node import NodeConfig, TradingNode


def _hhmm(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%d %H:%MZ")


def compact(data: Any, limit: int = 12) -> str:
    """One short line for an event payload: scalar fields as key=value, nested ones left out."""
    if data is None:
        return ""
    if not isinstance(data, dict):
        return str(data)
    parts = []
    for key, value in data.items():
        if isinstance(value, float):
            parts.append(f"{key}={value:.6g}")
        elif isinstance(value, str | int | bool) or value is None:
            parts.append(f"{key}={value}")
        if len(parts) >= limit:
            break
    return " ".join(parts)


class HeadlessLog:
    """Prints one line per notable event; candles only when `candles=True` (live)."""

    def __init__(self, console: Console | None = None, candles: bool = True) -> None:
        self.console = console or Console(highlight=False)
        self.candles = candles
        self.history = 0

    def _history_done(self) -> None:
        if self.history:
            self.console.print(f"[dim]{self.history} history candles loaded[/]")
            self.history = 0

    def __call__(self, event: Event) -> None:
        t = event.type
        if t is EventType.CANDLE_COMPLETED:
            c: Candle = event.data
            if c.backfilled:
                self.history += 1
                return
            self._history_done()
            if self.candles:
                flag = " [dim](filled)[/]" if c.gap_filled else ""
                self.console.print(
                    f"[cyan]{_hhmm(c.start)}[/] {c.symbol} O {c.open:g} H {c.high:g} "
                    f"L {c.low:g} C {c.close:g} V {c.volume:g} n={c.tick_count}{flag}"
                )
        elif t.category.value == "setup":
            self._history_done()
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
            self._history_done()
            self.console.print(f"[bold]{t.name}[/] {compact(event.data)}")


async def _run(node: TradingNode, duration: float | None, log: HeadlessLog) -> None:
    for etype in EventType:
        if etype.category.value == "setup":
            node.bus.subscribe(etype, log, first=True)  # before the executor acts on it
    node.bus.subscribe(None, lambda e: None if e.type.category.value == "setup" else log(e))
    node.install_signal_handlers()
    await node.run(duration=duration)


def run_headless(config: NodeConfig) -> int:
    from slob_tui.node import TradingNode

    node = TradingNode(config)
    console = Console(highlight=False)
    console.print(
        f"[bold]slob-tui[/] headless — mode [bold]{node.mode}[/], feed {config.feed}, "
        f"db {config.db}. Ctrl+C stops gracefully."
    )
    asyncio.run(_run(node, config.duration, HeadlessLog(console)))
    h = node.health()
    console.print(
        f"stopped ({node.stop_reason}): {h['ticks']} ticks, {h['candles']} candles, "
        f"{node.setup_events} setup events"
    )
    return 0
