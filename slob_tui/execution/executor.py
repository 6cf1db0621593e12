"""OrderExecutor: a triggered setup becomes one bracket order, placed once, tracked to the end.

Flow: SETUP_TRIGGERED -> sized intent -> risk checks -> the order row persisted -> submit with
an id derived from the setup (retries with backoff on transient errors; a 422 "must be unique"
means it was already placed, so it is fetched) -> broker updates -> fills, trades and events.
Where the broker has no brackets (crypto) the bracket is emulated (`exits.py`): entry, then a
target and a stop with one cancelling the other; `reconcile()` (`recovery.py`) finishes whatever
a crash interrupted.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from slob_tui.brokers.base import (
    Broker,
    BrokerError,
    DuplicateOrderError,
    OrderRejectedError,
    OrderRequest,
    OrderUpdate,
)
from slob_tui.core.clock import Clock
from slob_tui.core.events import Event, EventType
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
from slob_tui.engine.bus import EventBus
from slob_tui.execution import risk
from slob_tui.execution.exits import ExitsMixin
from slob_tui.execution.ids import setup_client_order_id
from slob_tui.execution.recovery import EXIT_LEGS, RecoveryMixin, order_fields
from slob_tui.storage.state import OrderRecord, StateManager

log = logging.getLogger(__name__)
T = TypeVar("T")
_DONE = (OrderStatus.CANCELED, OrderStatus.EXPIRED, OrderStatus.REJECTED)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Backoff for transient broker errors: `base * 2**n` seconds, capped, with jitter."""

    attempts: int = 5
    base_s: float = 0.25
    cap_s: float = 4.0
    jitter: float = 0.1

    def delay(self, attempt: int, rng: random.Random) -> float:
        d = min(self.cap_s, self.base_s * (2**attempt))
        return d * (1 + self.jitter * rng.random())


