"""What every StateManager backend must do; run against SQLite here and Redis in
tests/integration/test_state_redis.py."""

from __future__ import annotations

from dataclasses import replace

from slob_tui.core.models import Direction, Fill, Order, OrderStatus, SetupState, Side
from slob_tui.storage.state import OrderRecord, StateManager

from .conftest import T0, triggered


def _order(cid: str, status: OrderStatus = OrderStatus.NEW, leg: str = "entry") -> OrderRecord:
    return OrderRecord(
        Order(
            id=f"id-{cid}",
            client_order_id=cid,
            symbol="NQ",
            side=Side.BUY,
            qty=2,
            type="market",
            status=status,
            leg=leg,
            setup_id="s1",
            created_at=T0,
            updated_at=T0,
        ),
        {"entry": 100.0, "stop": 95.0},
    )


async def check_contract(sm: StateManager) -> None:
    # setups: journal is idempotent, the live set follows the latest state
    started = replace(
        triggered(5, Direction.SHORT, 1, 2, 0), state=SetupState.WATCHING_CONSOL, prev_state=None
    )
    assert await sm.record_setup(started) is True
    assert await sm.record_setup(started) is False  # re-derived after a restart
    assert [u.setup_id for u in await sm.live_setups()] == [started.setup_id]
    done = triggered(9, Direction.SHORT, 1, 2, 0)
    await sm.record_setup(replace(done, setup_id=started.setup_id))
    assert await sm.live_setups() == []
    history = await sm.setup_history(started.setup_id)
    assert [u.state for u in history] == [SetupState.WATCHING_CONSOL, SetupState.TRIGGERED]
    assert history[1].levels["liq2_time"] == done.levels["liq2_time"]

    # tracker state round trip
    await sm.save_tracker("NQ", {"version": 1, "index": 3, "hist": [[1, 2.5]]})
    await sm.save_tracker("ES", {"version": 1, "index": 4})
    assert await sm.load_trackers() == {
        "NQ": {"version": 1, "index": 3, "hist": [[1, 2.5]]},
        "ES": {"version": 1, "index": 4},
    }

    # orders: upsert by client id; the open set is mirrored in the hot store
    await sm.save_order(_order("a"))
    await sm.save_order(_order("b", leg="stop"))
    assert sorted(await sm.open_order_mirror()) == ["a", "b"]
    rec = await sm.get_order("a")
    assert rec.order.id == "id-a" and rec.info == {"entry": 100.0, "stop": 95.0}
    assert (await sm.get_order_by_id("id-b")).order.leg == "stop"
    assert await sm.get_order("zzz") is None and await sm.get_order_by_id("") is None

    # a fill and its order in one step, never twice
    rec.order.filled_qty, rec.order.status = 2, OrderStatus.FILLED
    fill = Fill("id-a", "a", "NQ", Side.BUY, 2, 101.0, T0 + 60, "exec-1")
    assert await sm.save_fill_and_order(fill, rec) is True
    assert await sm.save_fill_and_order(fill, rec) is False
    assert await sm.fills("a") == [fill]
    assert await sm.open_order_mirror() == ["b"]
    assert await sm.net_positions() == {"NQ": 2.0}
    assert [r.order.client_order_id for r in await sm.orders(open_only=True)] == ["b"]

    # trades and the day's figures the risk limits read
    trade = {
        "trade_id": "a",
        "setup_id": "s1",
        "symbol": "NQ",
        "direction": "LONG",
        "qty": 2,
        "entry_price": 101.0,
        "exit_price": 96.0,
        "entry_ts": T0,
        "exit_ts": T0 + 600,
        "exit_leg": "stop",
        "pnl": -10.0,
    }
    assert await sm.record_trade(trade) is True and await sm.record_trade(trade) is False
    day = sm.day_of(T0)
    assert await sm.day_stats(day) == (1, -10.0)  # entries with a broker id count
    assert await sm.day_stats("1999-01-01") == (0, 0.0)

    # small values: the kill switch and the paper book
    await sm.set_value("kill_switch", {"reason": "test"})
    assert await sm.get_value("kill_switch") == {"reason": "test"}
    await sm.clear_value("kill_switch")
    assert await sm.get_value("kill_switch") is None
