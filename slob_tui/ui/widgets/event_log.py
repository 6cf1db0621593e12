"""Event log: the bus's notable events, newest first, filterable by category.

Each line carries one time, in the console's zone: when the event happened. A setup event is
stamped by the tracker with its candle's start but decided at that candle's close, when the
paper fills of the same candle are also announced, so it is shown (and ordered) at the close.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Static

from slob_tui.core.event_payloads import payload_fields
from slob_tui.core.events import Event
from slob_tui.core.models import SetupUpdate
from slob_tui.ui.format import decided_at, hhmmss, human

FILTERS = ("all", "setup", "trading", "system", "data")
PREFERRED_KEYS = (
    "symbol",
    "leg",
    "side",
    "qty",
    "price",
    "filled_avg_price",
    "status",
    "reason",
    "error",
    "mode",
)
CATEGORY_STYLE = {"setup": "magenta", "trading": "green", "system": "cyan", "data": "yellow"}


def event_time(event: Event) -> int:
    """When the event happened: a setup event at the close of the candle that decided it."""
    data: Any = event.data
    if isinstance(data, SetupUpdate) and event.ts == data.time:
        return decided_at(data)
    return event.ts


def describe(event: Event, tz: str = "UTC") -> str:
    """One line of text for an event (no secrets: only the fields an operator needs)."""
    data: Any = event.data
    if isinstance(data, SetupUpdate):
        reason = f" ({data.reason})" if data.reason else ""
        return f"{data.symbol} {data.direction.value} {data.state.value}{reason}"
    values = payload_fields(data)
    if values:
        keys = [k for k in PREFERRED_KEYS if values.get(k) is not None]
        keys += [k for k in values if k not in keys][: max(0, 4 - len(keys))]
        return " ".join(f"{k}={human(k, values[k], tz)}" for k in keys[:6])
    return "" if data is None else str(data)[:120]


def render_events(events: tuple[Event, ...], category: str, tz: str, limit: int) -> Text:
    shown = [e for e in events if category == "all" or e.type.category.value == category]
    text = Text(no_wrap=True, overflow="ellipsis")
    if not shown:
        text.append(f"No {'' if category == 'all' else category + ' '}events yet.", style="dim")
        return text
    # newest first by the time shown; among equal times the later arrival first
    newest_first = sorted(reversed(shown[-limit:]), key=event_time, reverse=True)
    for event in newest_first:
        cat = event.type.category.value
        text.append(f"{hhmmss(event_time(event), tz)} ", style="dim")
        text.append(f"{event.type.name:<18}", style=CATEGORY_STYLE.get(cat, ""))
        text.append(f" {describe(event, tz)}\n")
    text.rstrip()
    return text


class EventLog(Static):
    """Redrawn only when new events arrived or the filter changed."""

    def __init__(self, *, tz: str = "UTC", id: str | None = None) -> None:  # noqa: A002
        super().__init__(render_events((), "all", tz, 1), id=id)
        self.tz = tz
        self.category = "all"
        self._events: tuple[Event, ...] = ()
        self._shown: tuple[int, int, str] = (0, 0, "all")
        self.border_title = "Events · all"

    def cycle_filter(self) -> str:
        self.category = FILTERS[(FILTERS.index(self.category) + 1) % len(FILTERS)]
        self._redraw()
        return self.category

    def show(self, events: tuple[Event, ...]) -> bool:
        last = id(events[-1]) if events else 0
        if (len(events), last, self.category) == self._shown:
            return False
        self._events = events
        self._redraw()
        return True

    def _redraw(self) -> None:
        events = self._events
        self._shown = (len(events), id(events[-1]) if events else 0, self.category)
        self.border_title = f"Events · {self.category}"
        limit = max(self.size.height, 20)
        self.update(render_events(events, self.category, self.tz, limit))
