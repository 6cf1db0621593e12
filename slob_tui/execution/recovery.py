"""The executor's safety and restart half: kill switch, halts, reconciliation with the broker.

Split from `executor.py` by concern; `OrderExecutor` is the only class that uses it.
"""

from __future__ import annotations

import logging
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from slob_tui.brokers.base import BrokerError
from slob_tui.core.events import Event, EventType
from slob_tui.core.models import Order, OrderStatus
from slob_tui.execution.ids import kill_client_order_id

if TYPE_CHECKING:
    from slob_tui.execution.executor import OrderExecutor

log = logging.getLogger("slob_tui.execution.executor")
EXIT_LEGS = ("target", "stop", "close")


def order_fields(o: Order) -> dict[str, Any]:
    return {f.name: getattr(o, f.name) for f in fields(Order)}


class RecoveryMixin:
    """Kill switch, halts and `reconcile()`; mixed into `OrderExecutor`, whose state it uses."""

    # ---- kill switch and halts ------------------------------------------------------------
    async def kill_switch(self: OrderExecutor, reason: str = "kill switch") -> dict[str, Any]:
        """Cancel every open order and flatten every position; block new orders until reset."""
        self.killed = reason or "kill switch"
        await self.state.set_value("kill_switch", {"reason": self.killed, "ts": self.now()})
        log.warning("KILL SWITCH: %s", self.killed)
        open_before = [r for r in await self.state.orders(open_only=True) if r.order.id]
        try:
            await self._with_retry(self.broker.cancel_all)
        except BrokerError as exc:
            log.error("kill switch: cancel all failed: %s", exc)
        for rec in open_before:
            b = await self.broker.get_order(rec.order.id)
            if b is not None:
                await self._apply(await self.state.get_order(rec.order.client_order_id) or rec,
                                  b, None)
        flattened = []
        entries: dict[str, list[str]] = {}
        trades = {t["trade_id"] for t in await self.state.trades()}
        for rec in await self.state.orders():
            o = rec.order
            if o.leg == "entry" and o.filled_qty and o.client_order_id not in trades:
                entries.setdefault(o.symbol, []).append(o.client_order_id)
        stamp = self.now() or 0
        for pos in sorted(await self.broker.positions(), key=lambda p: p.symbol):
            if not pos.qty:
                continue
            cid = kill_client_order_id(pos.symbol, stamp)
            await self._close(pos.symbol, entries.get(pos.symbol, []), cid, pos.qty)
            flattened.append(pos.symbol)
        data = {"active": True, "reason": self.killed,
                "cancelled": [r.order.client_order_id for r in open_before],
                "flattened": flattened}
        self._emit(EventType.KILL_SWITCH, data)
        return data

    async def reset_kill_switch(self: OrderExecutor) -> None:
        self.killed = ""
        await self.state.clear_value("kill_switch")
        self._emit(EventType.KILL_SWITCH, {"active": False, "reason": "reset"})

    async def _on_kill_event(self: OrderExecutor, event: Event) -> None:
        data = event.data or {}
        if isinstance(data, dict) and data.get("request"):
            await self.kill_switch(str(data.get("reason") or "requested on the bus"))

    async def check_kill_request(self: OrderExecutor) -> None:
        """A kill asked for by `slob-tui flatten` while this engine runs (checked per candle)."""
        req = await self.state.get_value("kill_request")
        if req:
            await self.state.clear_value("kill_request")
            await self.kill_switch(str(req.get("reason") if isinstance(req, dict) else req))

    async def halt(self: OrderExecutor, reason: str) -> None:
        """Stop new orders (fail closed); the console and the log say why."""
        if self.halted == reason:
            return
        self.halted = reason
        log.error("TRADING HALTED: %s", reason)
        self._emit(EventType.TRADING_HALTED, {"reason": reason})

    # ---- restart --------------------------------------------------------------------------
    async def reconcile(self: OrderExecutor) -> list[str]:
        """Match our open orders and positions with the broker's before any new order.

        Orders the broker filled or cancelled while we were down produce their missed events;
        orders never confirmed are fetched by client id or sent again; an emulated bracket
        interrupted between legs is completed; exit legs of finished trades are cancelled.
        A position no record explains halts trading. Returns the problems found.
        """
        async with self._lock:
            return await self._reconcile()

    async def _reconcile(self: OrderExecutor) -> list[str]:
        for rec in await self.state.orders(open_only=True):
            o = rec.order
            if not o.id:
                found = await self._with_retry(
                    lambda c=o.client_order_id: self.broker.get_by_client_id(c))
                if found:
                    await self._adopt(rec, found)
                elif o.leg == "entry":
                    await self._submit_entry(rec)
                elif o.leg == "close":
                    await self._close(o.symbol, rec.info.get("entry_cids") or [],
                                      o.client_order_id)
                continue
            b = await self._with_retry(lambda i=o.id: self.broker.get_order(i))
            if b is None:
                b = Order(**{**order_fields(o), "status": OrderStatus.CANCELED})
            await self._apply(rec, b, None)
        for rec in await self.state.orders():  # exits filled while the trade went unrecorded
            if rec.order.leg in EXIT_LEGS and rec.order.status is OrderStatus.FILLED:
                fill = await self._fill_of(rec)
                if fill is not None:
                    await self._exit_filled(rec, fill)
        trades = {t["trade_id"] for t in await self.state.trades()}
        for rec in await self.state.orders():
            o = rec.order
            if o.leg != "entry" or o.status is not OrderStatus.FILLED:
                continue
            if o.client_order_id in trades:
                await self._cancel_exits(rec, reason="trade already closed")
                continue
            fill = await self._fill_of(rec)
            if fill is not None:  # idempotent: exits placed or the position closed once
                await self._entry_filled(rec, fill)
        problems = []
        expected = await self.state.net_positions()
        held = {p.symbol: p.qty for p in await self.broker.positions()}
        for symbol in sorted(set(expected) | set(held)):
            want, have = expected.get(symbol, 0.0), held.get(symbol, 0.0)
            if abs(want - have) > 1e-9:
                problems.append(
                    f"broker holds {have:g} {symbol} but slob-tui's records explain {want:g}: "
                    "a position changed outside slob-tui (or a fill was missed); check the "
                    "account, then restart")
        self._positions = list(await self.broker.positions())
        if problems:
            await self.halt("; ".join(problems))
        return problems


