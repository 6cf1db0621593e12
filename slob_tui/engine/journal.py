"""The engine's read side: the bounded records kept only to be shown, and the snapshot.

`SetupJournal` keeps the setup timelines (live ones and the last ended ones) and the notable bus
events; `build_snapshot` turns the pipeline's state into the immutable `EngineSnapshot` the
console, the front door and the reports read. The pipeline records into the journal with one
method call per setup event, so the candle path pays nothing for the read side.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence

from slob_tui.core.events import Event, EventType
from slob_tui.core.health import HealthReport
from slob_tui.core.models import Candle, Order, Position, SetupUpdate
from slob_tui.engine.snapshot import EngineSnapshot, SetupView

NOTABLE_EVENTS = frozenset(EventType) - {EventType.CANDLE_COMPLETED, EventType.HEALTH}


class SetupJournal:
    """Setup timelines (every live setup, the last `keep_ended` ended ones) and recent events."""

    def __init__(self, keep_ended: int = 50, keep_events: int = 500) -> None:
        self.setups: dict[str, list[SetupUpdate]] = {}
        self.notable: deque[Event] = deque(maxlen=keep_events)
        self._ended_order: deque[str] = deque(maxlen=keep_ended)

    def record(self, update: SetupUpdate) -> None:
        timeline = self.setups.setdefault(update.setup_id, [])
        timeline.append(update)
        if update.state.is_terminal:
            self._ended_order.append(update.setup_id)
            keep = set(self._ended_order)
            for sid in [s for s, t in self.setups.items() if t[-1].state.is_terminal]:
                if sid not in keep:
                    del self.setups[sid]

    def remember(self, event: Event) -> None:
        """A bus subscriber: keeps what the event log shows."""
        if event.type in NOTABLE_EVENTS:
            self.notable.append(event)

    def views(self) -> tuple[SetupView, ...]:
        """Live setups first, then ended ones, newest first within each."""
        views = []
        for sid, timeline in self.setups.items():
            last = timeline[-1]
            views.append(
                SetupView(
                    setup_id=sid,
                    symbol=last.symbol,
                    direction=last.direction.value,
                    state=last.state.value,
                    reason=last.reason,
                    timeline=tuple(timeline),
                )
            )
        live = sorted((v for v in views if v.is_live), key=lambda v: -v.latest.time)
        ended = sorted((v for v in views if not v.is_live), key=lambda v: -v.latest.time)
        return tuple(live) + tuple(ended)


def build_snapshot(
    *,
    seq: int,
    now_ns: int,
    mode: str,
    feed: str,
    symbols: Sequence[str],
    paused: bool,
    recent: Mapping[str, Sequence[Candle]],
    forming: Mapping[str, Candle | None],
    journal: SetupJournal,
    health: HealthReport,
    orders: Sequence[Order] = (),
    positions: Sequence[Position] = (),
) -> EngineSnapshot:
    last_price: dict[str, float] = {}
    for s in symbols:
        f = forming.get(s)
        if f is not None:
            last_price[s] = f.close
        elif recent.get(s):
            last_price[s] = recent[s][-1].close
    return EngineSnapshot(
        seq=seq,
        now_ns=now_ns,
        mode=mode,
        feed=feed,
        symbols=tuple(symbols),
        paused=paused,
        candles={s: tuple(c) for s, c in recent.items()},
        forming=dict(forming),
        last_price=last_price,
        setups=journal.views(),
        orders=tuple(orders),
        positions=tuple(positions),
        health=health,
        events=tuple(journal.notable),
    )
