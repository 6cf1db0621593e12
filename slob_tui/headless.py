"""Headless mode: the engine with a compact live log on the terminal (Rich), no Textual.

Every line carries one time, in the zone the user chose (`--tz`, else `SLOB_TZ`), named once in
the first line: candles at their start, setup transitions at the close of the candle that
decided them, other events when they happened, and log records (warnings) at the wall time they
were written. No raw nanosecond integer is printed.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.console import Console

from slob_tui.core.event_payloads import payload_fields
from slob_tui.core.events import Event, EventType
from slob_tui.core.models import NS_PER_MINUTE, Candle, SetupUpdate
from slob_tui.core.timefmt import hhmm, hhmmss, human, zone, zone_label

if TYPE_CHECKING:
    from slob_tui.node import NodeConfig, TradingNode

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def compact(data: Any, limit: int = 12, tz: str = "UTC") -> str:
    """One short line for an event payload: scalar fields as key=value, nested ones left out;
    times in `tz`."""
    if data is None:
        return ""
    values = payload_fields(data)
    if not values:
        return str(data)
    parts = []
    for key, value in values.items():
        if isinstance(value, float):
            parts.append(f"{key}={value:.6g}")
        elif isinstance(value, str | int | bool) or value is None:
            parts.append(f"{key}={human(key, value, tz)}")
        if len(parts) >= limit:
            break
    return " ".join(parts)


class ZonedFormatter(logging.Formatter):
    """Log records stamped in the headless log's zone (not the machine's local zone)."""

    def __init__(self, tz: str, fmt: str = LOG_FORMAT) -> None:
        super().__init__(fmt)
        self.tz = tz

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return datetime.fromtimestamp(record.created, zone(self.tz)).strftime("%H:%M:%S")


class HeadlessLog:
    """Prints one line per notable event; candles only when `candles=True` (live)."""

    def __init__(
        self, console: Console | None = None, candles: bool = True, tz: str = "UTC"
    ) -> None:
        self.console = console or Console(highlight=False)
        self.candles = candles
        self.tz = tz
        self.history = 0
        self.late_reported = False

    def _history_done(self) -> None:
        if self.history:
            self.console.print(f"[dim]{self.history} history candles loaded[/]")
            self.history = 0

    def __call__(self, event: Event) -> None:
        t = event.type
        tz = self.tz
        if t is EventType.CANDLE_COMPLETED:
            c = event.payload(Candle)
            if c.backfilled:
                self.history += 1
                return
            self._history_done()
            if self.candles:
                flag = " [dim](filled)[/]" if c.gap_filled else ""
                self.console.print(
                    f"[cyan]{hhmm(c.start, tz)}[/] {c.symbol} O {c.open:g} H {c.high:g} "
                    f"L {c.low:g} C {c.close:g} V {c.volume:g} n={c.tick_count}{flag}"
                )
        elif t.category.value == "setup":
            self._history_done()
            u = event.payload(SetupUpdate)
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
                f"[{colour}]{hhmm(u.time + NS_PER_MINUTE, tz)} {u.symbol} {u.direction.value} "
                f"{u.state.value}{reason}[/]{extra}"
            )
        elif t is EventType.LATE_TICK:
            if not self.late_reported:  # the first; the total is in the closing line
                self.late_reported = True
                self.console.print(
                    f"[yellow]{hhmmss(event.ts, tz)} late ticks dropped: {compact(event.data)} "
                    "(ticks for minutes already closed or stored)[/]"
                )
        elif t in (EventType.HEALTH, EventType.CANDLE_GAP):
            return
        else:
            self._history_done()
            self.console.print(
                f"[dim]{hhmmss(event.ts, tz)}[/] [bold]{t.name}[/] {compact(event.data, tz=tz)}"
            )


async def _run(node: TradingNode, duration: float | None, log: HeadlessLog) -> None:
    for etype in EventType:
        if etype.category.value == "setup":
            node.bus.subscribe(etype, log, first=True)  # before the executor acts on it
    node.bus.subscribe(None, lambda e: None if e.type.category.value == "setup" else log(e))
    node.install_signal_handlers()
    await node.run(duration=duration)


def use_zone_in_logs(tz: str) -> None:
    """Stamp the root logger's records (warnings on stderr, the log file) in `tz`."""
    for handler in logging.getLogger().handlers:
        fmt = handler.formatter._fmt if handler.formatter is not None else None  # noqa: SLF001
        handler.setFormatter(ZonedFormatter(tz, fmt or LOG_FORMAT))


def run_headless(config: NodeConfig) -> int:
    from slob_tui.node import TradingNode

    node = TradingNode(config)
    console = Console(highlight=False)
    use_zone_in_logs(config.tz)
    console.print(
        f"[bold]slob-tui[/] headless — mode [bold]{node.mode}[/], feed {config.feed}, "
        f"db {config.db}, times in {zone_label(config.tz, node.clock.now_ns())}. "
        "Ctrl+C stops gracefully."
    )
    asyncio.run(_run(node, config.duration, HeadlessLog(console, tz=config.tz)))
    h = node.health()
    late = int(h.get("late_ticks", 0) or 0)
    late_text = f" ({late} late, dropped)" if late else ""
    console.print(
        f"stopped ({node.stop_reason or 'error'}): {h['ticks']} ticks{late_text}, "
        f"{h['candles']} candles, {node.setup_events} setup events"
    )
    if late and not h["candles"]:
        console.print(
            "[yellow]no candle was built: every tick was late (the feed is behind the candles "
            f"already stored in {config.db}, or its clock is)[/]"
        )
    return 0
