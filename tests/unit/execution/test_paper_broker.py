"""PaperBroker fills: next open, touch, the stop first, gaps, OCO, restart."""

from __future__ import annotations

import pytest

from slob_tui.brokers.base import DuplicateOrderError, OrderRejectedError, OrderRequest
from slob_tui.brokers.paper import PaperBroker
from slob_tui.core.models import OrderStatus, Side

from .conftest import T0, candle


def bracket(
    side: Side = Side.BUY,
    stop: float = 95.0,
    target: float = 110.0,
    cid: str = "b1",
    qty: float = 2.0,
    at: int = 0,
) -> OrderRequest:
    return OrderRequest(
        cid,
        "NQ",
        side,
        qty,
        take_profit=target,
        stop_loss=stop,
        created_at=T0 + at * 60_000_000_000,
    )


async def started(broker: PaperBroker) -> None:
    await broker.on_candle(candle(0, 100, 101, 99, 100))


def by_leg(orders: list, leg: str):
    return next(o for o in orders if o.leg == leg)


async def test_market_entry_fills_at_the_next_candles_open_not_the_current_one() -> None:
    b = PaperBroker()
    await started(b)
    placed = await b.submit(bracket())
    assert [o.leg for o in placed] == ["entry", "target", "stop"]
    assert by_leg(placed, "stop").status is OrderStatus.HELD
    await b.on_candle(candle(0, 1, 1, 1, 1))  # the same minute again: ignored
    assert (await b.get_order(placed[0].id)).status is OrderStatus.NEW
    await b.on_candle(candle(1, 100.5, 102, 99.5, 101))
    entry = await b.get_order(placed[0].id)
    assert (entry.status, entry.filled_avg_price) == (OrderStatus.FILLED, 100.5)
    assert [(p.symbol, p.qty, p.avg_price, p.last_price) for p in await b.positions()] == [
        ("NQ", 2.0, 100.5, 101)
    ]
    assert (await b.positions())[0].unrealized_pnl == pytest.approx(1.0)


async def test_target_by_touch_cancels_the_stop_and_books_the_pnl() -> None:
    b = PaperBroker(starting_balance=10_000)
    await started(b)
    placed = await b.submit(bracket())
    await b.on_candle(candle(1, 100, 104, 99, 103))
    await b.on_candle(candle(2, 103, 110.25, 102, 109))  # touches 110
    tgt, stp = [await b.get_order(by_leg(placed, x).id) for x in ("target", "stop")]
    assert (tgt.status, tgt.filled_avg_price) == (OrderStatus.FILLED, 110.0)
    assert stp.status is OrderStatus.CANCELED
    assert await b.positions() == []
    acct = await b.account()
    assert acct["realized_pnl"] == pytest.approx(20.0)  # (110 - 100) * 2
    assert acct["cash"] == pytest.approx(10_020.0)


async def test_when_one_candle_touches_both_the_stop_fills_first() -> None:
    b = PaperBroker()
    await started(b)
    placed = await b.submit(bracket())
    await b.on_candle(candle(1, 100, 101, 99, 100))
    await b.on_candle(candle(2, 100, 111, 94, 100))  # both 110 and 95 inside
    assert (await b.get_order(by_leg(placed, "stop").id)).filled_avg_price == 95.0
    assert (await b.get_order(by_leg(placed, "target").id)).status is OrderStatus.CANCELED
    assert (await b.account())["realized_pnl"] == pytest.approx(-10.0)


async def test_entry_and_exit_checked_on_the_entry_candle_stop_first() -> None:
    b = PaperBroker()
    await started(b)
    placed = await b.submit(bracket(side=Side.SELL, stop=103, target=96))
    await b.on_candle(candle(1, 100, 103.5, 95, 99))  # entry at 100, both touched
    stop = await b.get_order(by_leg(placed, "stop").id)
    assert (stop.status, stop.filled_avg_price) == (OrderStatus.FILLED, 103.0)


async def test_a_gap_through_the_stop_fills_at_the_open() -> None:
    b = PaperBroker()
    await started(b)
    placed = await b.submit(bracket())
    await b.on_candle(candle(1, 100, 101, 99, 100))
    await b.on_candle(candle(2, 92, 93, 90, 91))  # opens below the 95 stop
    assert (await b.get_order(by_leg(placed, "stop").id)).filled_avg_price == 92.0
    short = PaperBroker()
    await started(short)
    placed = await short.submit(bracket(side=Side.SELL, stop=103, target=96, cid="s"))
    await short.on_candle(candle(1, 100, 101, 99, 100))
    await short.on_candle(candle(2, 105, 106, 104, 105))
    assert (await short.get_order(by_leg(placed, "stop").id)).filled_avg_price == 105.0


