"""Orders and positions: open and recent orders with legs and status, positions with P&L."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from slob_tui.core.models import Order, Position
from slob_tui.engine.snapshot import EngineSnapshot
from slob_tui.ui.format import price

STATUS_STYLE = {"filled": "green", "canceled": "dim", "rejected": "red", "expired": "dim"}


def render_orders(orders: tuple[Order, ...], positions: tuple[Position, ...]) -> Table | Text:
    if not orders and not positions:
        text = Text("No orders or positions.\n", style="dim")
        text.append("A triggered setup places a bracket order (entry, stop, target) here.",
                    style="dim")
        return text
    table = Table.grid(padding=(0, 1), expand=True)
    for _ in range(5):
        table.add_column()
    if positions:
        table.add_row(Text("Position", style="bold"), "qty", "avg", "last", "uPnL")
        for p in positions:
            pnl = p.unrealized_pnl
            table.add_row(p.symbol, f"{p.qty:g}", price(p.avg_price), price(p.last_price),
                          Text(f"{pnl:+.2f}", style="green" if pnl >= 0 else "red"))
    if orders:
        table.add_row(Text("Order", style="bold"), "leg", "side qty", "price", "status")
        open_first = sorted(orders, key=lambda o: (not o.status.is_open, -o.updated_at))
        for o in open_first[:12]:
            px = o.limit_price if o.limit_price is not None else o.stop_price
            if o.filled_avg_price is not None:
                px = o.filled_avg_price
            table.add_row(o.symbol, o.leg, f"{o.side.value} {o.qty:g}", price(px),
                          Text(o.status.value, style=STATUS_STYLE.get(o.status.value, "yellow")))
    return table


class OrdersPanel(Static):
    """Redrawn only when orders or positions changed."""

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(render_orders((), ()), id=id)
        self._shown: tuple = ()
        self.border_title = "Orders & positions"

    def show(self, snapshot: EngineSnapshot) -> bool:
        key = (
            tuple((o.id, o.status, o.filled_qty, o.updated_at) for o in snapshot.orders),
            tuple((p.symbol, p.qty, p.avg_price, p.last_price) for p in snapshot.positions),
        )
        if key == self._shown:
            return False
        self._shown = key
        self.update(render_orders(snapshot.orders, snapshot.positions))
        return True
