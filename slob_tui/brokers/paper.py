"""PaperBroker: an in-process broker filling against the live candles (the default, no keys).

Rules, per closed candle (the engine calls `on_candle` before the tracker sees the candle):
- a market order fills at the open of the first candle that starts after it was placed, so an
  order from a trigger on candle k fills at k+1's open, never on the candle that caused it;
- a stop fills when the candle touches it, at the stop, or at the open if the candle opened
  beyond it (a gap through the stop); a limit fills on touch at the limit (or a better open);
- bracket exits wait until the entry fills and are checked on the same candle; when a candle
  touches both, the stop fills first (the pessimistic reading of one OHLC bar); one exit
  cancels the other.
Crypto symbols (with a "/") get no brackets, as at Alpaca, so the executor's emulated bracket
runs against paper too. The book (orders, positions, cash) is saved through `persist` after
every change, so a restarted process continues the same account.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from typing import Any

from slob_tui.brokers.base import (
    BrokerError,
    DuplicateOrderError,
    OrderRejectedError,
    OrderRequest,
    OrderUpdate,
    UpdateHandler,
)
from slob_tui.core.models import Candle, Fill, Order, OrderStatus, Position, Side
from slob_tui.storage.state import order_from_dict, order_to_dict

Persist = Callable[[dict[str, Any]], Awaitable[None]]
_OPEN_FILLABLE = (OrderStatus.NEW, OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED)
_PRIORITY = {"market": 0, "stop": 1, "stop_limit": 1, "limit": 2}
KEEP_CLOSED = 200  # finished orders kept in the saved book (for reconcile after a crash)


class PaperBroker:
    name = "paper"
    paper = True
    malformed_updates = 0  # its updates are made in process: never malformed

    def __init__(
        self,
        starting_balance: float = 100_000.0,
        persist: Persist | None = None,
        check_buying_power: bool = True,
    ) -> None:
        self.starting_balance = starting_balance
        self.cash = starting_balance
        self.realized = 0.0
        self.orders: dict[str, Order] = {}
        self.legs: dict[str, list[str]] = {}
        self.by_cid: dict[str, str] = {}
        self.positions_book: dict[str, list[float]] = {}  # symbol -> [qty, avg price]
        self.last_price: dict[str, float] = {}
        self.last_start: dict[str, int] = {}
        self.check_buying_power = check_buying_power
        self._persist = persist
        self._handler: UpdateHandler | None = None
        self._now = 0
        self.fills_made = 0

    # ---- protocol ---------------------------------------------------------------------
    def set_update_handler(self, handler: UpdateHandler) -> None:
        self._handler = handler

    def supports_bracket(self, symbol: str) -> bool:
        return "/" not in symbol

    async def connect(self) -> None:
        return None

    async def close(self) -> None:
        await self._save()

    async def submit(self, req: OrderRequest) -> list[Order]:
        if req.client_order_id in self.by_cid:
            raise DuplicateOrderError("client_order_id must be unique", 422, 40010001)
        if req.qty <= 0:
            raise OrderRejectedError("qty must be > 0", 422, 40010000)
        if req.is_bracket and not self.supports_bracket(req.symbol):
            raise OrderRejectedError(
                "crypto orders not allowed for advanced order_class: bracket", 422, 40010000
            )
        if req.type in ("limit", "stop_limit") and req.limit_price is None:
            raise OrderRejectedError("limit_price is required", 422, 40010000)
        if req.type in ("stop", "stop_limit") and req.stop_price is None:
            raise OrderRejectedError("stop_price is required", 422, 40010000)
        ref = req.limit_price or req.stop_price or self.last_price.get(req.symbol)
        opening = self._signed(req.side, req.qty) * self._pos(req.symbol)[0] >= 0
        if (
            self.check_buying_power
            and opening
            and ref is not None
            and req.qty * ref > self.buying_power()
        ):
            raise OrderRejectedError("insufficient buying power", 403, 40310000)
        created = max(req.created_at, self._now)
        parent = self._new(
            req.client_order_id,
            req.symbol,
            req.side,
            req.qty,
            req.type,
            req.limit_price,
            req.stop_price,
            req.leg,
            created,
            req.setup_id,
        )
        out = [parent]
        if req.is_bracket:
            exit_side = Side.SELL if req.side is Side.BUY else Side.BUY
            for leg, otype, lim, stp in (
                ("target", "limit", req.take_profit, None),
                ("stop", "stop", None, req.stop_loss),
            ):
                o = self._new(
                    f"{req.client_order_id}-{leg[0].upper()}",
                    req.symbol,
                    exit_side,
                    req.qty,
                    otype,
                    lim,
                    stp,
                    leg,
                    created,
                    req.setup_id,
                    parent=parent.id,
                    status=OrderStatus.HELD,
                )
                self.legs.setdefault(parent.id, []).append(o.id)
                out.append(o)
        await self._save()
        return [copy.copy(o) for o in out]

    async def get_by_client_id(self, client_order_id: str) -> list[Order]:
        oid = self.by_cid.get(client_order_id)
        if oid is None:
            return []
        return [copy.copy(self.orders[x]) for x in (oid, *self.legs.get(oid, ()))]

    async def get_order(self, order_id: str) -> Order | None:
        o = self.orders.get(order_id)
        return None if o is None else copy.copy(o)

    async def open_orders(self) -> list[Order]:
        return [copy.copy(o) for o in self.orders.values() if o.status.is_open]

    async def positions(self) -> list[Position]:
        return [
            Position(s, q, p, self.last_price.get(s))
            for s, (q, p) in self.positions_book.items()
            if q
        ]

    async def cancel(self, order_id: str) -> None:
        o = self.orders.get(order_id)
        if o is None:
            raise BrokerError("order not found", 404, 40410000)
        if not o.status.is_open:
            raise BrokerError(f'order is already in "{o.status.value}" state', 422, 42210000)
        cancelled = [
            o,
            *(self.orders[x] for x in self.legs.get(o.id, ()) if self.orders[x].status.is_open),
        ]
        for c in cancelled:
            c.status = OrderStatus.CANCELED
            c.updated_at = self._now
        await self._save()
        for c in cancelled:
            await self._deliver(OrderUpdate("canceled", copy.copy(c)))

    async def cancel_all(self) -> None:
        for o in list(self.orders.values()):
            if o.status.is_open and o.parent_id is None:
                await self.cancel(o.id)
        for o in list(self.orders.values()):
            if o.status.is_open:
                await self.cancel(o.id)

    async def close_position(
        self, symbol: str, client_order_id: str, side: Side, qty: float, created_at: int = 0
    ) -> list[Order]:
        """Flatten now at the last price: a kill switch cannot wait for the next candle."""
        if client_order_id in self.by_cid:
            raise DuplicateOrderError("client_order_id must be unique", 422, 40010001)
        px = self.last_price.get(symbol)
        if px is None:
            raise BrokerError(f"no price for {symbol} yet: cannot flatten", 422)
        o = self._new(
            client_order_id, symbol, side, qty, "market", None, None, "close", self._now, None
        )
        await self._fill(o, px)
        return [copy.copy(o)]

    async def account(self) -> dict[str, Any]:
        return {
            "cash": self.cash,
            "equity": self.equity(),
            "buying_power": self.buying_power(),
            "realized_pnl": self.realized,
            "starting_balance": self.starting_balance,
            "unrealized_pnl": self.equity() - self.cash - self._market_value(),
        }

    # ---- the candle hook ----------------------------------------------------------------
    async def on_candle(self, candle: Candle) -> None:
        """Fill what this candle reaches; candles already seen (after a restart) are skipped."""
        sym = candle.symbol
        if candle.start <= self.last_start.get(sym, -1):
            return
        self.last_start[sym] = candle.start
        self._now = candle.start
        self.last_price[sym] = candle.open
        for _ in range(16):  # each pass fills at most one order; handlers may add or cancel
            if not await self._one_fill(candle):
                break
        self.last_price[sym] = candle.close

    async def _one_fill(self, c: Candle) -> bool:
        todo = [
            o for o in self.orders.values() if o.symbol == c.symbol and o.status in _OPEN_FILLABLE
        ]
        todo.sort(key=lambda o: _PRIORITY.get(o.type, 3))
        for o in todo:
            px = self._fill_price(o, c)
            if px is not None:
                await self._fill(o, px)
                return True
        return False

    def _fill_price(self, o: Order, c: Candle) -> float | None:
        buy = o.side is Side.BUY
        if o.type == "market":
            return c.open if o.created_at < c.start else None
        if o.created_at > c.start:
            return None
        if o.type in ("stop", "stop_limit"):
            stop = float(o.stop_price or 0)
            if not (c.high >= stop if buy else c.low <= stop):
                return None
            px = max(c.open, stop) if buy else min(c.open, stop)
            if o.type == "stop":
                return px
            lim = float(o.limit_price or 0)
            if buy and px <= lim or not buy and px >= lim:
                return px
            o.type, o.stop_price = "limit", None  # triggered: rests as a limit order
            return self._fill_price(o, c)
        if o.type == "limit":
            lim = float(o.limit_price or 0)
            if buy:
                return min(c.open, lim) if c.low <= lim else None
            return max(c.open, lim) if c.high >= lim else None
        return None

    # ---- internals ----------------------------------------------------------------------
    async def _fill(self, o: Order, price: float) -> None:
        signed = self._signed(o.side, o.qty)
        pos = self._pos(o.symbol)
        old_qty, old_avg = pos
        new_qty = old_qty + signed
        if old_qty and (old_qty > 0) != (signed > 0):  # reducing or flipping: realise P&L
            closed = min(abs(old_qty), abs(signed))
            self.realized += (price - old_avg) * closed * (1 if old_qty > 0 else -1)
            pos[1] = price if new_qty and (new_qty > 0) != (old_qty > 0) else old_avg
        else:
            pos[1] = (old_qty * old_avg + signed * price) / new_qty if new_qty else 0.0
        pos[0] = new_qty
        if not new_qty:
            pos[1] = 0.0
        self.cash -= signed * price
        o.status = OrderStatus.FILLED
        o.filled_qty = o.qty
        o.filled_avg_price = price
        o.updated_at = self._now
        self.fills_made += 1
        fill = Fill(
            o.id, o.client_order_id, o.symbol, o.side, o.qty, price, self._now, f"{o.id}-fill"
        )
        released = []
        for leg_id in self.legs.get(o.id, ()):  # a filled entry releases its exits
            leg = self.orders[leg_id]
            if leg.status is OrderStatus.HELD:
                leg.status = OrderStatus.NEW
                released.append(leg)
        cancelled = []
        if o.parent_id is not None:  # one exit filled: the other is cancelled
            for sib_id in self.legs.get(o.parent_id, ()):
                sib = self.orders[sib_id]
                if sib_id != o.id and sib.status.is_open:
                    sib.status = OrderStatus.CANCELED
                    sib.updated_at = self._now
                    cancelled.append(sib)
        await self._save()
        await self._deliver(OrderUpdate("fill", copy.copy(o), fill))
        for leg in released:
            await self._deliver(OrderUpdate("new", copy.copy(leg)))
        for sib in cancelled:
            await self._deliver(OrderUpdate("canceled", copy.copy(sib)))

    def _new(
        self,
        cid: str,
        symbol: str,
        side: Side,
        qty: float,
        otype: str,
        limit: float | None,
        stop: float | None,
        leg: str,
        created: int,
        setup_id: str | None,
        parent: str | None = None,
        status: OrderStatus = OrderStatus.NEW,
    ) -> Order:
        o = Order(
            id=f"P-{cid}",
            client_order_id=cid,
            symbol=symbol,
            side=side,
            qty=qty,
            type=otype,
            status=status,
            leg=leg,
            parent_id=parent,
            limit_price=limit,
            stop_price=stop,
            setup_id=setup_id,
            created_at=created,
            updated_at=created,
        )
        self.orders[o.id] = o
        self.by_cid[cid] = o.id
        return o

    async def _deliver(self, update: OrderUpdate) -> None:
        if self._handler is not None:
            await self._handler(update)

    @staticmethod
    def _signed(side: Side, qty: float) -> float:
        return qty if side is Side.BUY else -qty

    def _pos(self, symbol: str) -> list[float]:
        return self.positions_book.setdefault(symbol, [0.0, 0.0])

    def _market_value(self) -> float:
        return sum(q * p for q, p in self.positions_book.values())

    def equity(self) -> float:
        return self.cash + sum(
            q * self.last_price.get(s, p) for s, (q, p) in self.positions_book.items()
        )

    def buying_power(self) -> float:
        reserved = sum(
            (o.qty - o.filled_qty)
            * (o.limit_price or o.stop_price or self.last_price.get(o.symbol, 0.0))
            for o in self.orders.values()
            if o.status.is_open and o.parent_id is None and o.leg == "entry"
        )
        return max(0.0, self.equity() - reserved)

    # ---- persistence --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The book to save: open orders and the newest finished ones (so the cost of a save
        does not grow with the account's history). Older finished orders leave memory too."""
        closed = [oid for oid, o in self.orders.items() if not o.status.is_open]
        for oid in closed[:-KEEP_CLOSED] if len(closed) > KEEP_CLOSED else ():
            if oid not in self.orders:
                continue  # a leg that already left with its entry
            parent = self.orders[oid].parent_id
            if parent is None and any(
                self.orders[x].status.is_open for x in self.legs.get(oid, ())
            ):
                continue  # an entry whose exits still work stays with them
            if parent is not None and self.orders.get(parent) is not None:
                continue  # legs leave together with their entry
            for leg in self.legs.pop(oid, ()):
                self.by_cid.pop(self.orders.pop(leg).client_order_id, None)
            self.by_cid.pop(self.orders.pop(oid).client_order_id, None)
        return {
            "starting_balance": self.starting_balance,
            "cash": self.cash,
            "realized": self.realized,
            "fills_made": self.fills_made,
            "orders": [order_to_dict(o) for o in self.orders.values()],
            "legs": self.legs,
            "positions": self.positions_book,
            "last_price": self.last_price,
            "last_start": self.last_start,
            "now": self._now,
        }

    def load(self, d: dict[str, Any]) -> None:
        """Continue the account saved by `to_dict` (after a restart)."""
        self.starting_balance = float(d["starting_balance"])
        self.cash = float(d["cash"])
        self.realized = float(d["realized"])
        self.fills_made = int(d["fills_made"])
        self.orders = {}
        self.by_cid = {}
        for od in d["orders"]:
            o = order_from_dict(od)
            self.orders[o.id] = o
            self.by_cid[o.client_order_id] = o.id
        self.legs = {k: list(v) for k, v in d["legs"].items()}
        self.positions_book = {k: [float(v[0]), float(v[1])] for k, v in d["positions"].items()}
        self.last_price = {k: float(v) for k, v in d["last_price"].items()}
        self.last_start = {k: int(v) for k, v in d["last_start"].items()}
        self._now = int(d["now"])

    async def _save(self) -> None:
        if self._persist is not None:
            await self._persist(self.to_dict())
