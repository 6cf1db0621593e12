"""OrderExecutor: a triggered setup becomes one bracket order, placed once, tracked to the end.

Flow: SETUP_TRIGGERED -> the trading gate -> sized intent -> risk checks -> the order row
persisted -> submit with an id derived from the setup (`placement.OrderSubmitter`: the gate
asked again before every attempt, retries with backoff on transient errors, a 422 "must be
unique" fetches what was already placed) -> broker updates -> fills, trades and events.

The executor is the public face; its parts have one job each: `TradingGate` (kill switch
and halts), `OrderLedger` (the records), `OrderSubmitter` (broker calls), `BracketEmulator`
(what follows a fill), `kill.cancel_and_flatten` (what a kill does) and `reconcile` (what a
crash or a dropped stream interrupted). The executor keeps the order of things: one
placement, reconcile or kill at a time, and an entry whose submission timed out is looked up
at the broker in the background while the engine runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from slob_tui.brokers.base import (
    Broker,
    BrokerError,
    OrderRejectedError,
    OrderRequest,
    OrderUpdate,
)
from slob_tui.core.clock import Clock
from slob_tui.core.event_payloads import (
    ErrorReport,
    KillSwitchNotice,
    OrderCancelled,
    OrderFilled,
    OrderPlaced,
    OrderRejected,
    PositionChanged,
    TradingHalted,
)
from slob_tui.core.events import Event, EventPayload, EventType
from slob_tui.core.health import TradingHealth
from slob_tui.core.models import (
    NS_PER_MINUTE,
    Direction,
    Fill,
    Order,
    OrderStatus,
    Position,
    SetupState,
    SetupUpdate,
    Side,
)
from slob_tui.core.retry import RetryPolicy
from slob_tui.engine.bus import EventBus
from slob_tui.execution import risk
from slob_tui.execution.brackets import BracketEmulator
from slob_tui.execution.gate import GateChange, GateState, TradingGate
from slob_tui.execution.ids import setup_client_order_id
from slob_tui.execution.kill import cancel_and_flatten, cancel_at_broker
from slob_tui.execution.ledger import EXIT_LEGS, OrderLedger, blank_leg
from slob_tui.execution.placement import ORDER_RETRY, GateClosedError, OrderSubmitter
from slob_tui.execution.reconcile import reconcile
from slob_tui.storage.state import OrderRecord, StateManager

log = logging.getLogger(__name__)
_DONE = (OrderStatus.CANCELED, OrderStatus.EXPIRED, OrderStatus.REJECTED)
RESOLVE_RETRY = RetryPolicy(base_s=1.0, cap_s=30.0)
"""Asking the broker about an order whose submission timed out: soon, then every 30 s."""
EntryOutcome = Literal["placed", "rejected", "stopped", "unconfirmed"]


class OrderExecutor:
    """Owns every order the engine places; the only caller of the broker's order methods."""

    def __init__(
        self,
        broker: Broker,
        state: StateManager,
        bus: EventBus,
        *,
        limits: risk.RiskLimits | None = None,
        clock: Clock | None = None,
        safe_mode: Callable[[], bool] = lambda: False,
        retry: RetryPolicy | None = None,
        stop_limit_slippage_pct: float = 0.5,
        max_signal_age_s: float = 300.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        gate: TradingGate | None = None,
    ) -> None:
        self.broker = broker
        self.state = state
        self.bus = bus
        self.limits = limits or risk.RiskLimits()
        self.clock = clock
        self.safe_mode = safe_mode
        self.max_signal_age_ns = int(max_signal_age_s * 1e9)
        self.gate = gate or TradingGate(state, self.now)
        self.ledger = OrderLedger(state)
        self.submitter = OrderSubmitter(broker, self.gate, retry or ORDER_RETRY, sleep)
        self.brackets = BracketEmulator(
            broker,
            self.ledger,
            self.submitter,
            self.gate,
            self,
            self._emit,
            point_value=lambda: self.limits.point_value,
            slippage_pct=stop_limit_slippage_pct,
            now=self.now,
        )
        self.placed = 0
        self.rejected = 0
        self._lock = asyncio.Lock()  # one placement, reconcile or kill at a time
        self._queue: asyncio.Queue[Event] | None = None  # detached placement (see subscribe)
        self._worker: asyncio.Task[None] | None = None
        self._kill_task: asyncio.Task[None] | None = None
        self._resolvers: dict[str, asyncio.Task[None]] = {}
        self.resolve_retry = RESOLVE_RETRY
        self.gate.listen(self._on_gate_change)
        broker.set_update_handler(self.on_update)

    # ---- wiring -------------------------------------------------------------------------
    def now(self) -> int:
        return self.clock.now_ns() if self.clock is not None else 0

    @property
    def killed(self) -> str:
        """The kill switch's reason ("" when off), as the gate last knew it."""
        return self.gate.state.killed

    @property
    def halted(self) -> str:
        return self.gate.state.halted

    @property
    def retries(self) -> int:
        return self.submitter.retries

    @property
    def duplicates(self) -> int:
        return self.submitter.duplicates

    def subscribe(self, detached: bool = False) -> None:
        """Subscribe after the state handler, so a setup is persisted before it is acted on.

        `detached`: triggered setups are placed by a task of their own, in order, so that a
        remote broker's round trips and retries (seconds, with backoff) do not hold the candle
        pipeline while ticks pile up in the buffer. The paper broker stays attached: it fills
        at the next candle's open, which needs the order placed before that candle. So does
        any broker in a replay, whose clock would otherwise run on while the order is out.
        """
        if detached:
            self._queue = asyncio.Queue()
            self.bus.subscribe(EventType.SETUP_TRIGGERED, self._enqueue)
        else:
            self.bus.subscribe(EventType.SETUP_TRIGGERED, self.on_setup_event)
        self.bus.subscribe(EventType.KILL_SWITCH, self._on_kill_event)

    def _enqueue(self, event: Event) -> None:
        assert self._queue is not None
        self._queue.put_nowait(event)
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._place_queued())

    async def _place_queued(self) -> None:
        assert self._queue is not None
        while not self._queue.empty():
            event = self._queue.get_nowait()
            try:
                await self.on_setup_event(event)
            except Exception:  # noqa: BLE001 - one setup's failure must not stop the next
                log.exception("placing %s failed", event.payload(SetupUpdate).setup_id)
            finally:
                self._queue.task_done()

    async def drain(self) -> None:
        """Wait until every queued setup has been placed (or refused), and a kill in progress
        has finished: before the broker closes."""
        if self._queue is not None:
            await self._queue.join()
        if self._worker is not None:
            await self._worker
            self._worker = None
        if self._kill_task is not None:
            await self._kill_task
            self._kill_task = None
        await self.stop_resolving()

    async def stop_resolving(self) -> None:
        """Stop asking about unconfirmed orders (the engine stops): the next start's
        reconcile resolves them, so stopping never waits on a hung broker."""
        tasks = [t for t in self._resolvers.values() if not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if tasks:
            log.warning("%d unconfirmed order(s) left to the next start's reconcile", len(tasks))
        self._resolvers.clear()

    async def load(self) -> None:
        """Restore the kill switch and the open orders' view from the state store."""
        await self.gate.load()
        await self.ledger.load()
        self.ledger.positions = await self.broker.positions()

    def orders_view(self) -> tuple[list[Order], list[Position]]:
        """Open orders first, then the most recent others; positions with the last price."""
        return self.ledger.view()

    def gate_state(self) -> GateState:
        return self.gate.state

    def health(self) -> TradingHealth:
        gate = self.gate.state
        return TradingHealth(
            broker=self.broker.name,
            paper=self.broker.paper,
            kill_switch=gate.killed,
            halted=gate.halted,
            gate_fault=gate.store_fault,
            placed=self.placed,
            rejected=self.rejected,
            retries=self.retries,
            duplicates=self.duplicates,
            open_orders=self.ledger.open_count,
            malformed_updates=self.broker.malformed_updates,
        )

    def _emit(self, etype: EventType, payload: EventPayload) -> None:
        self.bus.emit(Event(etype, self.now(), payload, "executor"))

    # ---- placing ------------------------------------------------------------------------
    async def on_setup_event(self, event: Event) -> None:
        update = event.payload(SetupUpdate)
        if update.state is SetupState.TRIGGERED:
            async with self._lock:
                await self.place(update)
            # A kill another process made while the order was in flight: act on it now.
            await self.gate.refresh()

    async def place(self, u: SetupUpdate) -> OrderRecord:
        """Place the bracket for one triggered setup, exactly once across restarts."""
        cid = setup_client_order_id(u, "entry")
        rec = await self.ledger.get(cid)
        if rec is not None:
            if not rec.order.id and rec.order.status is OrderStatus.PENDING_NEW:
                await self.submit_entry(rec)
            return rec
        lv = u.levels
        entry, stop, target = float(lv["entry"]), float(lv["stop"]), float(lv["target"])
        side = Side.SELL if u.direction is Direction.SHORT else Side.BUY
        info = {
            "direction": u.direction.value,
            "entry": entry,
            "stop": stop,
            "target": target,
            "planned_rr": lv.get("rr"),
            "liq2_time": lv.get("liq2_time"),
        }
        order = Order(
            id="",
            client_order_id=cid,
            symbol=u.symbol,
            side=side,
            qty=0.0,
            type="market",
            status=OrderStatus.PENDING_NEW,
            leg="entry",
            setup_id=u.setup_id,
            created_at=u.time,
            updated_at=u.time,
        )
        rec = OrderRecord(order, info)
        age = self.now() - (u.time + NS_PER_MINUTE)
        if self.max_signal_age_ns and age > self.max_signal_age_ns:
            return await self._reject(
                rec, f"stale signal: the trigger candle closed {age / 1e9:.0f}s ago"
            )
        decision = await self.gate.admit("entry")
        if not decision.allowed:
            return await self._reject(rec, decision.reason)
        try:
            order.qty = risk.size(entry, stop, self.limits)
            risk.check(order.qty, await self._risk_context(u.time), self.limits)
        except risk.RiskBlocked as exc:
            return await self._reject(rec, str(exc))
        rec = self.ledger.canon(rec)
        await self.ledger.save(rec)  # persisted before it is sent
        await self.submit_entry(rec)
        return rec

    async def _risk_context(self, ts: int) -> risk.RiskContext:
        trades_today, pnl_today = await self.state.day_stats(self.state.day_of(ts))
        return risk.RiskContext(
            open_positions=len(await self.state.net_positions()),
            trades_today=trades_today,
            realized_pnl_today=pnl_today,
            kill_switch=bool(self.killed),
            safe_mode=bool(self.safe_mode()),
            halted=self.halted,
        )

    async def _reject(self, rec: OrderRecord, reason: str) -> OrderRecord:
        rec = self.ledger.canon(rec)
        rec.order.status = OrderStatus.REJECTED
        rec.info["reason"] = reason
        await self.ledger.save(rec)
        self.rejected += 1
        log.warning("order %s rejected: %s", rec.order.client_order_id, reason)
        o = rec.order
        self._emit(
            EventType.ORDER_REJECTED, OrderRejected(o.client_order_id, o.symbol, o.setup_id, reason)
        )
        return rec

    def _entry_request(self, rec: OrderRecord) -> OrderRequest:
        o, info = rec.order, rec.info
        bracket = self.broker.supports_bracket(o.symbol)
        return OrderRequest(
            client_order_id=o.client_order_id,
            symbol=o.symbol,
            side=o.side,
            qty=o.qty,
            type="market",
            time_in_force="gtc" if "/" in o.symbol else "day",
            take_profit=info["target"] if bracket else None,
            stop_loss=info["stop"] if bracket else None,
            leg="entry",
            setup_id=o.setup_id,
            created_at=o.created_at,
        )

    async def submit_entry(self, rec: OrderRecord) -> None:
        """Send a recorded entry; if its fate stays unknown, resolve it in the background."""
        if await self._send_entry(rec) == "unconfirmed":
            self._resolve_later(rec)

    async def _send_entry(self, rec: OrderRecord) -> EntryOutcome:
        """One placement of a recorded entry; refused by the gate before any attempt, it is
        rejected; stopped by a kill after an attempt, the kill looks it up."""
        rec.info["emulated"] = not self.broker.supports_bracket(rec.order.symbol)
        try:
            orders = await self.submitter.submit(self._entry_request(rec), "entry")
        except GateClosedError as exc:
            if not exc.attempted:
                await self._reject(rec, str(exc))
                return "rejected"
            log.warning(
                "order %s stopped between attempts: %s (the kill looks it up)",
                rec.order.client_order_id,
                exc,
            )
            return "stopped"
        except OrderRejectedError as exc:
            await self._reject(rec, str(exc))
            return "rejected"
        except BrokerError as exc:
            log.error(
                "order %s not confirmed: %s (asking the broker for it in the background)",
                rec.order.client_order_id,
                exc,
            )
            self._emit(
                EventType.ERROR,
                ErrorReport(f"order {rec.order.client_order_id} not confirmed: {exc}"),
            )
            return "unconfirmed"
        await self._placed(rec, orders)
        return "placed"

    async def _placed(self, rec: OrderRecord, orders: list[Order]) -> None:
        await self.adopt(rec, orders)
        self.placed += 1
        o = rec.order
        placed = OrderPlaced(
            o.client_order_id,
            o.id,
            o.symbol,
            o.side,
            o.qty,
            o.setup_id,
            float(rec.info["entry"]),
            float(rec.info["stop"]),
            float(rec.info["target"]),
            bool(rec.info["emulated"]),
        )
        self._emit(EventType.ORDER_PLACED, placed)

    def _resolve_later(self, rec: OrderRecord) -> None:
        cid = rec.order.client_order_id
        task = self._resolvers.get(cid)
        if task is None or task.done():
            self._resolvers[cid] = asyncio.get_running_loop().create_task(
                self._resolve(cid), name=f"resolve-{cid}"
            )

    async def _resolve(self, cid: str) -> None:
        """An entry whose submission timed out: ask the broker for its client order id until
        it answers, then adopt what it has, or send it again (the id makes a late arrival of
        the first request a duplicate, not a second order). Ends when the order is known."""
        backoff = self.resolve_retry.start(0)
        while True:
            backoff.failed()
            await asyncio.sleep(backoff.next_delay())  # real time: a broker's hang
            try:
                found = await self.broker.get_by_client_id(cid)
            except BrokerError as exc:
                log.warning("order %s still unknown: %s", cid, exc)
                if not exc.retryable:
                    return
                continue
            async with self._lock:
                rec = await self.ledger.get(cid)
                if rec is None:
                    return
                rec = self.ledger.canon(rec)
                if found:  # adopted with its legs, even if the stream told of the entry
                    log.info("order %s found at the broker after a timeout: adopted", cid)
                    await self._placed(rec, found)
                    if self.killed:  # it arrived after the kill's cancel: cancel it too
                        await cancel_at_broker(found, self.broker, self.submitter)
                        await self.adopt(rec, await self.broker.get_by_client_id(cid) or found)
                    return
                if rec.order.id or rec.order.status is not OrderStatus.PENDING_NEW:
                    return  # settled meanwhile (a kill marked it as never sent)
                if await self._send_entry(rec) != "unconfirmed":
                    return

    async def adopt(self, rec: OrderRecord, orders: list[Order]) -> None:
        """Take the broker's view of a just-placed order (and its legs) into the state.

        The legs are recorded first, so whatever the entry's fill does to its exits finds
        them; then the entry is brought in line before its legs, so an exit the reply already
        shows filled (a venue may fill both before it answers) closes a trade whose entry fill
        is known, instead of being taken for an exit without an entry."""
        main, legs = orders[0], orders[1:]
        leg_recs = []
        for leg in legs:
            leg_rec = await self.ledger.get(leg.client_order_id)
            if leg_rec is None:
                info = {"entry_cid": rec.order.client_order_id, "direction": rec.info["direction"]}
                leg_rec = self.ledger.canon(OrderRecord(blank_leg(leg), info))
                leg_rec.order.parent_id = main.id
                await self.ledger.save(leg_rec)
            leg_rec.order.parent_id = main.id
            leg_recs.append(leg_rec)
        await self.sync(rec, main, None)
        for leg_rec, leg in zip(leg_recs, legs, strict=True):
            await self.sync(leg_rec, leg, None)

    # ---- broker updates -----------------------------------------------------------------
    async def on_update(self, up: OrderUpdate) -> None:
        """A trade update (paper fill, Alpaca stream): persist, then act, then tell the bus."""
        rec = await self.ledger.find(up.order.client_order_id, up.order.id)
        if rec is None:
            log.warning(
                "update for an order slob-tui did not place: %s %s",
                up.order.client_order_id,
                up.event,
            )
            return
        await self.sync(rec, up.order, up.fill)

    async def sync(self, rec: OrderRecord, b: Order, fill: Fill | None) -> None:
        """Bring our record in line with the broker's order `b`; emit what changed."""
        rec = self.ledger.canon(rec)
        o = rec.order
        prev_status = o.status
        o.id = b.id or o.id
        o.parent_id = b.parent_id or o.parent_id
        o.updated_at = max(o.updated_at, b.updated_at)
        new_qty = b.filled_qty - o.filled_qty
        if new_qty > 1e-12:
            price = fill.price if fill is not None else float(b.filled_avg_price or 0.0)
            f = Fill(
                o.id,
                o.client_order_id,
                o.symbol,
                o.side,
                new_qty,
                price,
                fill.ts if fill is not None else b.updated_at,
                fill.execution_id if fill is not None else f"{o.id}-sync-{b.filled_qty:g}",
            )
            o.filled_qty, o.status = b.filled_qty, b.status
            o.filled_avg_price = b.filled_avg_price or price
            await self.ledger.save_fill(f, rec)
            filled = OrderFilled(
                o.client_order_id,
                o.id,
                o.symbol,
                o.side,
                f.qty,
                f.price,
                o.leg,
                f.execution_id,
                o.setup_id,
                f.ts,
            )
            self._emit(EventType.ORDER_FILLED, filled)
            if o.status is OrderStatus.FILLED:
                await self._after_fill(rec, f)
            return
        if (
            not prev_status.is_open
            and prev_status is not OrderStatus.PENDING_NEW
            and b.status.is_open
        ):
            return  # a late "new" after the fill or the cancel
        o.status = b.status
        await self.ledger.save(rec)
        if o.status in _DONE and prev_status not in _DONE:
            if o.status is OrderStatus.REJECTED:
                rejected = OrderRejected(
                    o.client_order_id, o.symbol, o.setup_id, "", o.id, o.leg, o.status
                )
                self._emit(EventType.ORDER_REJECTED, rejected)
            else:
                cancelled = OrderCancelled(
                    o.client_order_id, o.id, o.symbol, o.leg, o.status, o.setup_id
                )
                self._emit(EventType.ORDER_CANCELLED, cancelled)

    async def _after_fill(self, rec: OrderRecord, f: Fill) -> None:
        o = rec.order
        f = await self.ledger.fill_of(rec) or f  # every execution of the order, not the last
        if o.leg == "entry":
            await self.brackets.entry_filled(rec, f)
        elif o.leg in EXIT_LEGS:
            await self.brackets.exit_filled(rec, f)
        await self._refresh_positions(o.symbol)

    async def _refresh_positions(self, symbol: str) -> None:
        self.ledger.positions = await self.broker.positions()
        pos = next((p for p in self.ledger.positions if p.symbol == symbol), None)
        self._emit(
            EventType.POSITION_CHANGED,
            PositionChanged(symbol, pos.qty if pos else 0.0, pos.avg_price if pos else None),
        )

    # ---- kill switch and halts ------------------------------------------------------------
    async def kill_switch(self, reason: str = "kill switch") -> dict[str, Any]:
        """Cancel every open order and flatten every position; block new orders until reset.

        The gate closes at once; an order in flight finishes (or stops at its next attempt)
        before the lock is ours, so nothing the broker accepts comes after the cancel."""
        state = await self.gate.kill(reason)
        async with self._lock:
            return await self._execute_kill(state)

    async def _execute_kill(self, state: GateState) -> dict[str, Any]:
        self.gate.acted_on(state.kill_id)
        report = await cancel_and_flatten(
            state, self.ledger, self.broker, self.submitter, self.brackets, self, self.now()
        )
        self._emit(EventType.KILL_SWITCH, report.notice())
        return report.as_dict()

    async def reset_kill_switch(self) -> None:
        await self.gate.reset()

    async def _on_kill_event(self, event: Event) -> None:
        notice = event.payload(KillSwitchNotice)
        if notice.request:
            await self.kill_switch(notice.reason or "requested on the bus")

    async def check_kill_request(self) -> None:
        """Per candle: poll the gate, so a kill or reset from `slob-tui flatten` in another
        process is acted on even when no order is due."""
        await self.gate.poll()

    async def halt(self, reason: str) -> None:
        """Stop new orders (fail closed); the console and the log say why."""
        await self.gate.halt(reason)

    async def _on_gate_change(self, change: GateChange) -> None:
        before, after = change.before, change.after
        if after.halted and after.halted != before.halted:
            self._emit(EventType.TRADING_HALTED, TradingHalted(after.halted))
        if before.killed and not after.killed:
            self._emit(EventType.KILL_SWITCH, KillSwitchNotice(active=False, reason="reset"))
        if change.external and self.gate.pending_kill() is not None:
            # an order in flight, or a remote broker the candle pipeline must not wait on
            if self._lock.locked() or self._queue is not None:
                if self._kill_task is None or self._kill_task.done():
                    self._kill_task = asyncio.get_running_loop().create_task(self._follow_kill())
            else:
                await self._follow_kill()

    async def _follow_kill(self) -> None:
        """Cancel and flatten for a kill another process made (it may have done so too: the
        flatten orders' ids derive from the kill, so nothing is doubled)."""
        async with self._lock:
            pending = self.gate.pending_kill()
            if pending is None:
                return
            await self._execute_kill(pending)
            await self.gate.acknowledge(pending.kill_id)

    # ---- restart --------------------------------------------------------------------------
    async def reconcile(self) -> list[str]:
        """Match our open orders and positions with the broker's before any new order.

        Returns the problems found; a position no record explains halts trading."""
        async with self._lock:
            return await reconcile(
                self.ledger, self.broker, self.submitter, self.brackets, self.gate, self
            )
