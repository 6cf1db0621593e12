"""The `slob_*` Prometheus collector: event counts kept per event, engine state read per scrape.

Counts that only events can tell (candles, setup transitions, orders, data-quality findings,
realised P&L) are kept by one bus subscriber, which runs per candle or rarer; everything else
(ticks, buffer, ages, safe mode, positions, store size) is read from the engine's snapshot when
Prometheus scrapes, so nothing here runs per tick.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)

from slob_tui.core.event_payloads import (
    CandleGapReport,
    DataQualityFinding,
    LateTicks,
    OrderCancelled,
    OrderRejected,
    TradeClosed,
)
from slob_tui.core.events import Event, EventType
from slob_tui.core.models import Candle, SetupUpdate

NS_PER_SECOND = 1_000_000_000
_ORDER_EVENT_STATUS = {
    EventType.ORDER_PLACED: "placed",
    EventType.ORDER_FILLED: "filled",
    EventType.ORDER_REJECTED: "rejected",
    EventType.ORDER_CANCELLED: "cancelled",
}


def _value(v: Any) -> str:
    """Enum members and None as plain label text."""
    if v is None:
        return ""
    return str(getattr(v, "value", v))


class EventCounts:
    """What only the bus can tell, counted as events arrive (per candle or rarer)."""

    def __init__(self) -> None:
        self.candles: dict[str, int] = defaultdict(int)
        self.gap_filled: dict[str, int] = defaultdict(int)
        self.setup_transitions: dict[tuple[str, str], int] = defaultdict(int)
        self.order_events: dict[str, int] = defaultdict(int)
        self.quality: dict[str, int] = defaultdict(int)
        self.candle_gaps = 0
        self.late_ticks = 0
        self.realized_pnl = 0.0
        self.trades_closed = 0
        self.safe_mode_events = 0
        self.kill_switches = 0

    def __call__(self, event: Event) -> None:
        t = event.type
        data = event.data
        if isinstance(data, Candle):
            self.candles[data.symbol] += 1
            if data.gap_filled:
                self.gap_filled[data.symbol] += 1
        elif isinstance(data, SetupUpdate):
            self.setup_transitions[(_value(data.state), _value(data.reason))] += 1
        elif t in _ORDER_EVENT_STATUS:
            status = data.status if isinstance(data, OrderRejected | OrderCancelled) else None
            self.order_events[_value(status) or _ORDER_EVENT_STATUS[t]] += 1
        elif isinstance(data, DataQualityFinding):
            self.quality[data.kind or "unknown"] += 1
        elif isinstance(data, CandleGapReport):
            self.candle_gaps += data.count or 1
        elif isinstance(data, LateTicks):
            self.late_ticks += data.count or 1
        elif isinstance(data, TradeClosed):
            self.realized_pnl += data.pnl
            self.trades_closed += 1
        elif t is EventType.SAFE_MODE:
            self.safe_mode_events += 1
        elif t is EventType.KILL_SWITCH:
            self.kill_switches += 1


def store_size_bytes(db_path: str | Path | None) -> int:
    """The SQLite file plus its write-ahead log: what the disk actually holds."""
    if not db_path:
        return 0
    total = 0
    for suffix in ("", "-wal", "-shm"):
        try:
            total += os.path.getsize(f"{db_path}{suffix}")
        except OSError:
            pass
    return total


class EngineCollector:
    """A Prometheus collector that reads the engine's state at scrape time (`slob_*`)."""

    def __init__(
        self,
        engine: Any,
        counts: EventCounts,
        db_path: str | Path | None = None,
        verdict: Callable[[dict[str, Any]], bool] | None = None,
    ) -> None:
        self.engine = engine
        self.counts = counts
        self.db_path = db_path
        self.verdict = verdict or (lambda h: bool(h.get("healthy")))

    def describe(self) -> list[Metric]:
        """Nothing up front: the registry must not call `collect` at registration time."""
        return []

    def collect(self) -> Iterator[Metric]:
        snap = self.engine.snapshot()
        h = snap.health
        yield from self._info(snap)
        yield from self._data(h)
        yield from self._buffer(h.get("buffer") or {})
        yield from self._setups(snap)
        yield from self._orders(snap)
        yield from self._quality()
        yield from self._system(h)

    def _info(self, snap: Any) -> Iterator[Metric]:
        info = InfoMetricFamily("slob_engine", "Engine mode and feed")
        info.add_metric([], {"mode": str(snap.mode), "feed": str(snap.feed)})
        yield info
        yield GaugeMetricFamily("slob_paused", "1 while the feed is paused", value=int(snap.paused))

    def _data(self, h: dict[str, Any]) -> Iterator[Metric]:
        per_symbol = (h.get("aggregator") or {}).get("symbols") or {}
        ticks = CounterMetricFamily(
            "slob_ticks", "Ticks taken by the aggregator", labels=["symbol"]
        )
        for symbol, st in sorted(per_symbol.items()):
            ticks.add_metric([symbol], st.get("ticks", 0))
        yield ticks
        yield CounterMetricFamily(
            "slob_ticks_received",
            "Ticks out of the buffer into the pipeline",
            value=h.get("ticks", 0),
        )
        candles = CounterMetricFamily("slob_candles", "Closed 1-minute candles", labels=["symbol"])
        filled = CounterMetricFamily(
            "slob_candles_gap_filled",
            "Candles synthesised for a minute without trades",
            labels=["symbol"],
        )
        for symbol in sorted(set(self.counts.candles) | set(per_symbol)):
            candles.add_metric([symbol], self.counts.candles.get(symbol, 0))
            filled.add_metric([symbol], self.counts.gap_filled.get(symbol, 0))
        yield candles
        yield filled
        age = h.get("last_candle_age_s")
        yield GaugeMetricFamily(
            "slob_last_candle_age_seconds",
            "Engine time since the end of the last closed candle (NaN before the first)",
            value=float("nan") if age is None else age,
        )
        since = h.get("since_progress_s")
        yield GaugeMetricFamily(
            "slob_since_progress_seconds",
            "Engine time since a candle was last processed",
            value=float("nan") if since is None else since,
        )
        yield CounterMetricFamily(
            "slob_candle_gaps",
            "Missing minutes reported by the aggregator",
            value=self.counts.candle_gaps,
        )
        yield CounterMetricFamily(
            "slob_late_ticks",
            "Ticks that arrived after their candle closed",
            value=self.counts.late_ticks,
        )

    def _buffer(self, b: dict[str, Any]) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "slob_buffer_dropped_ticks",
            "Ticks dropped by the buffer on overflow",
            value=b.get("dropped", 0),
        )
        yield CounterMetricFamily(
            "slob_buffer_evicted_ticks",
            "Ticks evicted by the buffer as too old",
            value=b.get("evicted", 0),
        )
        yield GaugeMetricFamily(
            "slob_buffer_utilization_ratio",
            "Buffered ticks over capacity",
            value=b.get("utilization", 0.0),
        )
        yield GaugeMetricFamily(
            "slob_buffer_peak_ticks", "Most ticks ever buffered at once", value=b.get("peak", 0)
        )

    def _setups(self, snap: Any) -> Iterator[Metric]:
        transitions = CounterMetricFamily(
            "slob_setup_transitions",
            "Setup transitions by new state and reason",
            labels=["state", "reason"],
        )
        for (state, reason), n in sorted(self.counts.setup_transitions.items()):
            transitions.add_metric([state, reason], n)
        yield transitions
        by_state: dict[str, int] = defaultdict(int)
        for view in snap.setups:
            by_state[str(view.state)] += 1
        setups = GaugeMetricFamily(
            "slob_setups",
            "Setups the engine holds now, by state (recently ended included)",
            labels=["state"],
        )
        for state, n in sorted(by_state.items()):
            setups.add_metric([state], n)
        yield setups

    def _orders(self, snap: Any) -> Iterator[Metric]:
        events = CounterMetricFamily(
            "slob_order_events", "Order events by status", labels=["status"]
        )
        for status, n in sorted(self.counts.order_events.items()):
            events.add_metric([status], n)
        yield events
        by_status: dict[str, int] = defaultdict(int)
        for order in snap.orders:
            by_status[_value(order.status)] += 1
        orders = GaugeMetricFamily(
            "slob_orders", "Orders the executor holds now, by status", labels=["status"]
        )
        for status, n in sorted(by_status.items()):
            orders.add_metric([status], n)
        yield orders
        unrealized = sum(p.unrealized_pnl for p in snap.positions)
        yield GaugeMetricFamily(
            "slob_pnl_realized",
            "Realised P&L of closed trades since start",
            value=self.counts.realized_pnl,
        )
        yield GaugeMetricFamily(
            "slob_pnl_unrealized", "Unrealised P&L of open positions", value=unrealized
        )
        yield CounterMetricFamily(
            "slob_trades_closed", "Trades closed since start", value=self.counts.trades_closed
        )
        positions = GaugeMetricFamily(
            "slob_position_qty", "Open position size by symbol", labels=["symbol"]
        )
        for p in snap.positions:
            positions.add_metric([p.symbol], p.qty)
        yield positions

    def _quality(self) -> Iterator[Metric]:
        quality = CounterMetricFamily(
            "slob_data_quality_findings", "Data-quality findings by kind", labels=["kind"]
        )
        for kind, n in sorted(self.counts.quality.items()):
            quality.add_metric([kind], n)
        yield quality

    def _system(self, h: dict[str, Any]) -> Iterator[Metric]:
        feed = h.get("feed") or {}
        reconnects = max(int(h.get("reconnects") or 0), int(feed.get("reconnects") or 0))
        yield CounterMetricFamily(
            "slob_feed_reconnects", "Feed reconnections since start", value=reconnects
        )
        connected = h.get("connected")
        yield GaugeMetricFamily(
            "slob_feed_connected",
            "1 connected, 0 not, NaN for feeds without a connection",
            value=float("nan") if connected is None else int(bool(connected)),
        )
        yield GaugeMetricFamily(
            "slob_safe_mode",
            "1 while the engine is in safe mode (no new orders)",
            value=int(bool(h.get("safe_mode"))),
        )
        yield GaugeMetricFamily(
            "slob_healthy",
            "1 when /healthz would answer 200, else 0",
            value=int(self.verdict(h)),
        )
        yield GaugeMetricFamily(
            "slob_store_size_bytes",
            "Candle store on disk (SQLite file, WAL and shm)",
            value=store_size_bytes(self.db_path),
        )
        bus = h.get("bus") or {}
        yield CounterMetricFamily(
            "slob_bus_events", "Events emitted on the bus", value=bus.get("emitted", 0)
        )
        yield CounterMetricFamily(
            "slob_bus_handler_errors",
            "Bus handlers that raised",
            value=bus.get("handler_errors", 0),
        )
        yield CounterMetricFamily(
            "slob_kill_switches", "Kill-switch activations", value=self.counts.kill_switches
        )
        attach = h.get("attach") or {}
        yield GaugeMetricFamily(
            "slob_attached_clients",
            "Consoles and tools attached to the front door now",
            value=attach.get("clients", 0),
        )
        yield CounterMetricFamily(
            "slob_attach_resyncs",
            "Attached clients resent a fresh snapshot (slow or gapped)",
            value=attach.get("resyncs", 0),
        )
        uptime = h.get("uptime_s")
        yield GaugeMetricFamily(
            "slob_uptime_seconds",
            "Engine time since start",
            value=float("nan") if uptime is None else uptime,
        )