async def test_a_gap_through_the_target_fills_at_the_better_open() -> None:
    b = PaperBroker()
    await started(b)
    placed = await b.submit(bracket())
    await b.on_candle(candle(1, 100, 101, 99, 100))
    await b.on_candle(candle(2, 112, 113, 111, 112))
    assert (await b.get_order(by_leg(placed, "target").id)).filled_avg_price == 112.0


async def test_duplicate_ids_bad_orders_and_buying_power_are_refused() -> None:
    b = PaperBroker(starting_balance=1_000)
    await started(b)
    await b.submit(bracket(qty=1))
    with pytest.raises(DuplicateOrderError) as dup:
        await b.submit(bracket(qty=1))
    assert dup.value.status == 422
    with pytest.raises(OrderRejectedError) as bp:
        await b.submit(bracket(cid="big", qty=50))
    assert bp.value.status == 403 and "buying power" in str(bp.value)
    with pytest.raises(OrderRejectedError, match="crypto"):
        await b.submit(OrderRequest("c", "BTC/USD", Side.BUY, 1, take_profit=2, stop_loss=1))
    with pytest.raises(OrderRejectedError, match="limit_price"):
        await b.submit(OrderRequest("l", "NQ", Side.BUY, 1, "limit"))


async def test_stop_limit_fills_within_its_limit_or_rests() -> None:
    b = PaperBroker()
    await b.on_candle(candle(0, 100, 101, 99, 100, "BTC/USD"))
    sl = await b.submit(
        OrderRequest("sl", "BTC/USD", Side.SELL, 1, "stop_limit", limit_price=94.5, stop_price=95)
    )
    await b.on_candle(candle(1, 92, 93, 91, 92, "BTC/USD"))  # gapped below the limit
    assert (await b.get_order(sl[0].id)).status is OrderStatus.NEW
    await b.on_candle(candle(2, 93, 94.8, 92, 94, "BTC/USD"))  # back up to the limit
    o = await b.get_order(sl[0].id)
    assert (o.status, o.filled_avg_price) == (OrderStatus.FILLED, 94.5)


async def test_the_saved_book_continues_the_same_account() -> None:
    saved: list[dict] = []

    async def persist(book: dict) -> None:
        saved.append(book)

    a = PaperBroker(persist=persist)
    await started(a)
    placed = await a.submit(bracket())
    await a.on_candle(candle(1, 100, 104, 99, 103))
    b = PaperBroker()
    b.load(saved[-1])
    for broker in (a, b):
        await broker.on_candle(candle(1, 50, 50, 50, 50))  # already seen: no effect
        await broker.on_candle(candle(2, 103, 111, 102, 109))
    for broker in (a, b):
        tgt = await broker.get_order(by_leg(placed, "target").id)
        assert (tgt.status, tgt.filled_avg_price) == (OrderStatus.FILLED, 110.0)
    assert a.to_dict() == b.to_dict()


async def test_close_position_fills_now_at_the_last_price() -> None:
    b = PaperBroker()
    await started(b)
    await b.submit(OrderRequest("m", "NQ", Side.SELL, 3))
    await b.on_candle(candle(1, 100, 101, 99, 98))
    closed = await b.close_position("NQ", "x1", Side.BUY, 3)
    assert closed[0].filled_avg_price == 98 and await b.positions() == []
    assert (await b.account())["realized_pnl"] == pytest.approx(6.0)


async def test_the_saved_book_keeps_open_orders_and_only_recent_finished_ones() -> None:
    from slob_tui.brokers.paper import KEEP_CLOSED

    b = PaperBroker(check_buying_power=False)
    await started(b)
    await b.submit(bracket(cid="keeper", stop=50, target=500))  # stays open all along
    await b.on_candle(candle(1, 100, 101, 99, 100))
    for i in range(KEEP_CLOSED):  # round trips that finish
        await b.submit(bracket(cid=f"t{i}", at=2 + 2 * i))
        await b.on_candle(candle(3 + 2 * i, 100, 101, 99, 100))
        await b.on_candle(candle(4 + 2 * i, 100, 111, 99, 110))
    book = b.to_dict()
    kept = {o["client_order_id"] for o in book["orders"]}
    assert {"keeper", "keeper-T", "keeper-S"} <= kept  # an entry whose exits still work
    assert len([o for o in book["orders"] if o["status"] != "new"]) <= KEEP_CLOSED + 1
    assert f"t{KEEP_CLOSED - 1}-T" in kept and "t0" not in kept
    again = PaperBroker()
    again.load(book)
    assert [o.client_order_id for o in await again.open_orders()] == ["keeper-T", "keeper-S"]
    assert (await again.account())["cash"] == (await b.account())["cash"]
