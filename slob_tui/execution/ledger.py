"""OrderLedger: the executor's canonical order records, and where they are persisted.

One live `OrderRecord` object per client order id: the stream and a REST reply about the same
order may race, and deciding on one shared object (checked and updated before any await) is
what keeps a fill from being counted twice. Records come from and go to the state store.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from slob_tui.core.models import Fill, Order, OrderStatus, Position
from slob_tui.storage.state import OrderRecord, StateManager

EXIT_LEGS = ("target", "stop", "close")


def order_fields(o: Order) -> dict[str, Any]:
    return {f.name: getattr(o, f.name) for f in fields(Order)}


def blank_leg(b: Order) -> Order:
    """Our record of a leg the broker created: nothing filled yet, as far as we know."""
    return Order(
        **{
            **order_fields(b),
            "filled_qty": 0.0,
            "filled_avg_price": None,
            "status": OrderStatus.PENDING_NEW,
        }
    )


def liq2_time(rec: OrderRecord) -> int:
    """LIQ #2's time, which keys a setup's order ids (the order's creation when unknown)."""
    t = rec.info.get("liq2_time")
    return int(t) if t is not None else rec.order.created_at


class OrderLedger:
    def __init__(self, state: StateManager) -> None:
        self.state = state
        self._recs: dict[str, OrderRecord] = {}
        self.positions: list[Position] = []
        """The broker's positions as last fetched (for the console's view)."""

    def canon(self, rec: OrderRecord) -> OrderRecord:
        """The one live record of `rec`'s order (`rec` itself when it is the first)."""
        return self._recs.setdefault(rec.order.client_order_id, rec)

    async def load(self) -> None:
        for rec in await self.state.orders():
            self._recs[rec.order.client_order_id] = rec

    async def get(self, client_order_id: str) -> OrderRecord | None:
        return await self.state.get_order(client_order_id)

    async def find(self, client_order_id: str, order_id: str) -> OrderRecord | None:
        """By our id, else by the broker's (updates about legs the broker named)."""
        rec = await self.state.get_order(client_order_id)
        if rec is None and order_id:
            rec = await self.state.get_order_by_id(order_id)
        return rec

    async def records(self, open_only: bool = False) -> list[OrderRecord]:
        return await self.state.orders(open_only=open_only)

    async def save(self, rec: OrderRecord) -> None:
        await self.state.save_order(rec)

    async def save_fill(self, f: Fill, rec: OrderRecord) -> None:
        await self.state.save_fill_and_order(f, rec)

    async def fill_of(self, rec: OrderRecord) -> Fill | None:
        """The order's recorded fills as one (quantity-weighted price, last time)."""
        fills = await self.state.fills(rec.order.client_order_id)
        qty = sum(f.qty for f in fills)
        if not fills or qty <= 0:
            return None
        px = sum(f.qty * f.price for f in fills) / qty
        last = fills[-1]
        return Fill(
            last.order_id,
            last.client_order_id,
            last.symbol,
            last.side,
            qty,
            px,
            last.ts,
            last.execution_id,
        )

    async def closed_trade_ids(self) -> set[str]:
        return {t["trade_id"] for t in await self.state.trades()}

    def view(self) -> tuple[list[Order], list[Position]]:
        """Open orders first, then the most recent others; positions with the last price."""
        orders = [r.order for r in self._recs.values()]
        live = [o for o in orders if o.status.is_open]
        done = [o for o in orders if not o.status.is_open][-20:]
        return live + done[::-1], list(self.positions)

    @property
    def open_count(self) -> int:
        return sum(r.order.status.is_open for r in self._recs.values())