class OrderExecutor(RecoveryMixin, ExitsMixin):
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
    ) -> None:
        self.broker = broker
        self.state = state
        self.bus = bus
        self.limits = limits or risk.RiskLimits()
        self.clock = clock
        self.safe_mode = safe_mode
        self.retry = retry or RetryPolicy()
        self.slippage_pct = stop_limit_slippage_pct
        self.max_signal_age_ns = int(max_signal_age_s * 1e9)
        self._sleep = sleep
        self._rng = random.Random(0)
        self.killed: str = ""
        self.halted: str = ""
        self.retries = 0
        self.duplicates = 0
        self.placed = 0
        self.rejected = 0
        self._recs: dict[str, OrderRecord] = {}
        self._positions: list[Position] = []
        self._lock = asyncio.Lock()
        self._queue: asyncio.Queue[Event] | None = None  # detached placement (see subscribe)
        self._worker: asyncio.Task[None] | None = None
        broker.set_update_handler(self.on_update)

    # ---- wiring -------------------------------------------------------------------------
    def now(self) -> int:
        return self.clock.now_ns() if self.clock is not None else 0

    def subscribe(self, detached: bool = False) -> None:
        """Subscribe after the state handler, so a setup is persisted before it is acted on.

        `detached`: triggered setups are placed by a task of their own, in order, so that a
        remote broker's round trips and retries (seconds, with backoff) do not hold the candle
        pipeline while ticks pile up in the buffer. The paper broker stays attached: it fills
        at the next candle's open, which needs the order placed before that candle.
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
                log.exception("placing %s failed", getattr(event.data, "setup_id", "?"))
            finally:
                self._queue.task_done()

    async def drain(self) -> None:
        """Wait until every queued setup has been placed (or refused): before the broker closes."""
        if self._queue is not None:
            await self._queue.join()
        if self._worker is not None:
            await self._worker
            self._worker = None

    async def load(self) -> None:
        """Restore the kill switch and the open orders' view from the state store."""
        kill = await self.state.get_value("kill_switch")
        self.killed = (kill or {}).get("reason", "") if isinstance(kill, dict) else ""
        for rec in await self.state.orders():
            self._recs[rec.order.client_order_id] = rec
        self._positions = await self.broker.positions()

    def orders_view(self) -> tuple[list[Order], list[Position]]:
        """Open orders first, then the most recent others; positions with the last price."""
        orders = [r.order for r in self._recs.values()]
        live = [o for o in orders if o.status.is_open]
        done = [o for o in orders if not o.status.is_open][-20:]
        return live + done[::-1], list(self._positions)

    def health(self) -> dict[str, Any]:
        return {"broker": self.broker.name, "paper": self.broker.paper,
                "kill_switch": self.killed or None, "halted": self.halted or None,
                "placed": self.placed, "rejected": self.rejected, "retries": self.retries,
                "duplicates": self.duplicates,
                "open_orders": sum(r.order.status.is_open for r in self._recs.values())}

    def _emit(self, etype: EventType, data: dict[str, Any]) -> None:
        self.bus.emit(Event(etype, self.now(), data, "executor"))

    # ---- placing ------------------------------------------------------------------------
    async def on_setup_event(self, event: Event) -> None:
        update: SetupUpdate = event.data
        if update.state is SetupState.TRIGGERED:
            async with self._lock:
                await self.place(update)

    async def place(self, u: SetupUpdate) -> OrderRecord:
        """Place the bracket for one triggered setup, exactly once across restarts."""
        cid = setup_client_order_id(u, "entry")
        rec = await self.state.get_order(cid)
        if rec is not None:
            if not rec.order.id and rec.order.status is OrderStatus.PENDING_NEW:
                await self._submit_entry(rec)
            return rec
        lv = u.levels
        entry, stop, target = float(lv["entry"]), float(lv["stop"]), float(lv["target"])
        side = Side.SELL if u.direction is Direction.SHORT else Side.BUY
        info = {"direction": u.direction.value, "entry": entry, "stop": stop, "target": target,
                "planned_rr": lv.get("rr"), "liq2_time": lv.get("liq2_time")}
        order = Order(id="", client_order_id=cid, symbol=u.symbol, side=side, qty=0.0,
                      type="market", status=OrderStatus.PENDING_NEW, leg="entry",
                      setup_id=u.setup_id, created_at=u.time, updated_at=u.time)
        rec = OrderRecord(order, info)
        age = self.now() - (u.time + NS_PER_MINUTE)
        if self.max_signal_age_ns and age > self.max_signal_age_ns:
            return await self._reject(rec, f"stale signal: the trigger candle closed "
                                      f"{age / 1e9:.0f}s ago")
        try:
            order.qty = risk.size(entry, stop, self.limits)
            risk.check(order.qty, await self._risk_context(u.time), self.limits)
        except risk.RiskBlocked as exc:
            return await self._reject(rec, str(exc))
        rec = self._canon(rec)
        await self.state.save_order(rec)  # persisted before it is sent
        await self._submit_entry(rec)
        return rec

    async def _risk_context(self, ts: int) -> risk.RiskContext:
        trades_today, pnl_today = await self.state.day_stats(self.state.day_of(ts))
        return risk.RiskContext(
            open_positions=len(await self.state.net_positions()),
            trades_today=trades_today, realized_pnl_today=pnl_today,
            kill_switch=bool(self.killed), safe_mode=bool(self.safe_mode()),
            halted=self.halted)

    async def _reject(self, rec: OrderRecord, reason: str) -> OrderRecord:
        rec = self._canon(rec)
        rec.order.status = OrderStatus.REJECTED
        rec.info["reason"] = reason
        await self.state.save_order(rec)
        self.rejected += 1
        log.warning("order %s rejected: %s", rec.order.client_order_id, reason)
        self._emit(EventType.ORDER_REJECTED, {
            "client_order_id": rec.order.client_order_id, "symbol": rec.order.symbol,
            "setup_id": rec.order.setup_id, "reason": reason})
        return rec

    def _entry_request(self, rec: OrderRecord) -> OrderRequest:
        o, info = rec.order, rec.info
        bracket = self.broker.supports_bracket(o.symbol)
        return OrderRequest(
            client_order_id=o.client_order_id, symbol=o.symbol, side=o.side, qty=o.qty,
            type="market", time_in_force="gtc" if "/" in o.symbol else "day",
            take_profit=info["target"] if bracket else None,
            stop_loss=info["stop"] if bracket else None,
            leg="entry", setup_id=o.setup_id, created_at=o.created_at)

    async def _submit_entry(self, rec: OrderRecord) -> None:
        rec.info["emulated"] = not self.broker.supports_bracket(rec.order.symbol)
        try:
            orders = await self._submit(self._entry_request(rec))
        except OrderRejectedError as exc:
            await self._reject(rec, str(exc))
            return
        except BrokerError as exc:
            log.error("order %s not confirmed: %s (reconciled at the next start)",
                      rec.order.client_order_id, exc)
            self._emit(EventType.ERROR, {"error": f"order {rec.order.client_order_id} not "
                                         f"confirmed: {exc}"})
            return
        await self._adopt(rec, orders)
        self.placed += 1
        o = rec.order
        self._emit(EventType.ORDER_PLACED, {
            "client_order_id": o.client_order_id, "order_id": o.id, "symbol": o.symbol,
            "side": o.side.value, "qty": o.qty, "setup_id": o.setup_id,
            "entry": rec.info["entry"], "stop": rec.info["stop"], "target": rec.info["target"],
            "emulated": rec.info["emulated"]})

    async def _submit(self, req: OrderRequest) -> list[Order]:
        """Submit with retries; a duplicate id means an earlier attempt got through: fetch it."""
        try:
            return await self._with_retry(lambda: self.broker.submit(req))
        except DuplicateOrderError:
            self.duplicates += 1
            found = await self._with_retry(
                lambda: self.broker.get_by_client_id(req.client_order_id))
            if not found:
                raise BrokerError(f"{req.client_order_id}: broker says duplicate but has no "
                                  "such order") from None
            return found

    async def _with_retry(self, call: Callable[[], Awaitable[T]]) -> T:
        attempt = 0
        while True:
            try:
                return await call()
            except BrokerError as exc:
                if not exc.retryable or attempt + 1 >= self.retry.attempts:
                    raise
                self.retries += 1
                delay = self.retry.delay(attempt, self._rng)
                log.warning("broker call failed (%s), retry %d in %.2fs", exc, attempt + 1, delay)
                attempt += 1
                await self._sleep(delay)

    async def _adopt(self, rec: OrderRecord, orders: list[Order]) -> None:
        """Take the broker's view of a just-placed order (and its legs) into the state."""
        main, legs = orders[0], orders[1:]
        for leg in legs:
            leg_rec = await self.state.get_order(leg.client_order_id) or OrderRecord(
                _blank(leg), {"entry_cid": rec.order.client_order_id,
                              "direction": rec.info["direction"]})
            leg_rec.order.parent_id = main.id
            await self._apply(leg_rec, leg, None)
        await self._apply(rec, main, None)

    # ---- broker updates -----------------------------------------------------------------
    async def on_update(self, up: OrderUpdate) -> None:
        """A trade update (paper fill, Alpaca stream): persist, then act, then tell the bus."""
        rec = await self.state.get_order(up.order.client_order_id)
        if rec is None:
            rec = await self.state.get_order_by_id(up.order.id)
        if rec is None:
            log.warning("update for an order slob-tui did not place: %s %s",
                        up.order.client_order_id, up.event)
            return
        await self._apply(rec, up.order, up.fill)

    def _canon(self, rec: OrderRecord) -> OrderRecord:
        """One live record object per order: the stream and a REST reply about the same order
        may race, and deciding on one shared object (checked and updated before any await)
        is what keeps a fill from being counted twice."""
        return self._recs.setdefault(rec.order.client_order_id, rec)

    async def _apply(self, rec: OrderRecord, b: Order, fill: Fill | None) -> None:
        """Bring our record in line with the broker's order `b`; emit what changed."""
        rec = self._canon(rec)
        o = rec.order
        prev_status = o.status
        o.id = b.id or o.id
        o.parent_id = b.parent_id or o.parent_id
        o.updated_at = max(o.updated_at, b.updated_at)
        new_qty = b.filled_qty - o.filled_qty
        if new_qty > 1e-12:
            price = fill.price if fill is not None else float(b.filled_avg_price or 0.0)
            f = Fill(o.id, o.client_order_id, o.symbol, o.side, new_qty, price,
                     fill.ts if fill is not None else b.updated_at,
                     fill.execution_id if fill is not None else f"{o.id}-sync-{b.filled_qty:g}")
            o.filled_qty, o.status = b.filled_qty, b.status
            o.filled_avg_price = b.filled_avg_price or price
            await self.state.save_fill_and_order(f, rec)
            self._emit(EventType.ORDER_FILLED, {
                "client_order_id": o.client_order_id, "order_id": o.id, "symbol": o.symbol,
                "side": o.side.value, "qty": f.qty, "price": f.price, "leg": o.leg,
                "execution_id": f.execution_id, "setup_id": o.setup_id})
            if o.status is OrderStatus.FILLED:
                await self._after_fill(rec, f)
            return
        if not prev_status.is_open and prev_status is not OrderStatus.PENDING_NEW \
                and b.status.is_open:
            return  # a late "new" after the fill or the cancel
        o.status = b.status
        await self.state.save_order(rec)
        if o.status in _DONE and prev_status not in _DONE:
            etype = (EventType.ORDER_REJECTED if o.status is OrderStatus.REJECTED
                     else EventType.ORDER_CANCELLED)
            self._emit(etype, {"client_order_id": o.client_order_id, "order_id": o.id,
                               "symbol": o.symbol, "leg": o.leg, "status": o.status.value,
                               "setup_id": o.setup_id})

    async def _after_fill(self, rec: OrderRecord, f: Fill) -> None:
        o = rec.order
        f = await self._fill_of(rec) or f  # every execution of the order, not just the last
        if o.leg == "entry":
            await self._entry_filled(rec, f)
        elif o.leg in EXIT_LEGS:
            await self._exit_filled(rec, f)
        await self._refresh_positions(o.symbol)

    async def _refresh_positions(self, symbol: str) -> None:
        self._positions = await self.broker.positions()
        pos = next((p for p in self._positions if p.symbol == symbol), None)
        self._emit(EventType.POSITION_CHANGED, {
            "symbol": symbol, "qty": pos.qty if pos else 0.0,
            "avg_price": pos.avg_price if pos else None})


def _blank(b: Order) -> Order:
    """Our record of a leg the broker created: nothing filled yet, as far as we know."""
    return Order(**{**order_fields(b), "filled_qty": 0.0, "filled_avg_price": None,
                    "status": OrderStatus.PENDING_NEW})
