"""The engine's read side: what it keeps for the console and the reports built from it.

`LiveTradingEngine` inherits this mixin. It holds the bounded records kept only to be shown
(notable bus events, setup timelines) and builds `health()` and `snapshot()` on demand, so
engine.py keeps the pipeline and lifecycle. The pipeline calls `_record_setup` and the bus calls
`_remember` as methods of the engine itself: no extra indirection on the candle path.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from slob_tui.core.events import Event, EventType
from slob_tui.core.models import Candle, Order, Position, SetupUpdate
from slob_tui.engine.snapshot import EngineSnapshot, SetupView

NOTABLE_EVENTS = frozenset(EventType) - {EventType.CANDLE_COMPLETED, EventType.HEALTH}


class EngineViews:
    """Health, snapshot and setup timelines of a `LiveTradingEngine` (which sets the state)."""

    # State owned by LiveTradingEngine.__init__ and read here (annotations only).
    feed: Any
    buffer: Any
    aggregator: Any
    bus: Any
    clock: Any
    health_monitor: Any
    mode: str
    paused: bool
    seq: int
    setup_events: int
    recent: dict[str, deque[Candle]]
    setups: dict[str, list[SetupUpdate]]
    notable: deque[Event]
    _ended_order: deque[str]
    _health_sources: dict[str, Callable[[], dict[str, Any]]]
    _orders_provider: Callable[[], tuple[Sequence[Order], Sequence[Position]]] | None

    def _record_setup(self, update: SetupUpdate) -> None:
        timeline = self.setups.setdefault(update.setup_id, [])
        timeline.append(update)
        if update.state.is_terminal:
            self._ended_order.append(update.setup_id)
            keep = set(self._ended_order)
            for sid in [s for s, t in self.setups.items() if t[-1].state.is_terminal]:
                if sid not in keep:
                    del self.setups[sid]

    def _remember(self, event: Event) -> None:
        if event.type in NOTABLE_EVENTS:
            self.notable.append(event)

    # ---- views --------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        report = self.health_monitor.report()
        report["mode"] = self.mode
        report["feed"] = self.feed.health()
        report["buffer"] = self.buffer.stats()
        report["aggregator"] = self.aggregator.stats()
        report["bus"] = self.bus.stats()
        report["setup_events"] = self.setup_events
        for name, source in self._health_sources.items():
            try:
                report[name] = source()
            except Exception as exc:  # noqa: BLE001
                report[name] = {"error": str(exc)}
        return report

    def snapshot(self) -> EngineSnapshot:
        symbols = tuple(getattr(self.feed, "symbols", ()) or self.recent.keys())
        views = self._setup_views()
        live = [v for v in views if v.is_live]
        ended = [v for v in views if not v.is_live]
        orders: Sequence[Order] = ()
        positions: Sequence[Position] = ()
        if self._orders_provider is not None:
            orders, positions = self._orders_provider()
        forming = {s: self.aggregator.forming(s) for s in symbols}
        last_price = {}
        for s in symbols:
            f = forming.get(s)
            if f is not None:
                last_price[s] = f.close
            elif self.recent.get(s):
                last_price[s] = self.recent[s][-1].close
        return EngineSnapshot(
            seq=self.seq,
            now_ns=self.clock.now_ns(),
            mode=self.mode,
            feed=getattr(self.feed, "name", "?"),
            symbols=symbols,
            paused=self.paused,
            candles={s: tuple(c) for s, c in self.recent.items()},
            forming=forming,
            last_price=last_price,
            setups=tuple(sorted(live, key=lambda v: -v.latest.time))
            + tuple(sorted(ended, key=lambda v: -v.latest.time)),
            orders=tuple(orders),
            positions=tuple(positions),
            health=self.health(),
            events=tuple(self.notable),
        )

    def _setup_views(self) -> list[SetupView]:
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
        return views
