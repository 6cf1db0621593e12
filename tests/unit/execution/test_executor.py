"""OrderExecutor against the real paper broker and a SQLite state file."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from slob_tui.brokers.base import OrderRequest, TransientBrokerError
from slob_tui.brokers.paper import PaperBroker
from slob_tui.core.event_payloads import KillSwitchNotice
from slob_tui.core.events import Event, EventType
from slob_tui.core.models import Direction, OrderStatus, Side
from slob_tui.execution.risk import RiskLimits

from .conftest import candle, make_rig, trigger_event, triggered


class FlakyPaper(PaperBroker):
    """The paper broker behind a bad network: the first `fail` submits raise a timeout, and
    with `lose_reply` the order is placed before the timeout (the reply was lost)."""

    def __init__(self, fail: int, lose_reply: bool = False, status: int = 504) -> None:
        super().__init__(1e6)
        self.fail, self.lose_reply, self.status = fail, lose_reply, status
        self.submits = 0

    async def submit(self, req: OrderRequest):  # noqa: ANN201
        self.submits += 1
        if self.fail > 0:
            self.fail -= 1
            if self.lose_reply:
                await super().submit(req)
            raise TransientBrokerError(f"HTTP {self.status}", self.status)
        return await super().submit(req)


async def test_trigger_to_closed_trade_with_every_event(rig) -> None:
    await rig.feed(candle(0, 100, 101, 99, 100))
    u = triggered(0, Direction.LONG, entry=100, stop=95, target=110)
    await rig.executor.on_setup_event(trigger_event(u))
    placed = rig.of(EventType.ORDER_PLACED)
    assert [p.client_order_id for p in placed] == ["slob-NQ-L-20231114221100-E"]
    assert {r.order.leg for r in await rig.state.orders()} == {"entry", "target", "stop"}
    await rig.feed(candle(1, 101, 102, 100, 101), candle(2, 101, 111, 100, 110))
    fills = rig.of(EventType.ORDER_FILLED)
    assert [(f.leg, f.price) for f in fills] == [("entry", 101), ("target", 110)]
    # each fill event says when it filled: the paper venue's fill at the candle's open
    assert [f.ts for f in fills] == [candle(1, 0, 0, 0, 0).start, candle(2, 0, 0, 0, 0).start]
    assert [(f.execution_id, f.ts) for f in fills] == [
        (x.execution_id, x.ts) for x in await rig.state.fills()
    ]
    [trade] = rig.of(EventType.TRADE_CLOSED)
    assert (trade.pnl, trade.exit_leg, trade.entry_price) == (9.0, "target", 101)
    assert trade.actual_rr == pytest.approx(9 / 6)
    assert [c.leg for c in rig.of(EventType.ORDER_CANCELLED)] == ["stop"]
    assert [p.qty for p in rig.of(EventType.POSITION_CHANGED)] == [1.0, 0.0]
    assert await rig.state.trades() == [dict(dataclasses.asdict(trade), day="2023-11-14")]
    assert await rig.state.open_order_mirror() == []


async def test_the_same_trigger_twice_places_one_order(rig) -> None:
    await rig.feed(candle(0, 100, 101, 99, 100))
    u = triggered(0, Direction.SHORT, entry=100, stop=104, target=90)
    for _ in range(3):
        await rig.executor.on_setup_event(trigger_event(u))
    assert len(rig.of(EventType.ORDER_PLACED)) == 1
    assert len([o for o in await rig.broker.open_orders() if o.leg == "entry"]) == 1


async def test_transient_errors_are_retried_with_growing_backoff(tmp_path: Path) -> None:
    broker = FlakyPaper(fail=2, status=429)
    rig = await make_rig(tmp_path / "s.db", broker=broker)
    await rig.feed(candle(0, 100, 101, 99, 100))
    await rig.executor.on_setup_event(trigger_event(triggered(0, Direction.LONG, 100, 95, 110)))
    assert broker.submits == 3 and rig.executor.retries == 2
    # core.retry's equal jitter: the n-th wait is in [c/2, c] for c = 0.5 * 2**(n-1)
    assert len(rig.sleeps) == 2 and 0.25 <= rig.sleeps[0] <= 0.5 <= rig.sleeps[1] <= 1.0
    assert len(rig.of(EventType.ORDER_PLACED)) == 1
    await rig.state.close()


async def test_a_lost_reply_then_422_fetches_the_placed_order(tmp_path: Path) -> None:
    broker = FlakyPaper(fail=1, lose_reply=True)
    rig = await make_rig(tmp_path / "s.db", broker=broker)
    await rig.feed(candle(0, 100, 101, 99, 100))
    await rig.executor.on_setup_event(trigger_event(triggered(0, Direction.LONG, 100, 95, 110)))
    assert rig.executor.duplicates == 1
    [entry] = [o for o in await broker.open_orders() if o.leg == "entry"]
    rec = await rig.state.get_order(entry.client_order_id)
    assert rec.order.id == entry.id and rec.order.status is OrderStatus.NEW
    assert len(rig.of(EventType.ORDER_PLACED)) == 1
    await rig.state.close()


async def test_retries_exhausted_leave_it_pending_and_the_restart_sends_it(tmp_path: Path) -> None:
    broker = FlakyPaper(fail=10)
    rig = await make_rig(tmp_path / "s.db", broker=broker)
    await rig.feed(candle(0, 100, 101, 99, 100))
    await rig.executor.on_setup_event(trigger_event(triggered(0, Direction.LONG, 100, 95, 110)))
    assert broker.submits == 4 and rig.of(EventType.ORDER_PLACED) == []
    [rec] = await rig.state.orders()
    assert (rec.order.status, rec.order.id) == (OrderStatus.PENDING_NEW, "")
    broker.fail = 0
    assert await rig.executor.reconcile() == []
    assert len(rig.of(EventType.ORDER_PLACED)) == 1
    await rig.state.close()


async def test_risk_limits_reject_and_the_rejection_is_remembered(tmp_path: Path) -> None:
    rig = await make_rig(tmp_path / "s.db", limits=RiskLimits(max_trades_per_day=1))
    await rig.feed(candle(0, 100, 101, 99, 100))
    await rig.executor.on_setup_event(trigger_event(triggered(0, Direction.LONG, 100, 95, 110)))
    second = triggered(0, Direction.SHORT, 100, 105, 90)
    await rig.executor.on_setup_event(trigger_event(second))
    [rej] = rig.of(EventType.ORDER_REJECTED)
    assert "max_trades_per_day" in rej.reason
    await rig.executor.on_setup_event(trigger_event(second))  # re-derived: not re-decided
    assert len(rig.of(EventType.ORDER_REJECTED)) == 1
    rec = await rig.state.get_order(rej.client_order_id)
    assert rec.order.status is OrderStatus.REJECTED and "max_trades" in rec.info["reason"]
    await rig.state.close()


async def test_safe_mode_and_daily_loss_block_new_orders(tmp_path: Path) -> None:
    rig = await make_rig(tmp_path / "s.db", limits=RiskLimits(max_daily_loss=5))
    await rig.feed(candle(0, 100, 101, 99, 100))
    await rig.executor.on_setup_event(trigger_event(triggered(0, Direction.LONG, 100, 95, 110)))
    await rig.feed(candle(1, 100, 100, 99, 99), candle(2, 99, 99, 90, 91))  # stopped: -5
    assert [t["pnl"] for t in await rig.state.trades()] == [-5.0]
    await rig.executor.on_setup_event(trigger_event(triggered(2, Direction.LONG, 91, 89, 95)))
    assert "max_daily_loss" in rig.of(EventType.ORDER_REJECTED)[-1].reason
    rig.executor.safe_mode = lambda: True
    rig.executor.limits = RiskLimits()
    await rig.executor.on_setup_event(trigger_event(triggered(2, Direction.SHORT, 91, 93, 85)))
    assert "SAFE MODE" in rig.of(EventType.ORDER_REJECTED)[-1].reason
    await rig.state.close()


async def test_a_fill_beyond_the_stop_is_closed_at_once(rig) -> None:
    await rig.feed(candle(0, 100, 101, 99, 100))
    await rig.executor.on_setup_event(trigger_event(triggered(0, Direction.LONG, 100, 95, 110)))
    await rig.feed(candle(1, 94, 96, 93, 95))  # entry at 94: below the stop already
    [trade] = rig.of(EventType.TRADE_CLOSED)
    assert (trade.exit_leg, trade.entry_price, trade.exit_price) == ("close", 94, 94)
    assert await rig.broker.positions() == [] and await rig.broker.open_orders() == []
    assert sorted(c.leg for c in rig.of(EventType.ORDER_CANCELLED)) == ["stop", "target"]


async def test_emulated_crypto_bracket_is_oco(rig) -> None:
    await rig.feed(candle(0, 100, 101, 99, 100, "BTC/USD"))
    u = triggered(0, Direction.LONG, 100, 95, 110, symbol="BTC/USD")
    await rig.executor.on_setup_event(trigger_event(u))
    assert [o.leg for o in await rig.broker.open_orders()] == ["entry"]
    await rig.feed(candle(1, 100, 101, 99, 100, "BTC/USD"))
    legs = {o.leg: o for o in await rig.broker.open_orders()}
    assert (legs["stop"].type, legs["stop"].stop_price, legs["target"].limit_price) == (
        "stop_limit",
        95,
        110,
    )
    await rig.feed(candle(2, 100, 112, 99, 111, "BTC/USD"))
    [trade] = rig.of(EventType.TRADE_CLOSED)
    assert (trade.exit_leg, trade.pnl) == ("target", 10.0)
    assert await rig.broker.open_orders() == []  # the stop was cancelled by us


async def test_restart_between_emulated_legs_completes_the_bracket(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    first = await make_rig(db)
    await first.feed(candle(0, 100, 101, 99, 100, "BTC/USD"))
    u = triggered(0, Direction.SHORT, 100, 104, 92, symbol="BTC/USD")
    await first.executor.on_setup_event(trigger_event(u))

    async def died(update) -> None:  # the process dies before it hears of the fill
        raise SystemExit

    first.broker.set_update_handler(died)
    with pytest.raises(SystemExit):
        await first.feed(candle(1, 100, 101, 99, 100, "BTC/USD"))
    await first.state.close()

    second = await make_rig(db)  # a new process: book and journal from disk
    assert await second.executor.reconcile() == []
    assert [f.leg for f in second.of(EventType.ORDER_FILLED)] == ["entry"]  # missed event
    legs = sorted(o.leg for o in await second.broker.open_orders())
    assert legs == ["stop", "target"]
    assert await second.executor.reconcile() == []  # again: nothing doubled
    assert sorted(o.leg for o in await second.broker.open_orders()) == legs
    await second.feed(candle(2, 100, 105, 99, 104, "BTC/USD"))
    [trade] = second.of(EventType.TRADE_CLOSED)
    assert trade.exit_leg == "stop" and await second.broker.open_orders() == []
    await second.state.close()


async def test_unknown_broker_position_halts_trading(rig) -> None:
    await rig.feed(candle(0, 100, 101, 99, 100))
    await rig.broker.submit(OrderRequest("manual", "NQ", Side.BUY, 5))  # outside slob-tui
    await rig.feed(candle(1, 100, 101, 99, 100))
    problems = await rig.executor.reconcile()
    assert len(problems) == 1 and "broker holds 5 NQ" in problems[0]
    [halt] = rig.of(EventType.TRADING_HALTED)
    assert "position changed outside slob-tui" in halt.reason
    await rig.executor.on_setup_event(trigger_event(triggered(1, Direction.LONG, 100, 95, 110)))
    assert "trading halted" in rig.of(EventType.ORDER_REJECTED)[-1].reason


async def test_kill_switch_cancels_flattens_blocks_and_survives_restart(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    rig = await make_rig(db)
    await rig.feed(candle(0, 100, 101, 99, 100))
    await rig.executor.on_setup_event(trigger_event(triggered(0, Direction.LONG, 100, 95, 110)))
    await rig.feed(candle(1, 100, 103, 99, 102))
    rig.executor.subscribe()
    await rig.bus.emit_and_wait(
        Event(EventType.KILL_SWITCH, 0, KillSwitchNotice.requested("console"))
    )
    active = [k for k in rig.of(EventType.KILL_SWITCH) if k.active]
    assert [(k.reason, k.flattened, len(k.cancelled)) for k in active] == [("console", ("NQ",), 2)]
    assert await rig.broker.positions() == [] and await rig.broker.open_orders() == []
    [trade] = await rig.state.trades()
    assert (trade["exit_leg"], trade["exit_price"]) == ("close", 102)
    await rig.state.close()
    again = await make_rig(db)
    assert again.executor.killed == "console"
    await again.executor.on_setup_event(trigger_event(triggered(3, Direction.LONG, 100, 95, 110)))
    assert "kill switch" in again.of(EventType.ORDER_REJECTED)[-1].reason
    await again.executor.reset_kill_switch()
    await again.executor.on_setup_event(trigger_event(triggered(4, Direction.LONG, 100, 95, 110)))
    assert len(again.of(EventType.ORDER_PLACED)) == 1
    await again.state.close()


async def test_partial_fills_add_up_to_one_trade(rig) -> None:
    """Alpaca reports partial fills; the trade uses every execution, each counted once."""
    from dataclasses import replace

    from slob_tui.brokers.base import OrderUpdate
    from slob_tui.core.models import Fill

    await rig.feed(candle(0, 100, 101, 99, 100))
    u = triggered(0, Direction.LONG, 100, 95, 110)
    rig.executor.limits = RiskLimits(qty=4)
    await rig.executor.on_setup_event(trigger_event(u))
    await rig.feed(candle(1, 100, 101, 99, 100))  # entry: 4 at 100
    [target] = [o for o in await rig.broker.open_orders() if o.leg == "target"]
    for n, (filled, px) in enumerate([(1, 110.0), (3, 110.5), (3, 110.5), (4, 111.0)]):
        status = OrderStatus.FILLED if filled == 4 else OrderStatus.PARTIALLY_FILLED
        o = replace(target, filled_qty=filled, status=status)
        fill = Fill(o.id, o.client_order_id, "NQ", Side.SELL, 1, px, n, f"x{n}")
        await rig.executor.on_update(OrderUpdate("partial_fill", o, fill))  # x2 repeats x1
    fills = await rig.state.fills(target.client_order_id)
    assert [(f.qty, f.price) for f in fills] == [(1, 110.0), (2, 110.5), (1, 111.0)]
    [trade] = rig.of(EventType.TRADE_CLOSED)
    assert trade.qty == 4 and trade.exit_price == pytest.approx(110.5)  # 442 / 4
    assert trade.pnl == pytest.approx(4 * 10.5)
