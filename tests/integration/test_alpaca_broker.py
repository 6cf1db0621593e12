"""AlpacaBroker and the executor against the local Alpaca (REST + trade_updates on loopback),
through alpaca-py's real TradingClient: brackets and fills, 403, 429, 422, emulated crypto."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from slob_tui.brokers.alpaca import AlpacaBroker, parse_ts
from slob_tui.brokers.base import DuplicateOrderError, OrderRejectedError, OrderRequest
from slob_tui.config import Settings
from slob_tui.core.events import Event, EventType
from slob_tui.core.models import NS_PER_MINUTE, Direction, OrderStatus, Side
from slob_tui.core.retry import RetryPolicy
from slob_tui.engine.bus import EventBus
from slob_tui.errors import UsageError
from slob_tui.execution.executor import OrderExecutor
from slob_tui.execution.risk import RiskLimits
from slob_tui.storage.state import StateManager
from tests.fakes.alpaca import Bar, LocalAlpaca, ReplayFills
from tests.polling import until
from tests.unit.execution.conftest import T0, trigger_event, triggered

KEY, SECRET = "PKBROKERTEST0001", "broker-secret-never-printed"


@pytest.fixture
async def server() -> AsyncIterator[LocalAlpaca]:
    srv = LocalAlpaca([], KEY, SECRET)
    await srv.start()
    yield srv
    await srv.stop()


def settings_for(srv: LocalAlpaca) -> Settings:
    return Settings(
        alpaca_api_key=KEY,
        alpaca_api_secret=SECRET,
        alpaca_api_base_url=srv.rest_url,
        alpaca_trading_stream_url=srv.trading_stream_url,
    )


class DiesBeforeExits(AlpacaBroker):
    """The process is killed as it is about to send an emulated bracket's exits (no stream:
    the fill arrives with the REST reply, so the moment of death is certain)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **{**kwargs, "stream": False})

    async def submit(self, req: OrderRequest):  # noqa: ANN201
        if req.leg != "entry":
            raise SystemExit("killed")
        return await super().submit(req)


