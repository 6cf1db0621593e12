"""Prometheus metrics and `/healthz` for a running engine, served from the engine's own loop.

Nothing here runs per tick. Counts that only events can tell (candles, setup transitions,
orders, data-quality findings, realised P&L) are kept by one bus subscriber, which runs per
candle or rarer; everything else (ticks, buffer, ages, safe mode, positions, store size) is
read from the engine when Prometheus scrapes, by a custom collector. The HTTP server is an
asyncio server on the engine's loop, so a scrape reads engine state without a thread race.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from slob_tui.core.events import Event, EventType

log = logging.getLogger(__name__)

NS_PER_SECOND = 1_000_000_000
_ORDER_EVENT_STATUS = {
    EventType.ORDER_PLACED: "placed",
    EventType.ORDER_FILLED: "filled",
    EventType.ORDER_REJECTED: "rejected",
    EventType.ORDER_CANCELLED: "cancelled",
}


def _field(data: Any, name: str, default: Any = None) -> Any:
    """Read `name` from a dict or an object: event payloads come in both shapes."""
    if isinstance(data, dict):
        return data.get(name, default)
    return getattr(data, name, default)


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
        if t is EventType.CANDLE_COMPLETED:
            self.candles[data.symbol] += 1
            if data.gap_filled:
                self.gap_filled[data.symbol] += 1
        elif t.category.value == "setup":
            state = _value(_field(data, "state"))
            self.setup_transitions[(state, _value(_field(data, "reason")))] += 1
        elif t in _ORDER_EVENT_STATUS:
            status = _value(_field(data, "status")) or _ORDER_EVENT_STATUS[t]
            self.order_events[status] += 1
        elif t is EventType.DATA_QUALITY:
            self.quality[_value(_field(data, "kind")) or "unknown"] += 1
        elif t is EventType.CANDLE_GAP:
            self.candle_gaps += int(_field(data, "count", 1) or 1)
        elif t is EventType.LATE_TICK:
            self.late_ticks += int(_field(data, "count", 1) or 1)
        elif t is EventType.TRADE_CLOSED:
            pnl = _field(data, "pnl")
            if pnl is not None:
                self.realized_pnl += float(pnl)
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
            "slob_ticks_received", "Ticks out of the buffer into the pipeline",
            value=h.get("ticks", 0),
        )
        candles = CounterMetricFamily("slob_candles", "Closed 1-minute candles", labels=["symbol"])
        filled = CounterMetricFamily(
            "slob_candles_gap_filled", "Candles synthesised for a minute without trades",
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
            "slob_since_progress_seconds", "Engine time since a candle was last processed",
            value=float("nan") if since is None else since,
        )
        yield CounterMetricFamily(
            "slob_candle_gaps", "Missing minutes reported by the aggregator",
            value=self.counts.candle_gaps,
        )
        yield CounterMetricFamily(
            "slob_late_ticks", "Ticks that arrived after their candle closed",
            value=self.counts.late_ticks,
        )

    def _buffer(self, b: dict[str, Any]) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "slob_buffer_dropped_ticks", "Ticks dropped by the buffer on overflow",
            value=b.get("dropped", 0),
        )
        yield CounterMetricFamily(
            "slob_buffer_evicted_ticks", "Ticks evicted by the buffer as too old",
            value=b.get("evicted", 0),
        )
        yield GaugeMetricFamily(
            "slob_buffer_utilization_ratio", "Buffered ticks over capacity",
            value=b.get("utilization", 0.0),
        )
        yield GaugeMetricFamily(
            "slob_buffer_peak_ticks", "Most ticks ever buffered at once", value=b.get("peak", 0)
        )

    def _setups(self, snap: Any) -> Iterator[Metric]:
        transitions = CounterMetricFamily(
            "slob_setup_transitions", "Setup transitions by new state and reason",
            labels=["state", "reason"],
        )
        for (state, reason), n in sorted(self.counts.setup_transitions.items()):
            transitions.add_metric([state, reason], n)
        yield transitions
        by_state: dict[str, int] = defaultdict(int)
        for view in snap.setups:
            by_state[str(view.state)] += 1
        setups = GaugeMetricFamily(
            "slob_setups", "Setups the engine holds now, by state (recently ended included)",
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
            "slob_pnl_realized", "Realised P&L of closed trades since start",
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
            "slob_feed_connected", "1 connected, 0 not, NaN for feeds without a connection",
            value=float("nan") if connected is None else int(bool(connected)),
        )
        yield GaugeMetricFamily(
            "slob_safe_mode", "1 while the engine is in safe mode (no new orders)",
            value=int(bool(h.get("safe_mode"))),
        )
        yield GaugeMetricFamily(
            "slob_healthy", "1 when /healthz would answer 200, else 0",
            value=int(self.verdict(h)),
        )
        yield GaugeMetricFamily(
            "slob_store_size_bytes", "Candle store on disk (SQLite file, WAL and shm)",
            value=store_size_bytes(self.db_path),
        )
        bus = h.get("bus") or {}
        yield CounterMetricFamily(
            "slob_bus_events", "Events emitted on the bus", value=bus.get("emitted", 0)
        )
        yield CounterMetricFamily(
            "slob_bus_handler_errors", "Bus handlers that raised",
            value=bus.get("handler_errors", 0),
        )
        yield CounterMetricFamily(
            "slob_kill_switches", "Kill-switch activations", value=self.counts.kill_switches
        )
        uptime = h.get("uptime_s")
        yield GaugeMetricFamily(
            "slob_uptime_seconds", "Engine time since start",
            value=float("nan") if uptime is None else uptime,
        )


def health_verdict(
    engine: Any,
    stale_after_s: float,
    market_open: Callable[[int], bool],
    health: dict[str, Any] | None = None,
) -> tuple[bool, dict[str, Any]]:
    """Healthy unless the engine stopped, its feed failed, or no candle closed for longer than
    `stale_after_s` of engine time while the market is open: progress, not a heartbeat."""
    h = engine.health() if health is None else health
    now = engine.clock.now_ns()
    is_open = bool(market_open(now))
    since = h.get("since_progress_s")
    problems: list[str] = []
    if getattr(engine, "stopped", False):
        problems.append(f"engine stopped ({getattr(engine, 'stop_reason', '') or 'no reason'})")
    if getattr(engine, "feed_error", None) is not None:
        problems.append("feed failed")
    if is_open and since is not None and since > stale_after_s:
        problems.append(f"no candle processed for {since:.0f} s (limit {stale_after_s:.0f} s)")
    body = {
        "healthy": not problems,
        "problems": problems,
        "status": h.get("status"),
        "market_open": is_open,
        "since_progress_s": since,
        "last_candle_age_s": h.get("last_candle_age_s"),
        "candles": h.get("candles"),
        "safe_mode": h.get("safe_mode"),
        "mode": h.get("mode"),
    }
    return not problems, body


class MetricsServer:
    """`GET /metrics` (Prometheus text) and `GET /healthz` (200 or 503, JSON) on one port.

    Bound to 127.0.0.1 unless told otherwise: the numbers describe a trading account. `port=0`
    asks the OS for a free port (tests); `.port` holds the one bound.
    """

    def __init__(
        self,
        engine: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        db_path: str | Path | None = None,
        stale_after_s: float | None = None,
        market_open: Callable[[int], bool] | None = None,
    ) -> None:
        self.engine = engine
        self.host = host
        self.port = port
        self.counts = EventCounts()
        self.registry = CollectorRegistry(auto_describe=False)
        monitor = getattr(engine, "health_monitor", None)
        if stale_after_s is None:
            stale_after_s = monitor.stale_after_ns / NS_PER_SECOND if monitor else 180.0
        self.stale_after_s = stale_after_s
        self.market_open = market_open or (
            monitor.market_open if monitor is not None else (lambda _ns: True)
        )
        self.registry.register(
            EngineCollector(
                engine, self.counts, db_path,
                verdict=lambda h: health_verdict(
                    engine, self.stale_after_s, self.market_open, h
                )[0],
            )
        )
        self._server: asyncio.base_events.Server | None = None
        self.requests = 0
        engine.bus.subscribe(None, self.counts)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("metrics on http://%s:%d/metrics and /healthz", self.host, self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def render(self) -> bytes:
        """The Prometheus exposition text of every `slob_*` metric now."""
        return generate_latest(self.registry)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        method_has_body = True
        try:
            status, ctype, body, method_has_body = await self._respond(reader)
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            status, ctype, body = 400, "text/plain", b"bad request\n"
        except Exception as exc:  # noqa: BLE001 - a scrape must never take the engine down
            log.error("metrics request failed: %r", exc)
            status, ctype, body = 500, "text/plain", b"internal error\n"
        self.requests += 1
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
                  500: "Internal Server Error", 503: "Service Unavailable"}[status]  # fmt: skip
        head = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        try:
            writer.write(head.encode() + (body if method_has_body else b""))
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def _respond(self, reader: asyncio.StreamReader) -> tuple[int, str, bytes, bool]:
        status, ctype, body, method = await self._route(reader)
        return status, ctype, body, method != "HEAD"

    async def _route(self, reader: asyncio.StreamReader) -> tuple[int, str, bytes, str]:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = request_line.split()
        if len(parts) != 3:
            return 400, "text/plain", b"bad request\n", "GET"
        method, target = parts[0], parts[1].split("?", 1)[0]
        if method not in ("GET", "HEAD"):
            return 405, "text/plain", b"only GET\n", method
        if target == "/metrics":
            return 200, CONTENT_TYPE_LATEST, self.render(), method
        if target == "/healthz":
            ok, body = health_verdict(self.engine, self.stale_after_s, self.market_open)
            code = 200 if ok else 503
            return code, "application/json", json.dumps(body).encode() + b"\n", method
        if target == "/":
            return 200, "text/plain", b"slob-tui: /metrics /healthz\n", method
        return 404, "text/plain", b"not found\n", method
