"""Orders and positions: open and recent orders with legs and status, positions with P&L.

A position is marked to the market's last price in the snapshot (the broker's own `last_price`
is only as fresh as its last fill or sync), so "last" and uPnL move with the chart.
"""

from __future__ import annotations

from collections.abc import Mapping

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from slob_tui.core.models import Order, Position
from slob_tui.engine.snapshot import EngineSnapshot
from slob_tui.ui.format import price

STATUS_STYLE = {"filled": "green", "canceled": "dim", "rejected": "red", "expired": "dim"}


def marked(positions: tuple[Position, ...], last: Mapping[str, float]) -> tuple[Position, ...]:
    """Each position at the market's last price where the snapshot has one."""
    return tuple(
        Position(p.symbol, p.qty, p.avg_price, last.get(p.symbol, p.last_price)) for p in positions
    )


def _symbols(orders: tuple[Order, ...], positions: tuple[Position, ...]) -> set[str]:
    return {o.symbol for o in orders} | {p.symbol for p in positions}


def _grid(*headers: str) -> Table:
    table = Table.grid(padding=(0, 1))
    for _ in headers:
        table.add_column(no_wrap=True, overflow="ellipsis")
    table.add_row(*(Text(h, style="bold") for h in headers))
    return table


def render_orders(orders: tuple[Order, ...], positions: tuple[Position, ...]) -> Group | Text:
    """Positions, then orders (open first), as two small tables. The symbol is written only
    when there are several (one is named in the panel's title) and quantities are signed
    (+ buy, - sell), so that a row fits the 30 columns of the narrow side panel."""
    if not orders and not positions:
        text = Text("No orders or positions.\n", style="dim")
        text.append(
            "A triggered setup places a bracket order (entry, stop, target) here.", style="dim"
        )
        return text
    several = len(_symbols(orders, positions)) > 1
    parts: list[Table] = []
    if positions:
        table = _grid("qty", "avg", "last", "uPnL")
        for p in positions:
            pnl = p.unrealized_pnl + 0.0  # no "-0.00"
            if abs(pnl) < 0.005:
                pnl = 0.0
            pnl_text = Text(f"{pnl:+.2f}", style="green" if pnl >= 0 else "red")
            label = f"{p.symbol} {p.qty:+g}" if several else f"{p.qty:+g}"
            table.add_row(label, price(p.avg_price), price(p.last_price), pnl_text)
        parts.append(table)
    if orders:
        table = _grid("order", "price", "status")
        open_first = sorted(orders, key=lambda o: (not o.status.is_open, -o.updated_at))
        for o in open_first[:12]:
            px = o.limit_price if o.limit_price is not None else o.stop_price
            if o.filled_avg_price is not None:
                px = o.filled_avg_price
            qty = o.qty if o.side.value == "buy" else -o.qty
            label = f"{o.symbol} {o.leg} {qty:+g}" if several else f"{o.leg} {qty:+g}"
            status = Text(o.status.value, style=STATUS_STYLE.get(o.status.value, "yellow"))
            table.add_row(label, price(px), status)
        parts.append(table)
    return Group(*parts)


class OrdersPanel(Static):
    """Redrawn only when orders or positions changed."""

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(render_orders((), ()), id=id)
        self._shown: tuple[tuple[tuple[object, ...], ...], ...] = ()
        self.border_title = "Orders & positions"

    def show(self, snapshot: EngineSnapshot) -> bool:
        positions = marked(snapshot.positions, snapshot.last_price)
        key = (
            tuple((o.id, o.status, o.filled_qty, o.updated_at) for o in snapshot.orders),
            tuple((p.symbol, p.qty, p.avg_price, p.last_price) for p in positions),
        )
        if key == self._shown:
            return False
        self._shown = key
        symbols = sorted(_symbols(snapshot.orders, positions))
        one = f" · {symbols[0]}" if len(symbols) == 1 else ""
        self.border_title = f"Orders & positions{one}"
        self.update(render_orders(snapshot.orders, positions))
        return True
