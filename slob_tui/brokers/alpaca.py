"""AlpacaBroker: alpaca-py's TradingClient (off the event loop) plus the trade_updates stream.

REST goes through alpaca-py with `raw_data=True`, so the REST replies and the stream's order
objects are the same JSON dicts and one converter serves both. alpaca-py's own retry (three
fixed 3 s sleeps on 429/504) is switched off: the executor owns retries (backoff, the 422
"already placed" path) and a blocked engine is worse than a fast failure. The trade_updates
stream is a small `websockets` client on the engine's own loop rather than alpaca-py's
`TradingStream`, whose `run()` calls `asyncio.run()` itself and would need a thread and a
second loop; after a reconnect, `on_reconnect` (the executor's reconcile) recovers what was
missed while the stream was down.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from slob_tui.brokers.base import (
    BrokerError,
    DuplicateOrderError,
    OrderRejectedError,
    OrderRequest,
    OrderUpdate,
    TransientBrokerError,
    UpdateHandler,
)
from slob_tui.core.models import Fill, Order, OrderStatus, Position, Side
from slob_tui.core.retry import RetryPolicy
from slob_tui.errors import UsageError

log = logging.getLogger(__name__)
PAPER_STREAM = "wss://paper-api.alpaca.markets/stream"
LIVE_STREAM = "wss://api.alpaca.markets/stream"
STREAM_RETRY = RetryPolicy(base_s=0.2, cap_s=10.0)
"""trade_updates reconnects: from 0.2 s up to 10 s between tries, for ever."""
_STATUS = {s.value: s for s in OrderStatus} | {
    "pending_cancel": OrderStatus.NEW,
    "pending_replace": OrderStatus.NEW,
    "accepted_for_bidding": OrderStatus.ACCEPTED,
    "calculated": OrderStatus.PARTIALLY_FILLED,
    "stopped": OrderStatus.NEW,
    "suspended": OrderStatus.HELD,
    "done_for_day": OrderStatus.EXPIRED,
    "replaced": OrderStatus.CANCELED,
}


_RFC3339 = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})?$")


def parse_ts(text: str | None) -> int:
    """RFC 3339 with up to nine fractional digits to ns UTC (fromisoformat stops at six)."""
    if not text:
        return 0
    m = _RFC3339.match(text)
    if m is None:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    zone = m[3] if m[3] and m[3] != "Z" else "+00:00"
    whole = int(datetime.fromisoformat(m[1] + zone).timestamp())
    return whole * 1_000_000_000 + int((m[2] or "0")[:9].ljust(9, "0"))


def _f(x: Any) -> float | None:
    return None if x in (None, "") else float(x)


def order_from_alpaca(
    d: dict[str, Any], leg: str = "entry", parent: str | None = None
) -> list[Order]:
    """An Alpaca order dict (REST or stream) and its legs as core orders, entry first."""
    otype = str(d.get("type") or d.get("order_type") or "market")
    o = Order(
        id=str(d["id"]),
        client_order_id=str(d.get("client_order_id") or ""),
        symbol=str(d["symbol"]),
        side=Side(str(d["side"])),
        qty=float(d.get("qty") or 0),
        type=otype,
        status=_STATUS.get(str(d.get("status")), OrderStatus.NEW),
        leg=leg,
        parent_id=parent,
        limit_price=_f(d.get("limit_price")),
        stop_price=_f(d.get("stop_price")),
        filled_qty=float(d.get("filled_qty") or 0),
        filled_avg_price=_f(d.get("filled_avg_price")),
        created_at=parse_ts(d.get("created_at")),
        updated_at=parse_ts(d.get("updated_at")),
    )
    out = [o]
    for leg_d in d.get("legs") or ():
        kind = "target" if (leg_d.get("type") or leg_d.get("order_type")) == "limit" else "stop"
        out.extend(order_from_alpaca(leg_d, kind, o.id))
    return out


def to_price_grid(x: float, decimals: int, up: bool) -> float:
    """`x` on Alpaca's price grid (cents; 8 decimals for crypto), rounded up or down.

    A resting order's price goes to the first grid price at or beyond the strategy's level,
    away from the market: a sell limit and a buy stop round up, a buy limit and a sell stop
    round down (for a bracket, the exits are on the side opposite the entry). On a market that
    trades on that grid, the order then fills exactly when the level is crossed; rounding to the
    nearest cent could fire a stop a tick before the strategy's stop was reached."""
    scale = 10.0**decimals
    ticks = round(x * scale, 6)  # float noise: 165.66 * 100 is 16565.999999999998
    return round((math.ceil(ticks) if up else math.floor(ticks)) / scale, decimals)


