"""BracketEmulator: what follows a fill, from an emulated bracket's legs to the closed trade.

Where the broker has no brackets (crypto) the bracket is emulated here: after the entry fills,
a target (limit) and a stop (stop-limit) are placed, and the first to fill cancels the other
(OCO). For every broker: an entry filled at or beyond its stop is closed at once, an exit's
fill records the trade, and `close` flattens a symbol with a market order whose id keeps a
retry (or a second process) from doubling it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict
from functools import partial
from typing import Any, Protocol

from slob_tui.brokers.base import Broker, BrokerError, DuplicateOrderError, OrderRequest
from slob_tui.core.event_payloads import TradeClosed
from slob_tui.core.events import EventPayload, EventType
from slob_tui.core.models import Direction, Fill, Order, OrderStatus, Side
from slob_tui.execution.gate import TradingGate
from slob_tui.execution.ids import client_order_id
from slob_tui.execution.ledger import OrderLedger, liq2_time
from slob_tui.execution.placement import GateClosedError, OrderSubmitter
from slob_tui.storage.state import OrderRecord

log = logging.getLogger(__name__)
Emit = Callable[[EventType, EventPayload], None]


class OrderSync(Protocol):
    """Brings a record in line with the broker's view of its order (and acts on fills)."""

    async def sync(self, rec: OrderRecord, b: Order, fill: Fill | None) -> None: ...


class OrderAdopter(OrderSync, Protocol):
    """Also takes in an order found at the broker (with its legs) under our record."""

    async def adopt(self, rec: OrderRecord, orders: list[Order]) -> None: ...


