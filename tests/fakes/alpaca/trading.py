"""The local Alpaca's paper order engine: orders, brackets, fills, positions, trade updates.

Pure and synchronous (the HTTP and stream layers wrap it). Drive prices with
`set_price(symbol, price)` (the server also calls it for every trade it serves): open orders
fill against the latest price, and every change becomes a trade-update dict handed to the
listeners (the `/stream` endpoint). With `replay` set (`replay_fills.ReplayFills`), orders fill
instead against the minute bars an engine replays, at the engine's time of each order, so a run
is deterministic. Error replies follow Alpaca: (status, {"code", "message"}).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from .replay_fills import ReplayFills, fill_price
from .trades import rfc3339

OPEN = ("new", "accepted", "pending_new", "partially_filled", "held")
FILLABLE = ("new", "accepted", "partially_filled")
_EXIT_FIRST = {"stop": 0, "stop_limit": 0, "limit": 1}  # one bar touching both: the stop fills
ORDER_TYPES = ("market", "limit", "stop", "stop_limit")
ALL_TIF = ("day", "gtc", "opg", "cls", "ioc", "fok")


class OrderRejected(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}


def _num(body: dict[str, Any], key: str, where: str = "") -> float | None:
    raw = body.get(key)
    if raw is None:
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise OrderRejected(422, 40010000, f"invalid {where}{key}") from None
    if value <= 0:
        raise OrderRejected(422, 40010000, f"{where}{key} must be > 0")
    return value


def _s(x: float | None) -> str | None:
    """A number as Alpaca's JSON string: every digit kept (`:g` would cut 16543.25 to 16543.2)."""
    return None if x is None else f"{x:.15g}"