def _translate(exc: Exception) -> BrokerError:
    """alpaca-py / requests failures as our broker errors (retryable or not)."""
    from alpaca.common.exceptions import APIError

    if isinstance(exc, APIError):
        status = exc.status_code
        try:
            code, message = exc.code, exc.message
        except (ValueError, KeyError, TypeError):
            code, message = None, str(exc)
        if status == 422 and (code == 40010001 or "must be unique" in str(message)):
            return DuplicateOrderError(str(message), status, code)
        if status == 429 or (status is not None and status >= 500):
            return TransientBrokerError(f"HTTP {status}: {message}", status, code)
        if status == 404:
            return BrokerError(str(message), status, code)
        return OrderRejectedError(f"HTTP {status}: {message}", status, code)
    return TransientBrokerError(f"{type(exc).__name__}: {exc}")


class AlpacaBroker:
    name = "alpaca"

    def __init__(
        self,
        settings: Any,
        *,
        paper: bool = True,
        confirmed_live: bool = False,
        timeout_s: float = 10.0,
        stream: bool = True,
    ) -> None:
        if not settings.has_alpaca_keys:
            raise UsageError("the Alpaca broker needs ALPACA_API_KEY and ALPACA_API_SECRET")
        from alpaca.trading.client import TradingClient

        self.paper = paper
        self.confirmed_live = confirmed_live
        self.timeout_s = timeout_s
        self._client = TradingClient(
            settings.alpaca_api_key.get_secret_value(),
            settings.alpaca_api_secret.get_secret_value(),
            paper=paper,
            raw_data=True,
            url_override=settings.alpaca_api_base_url or None,
        )
        self._client._retry = 0  # the executor retries with backoff (see the module doc)
        self._key, self._secret = (
            settings.alpaca_api_key.get_secret_value(),
            settings.alpaca_api_secret.get_secret_value(),
        )
        self.stream_url = settings.alpaca_trading_stream_url or (
            PAPER_STREAM if paper else LIVE_STREAM
        )
        self._use_stream = stream
        self._handler: UpdateHandler | None = None
        self.on_reconnect: Callable[[], Awaitable[Any]] | None = None
        self._stream_task: asyncio.Task[None] | None = None
        self.stream_connected = asyncio.Event()
        self.stream_reconnects = 0
        self.stream_retry = STREAM_RETRY
        self.updates = 0
        self.malformed_updates = 0

    def __repr__(self) -> str:  # never the keys
        return f"AlpacaBroker(paper={self.paper})"

    def confirm_live(self) -> None:
        """The console's typed confirmation: only after it may a live broker connect."""
        self.confirmed_live = True

    def _check_live(self) -> None:
        if not self.paper and not self.confirmed_live:
            raise UsageError(
                "live trading needs a confirmation: --i-understand-live-trading "
                "(headless) or the typed confirmation in the console"
            )

    # ---- protocol ---------------------------------------------------------------------
    def set_update_handler(self, handler: UpdateHandler) -> None:
        self._handler = handler

    def supports_bracket(self, symbol: str) -> bool:
        return "/" not in symbol  # crypto has no brackets at Alpaca

    async def connect(self) -> None:
        self._check_live()
        await self._call(self._client.get_account)
        if self._use_stream and self._stream_task is None:
            self._stream_task = asyncio.create_task(self._stream_loop(), name="trade-updates")

    async def close(self) -> None:
        if self._stream_task is not None:
            self._stream_task.cancel()
            await asyncio.gather(self._stream_task, return_exceptions=True)
            self._stream_task = None

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return await asyncio.wait_for(asyncio.to_thread(fn, *args), self.timeout_s)
        except TimeoutError as exc:
            raise TransientBrokerError(f"no reply from Alpaca in {self.timeout_s:g}s") from exc
        except BrokerError:
            raise
        except Exception as exc:  # noqa: BLE001 - every client failure becomes a BrokerError
            raise _translate(exc) from exc

    def _request(self, req: OrderRequest) -> Any:
        from alpaca.trading.enums import OrderClass, OrderSide, TimeInForce
        from alpaca.trading.requests import (
            LimitOrderRequest,
            MarketOrderRequest,
            StopLimitOrderRequest,
            StopLossRequest,
            StopOrderRequest,
            TakeProfitRequest,
        )

        crypto = "/" in req.symbol
        tif = TimeInForce.GTC if crypto else TimeInForce(req.time_in_force)

        def px(x: float | None, up: bool) -> Any:
            """Alpaca's price precision; None stays None (the request model refuses it)."""
            return None if x is None else to_price_grid(x, 8 if crypto else 2, up)

        sell = req.side is Side.SELL  # a limit that sells and a stop that buys round up

        common: dict[str, Any] = {
            "symbol": req.symbol,
            "qty": req.qty,
            "side": OrderSide(req.side.value),
            "time_in_force": tif,
            "client_order_id": req.client_order_id,
        }
        if req.take_profit is not None and req.stop_loss is not None:  # a bracket
            common.update(
                order_class=OrderClass.BRACKET,
                take_profit=TakeProfitRequest(limit_price=px(req.take_profit, not sell)),
                stop_loss=StopLossRequest(stop_price=px(req.stop_loss, sell)),
            )
        if req.type == "market":
            return MarketOrderRequest(**common)
        if req.type == "limit":
            return LimitOrderRequest(**common, limit_price=px(req.limit_price, sell))
        if req.type == "stop":
            return StopOrderRequest(**common, stop_price=px(req.stop_price, not sell))
        if req.type == "stop_limit":
            return StopLimitOrderRequest(
                **common,
                stop_price=px(req.stop_price, not sell),
                limit_price=px(req.limit_price, sell),
            )
        raise OrderRejectedError(f"order type {req.type!r} is not supported")

    async def submit(self, req: OrderRequest) -> list[Order]:
        self._check_live()
        try:
            body = self._request(req)
        except ValueError as exc:  # alpaca-py validates requests before sending them
            raise OrderRejectedError(
                f"invalid order {req.client_order_id}: {str(exc).splitlines()[-1].strip()}"
            ) from exc
        raw = await self._call(self._client.submit_order, body)
        out = order_from_alpaca(raw, req.leg)
        for o in out:
            o.setup_id = req.setup_id
        return out

    async def get_by_client_id(self, client_order_id: str) -> list[Order]:
        try:
            raw = await self._call(self._client.get_order_by_client_id, client_order_id)
        except BrokerError as exc:
            if exc.status == 404:
                return []
            raise
        return order_from_alpaca(raw)

    async def get_order(self, order_id: str) -> Order | None:
        try:
            raw = await self._call(self._client.get_order_by_id, order_id)
        except BrokerError as exc:
            if exc.status == 404:
                return None
            raise
        return order_from_alpaca(raw)[0]

    async def open_orders(self) -> list[Order]:
        from alpaca.trading.enums import QueryOrderStatus
        from alpaca.trading.requests import GetOrdersRequest

        raw = await self._call(
            self._client.get_orders, GetOrdersRequest(status=QueryOrderStatus.OPEN, nested=True)
        )
        out: list[Order] = []
        for d in raw:
            out.extend(o for o in order_from_alpaca(d) if o.status.is_open)
        return out

    async def positions(self) -> list[Position]:
        raw = await self._call(self._client.get_all_positions)
        return [
            Position(
                p["symbol"],
                float(p["qty"]) * (-1 if p.get("side") == "short" and float(p["qty"]) > 0 else 1),
                float(p["avg_entry_price"]),
                _f(p.get("current_price")),
            )
            for p in raw
        ]

    async def cancel(self, order_id: str) -> None:
        await self._call(self._client.cancel_order_by_id, order_id)

    async def cancel_all(self) -> None:
        await self._call(self._client.cancel_orders)

    async def close_position(
        self, symbol: str, client_order_id: str, side: Side, qty: float, created_at: int = 0
    ) -> list[Order]:
        """A market order for the whole quantity, with our id (so a retry cannot double it)."""
        return await self.submit(
            OrderRequest(
                client_order_id,
                symbol,
                side,
                qty,
                "market",
                time_in_force="gtc" if "/" in symbol else "day",
                leg="close",
                created_at=created_at,
            )
        )

    async def account(self) -> dict[str, Any]:
        raw = await self._call(self._client.get_account)
        return {k: _f(raw.get(k)) for k in ("cash", "equity", "buying_power")}

    # ---- trade_updates ----------------------------------------------------------------
    async def _stream_loop(self) -> None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import WebSocketException

        backoff = self.stream_retry.start()
        first = True
        while True:
            try:
                async with connect(self.stream_url, open_timeout=self.timeout_s) as ws:
                    await self._listen_handshake(ws)
                    self.stream_connected.set()
                    backoff.succeeded()
                    if not first:
                        self.stream_reconnects += 1
                        if self.on_reconnect is not None:
                            await self.on_reconnect()
                    first = False
                    async for raw in ws:
                        await self._on_message(raw)
            except asyncio.CancelledError:
                raise
            except (OSError, WebSocketException, TimeoutError, BrokerError, ValueError) as exc:
                why = type(exc).__name__
            else:
                why = "closed"
            self.stream_connected.clear()
            backoff.failed()
            delay = backoff.next_delay()
            log.warning("trade_updates stream: %s; reconnecting in %.1fs", why, delay)
            await asyncio.sleep(delay)

    async def _listen_handshake(self, ws: Any) -> None:
        await ws.send(
            json.dumps(
                {
                    "action": "authenticate",
                    "data": {"key_id": self._key, "secret_key": self._secret},
                }
            )
        )
        reply = json.loads(await ws.recv())
        if (reply.get("data") or {}).get("status") != "authorized":
            raise BrokerError("trade_updates: authentication refused (check the API keys)")
        await ws.send(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))
        json.loads(await ws.recv())

    async def _on_message(self, raw: str | bytes) -> None:
        """One frame: a malformed one is logged, counted and skipped, never fatal."""
        try:
            msg = json.loads(raw)
            if not isinstance(msg, dict) or msg.get("stream") != "trade_updates":
                return
            update = update_from_alpaca(msg.get("data") or {})
            if update is None:
                raise ValueError("no order in the update")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            self.malformed_updates += 1
            log.warning(
                "trade_updates: a malformed message was skipped (%s: %s)",
                type(exc).__name__,
                str(exc)[:200],
            )
            return
        self.updates += 1
        if self._handler is not None:
            try:
                await self._handler(update)
            except Exception as exc:  # noqa: BLE001 - the stream must outlive one bad update
                log.error(
                    "trade update for %s not applied (%s); the next reconcile recovers it",
                    update.order.client_order_id,
                    exc,
                )


def update_from_alpaca(data: dict[str, Any]) -> OrderUpdate | None:
    """One trade_updates event as an OrderUpdate (with the execution for fills)."""
    if not isinstance(data.get("order"), dict):
        return None
    order = order_from_alpaca(data["order"])[0]
    fill = None
    event = str(data.get("event") or "")
    if event in ("fill", "partial_fill") and data.get("price") is not None:
        fill = Fill(
            order.id,
            order.client_order_id,
            order.symbol,
            order.side,
            float(data.get("qty") or order.filled_qty),
            float(data["price"]),
            parse_ts(data.get("timestamp")),
            str(data.get("execution_id") or f"{order.id}-{order.filled_qty:g}"),
        )
    return OrderUpdate(event, order, fill)