class DiesNever(AlpacaBroker):
    """No trade_updates stream: what the executor learns comes with the REST replies."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **{**kwargs, "stream": False})


class Setup:
    def __init__(
        self,
        srv: LocalAlpaca,
        db: Path,
        limits: RiskLimits | None = None,
        broker_cls: type[AlpacaBroker] = AlpacaBroker,
    ) -> None:
        self.broker_cls = broker_cls
        self.srv = srv
        self.db = db
        self.limits = limits
        self.events: list[Event] = []

    async def __aenter__(self) -> Setup:
        self.state = await StateManager(self.db).open()
        self.broker = self.broker_cls(settings_for(self.srv), paper=True)
        self.bus = EventBus()
        self.bus.subscribe(None, self.events.append)

        async def no_sleep(_s: float) -> None:
            await asyncio.sleep(0)

        self.ex = OrderExecutor(
            self.broker,
            self.state,
            self.bus,
            limits=self.limits,
            retry=RetryPolicy(attempts=3),
            sleep=no_sleep,
        )
        self.broker.on_reconnect = self.ex.reconcile
        await self.broker.connect()
        if self.broker._use_stream:
            await asyncio.wait_for(self.broker.stream_connected.wait(), 5)
        await self.ex.load()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.broker.close()
        await self.state.close()

    def of(self, etype: EventType) -> list[Any]:
        return [e.data for e in self.events if e.type is etype]


async def test_bracket_placed_filled_and_closed_through_alpaca_py(server, tmp_path) -> None:
    server.set_price("QQQ", 400.0)
    async with Setup(server, tmp_path / "s.db") as s:
        u = triggered(0, Direction.LONG, entry=400, stop=395.004, target=410.006, symbol="QQQ")
        await s.ex.on_setup_event(trigger_event(u))
        [placed] = s.of(EventType.ORDER_PLACED)
        body = server.trading.orders[placed.order_id]
        assert (
            body["order_class"] == "bracket"
            and body["client_order_id"] == "slob-QQQ-L-20231114221100-E"
        )
        legs = [server.trading.orders[x] for x in body["_legs"]]
        assert sorted((x["type"], x["limit_price"] or x["stop_price"]) for x in legs) == [
            ("limit", "410.01"),
            ("stop", "395"),
        ]  # cents, as Alpaca wants
        await until(lambda: len(s.of(EventType.ORDER_FILLED)) == 1)  # market entry, streamed
        server.set_price("QQQ", 410.5)
        await until(lambda: len(s.of(EventType.TRADE_CLOSED)) == 1)
        [trade] = s.of(EventType.TRADE_CLOSED)
        assert (trade.exit_leg, trade.entry_price, trade.exit_price) == (
            "target",
            400.0,
            410.01,
        )
        await until(lambda: any(c.leg == "stop" for c in s.of(EventType.ORDER_CANCELLED)))
        assert await s.broker.positions() == []
        assert {r.order.leg: r.order.status for r in await s.state.orders()} == {
            "entry": OrderStatus.FILLED,
            "target": OrderStatus.FILLED,
            "stop": OrderStatus.CANCELED,
        }


async def test_insufficient_buying_power_is_rejected_once(server, tmp_path) -> None:
    server.set_price("QQQ", 400.0)
    async with Setup(server, tmp_path / "s.db", RiskLimits(qty=1000)) as s:
        u = triggered(0, Direction.LONG, entry=400, stop=395, target=410, symbol="QQQ")
        requests_before = server.rest.requests
        await s.ex.on_setup_event(trigger_event(u))
        [rej] = s.of(EventType.ORDER_REJECTED)
        assert "403" in rej.reason and "insufficient buying power" in rej.reason
        assert server.rest.requests - requests_before == 1  # never retried
        assert server.trading.orders == {}


async def test_rate_limited_submit_is_retried_then_sent_once(server, tmp_path) -> None:
    server.set_price("QQQ", 400.0)
    async with Setup(server, tmp_path / "s.db") as s:
        server.rest.limiter.per_minute = len(server.rest.limiter.hits)  # the minute is used up
        u = triggered(0, Direction.SHORT, entry=400, stop=405, target=390, symbol="QQQ")
        await s.ex.on_setup_event(trigger_event(u))
        assert s.ex.retries == 2 and s.of(EventType.ORDER_PLACED) == []
        assert "429" in s.of(EventType.ERROR)[0].error
        server.rest.limiter.per_minute = 200
        server.rest.limiter.hits.clear()  # the next minute
        assert await s.ex.reconcile() == []
        assert len(s.of(EventType.ORDER_PLACED)) == 1
        cids = [
            o["client_order_id"] for o in server.trading.orders.values() if o["_parent"] is None
        ]
        assert cids == ["slob-QQQ-S-20231114221100-E"]


async def test_duplicate_client_id_is_fetched_not_placed_twice(server, tmp_path) -> None:
    server.set_price("QQQ", 400.0)
    async with Setup(server, tmp_path / "s.db") as s:
        req = OrderRequest("slob-dup-1", "QQQ", Side.BUY, 1, "limit", limit_price=390)
        first = await s.broker.submit(req)
        with pytest.raises(DuplicateOrderError):
            await s.broker.submit(req)
        assert (await s.broker.get_by_client_id("slob-dup-1"))[0].id == first[0].id
        assert await s.broker.get_by_client_id("nope") == []
        # the executor's view of a crash after the submit but before the reply was saved
        u = triggered(0, Direction.LONG, entry=400, stop=395, target=410, symbol="QQQ")
        await s.ex.on_setup_event(trigger_event(u))
        rec = await s.state.get_order("slob-QQQ-L-20231114221100-E")
        rec.order.id, rec.order.status = "", OrderStatus.PENDING_NEW
        await s.state.save_order(rec)
        await s.ex.submit_entry(rec)  # the retry after restart: 422, then fetched
        assert s.ex.duplicates == 1
        parents = [
            o
            for o in server.trading.orders.values()
            if o["client_order_id"] == rec.order.client_order_id
        ]
        assert len(parents) == 1
        assert (await s.state.get_order(rec.order.client_order_id)).order.id == parents[0]["id"]


async def test_emulated_crypto_bracket_survives_a_restart_between_legs(server, tmp_path) -> None:
    server.set_price("BTC/USD", 30_000.0)
    db = tmp_path / "s.db"
    async with Setup(server, db, broker_cls=DiesBeforeExits) as s:
        u = triggered(0, Direction.LONG, 30_000, 29_500, 31_000, symbol="BTC/USD")
        with pytest.raises(SystemExit):
            await s.ex.on_setup_event(trigger_event(u))
        [entry] = server.trading.orders.values()
        assert (entry["order_class"], entry["status"]) == ("simple", "filled")
    async with Setup(server, db) as s:  # restart: entry filled, exits never placed
        assert await s.ex.reconcile() == []
        exits = sorted(
            (o["type"], o["status"]) for o in server.trading.orders.values() if o["side"] == "sell"
        )
        assert exits == [("limit", "new"), ("stop_limit", "new")]
        assert await s.ex.reconcile() == []  # again: nothing placed twice
        assert len(server.trading.orders) == 3
        server.set_price("BTC/USD", 29_480.0)  # through the stop, above its limit
        await until(lambda: len(s.of(EventType.TRADE_CLOSED)) == 1)
        await until(lambda: any(c.leg == "target" for c in s.of(EventType.ORDER_CANCELLED)))
        [trade] = s.of(EventType.TRADE_CLOSED)
        assert (trade.exit_leg, trade.exit_price) == ("stop", 29_480.0)
        assert await s.broker.positions() == []


async def test_live_needs_confirmation_and_keys_never_show(server) -> None:
    unconfirmed = AlpacaBroker(settings_for(server), paper=False, stream=False)
    for call in (
        unconfirmed.connect(),
        unconfirmed.submit(OrderRequest("live-1", "QQQ", Side.BUY, 1)),
    ):
        with pytest.raises(UsageError, match="confirmation"):
            await call
    assert server.rest.requests == 0  # nothing reached the account
    unconfirmed.confirm_live()  # the console's typed confirmation
    await unconfirmed.connect()
    b = AlpacaBroker(settings_for(server), paper=False, confirmed_live=True, stream=False)
    assert SECRET not in repr(b) and KEY not in repr(b) and not b.paper
    with pytest.raises(UsageError, match="ALPACA_API_KEY"):
        AlpacaBroker(Settings(), paper=True)
    with pytest.raises(OrderRejectedError):
        await AlpacaBroker(settings_for(server), stream=False).submit(
            OrderRequest("x", "QQQ", Side.BUY, 1, "limit")
        )  # no limit price: 422
    assert parse_ts("2021-02-22T15:51:45.335689322Z") == 1614009105335689322


async def test_stream_reconnect_reconciles_and_counts_a_fill_once(server, tmp_path) -> None:
    """After a dropped trade_updates connection the executor reconciles over REST; a fill the
    new stream and the reconcile both report is recorded once."""
    server.set_price("QQQ", 400.0)
    async with Setup(server, tmp_path / "s.db") as s:
        u = triggered(0, Direction.SHORT, entry=400, stop=404, target=390, symbol="QQQ")
        await s.ex.on_setup_event(trigger_event(u))
        await until(lambda: len(s.of(EventType.ORDER_FILLED)) == 1)
        reconciled = []

        async def on_reconnect() -> None:
            server.set_price("QQQ", 389.0)  # the target fills as we come back
            reconciled.append(await s.ex.reconcile())

        s.broker.on_reconnect = on_reconnect
        for conn in list(server._ws_server.connections):  # the network drops the stream
            conn.transport.abort()
        await until(lambda: len(s.of(EventType.TRADE_CLOSED)) == 1)
        await asyncio.sleep(0.2)  # let the stream's own copy of the fill arrive too
        assert s.broker.stream_reconnects == 1 and reconciled == [[]]
        [trade] = s.of(EventType.TRADE_CLOSED)
        assert (trade.exit_leg, trade.exit_price, trade.pnl) == ("target", 390.0, 10.0)
        assert [f.leg for f in s.of(EventType.ORDER_FILLED)] == ["entry", "target"]
        [target] = [r for r in await s.state.orders() if r.order.leg == "target"]
        assert [f.qty for f in await s.state.fills(target.order.client_order_id)] == [1.0]


async def test_detached_placement_frees_the_pipeline_and_keeps_the_order(server, tmp_path) -> None:
    """With a remote broker the executor places from a task of its own: the bus (the candle
    pipeline) gets back at once, setups are placed in order, once each, and `drain` waits for
    them (the engine's stop does, before the broker closes). Attached, the emit waits."""
    server.set_price("QQQ", 400.0)
    async with Setup(server, tmp_path / "s.db") as s:
        first = triggered(0, Direction.LONG, entry=400, stop=395, target=410, symbol="QQQ")
        second = triggered(5, Direction.SHORT, entry=400, stop=405, target=390, symbol="QQQ")
        s.ex.subscribe(detached=True)
        await s.bus.emit_and_wait(trigger_event(first))
        await s.bus.emit_and_wait(trigger_event(second))
        assert s.of(EventType.ORDER_PLACED) == []  # nothing sent while the pipeline ran
        await asyncio.wait_for(s.ex.drain(), 60)  # a hang fails here instead of stalling CI
        placed = [p.client_order_id for p in s.of(EventType.ORDER_PLACED)]
        assert placed == ["slob-QQQ-L-20231114221100-E", "slob-QQQ-S-20231114221600-E"]
        assert len([o for o in server.trading.orders.values() if o["_parent"] is None]) == 2
    async with Setup(server, tmp_path / "t.db") as s:
        s.ex.subscribe()
        third = triggered(9, Direction.LONG, entry=400, stop=395, target=410, symbol="QQQ")
        await s.bus.emit_and_wait(trigger_event(third))
        assert len(s.of(EventType.ORDER_PLACED)) == 1  # attached: placed before the emit returns


def test_the_engine_places_detached_with_alpaca_and_attached_with_paper_or_a_replay(
    server, tmp_path
) -> None:
    """Detached, a replay at full speed ran on for an hour of market time while an Alpaca
    order was out, and the order was then refused as a stale signal."""
    from slob_tui.config import load_settings
    from slob_tui.execution.wiring import BrokerSetup
    from slob_tui.node import NodeConfig, TradingNode
    from tests.unit.execution.test_engine_wiring import IdleFeed

    settings = load_settings(env={}, dotenv=None)

    def alpaca(_state):  # noqa: ANN001, ANN202
        broker = AlpacaBroker(settings_for(server), paper=True)
        return BrokerSetup(broker, stream=broker)

    remote = TradingNode(
        NodeConfig(db=str(tmp_path / "a.db"), settings=settings), feed=IdleFeed(), venue=alpaca
    ).executor
    paper = TradingNode(
        NodeConfig(db=str(tmp_path / "p.db"), settings=settings), feed=IdleFeed()
    ).executor
    replayed = TradingNode(  # the data drives the clock: it waits for the order
        NodeConfig(db=str(tmp_path / "r.db"), settings=settings),
        feed=IdleFeed("REPLAY"),
        venue=alpaca,
    ).executor
    assert remote._queue is not None and paper._queue is None and replayed._queue is None


async def test_malformed_trade_updates_are_skipped_counted_and_the_stream_goes_on(
    server, tmp_path
) -> None:
    """The local Alpaca sends trade_updates the broker cannot read (an order without a
    symbol, an unknown side, a list for data, not JSON): each is logged, counted in health
    and skipped; the same connection then delivers the next real fill."""
    server.set_price("QQQ", 400.0)
    async with Setup(server, tmp_path / "s.db") as s:
        for garbage in (
            {"event": "fill", "order": {"id": "x1"}},
            {"event": "new", "order": {"id": "x2", "symbol": "QQQ", "side": "sideways"}},
            {"event": "fill"},
        ):
            for listener in list(server.trading.listeners):
                listener(garbage)
        for conn in list(server._ws_server.connections):
            await conn.send(b'{"stream": "trade_updates", "data": [1, 2]}')
            await conn.send(b"\x00\xff not json")
        u = triggered(0, Direction.LONG, entry=400, stop=395, target=410, symbol="QQQ")
        await s.ex.on_setup_event(trigger_event(u))
        await until(lambda: len(s.of(EventType.ORDER_FILLED)) == 1)
        server.set_price("QQQ", 410.5)  # the target's fill can only arrive by the stream
        await until(lambda: len(s.of(EventType.TRADE_CLOSED)) == 1)
        assert s.broker.malformed_updates == 5 and s.ex.health().malformed_updates == 5
        assert s.broker.stream_reconnects == 0 and not s.broker._stream_task.done()


@pytest.mark.parametrize("stream", [False, True], ids=["rest-reply-only", "with-stream"])
async def test_a_bracket_settled_before_the_reply_is_one_trade_with_its_rr(
    tmp_path: Path, stream: bool
) -> None:
    """The venue fills the entry and then the stop before the submit's reply comes back (a
    fast market): the reply holds the filled stop leg before its filled entry, and the stream
    may tell of the fills while the reply is being taken in. Either way the trade is recorded
    once, with the entry's R:R, as when the fills come one at a time."""
    t = T0
    bars = [
        Bar(t, 400.0, 400.5, 399.5, 400.0),  # the trigger candle
        Bar(t + NS_PER_MINUTE, 400.0, 400.2, 394.0, 395.0),  # the entry's, through the stop
    ]
    srv = LocalAlpaca([], KEY, SECRET, replay=ReplayFills({"QQQ": bars}, lambda _cid: t))
    await srv.start()
    try:
        cls = AlpacaBroker if stream else DiesNever
        async with Setup(srv, tmp_path / "s.db", broker_cls=cls) as s:
            u = triggered(0, Direction.LONG, entry=400, stop=395.004, target=410.006, symbol="QQQ")
            await s.ex.on_setup_event(trigger_event(u))
            await until(lambda: len(s.of(EventType.TRADE_CLOSED)) == 1)
            await asyncio.sleep(0.2)  # any late update from the stream has arrived
            trades = s.of(EventType.TRADE_CLOSED)
            assert len(trades) == 1
            [trade] = trades
            assert (trade.exit_leg, trade.entry_price, trade.exit_price) == (
                "stop",
                400.0,
                395.0,
            )
            assert trade.actual_rr == pytest.approx((410.006 - 400.0) / (400.0 - 395.004))
            assert trade.entry_ts == trade.exit_ts == t + NS_PER_MINUTE
            assert {r.order.leg: r.order.status for r in await s.state.orders()} == {
                "entry": OrderStatus.FILLED,
                "stop": OrderStatus.FILLED,
                "target": OrderStatus.CANCELED,
            }
    finally:
        await srv.stop()
