"""The metrics endpoint and /healthz over a real loopback socket, on an engine fed by hand."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from slob_tui.core.event_payloads import (
    DataQualityFinding,
    FeedDisconnected,
    OrderFilled,
    OrderPlaced,
    SafeModeChange,
    TradeClosed,
)
from slob_tui.core.events import Event, EventType
from slob_tui.core.models import (
    NS_PER_MINUTE,
    NS_PER_SECOND,
    Direction,
    Order,
    OrderStatus,
    Position,
    SetupState,
    SetupUpdate,
    Side,
)
from slob_tui.engine.engine import LiveTradingEngine
from slob_tui.ops.metrics import MetricsServer, health_verdict
from tests.ops.conftest import T0, ScriptedFeed, minute_ticks, settle

EXPECTED = {
    "slob_ticks",
    "slob_ticks_received",
    "slob_candles",
    "slob_feed_reconnects",
    "slob_buffer_dropped_ticks",
    "slob_buffer_utilization_ratio",
    "slob_last_candle_age_seconds",
    "slob_setup_transitions",
    "slob_setups",
    "slob_order_events",
    "slob_orders",
    "slob_pnl_realized",
    "slob_pnl_unrealized",
    "slob_safe_mode",
    "slob_store_size_bytes",
    "slob_data_quality_findings",
    "slob_healthy",
    "slob_since_progress_seconds",
}


class ScriptedTracker:
    """Starts one setup on the first candle and invalidates it (RETRACE) on the third."""

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.n = 0

    def on_candle(self, candle: Any) -> list[Event]:
        self.n += 1
        if self.n == 1:
            state, prev, reason, etype = SetupState.WATCHING_LIQ1, None, None, "SETUP_STARTED"
        elif self.n == 3:
            state, prev, reason = SetupState.INVALIDATED, SetupState.WATCHING_LIQ1, "RETRACE"
            etype = "SETUP_INVALIDATED"
        else:
            return []
        update = SetupUpdate(
            f"{self.symbol}-1",
            self.symbol,
            Direction.SHORT,
            state,
            prev,
            reason,
            self.n,
            candle.start,
            {"ref_high": 1.0, "ref_low": 0.5},
        )
        return [Event(EventType[etype], candle.start, update, "tracker")]


def parse(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """{family name: {sorted labels: value}} for every sample."""
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        samples = out.setdefault(family.name, {})
        for s in family.samples:
            if s.name.endswith("_created"):
                continue
            samples[tuple(sorted(s.labels.items()))] = s.value
    return out


def value(m: dict[str, Any], name: str, **labels: str) -> float:
    return m[name][tuple(sorted(labels.items()))]


class WithOrders:
    """The engine as a node presents it: its snapshot carries the orders and positions."""

    def __init__(self, engine: LiveTradingEngine, orders: list, positions: list) -> None:
        self.engine, self.orders, self.positions = engine, orders, positions

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)

    def snapshot(self) -> Any:
        return self.engine.snapshot(orders=self.orders, positions=self.positions)


@pytest.fixture
async def rig(clock, tmp_path):
    feed = ScriptedFeed(("NQ",))
    engine = LiveTradingEngine(
        feed, clock=clock, tracker_factory=ScriptedTracker, clock_tick_s=0.01, buffer_size=50
    )
    orders: list[Order] = []
    positions: list[Position] = []
    db = tmp_path / "candles.db"
    db.write_bytes(b"x" * 4096)
    server = MetricsServer(WithOrders(engine, orders, positions), port=0, db_path=db,
                           stale_after_s=120)  # fmt: skip
    await engine.start()
    await server.start()
    client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}")
    yield engine, feed, server, client, orders, positions
    await client.aclose()
    await engine.stop("test over")
    await server.close()


async def scrape(client: httpx.AsyncClient) -> dict[str, Any]:
    r = await client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    return parse(r.text)


async def test_every_metric_is_present_and_moves(rig, clock):
    engine, feed, server, client, orders, positions = rig
    first = await scrape(client)
    assert EXPECTED <= set(first), EXPECTED - set(first)
    assert value(first, "slob_healthy") == 1
    assert value(first, "slob_store_size_bytes") == 4096

    for minute in range(4):
        feed.push(minute_ticks("NQ", minute, 100.0 + minute))
    clock.set(T0 + 4 * NS_PER_MINUTE + 3 * NS_PER_SECOND)
    await settle(lambda: engine.candles_processed >= 4)
    for kind in ("price_spike", "price_spike", "stale_quote"):
        engine.bus.emit(Event(EventType.DATA_QUALITY, clock.now_ns(), DataQualityFinding(kind)))
    order = Order("o1", "c1", "NQ", Side.SELL, 2, "limit", OrderStatus.NEW, limit_price=101.0)
    orders.append(order)
    placed = OrderPlaced("c1", "o1", "NQ", Side.SELL, 2, None, 101.0, 103.0, 97.0, False)
    engine.bus.emit(Event(EventType.ORDER_PLACED, clock.now_ns(), placed))
    order.status = OrderStatus.FILLED
    filled = OrderFilled("c1", "o1", "NQ", Side.SELL, 2, 101.0, "entry", "x1", None, T0)
    engine.bus.emit(Event(EventType.ORDER_FILLED, clock.now_ns(), filled))
    positions.append(Position("NQ", -2, 101.0, last_price=100.0))
    trade = TradeClosed("c0", None, "NQ", "SHORT", 1, 103.0, 90.5, T0, T0, "target", 12.5)
    engine.bus.emit(Event(EventType.TRADE_CLOSED, clock.now_ns(), trade))
    engine.feed_event(Event(EventType.FEED_DISCONNECTED, clock.now_ns(), FeedDisconnected("x")))
    engine.feed_event(Event(EventType.SAFE_MODE, clock.now_ns(), SafeModeChange(True)))

    m = await scrape(client)
    assert value(m, "slob_ticks", symbol="NQ") == 20
    assert value(m, "slob_ticks_received") == 20
    assert value(m, "slob_candles", symbol="NQ") == 4
    assert value(m, "slob_last_candle_age_seconds") == 3.0
    assert value(m, "slob_setup_transitions", state="WATCHING_LIQ1", reason="") == 1
    assert value(m, "slob_setup_transitions", state="INVALIDATED", reason="RETRACE") == 1
    assert value(m, "slob_setups", state="INVALIDATED") == 1
    assert value(m, "slob_data_quality_findings", kind="price_spike") == 2
    assert value(m, "slob_data_quality_findings", kind="stale_quote") == 1
    assert value(m, "slob_order_events", status="filled") == 1
    assert value(m, "slob_orders", status="filled") == 1
    assert value(m, "slob_pnl_realized") == 12.5
    assert value(m, "slob_pnl_unrealized") == 2.0  # short 2 from 101 to 100
    assert value(m, "slob_position_qty", symbol="NQ") == -2
    assert value(m, "slob_feed_reconnects") == 1
    assert value(m, "slob_safe_mode") == 1

    # an overload: 80 ticks pushed into a 50-tick buffer while the consumer cannot run
    engine.put_ticks(minute_ticks("NQ", 5, 100.0, n=80))
    m = await scrape(client)
    assert value(m, "slob_buffer_dropped_ticks") == 30


async def test_healthz_red_when_the_feed_stalls_and_green_when_it_resumes(rig, clock):
    engine, feed, server, client, *_ = rig
    feed.push(minute_ticks("NQ", 0, 100.0))
    clock.set(T0 + NS_PER_MINUTE + 3 * NS_PER_SECOND)
    await settle(lambda: engine.candles_processed == 1)
    r = await client.get("/healthz")
    assert r.status_code == 200 and r.json()["healthy"] is True

    clock.advance(150 * NS_PER_SECOND)  # no candle for 150 s of engine time > 120 s limit
    r = await client.get("/healthz")
    assert r.status_code == 503
    body = r.json()
    assert body["healthy"] is False and "no candle processed" in body["problems"][0]
    assert value(await scrape(client), "slob_healthy") == 0

    feed.push(minute_ticks("NQ", 3, 101.0))
    clock.set(T0 + 4 * NS_PER_MINUTE + 3 * NS_PER_SECOND)
    await settle(lambda: engine.candles_processed >= 2)
    r = await client.get("/healthz")
    assert r.status_code == 200 and r.json()["since_progress_s"] == 0


async def test_stall_while_market_closed_is_healthy(clock):
    feed = ScriptedFeed()
    engine = LiveTradingEngine(feed, clock=clock, enable_tracker=False, clock_tick_s=0.01)
    await engine.start()
    try:
        clock.advance(3600 * NS_PER_SECOND)
        ok, body = health_verdict(engine, 120, market_open=lambda _ns: False)
        assert ok and body["market_open"] is False
        ok, body = health_verdict(engine, 120, market_open=lambda _ns: True)
        assert not ok
    finally:
        await engine.stop("test over")
    ok, body = health_verdict(engine, 120, market_open=lambda _ns: False)
    assert not ok and body["problems"][0].startswith("engine stopped")


async def test_a_store_fault_turns_healthz_red(clock):
    """The node reports `store_fault` while its stores refuse writes (trading is halted then):
    /healthz must answer 503 with the reason, so a supervisor or a probe sees it."""
    engine = LiveTradingEngine(ScriptedFeed(), clock=clock, enable_tracker=False)
    await engine.start()
    try:
        storage = {"ok": False, "fault": "candle store: database or disk is full"}
        fault = {**engine.health(), "status": "store_fault", "storage": storage}
        ok, body = health_verdict(engine, 120, market_open=lambda _ns: False, health=fault)
        assert not ok
        assert body["problems"] == ["store fault: candle store: database or disk is full"]
        ok, _ = health_verdict(engine, 120, market_open=lambda _ns: False)
        assert ok
    finally:
        await engine.stop("test over")


async def test_bad_requests_get_clear_answers(rig):
    _, _, server, client, *_ = rig
    assert (await client.get("/nope")).status_code == 404
    assert (await client.post("/metrics", content=b"x")).status_code == 405
    head = await client.head("/metrics")
    assert head.status_code == 200 and head.content == b""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"garbage\r\n\r\n")
    await writer.drain()
    reply = await reader.read()
    writer.close()
    assert reply.startswith(b"HTTP/1.1 400 ")
    # the server still answers after bad input
    assert (await client.get("/metrics")).status_code == 200


async def test_port_in_use_is_a_clear_error(clock):
    from slob_tui.config import Settings
    from slob_tui.errors import UsageError
    from slob_tui.ops.wiring import OpsRuntime

    blocker = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = blocker.sockets[0].getsockname()[1]
    engine = LiveTradingEngine(ScriptedFeed(), clock=clock, enable_tracker=False)
    ops = OpsRuntime(engine, Settings(), metrics_port=port)
    try:
        with pytest.raises(UsageError, match=f"--metrics-port {port}: cannot listen"):
            await ops.start()
    finally:
        blocker.close()
        await blocker.wait_closed()
