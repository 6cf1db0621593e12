"""The executor's exit half: what follows a fill, from the emulated bracket's legs to the trade.

Split from `executor.py` by concern; `OrderExecutor` is the only class that uses it. Where the
broker has no brackets (crypto) the bracket is emulated here: after the entry fills, a target
(limit) and a stop (stop-limit) are placed, and the first to fill cancels the other.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from slob_tui.brokers.base import BrokerError, OrderRequest
from slob_tui.core.events import EventType
from slob_tui.core.models import Direction, Fill, Order, OrderStatus, Side
from slob_tui.execution.ids import client_order_id
from slob_tui.storage.state import OrderRecord

if TYPE_CHECKING:
    from slob_tui.execution.executor import OrderExecutor

log = logging.getLogger("slob_tui.execution.executor")


class ExitsMixin:
    """Exit legs, OCO cancels, trades and flattening; mixed into `OrderExecutor`, whose state
    it uses."""

    async def _entry_filled(self: OrderExecutor, rec: OrderRecord, f: Fill) -> None:
        info = rec.info
        long = info["direction"] == Direction.LONG.value
        stop, target = float(info["stop"]), float(info["target"])
        risk_pts = (f.price - stop) if long else (stop - f.price)
        info["fill_price"] = f.price
        info["fill_ts"] = f.ts
        info["actual_rr"] = (abs(target - f.price) / risk_pts) if risk_pts > 0 else None
        await self.state.save_order(rec)
        if risk_pts <= 0:
            log.warning("%s filled at %g, at or beyond the stop %g: closing it",
                        rec.order.client_order_id, f.price, stop)
            await self._cancel_exits(rec, reason="entry filled beyond the stop")
            await self._close(rec.order.symbol, [rec.order.client_order_id],
                              client_order_id(rec.order.symbol, info["direction"],
                                              _liq2(rec), "close"))
            return
        if info.get("emulated"):
            await self._place_exits(rec)

    async def _place_exits(self: OrderExecutor, rec: OrderRecord) -> None:
        """The emulated bracket's second step: target (limit) and stop (stop-limit) orders."""
        o, info = rec.order, rec.info
        exit_side = Side.SELL if o.side is Side.BUY else Side.BUY
        stop = float(info["stop"])
        slip = stop * self.slippage_pct / 100
        for leg in ("stop", "target"):
            cid = client_order_id(o.symbol, info["direction"], _liq2(rec), leg)
            leg_rec = await self.state.get_order(cid)
            if leg_rec is not None and leg_rec.order.id:
                continue
            if leg == "target":
                req = OrderRequest(cid, o.symbol, exit_side, o.qty, "limit",
                                   limit_price=float(info["target"]), leg=leg,
                                   setup_id=o.setup_id, created_at=o.created_at)
            else:
                lim = stop - slip if exit_side is Side.SELL else stop + slip
                req = OrderRequest(cid, o.symbol, exit_side, o.qty, "stop_limit",
                                   limit_price=round(lim, 8), stop_price=stop, leg=leg,
                                   setup_id=o.setup_id, created_at=o.created_at)
            if leg_rec is None:
                leg_rec = OrderRecord(Order(
                    id="", client_order_id=cid, symbol=o.symbol, side=exit_side, qty=o.qty,
                    type=req.type, status=OrderStatus.PENDING_NEW, leg=leg,
                    limit_price=req.limit_price, stop_price=req.stop_price,
                    setup_id=o.setup_id, created_at=o.created_at, updated_at=o.created_at),
                    {"entry_cid": o.client_order_id, "direction": info["direction"]})
                await self.state.save_order(leg_rec)
            try:
                placed = await self._submit(req)
            except BrokerError as exc:
                log.error("exit leg %s not placed: %s", cid, exc)
                await self.halt(f"exit leg {cid} could not be placed ({exc}); the position "
                                f"in {o.symbol} has no {leg}")
                return
            await self._apply(leg_rec, placed[0], None)

    async def _exit_filled(self: OrderExecutor, rec: OrderRecord, f: Fill) -> None:
        entry_cids = rec.info.get("entry_cids") or [rec.info.get("entry_cid")]
        for ecid in entry_cids:
            entry = await self.state.get_order(ecid) if ecid else None
            if entry is None or entry.order.filled_avg_price is None:
                continue
            await self._record_trade(entry, rec, f)
            await self._cancel_exits(entry, reason="other exit filled", keep=rec)

    async def _record_trade(self: OrderExecutor, entry: OrderRecord, exit_rec: OrderRecord,
                            f: Fill) -> None:
        e, info = entry.order, entry.info
        sign = 1.0 if e.side is Side.BUY else -1.0
        qty = min(e.filled_qty, f.qty) if exit_rec.order.leg != "close" else e.filled_qty
        entry_px = float(e.filled_avg_price or 0.0)
        trade = {
            "trade_id": e.client_order_id, "setup_id": e.setup_id, "symbol": e.symbol,
            "direction": info["direction"], "qty": qty, "entry_price": entry_px,
            "exit_price": f.price, "entry_ts": int(info.get("fill_ts", e.updated_at)),
            "exit_ts": f.ts,
            "exit_leg": exit_rec.order.leg,
            "pnl": round((f.price - entry_px) * qty * sign * self.limits.point_value, 10),
            "planned_rr": info.get("planned_rr"), "actual_rr": info.get("actual_rr"),
        }
        if await self.state.record_trade(trade):
            self._emit(EventType.TRADE_CLOSED, trade)

    async def _cancel_exits(self: OrderExecutor, entry: OrderRecord, reason: str,
                            keep: OrderRecord | None = None) -> None:
        """Cancel the exit legs of `entry` still open (OCO, or a trade that ended)."""
        for rec in await self.state.orders(open_only=True):
            if rec.info.get("entry_cid") != entry.order.client_order_id or rec.order.leg == "close":
                continue
            if keep is not None and rec.order.client_order_id == keep.order.client_order_id:
                continue
            if not rec.order.id:
                rec.order.status = OrderStatus.CANCELED
                await self.state.save_order(rec)
                continue
            try:
                await self._with_retry(lambda r=rec: self.broker.cancel(r.order.id))
            except BrokerError as exc:
                log.info("cancel %s (%s): %s", rec.order.client_order_id, reason, exc)
            b = await self.broker.get_order(rec.order.id)
            fresh = await self.state.get_order(rec.order.client_order_id)
            if b is not None and fresh is not None:
                await self._apply(fresh, b, None)

    async def _close(self: OrderExecutor, symbol: str, entry_cids: list[str], cid: str,
                     qty: float | None = None) -> None:
        """Flatten `symbol` with a market order whose fill closes the given entries' trades."""
        rec = await self.state.get_order(cid)
        if rec is not None and rec.order.id:
            return
        if qty is None:
            qty = (await self.state.net_positions()).get(symbol, 0.0)
        if not qty:
            return
        side = Side.SELL if qty > 0 else Side.BUY
        if rec is None:
            rec = OrderRecord(Order(id="", client_order_id=cid, symbol=symbol, side=side,
                                    qty=abs(qty), type="market", status=OrderStatus.PENDING_NEW,
                                    leg="close", created_at=self.now(), updated_at=self.now()),
                              {"entry_cids": entry_cids})
            await self.state.save_order(rec)
        created = rec.order.created_at
        try:
            placed = await self._with_retry(
                lambda: self.broker.close_position(symbol, cid, side, abs(qty), created))
        except BrokerError as exc:
            await self.halt(f"could not flatten {symbol}: {exc}")
            return
        if placed:
            fresh = await self.state.get_order(cid)
            if fresh is not None and fresh.order.status is not OrderStatus.FILLED:
                await self._apply(fresh, placed[0], None)

    async def _fill_of(self: OrderExecutor, rec: OrderRecord) -> Fill | None:
        """The order's recorded fills as one (quantity-weighted price, last time)."""
        fills = await self.state.fills(rec.order.client_order_id)
        qty = sum(f.qty for f in fills)
        if not fills or qty <= 0:
            return None
        px = sum(f.qty * f.price for f in fills) / qty
        last = fills[-1]
        return Fill(last.order_id, last.client_order_id, last.symbol, last.side, qty, px,
                    last.ts, last.execution_id)


def _liq2(rec: OrderRecord) -> int:
    t = rec.info.get("liq2_time")
    return int(t) if t is not None else rec.order.created_at