class TradingEngine:
    """One paper account. `clock()` gives ns UTC for the order timestamps."""

    def __init__(
        self, clock: Callable[[], int], cash: float = 100_000.0, replay: ReplayFills | None = None
    ) -> None:
        self.clock = clock
        self.replay = replay
        self._at: int | None = None  # the bar time of the change being made (replay fills)
        self.account_id = str(uuid.uuid4())
        self.cash = cash
        self.prices: dict[str, float] = {}
        self.orders: dict[str, dict[str, Any]] = {}  # id -> order (legs referenced by id)
        self.by_client_id: dict[str, str] = {}
        self.positions: dict[str, list[float]] = {}  # symbol -> [qty, avg price]
        self.listeners: list[Callable[[dict[str, Any]], None]] = []

    # ------------------------------------------------------------------ views
    def _ts(self) -> str:
        return rfc3339(self.clock() if self._at is None else self._at)

    def order_view(self, oid: str, nested: bool = True) -> dict[str, Any]:
        o = dict(self.orders[oid])
        legs = o.pop("_legs", [])
        o.pop("_parent", None)
        o.pop("_triggered", None)
        o["legs"] = [self.order_view(x, nested) for x in legs] if (nested and legs) else None
        return o

    def account(self) -> dict[str, Any]:
        equity = self.cash + sum(q * self.prices.get(s, p) for s, (q, p) in self.positions.items())
        return {
            "id": self.account_id,
            "account_number": "PA3LOCAL0001",
            "status": "ACTIVE",
            "crypto_status": "ACTIVE",
            "currency": "USD",
            "cash": _s(self.cash),
            "buying_power": _s(self.buying_power()),
            "regt_buying_power": _s(self.buying_power()),
            "equity": _s(equity),
            "portfolio_value": _s(equity),
            "last_equity": _s(equity),
            "pattern_day_trader": False,
            "trading_blocked": False,
            "transfers_blocked": False,
            "account_blocked": False,
            "shorting_enabled": True,
            "multiplier": "1",
            "long_market_value": "0",
            "short_market_value": "0",
            "initial_margin": "0",
            "maintenance_margin": "0",
            "daytrade_count": 0,
            "sma": "0",
            "created_at": self._ts(),
        }

    def buying_power(self) -> float:
        reserved = 0.0
        for o in self.orders.values():
            if o["status"] in OPEN and o["_parent"] is None:
                px = float(o["limit_price"] or o["stop_price"] or self.prices.get(o["symbol"], 0))
                reserved += (float(o["qty"]) - float(o["filled_qty"])) * px
        return max(0.0, self.cash - reserved)

    def position_views(self) -> list[dict[str, Any]]:
        out = []
        for sym, (qty, avg) in self.positions.items():
            if qty == 0:
                continue
            last = self.prices.get(sym, avg)
            out.append(
                {
                    "asset_id": str(uuid.uuid5(uuid.NAMESPACE_DNS, sym)),
                    "symbol": sym,
                    "exchange": "NASDAQ",
                    "asset_class": "crypto" if "/" in sym else "us_equity",
                    "avg_entry_price": _s(avg),
                    "qty": _s(qty),
                    "qty_available": _s(qty),
                    "side": "long" if qty > 0 else "short",
                    "market_value": _s(qty * last),
                    "cost_basis": _s(qty * avg),
                    "unrealized_pl": _s((last - avg) * qty),
                    "current_price": _s(last),
                    "lastday_price": _s(avg),
                    "change_today": "0",
                }
            )
        return out

    def list_orders(self, status: str = "open", nested: bool = False) -> list[dict[str, Any]]:
        out = []
        for oid, o in reversed(list(self.orders.items())):
            if nested and o["_parent"] is not None:
                continue
            is_open = o["status"] in OPEN
            if nested:  # a bracket counts as open while any of its legs is
                is_open = is_open or any(self.orders[x]["status"] in OPEN for x in o["_legs"])
            if status == "all" or (status == "open") == is_open:
                out.append(self.order_view(oid, nested))
        return out

    def get_by_client_id(self, client_id: str) -> dict[str, Any] | None:
        oid = self.by_client_id.get(client_id)
        return None if oid is None else self.order_view(oid)

    # ------------------------------------------------------------------ submit
    def submit(self, body: dict[str, Any]) -> dict[str, Any]:
        """Validate like Alpaca, create the order (and legs), fill what can fill now."""
        symbol = body.get("symbol")
        if not isinstance(symbol, str) or not symbol:
            raise OrderRejected(422, 40010000, "symbol is required")
        qty = _num(body, "qty")
        if qty is None:
            raise OrderRejected(422, 40010000, "qty is required")
        side = body.get("side")
        if side not in ("buy", "sell"):
            raise OrderRejected(422, 40010000, "side must be buy or sell")
        otype = body.get("type") or body.get("order_type")
        if otype not in ORDER_TYPES:
            raise OrderRejected(422, 40010000, f"invalid order type {otype!r}")
        tif = body.get("time_in_force")
        if tif not in ALL_TIF:
            raise OrderRejected(422, 40010000, "invalid time_in_force")
        limit = _num(body, "limit_price")
        stop = _num(body, "stop_price")
        if otype in ("limit", "stop_limit") and limit is None:
            raise OrderRejected(422, 40010000, "limit_price is required")
        if otype in ("stop", "stop_limit") and stop is None:
            raise OrderRejected(422, 40010000, "stop_price is required")
        cid = body.get("client_order_id") or str(uuid.uuid4())
        if not isinstance(cid, str) or len(cid) > 48:
            raise OrderRejected(422, 40010000, "client_order_id must be no more than 48 characters")
        if cid in self.by_client_id:
            raise OrderRejected(422, 40010001, "client_order_id must be unique")
        decided = self.replay.order_time(cid) if self.replay is not None else None
        if self.replay is not None and decided is not None:
            price = self.replay.price_at(symbol, decided)
            if price is not None:  # the market as the engine saw it when it decided
                self.prices[symbol] = price
        oclass = body.get("order_class") or "simple"
        legs_spec: list[tuple[str, str, float | None, float | None]] = []
        if oclass == "bracket":
            legs_spec = self._bracket_legs(body, symbol, side, tif, limit)
        elif oclass not in ("simple", ""):
            raise OrderRejected(422, 40010000, f"order_class {oclass!r} is not supported here")
        ref = limit or stop or self.prices.get(symbol)
        if ref is not None and side == "buy" and qty * ref > self.buying_power():
            raise OrderRejected(403, 40310000, "insufficient buying power")
        self._at = decided
        parent = self._new(symbol, qty, side, otype, tif, limit, stop, cid, oclass, "new")
        for leg_type, leg_side, leg_limit, leg_stop in legs_spec:
            leg = self._new(
                symbol,
                qty,
                leg_side,
                leg_type,
                tif,
                leg_limit,
                leg_stop,
                str(uuid.uuid4()),
                oclass,
                "held",
                parent=parent,
            )
            self.orders[parent]["_legs"].append(leg)
        self._emit("new", parent)
        self._at = None
        if self.replay is None:
            self._try_fill(parent)
        elif decided is not None:
            self._settle_on_bars(parent, decided)
        return self.order_view(parent)

    def _bracket_legs(
        self, body: dict[str, Any], symbol: str, side: str, tif: str, limit: float | None
    ) -> list[tuple[str, str, float | None, float | None]]:
        if "/" in symbol:
            raise OrderRejected(
                422, 40010000, "crypto orders not allowed for advanced order_class: bracket"
            )
        if tif not in ("day", "gtc"):
            raise OrderRejected(422, 40010000, "bracket orders must be day or gtc")
        if body.get("extended_hours"):
            raise OrderRejected(422, 40010000, "extended hours order must be simple")
        tp, sl = body.get("take_profit"), body.get("stop_loss")
        if not isinstance(tp, dict) or not isinstance(sl, dict):
            raise OrderRejected(422, 40010000, "bracket orders require take_profit and stop_loss")
        tp_px = _num(tp, "limit_price", "take_profit.")
        sl_px = _num(sl, "stop_price", "stop_loss.")
        if tp_px is None or sl_px is None:
            raise OrderRejected(
                422, 40010000, "take_profit.limit_price and stop_loss.stop_price are required"
            )
        base = limit or self.prices.get(symbol)
        if side == "buy":
            if tp_px <= sl_px:
                raise OrderRejected(
                    422, 40010000, "take_profit.limit_price must be > stop_loss.stop_price"
                )
            if base is not None and tp_px < base + 0.01:
                raise OrderRejected(
                    422,
                    40010000,
                    f"take_profit.limit_price must be >= base_price + 0.01 (base {base:g})",
                )
            if base is not None and sl_px > base - 0.01:
                raise OrderRejected(
                    422,
                    40010000,
                    f"stop_loss.stop_price must be <= base_price - 0.01 (base {base:g})",
                )
        else:
            if tp_px >= sl_px:
                raise OrderRejected(
                    422, 40010000, "take_profit.limit_price must be < stop_loss.stop_price"
                )
            if base is not None and tp_px > base - 0.01:
                raise OrderRejected(
                    422,
                    40010000,
                    f"take_profit.limit_price must be <= base_price - 0.01 (base {base:g})",
                )
            if base is not None and sl_px < base + 0.01:
                raise OrderRejected(
                    422,
                    40010000,
                    f"stop_loss.stop_price must be >= base_price + 0.01 (base {base:g})",
                )
        exit_side = "sell" if side == "buy" else "buy"
        return [("limit", exit_side, tp_px, None), ("stop", exit_side, None, sl_px)]

    def _new(
        self,
        symbol: str,
        qty: float,
        side: str,
        otype: str,
        tif: str,
        limit: float | None,
        stop: float | None,
        cid: str,
        oclass: str,
        status: str,
        parent: str | None = None,
    ) -> str:
        oid = str(uuid.uuid4())
        now = self._ts()
        self.orders[oid] = {
            "id": oid,
            "client_order_id": cid,
            "created_at": now,
            "updated_at": now,
            "submitted_at": now,
            "filled_at": None,
            "expired_at": None,
            "canceled_at": None,
            "failed_at": None,
            "replaced_at": None,
            "replaced_by": None,
            "replaces": None,
            "asset_id": str(uuid.uuid5(uuid.NAMESPACE_DNS, symbol)),
            "symbol": symbol,
            "asset_class": "crypto" if "/" in symbol else "us_equity",
            "notional": None,
            "qty": _s(qty),
            "filled_qty": "0",
            "filled_avg_price": None,
            "order_class": oclass,
            "order_type": otype,
            "type": otype,
            "side": side,
            "time_in_force": tif,
            "limit_price": _s(limit),
            "stop_price": _s(stop),
            "status": status,
            "extended_hours": False,
            "legs": None,
            "trail_percent": None,
            "trail_price": None,
            "hwm": None,
            "_legs": [],
            "_parent": parent,
        }
        self.by_client_id[cid] = oid
        return oid

    # ------------------------------------------------------------------ cancel
    def cancel(self, oid: str) -> None:
        o = self.orders.get(oid)
        if o is None:
            raise OrderRejected(404, 40410000, "order not found")
        if o["status"] not in OPEN:
            raise OrderRejected(422, 42210000, f'order is already in "{o["status"]}" state')
        self._set_status(oid, "canceled", "canceled")
        for leg in o["_legs"]:
            if self.orders[leg]["status"] in OPEN:
                self._set_status(leg, "canceled", "canceled")

    def cancel_all(self) -> list[dict[str, Any]]:
        out = []
        for oid, o in list(self.orders.items()):
            if o["status"] in OPEN:  # legs of a filled bracket too
                self.cancel(oid)
                out.append({"id": oid, "status": 200, "body": self.order_view(oid)})
        return out

    # ------------------------------------------------------------------ prices and fills
    def set_price(self, symbol: str, price: float) -> None:
        """The market moved: fill whatever the new price reaches (replay fills: nothing)."""
        self.prices[symbol] = price
        if self.replay is not None:
            return
        for oid, o in list(self.orders.items()):
            if o["symbol"] == symbol and o["status"] in ("new", "accepted", "partially_filled"):
                self._try_fill(oid)

    def _settle_on_bars(self, oid: str, decided: int) -> None:
        """Fill an order and its bracket exits against the replay's bars (see replay_fills)."""
        assert self.replay is not None
        o = self.orders[oid]
        try:
            for bar in self.replay.bars_from(o["symbol"], decided - decided % 60_000_000_000):
                self._at = bar.start
                self.prices[o["symbol"]] = bar.open
                if o["status"] in FILLABLE:
                    px = fill_price(o, bar, decided)
                    if px is None:
                        continue
                    self._fill(oid, px)
                exits = [x for x in o["_legs"] if self.orders[x]["status"] in FILLABLE]
                exits.sort(key=lambda x: _EXIT_FIRST.get(self.orders[x]["type"], 2))
                for leg in exits:
                    px = fill_price(self.orders[leg], bar, decided)
                    if px is not None:
                        self._fill(leg, px)
                        break
                self.prices[o["symbol"]] = bar.close
                if o["status"] not in OPEN and not any(
                    self.orders[x]["status"] in OPEN for x in o["_legs"]
                ):
                    return
        finally:
            self._at = None

    def _try_fill(self, oid: str) -> None:
        o = self.orders[oid]
        px = self.prices.get(o["symbol"])
        if px is None or o["status"] not in ("new", "accepted", "partially_filled"):
            return
        limit = float(o["limit_price"]) if o["limit_price"] else None
        stop = float(o["stop_price"]) if o["stop_price"] else None
        buy = o["side"] == "buy"
        t = o["type"]
        if t == "limit" and not (px <= limit if buy else px >= limit):
            return
        if t in ("stop", "stop_limit") and not (px >= stop if buy else px <= stop):
            return
        if t == "stop_limit" and not (px <= limit if buy else px >= limit):
            return
        fill_px = limit if t == "limit" else px
        self._fill(oid, fill_px)

    def _fill(self, oid: str, price: float) -> None:
        o = self.orders[oid]
        qty = float(o["qty"])
        signed = qty if o["side"] == "buy" else -qty
        pos = self.positions.setdefault(o["symbol"], [0.0, 0.0])
        new_qty = pos[0] + signed
        if pos[0] == 0 or (pos[0] > 0) == (signed > 0):
            pos[1] = (pos[0] * pos[1] + signed * price) / new_qty if new_qty else 0.0
        elif new_qty != 0 and (new_qty > 0) != (pos[0] > 0):
            pos[1] = price
        pos[0] = new_qty
        self.cash -= signed * price
        o["filled_qty"] = o["qty"]
        o["filled_avg_price"] = _s(price)
        o["filled_at"] = self._ts()
        self._set_status(oid, "filled", "fill", price=price, qty=qty)
        for leg in o["_legs"]:  # a filled parent releases its exits
            self._set_status(leg, "new", "new")
        parent = o["_parent"]
        if parent is not None:  # one exit filled: the other is cancelled
            for sib in self.orders[parent]["_legs"]:
                if sib != oid and self.orders[sib]["status"] in OPEN:
                    self._set_status(sib, "canceled", "canceled")

    def _set_status(self, oid: str, status: str, event: str, **extra: Any) -> None:
        o = self.orders[oid]
        o["status"] = status
        o["updated_at"] = self._ts()
        if status == "canceled":
            o["canceled_at"] = o["updated_at"]
        self._emit(event, oid, **extra)

    def _emit(
        self, event: str, oid: str, price: float | None = None, qty: float | None = None
    ) -> None:
        data: dict[str, Any] = {
            "event": event,
            "timestamp": self._ts(),
            "order": self.order_view(oid),
        }
        if event == "fill":
            sym = self.orders[oid]["symbol"]
            data.update(
                execution_id=str(uuid.uuid4()),
                price=_s(price),
                qty=_s(qty),
                position_qty=_s(self.positions[sym][0]),
            )
        for listener in list(self.listeners):
            listener(data)