class BracketEmulator:
    def __init__(
        self,
        broker: Broker,
        ledger: OrderLedger,
        submitter: OrderSubmitter,
        gate: TradingGate,
        orders: OrderSync,
        emit: Emit,
        *,
        point_value: Callable[[], float],
        slippage_pct: float = 0.5,
        now: Callable[[], int] = lambda: 0,
    ) -> None:
        self.broker = broker
        self.ledger = ledger
        self.submitter = submitter
        self.gate = gate
        self.orders = orders
        self._emit = emit
        self._point_value = point_value
        self.slippage_pct = slippage_pct
        self._now = now

    async def entry_filled(self, rec: OrderRecord, f: Fill) -> None:
        """Record the fill's R:R; close at once beyond the stop; else place emulated exits."""
        info = rec.info
        risk_pts = _risk_points(info, f.price)
        info["fill_price"] = f.price
        info["fill_ts"] = f.ts
        info["actual_rr"] = _actual_rr(info, f.price)
        await self.ledger.save(rec)
        if risk_pts <= 0:
            log.warning(
                "%s filled at %g, at or beyond the stop %g: closing it",
                rec.order.client_order_id,
                f.price,
                float(info["stop"]),
            )
            await self.cancel_exits(rec, reason="entry filled beyond the stop")
            await self.close(
                rec.order.symbol,
                [rec.order.client_order_id],
                client_order_id(rec.order.symbol, info["direction"], liq2_time(rec), "close"),
            )
            return
        if info.get("emulated"):
            await self.place_exits(rec)

    async def place_exits(self, rec: OrderRecord) -> None:
        """The emulated bracket's second step: target (limit) and stop (stop-limit) orders."""
        o, info = rec.order, rec.info
        exit_side = Side.SELL if o.side is Side.BUY else Side.BUY
        stop = float(info["stop"])
        slip = stop * self.slippage_pct / 100
        for leg in ("stop", "target"):
            cid = client_order_id(o.symbol, info["direction"], liq2_time(rec), leg)
            leg_rec = await self.ledger.get(cid)
            if leg_rec is not None and leg_rec.order.id:
                continue
            if leg == "target":
                req = OrderRequest(
                    cid,
                    o.symbol,
                    exit_side,
                    o.qty,
                    "limit",
                    limit_price=float(info["target"]),
                    leg=leg,
                    setup_id=o.setup_id,
                    created_at=o.created_at,
                )
            else:
                lim = stop - slip if exit_side is Side.SELL else stop + slip
                req = OrderRequest(
                    cid,
                    o.symbol,
                    exit_side,
                    o.qty,
                    "stop_limit",
                    limit_price=round(lim, 8),
                    stop_price=stop,
                    leg=leg,
                    setup_id=o.setup_id,
                    created_at=o.created_at,
                )
            if leg_rec is None:
                leg_rec = OrderRecord(
                    Order(
                        id="",
                        client_order_id=cid,
                        symbol=o.symbol,
                        side=exit_side,
                        qty=o.qty,
                        type=req.type,
                        status=OrderStatus.PENDING_NEW,
                        leg=leg,
                        limit_price=req.limit_price,
                        stop_price=req.stop_price,
                        setup_id=o.setup_id,
                        created_at=o.created_at,
                        updated_at=o.created_at,
                    ),
                    {"entry_cid": o.client_order_id, "direction": info["direction"]},
                )
                await self.ledger.save(leg_rec)
            try:
                placed = await self.submitter.submit(req, "exit")
            except GateClosedError as exc:
                log.warning("exit leg %s not placed: %s (the kill flattens the position)", cid, exc)
                return
            except BrokerError as exc:
                log.error("exit leg %s not placed: %s", cid, exc)
                await self.gate.halt(
                    f"exit leg {cid} could not be placed ({exc}); the "
                    f"position in {o.symbol} has no {leg}"
                )
                return
            await self.orders.sync(leg_rec, placed[0], None)

    async def exit_filled(self, rec: OrderRecord, f: Fill) -> None:
        """An exit filled: the trade of each entry it closes, and the other exits cancelled."""
        entry_cids = rec.info.get("entry_cids") or [rec.info.get("entry_cid")]
        for ecid in entry_cids:
            entry = await self.ledger.get(ecid) if ecid else None
            if entry is None or entry.order.filled_avg_price is None:
                continue
            await self._record_trade(entry, rec, f)
            await self.cancel_exits(entry, reason="other exit filled", keep=rec)

    async def _record_trade(self, entry: OrderRecord, exit_rec: OrderRecord, f: Fill) -> None:
        e, info = entry.order, entry.info
        sign = 1.0 if e.side is Side.BUY else -1.0
        qty = min(e.filled_qty, f.qty) if exit_rec.order.leg != "close" else e.filled_qty
        entry_px = float(e.filled_avg_price or 0.0)
        trade = TradeClosed(
            trade_id=e.client_order_id,
            setup_id=e.setup_id,
            symbol=e.symbol,
            direction=str(info["direction"]),
            qty=qty,
            entry_price=entry_px,
            exit_price=f.price,
            entry_ts=int(info.get("fill_ts", e.updated_at)),
            exit_ts=f.ts,
            exit_leg=exit_rec.order.leg,
            pnl=round((f.price - entry_px) * qty * sign * self._point_value(), 10),
            planned_rr=info.get("planned_rr"),
            # the entry's fill may still be being handled (its reply and its stream update
            # arrive together): its R:R then comes from the fill price, not from that note
            actual_rr=info["actual_rr"] if "actual_rr" in info else _actual_rr(info, entry_px),
        )
        if await self.ledger.state.record_trade(asdict(trade)):
            self._emit(EventType.TRADE_CLOSED, trade)

    async def cancel_exits(
        self, entry: OrderRecord, reason: str, keep: OrderRecord | None = None
    ) -> None:
        """Cancel the exit legs of `entry` still open (OCO, or a trade that ended)."""
        for rec in await self.ledger.records(open_only=True):
            if rec.info.get("entry_cid") != entry.order.client_order_id or rec.order.leg == "close":
                continue
            if keep is not None and rec.order.client_order_id == keep.order.client_order_id:
                continue
            if not rec.order.id:
                rec.order.status = OrderStatus.CANCELED
                await self.ledger.save(rec)
                continue
            try:
                await self.submitter.call(partial(self.broker.cancel, rec.order.id))
            except BrokerError as exc:
                log.info("cancel %s (%s): %s", rec.order.client_order_id, reason, exc)
            b = await self.broker.get_order(rec.order.id)
            fresh = await self.ledger.get(rec.order.client_order_id)
            if b is not None and fresh is not None:
                await self.orders.sync(fresh, b, None)

    async def close(
        self, symbol: str, entry_cids: list[str], cid: str, qty: float | None = None
    ) -> None:
        """Flatten `symbol` with a market order whose fill closes the given entries' trades."""
        rec = await self.ledger.get(cid)
        if rec is not None and rec.order.id:
            return
        if qty is None:
            qty = (await self.ledger.state.net_positions()).get(symbol, 0.0)
        if not qty:
            return
        side = Side.SELL if qty > 0 else Side.BUY
        if rec is None:
            now = self._now()
            rec = OrderRecord(
                Order(
                    id="",
                    client_order_id=cid,
                    symbol=symbol,
                    side=side,
                    qty=abs(qty),
                    type="market",
                    status=OrderStatus.PENDING_NEW,
                    leg="close",
                    created_at=now,
                    updated_at=now,
                ),
                {"entry_cids": entry_cids},
            )
            await self.ledger.save(rec)
        created = rec.order.created_at
        try:
            try:
                placed = await self.submitter.call(
                    lambda: self.broker.close_position(symbol, cid, side, abs(qty), created)
                )
            except DuplicateOrderError:  # placed already (a lost reply, another process)
                placed = await self.submitter.call(lambda: self.broker.get_by_client_id(cid))
        except BrokerError as exc:
            await self.gate.halt(f"could not flatten {symbol}: {exc}")
            return
        if placed:
            fresh = await self.ledger.get(cid)
            if fresh is not None and fresh.order.status is not OrderStatus.FILLED:
                await self.orders.sync(fresh, placed[0], None)


def _risk_points(info: dict[str, Any], price: float) -> float:
    """Price distance from an entry filled at `price` to its stop (<= 0: at or beyond it)."""
    stop = float(info["stop"])
    return (price - stop) if info["direction"] == Direction.LONG.value else (stop - price)


def _actual_rr(info: dict[str, Any], price: float) -> float | None:
    """The target's distance over the stop's, from an entry filled at `price`."""
    risk_pts = _risk_points(info, price)
    return abs(float(info["target"]) - price) / risk_pts if risk_pts > 0 else None
