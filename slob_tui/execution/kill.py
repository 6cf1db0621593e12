"""What a kill does once the gate is closed: cancel everything, settle the orders whose fate
is unknown, flatten every position.

The flatten orders' ids derive from the kill's time, so a second process acting on the same
kill (the engine following `slob-tui flatten`) gets "already placed", never a second order.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from typing import Any

from slob_tui.brokers.base import Broker, BrokerError
from slob_tui.core.event_payloads import KillSwitchNotice
from slob_tui.core.models import Order, OrderStatus
from slob_tui.execution.brackets import BracketEmulator, OrderAdopter
from slob_tui.execution.gate import GateState
from slob_tui.execution.ids import kill_client_order_id
from slob_tui.execution.ledger import OrderLedger
from slob_tui.execution.placement import OrderSubmitter

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class KillReport:
    reason: str
    cancelled: tuple[str, ...]
    """Client ids of the orders that were open at the broker."""
    flattened: tuple[str, ...]
    """Symbols whose position was closed."""

    def notice(self) -> KillSwitchNotice:
        """The KILL_SWITCH event's payload."""
        return KillSwitchNotice(True, self.reason, self.cancelled, self.flattened)

    def as_dict(self) -> dict[str, Any]:
        """What a kill command answers (the front door, Telegram, the console)."""
        return {
            "active": True,
            "reason": self.reason,
            "cancelled": list(self.cancelled),
            "flattened": list(self.flattened),
        }


async def cancel_and_flatten(
    kill: GateState,
    ledger: OrderLedger,
    broker: Broker,
    submitter: OrderSubmitter,
    brackets: BracketEmulator,
    desk: OrderAdopter,
    now: int,
) -> KillReport:
    open_before = [r for r in await ledger.records(open_only=True) if r.order.id]
    try:
        await submitter.call(broker.cancel_all)
    except BrokerError as exc:
        log.error("kill switch: cancel all failed: %s", exc)
    for rec in open_before:
        b = await broker.get_order(rec.order.id)
        if b is not None:
            await desk.sync(await ledger.get(rec.order.client_order_id) or rec, b, None)
    await _settle_unconfirmed(ledger, broker, submitter, desk)
    entries: dict[str, list[str]] = {}
    trades = await ledger.closed_trade_ids()
    for rec in await ledger.records():
        o = rec.order
        if o.leg == "entry" and o.filled_qty and o.client_order_id not in trades:
            entries.setdefault(o.symbol, []).append(o.client_order_id)
    stamp = kill.killed_at or now
    flattened = []
    for pos in sorted(await broker.positions(), key=lambda p: p.symbol):
        if not pos.qty:
            continue
        cid = kill_client_order_id(pos.symbol, stamp)
        await brackets.close(pos.symbol, entries.get(pos.symbol, []), cid, pos.qty)
        flattened.append(pos.symbol)
    return KillReport(
        kill.killed, tuple(r.order.client_order_id for r in open_before), tuple(flattened)
    )


async def _settle_unconfirmed(
    ledger: OrderLedger, broker: Broker, submitter: OrderSubmitter, desk: OrderAdopter
) -> None:
    """Orders recorded but never confirmed: an attempt may have reached the broker, so ask
    it; what it has is cancelled, what it never got is marked so."""
    for rec in await ledger.records(open_only=True):
        o = rec.order
        if o.id or o.leg == "close":
            continue
        cid = o.client_order_id
        try:
            found = await submitter.call(partial(broker.get_by_client_id, cid))
        except BrokerError as exc:
            log.error("kill switch: %s unknown (%s); reconciled at the next start", cid, exc)
            continue
        if not found:
            o.status = OrderStatus.CANCELED
            rec.info["reason"] = "not sent: kill switch"
            await ledger.save(rec)
            continue
        await cancel_at_broker(found, broker, submitter)
        fresh = await submitter.call(partial(broker.get_by_client_id, cid))
        await desk.adopt(rec, fresh or found)


async def cancel_at_broker(orders: list[Order], broker: Broker, submitter: OrderSubmitter) -> None:
    """Cancel the open ones of `orders` (a failure is logged: cancel_all already ran)."""
    for b in orders:
        if b.status.is_open:
            try:
                await submitter.call(partial(broker.cancel, b.id))
            except BrokerError as exc:
                log.error("kill switch: cancel %s failed: %s", b.client_order_id, exc)
