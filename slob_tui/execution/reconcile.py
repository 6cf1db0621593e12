"""Reconciliation: our order records matched with the broker's, before any new order.

Run at every start and after the broker's stream reconnects. Orders the broker filled or
cancelled meanwhile produce their missed events; orders never confirmed are fetched by client
id or sent again; an emulated bracket interrupted between legs is completed; exit legs of
finished trades are cancelled. A position no record explains halts trading (through the gate).
"""

from __future__ import annotations

from functools import partial
from typing import Protocol

from slob_tui.brokers.base import Broker
from slob_tui.core.models import Order, OrderStatus
from slob_tui.execution.brackets import BracketEmulator, OrderAdopter
from slob_tui.execution.gate import TradingGate
from slob_tui.execution.ledger import EXIT_LEGS, OrderLedger, order_fields
from slob_tui.execution.placement import OrderSubmitter
from slob_tui.storage.state import OrderRecord


class EntryDesk(OrderAdopter, Protocol):
    """Also sends an entry that was recorded but never confirmed."""

    async def submit_entry(self, rec: OrderRecord) -> None: ...


async def reconcile(
    ledger: OrderLedger,
    broker: Broker,
    submitter: OrderSubmitter,
    brackets: BracketEmulator,
    gate: TradingGate,
    desk: EntryDesk,
) -> list[str]:
    """Bring every open record in line with the broker; returns the problems found."""
    for rec in await ledger.records(open_only=True):
        o = rec.order
        if not o.id:
            found = await submitter.call(partial(broker.get_by_client_id, o.client_order_id))
            if found:
                await desk.adopt(rec, found)
            elif o.leg == "entry":
                await desk.submit_entry(rec)
            elif o.leg == "close":
                await brackets.close(o.symbol, rec.info.get("entry_cids") or [], o.client_order_id)
            continue
        b = await submitter.call(partial(broker.get_order, o.id))
        if b is None:
            b = Order(**{**order_fields(o), "status": OrderStatus.CANCELED})
        await desk.sync(rec, b, None)
    for rec in await ledger.records():  # exits filled while the trade went unrecorded
        if rec.order.leg in EXIT_LEGS and rec.order.status is OrderStatus.FILLED:
            fill = await ledger.fill_of(rec)
            if fill is not None:
                await brackets.exit_filled(rec, fill)
    trades = await ledger.closed_trade_ids()
    for rec in await ledger.records():
        o = rec.order
        if o.leg != "entry" or o.status is not OrderStatus.FILLED:
            continue
        if o.client_order_id in trades:
            await brackets.cancel_exits(rec, reason="trade already closed")
            continue
        fill = await ledger.fill_of(rec)
        if fill is not None:  # idempotent: exits placed or the position closed once
            await brackets.entry_filled(rec, fill)
    problems = []
    expected = await ledger.state.net_positions()
    held = {p.symbol: p.qty for p in await broker.positions()}
    for symbol in sorted(set(expected) | set(held)):
        want, have = expected.get(symbol, 0.0), held.get(symbol, 0.0)
        if abs(want - have) > 1e-9:
            problems.append(
                f"broker holds {have:g} {symbol} but slob-tui's records explain {want:g}: "
                "a position changed outside slob-tui (or a fill was missed); check the "
                "account, then restart"
            )
    ledger.positions = list(await broker.positions())
    if problems:
        await gate.halt("; ".join(problems))
    return problems
