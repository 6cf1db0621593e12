"""alpaca-py's own clients, unchanged, judge the local Alpaca: if they work against it, the
feed and broker tests against it mean something."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from alpaca.common.exceptions import APIError
from alpaca.data.enums import DataFeed
from alpaca.data.live import CryptoDataStream, StockDataStream
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderClass, OrderSide, QueryOrderStatus, TimeInForce
from alpaca.trading.requests import (
    GetOrdersRequest,
    MarketOrderRequest,
    StopLossRequest,
    TakeProfitRequest,
)
from alpaca.trading.stream import TradingStream

from tests.fakes.alpaca import LocalAlpaca, fakepaca_trades

from .conftest import KEY, SECRET, wait_for


async def _stream_in_thread(stream: Any, done: Any) -> None:
    thread = threading.Thread(target=stream.run, daemon=True)
    thread.start()
    try:
        await wait_for(done, 30, "alpaca-py stream data")
    finally:
        await asyncio.to_thread(stream.stop)
        await asyncio.to_thread(thread.join, 10)
    assert not thread.is_alive()


async def test_stock_data_stream_receives_the_tape(spy_trades):
    got: list[Any] = []
    async with LocalAlpaca(spy_trades, KEY, SECRET) as server:
        stream = StockDataStream(
            KEY, SECRET, feed=DataFeed.IEX, url_override=server.stream_url("iex")
        )

        async def on_trade(trade: Any) -> None:
            got.append(trade)

        stream.subscribe_trades(on_trade, "SPY")
        await _stream_in_thread(stream, lambda: len(got) >= 500)
    for trade, src in zip(got[:500], spy_trades, strict=False):
        assert trade.symbol == "SPY" and trade.price == src.price and trade.size == src.size
        assert int(trade.timestamp.timestamp() * 1_000_000) * 1000 == src.ts
        assert tuple(trade.conditions) == src.conditions and trade.exchange == src.exchange


async def test_crypto_data_stream_receives_trades():
    # paced so that frames still flow when the test stops the client: alpaca-py notices a
    # stop request only between frames (or after 5 s of silence)
    tape = fakepaca_trades(1_700_000_000_000_000_000, 5000, symbol="BTC/USD")
    got: list[Any] = []
    async with LocalAlpaca(tape, KEY, SECRET, batch_size=20, speed=100) as server:
        stream = CryptoDataStream(KEY, SECRET, url_override=server.stream_url("crypto"))

        async def on_trade(trade: Any) -> None:
            got.append(trade)

        stream.subscribe_trades(on_trade, "BTC/USD")
        await _stream_in_thread(stream, lambda: len(got) >= 300)
    assert [t.price for t in got[:300]] == [t.price for t in tape[:300]]
    assert got[0].symbol == "BTC/USD"


def _bracket(cid: str, qty: float = 1, tp: float = 101.0, sl: float = 99.0) -> MarketOrderRequest:
    return MarketOrderRequest(
        symbol="SPY",
        qty=qty,
        side=OrderSide.BUY,
        time_in_force=TimeInForce.DAY,
        order_class=OrderClass.BRACKET,
        client_order_id=cid,
        take_profit=TakeProfitRequest(limit_price=tp),
        stop_loss=StopLossRequest(stop_price=sl),
    )


def _trading_session(client: TradingClient, server: LocalAlpaca) -> dict[str, Any]:
    """Runs in a thread (alpaca-py's client is synchronous)."""
    out: dict[str, Any] = {"account": client.get_account(), "clock": client.get_clock()}
    server.set_price("SPY", 100.0)
    out["order"] = client.submit_order(_bracket("slob-SPY-long-1"))
    with pytest.raises(APIError) as dup:
        client.submit_order(_bracket("slob-SPY-long-1"))
    out["dup"] = dup.value
    with pytest.raises(APIError) as poor:
        client.submit_order(_bracket("slob-SPY-long-2", qty=10_000_000))
    out["poor"] = poor.value
    with pytest.raises(APIError) as bad:
        client.submit_order(_bracket("slob-SPY-long-3", tp=99.0, sl=101.0))
    out["bad"] = bad.value
    out["by_cid"] = client.get_order_by_client_id("slob-SPY-long-1")
    out["open"] = client.get_orders(GetOrdersRequest(status=QueryOrderStatus.OPEN, nested=True))
    out["positions"] = client.get_all_positions()
    tp_leg = next(leg for leg in out["order"].legs if leg.order_type.value == "limit")
    client.cancel_order_by_id(tp_leg.id)
    with pytest.raises(APIError) as again:
        client.cancel_order_by_id(tp_leg.id)
    out["cancel_again"] = again.value
    client.submit_order(_bracket("slob-SPY-long-4"))
    out["cancel_all"] = client.cancel_orders()
    return out


async def test_trading_client_account_bracket_cancel_and_errors(spy_trades):
    async with LocalAlpaca(spy_trades, KEY, SECRET) as server:
        client = TradingClient(KEY, SECRET, paper=True, url_override=server.rest_url)
        r = await asyncio.to_thread(_trading_session, client, server)
    assert r["account"].status.value == "ACTIVE" and float(r["account"].cash) == 100_000
    assert r["clock"].timestamp is not None
    order = r["order"]
    assert order.client_order_id == "slob-SPY-long-1" and order.status.value == "filled"
    assert order.order_class == OrderClass.BRACKET and len(order.legs) == 2
    assert float(order.filled_avg_price) == 100.0
    assert (r["dup"].status_code, r["dup"].code) == (422, 40010001)
    assert "client_order_id must be unique" in r["dup"].message
    assert (r["poor"].status_code, r["poor"].code) == (403, 40310000)
    assert r["bad"].status_code == 422 and "take_profit" in r["bad"].message
    assert r["by_cid"].id == order.id
    open_legs = [leg for o in r["open"] for leg in (o.legs or [])]
    assert {leg.order_type.value for leg in open_legs} == {"limit", "stop"}
    assert [(p.symbol, p.qty) for p in r["positions"]] == [("SPY", "1")]
    assert r["cancel_again"].status_code == 422
    # order 1's stop (its take-profit was cancelled alone), then order 4's two exits
    assert [c.status for c in r["cancel_all"]] == [200, 200, 200]


async def test_trading_stream_receives_a_fill(spy_trades):
    updates: list[Any] = []
    async with LocalAlpaca(spy_trades, KEY, SECRET) as server:
        stream = TradingStream(KEY, SECRET, paper=True, url_override=server.trading_stream_url)

        async def on_update(update: Any) -> None:
            updates.append(update)

        stream.subscribe_trade_updates(on_update)
        thread = threading.Thread(target=stream.run, daemon=True)
        thread.start()
        try:
            await wait_for(lambda: server.trade_update_listeners == 1, 20, "listening")
            server.set_price("SPY", 50.0)
            client = TradingClient(KEY, SECRET, paper=True, url_override=server.rest_url)
            await asyncio.to_thread(client.submit_order, _bracket("fill-me", tp=52, sl=48))
            await wait_for(lambda: any(u.event == "fill" for u in updates), 20, "a fill")
            server.set_price("SPY", 52.5)  # the take-profit fills, the stop is cancelled
            await wait_for(lambda: sum(u.event == "fill" for u in updates) == 2, 20, "exit")
        finally:
            await asyncio.to_thread(stream.stop)
            await asyncio.to_thread(thread.join, 10)
    fills = [u for u in updates if u.event == "fill"]
    assert fills[0].order.client_order_id == "fill-me" and float(fills[0].price) == 50.0
    assert float(fills[1].price) == 52.0 and fills[1].order.side.value == "sell"
    assert any(u.event == "canceled" and u.order.order_type.value == "stop" for u in updates)
    assert float(fills[1].position_qty) == 0
