"""The Broker protocol: what the executor needs from any venue (paper or Alpaca).

Orders go in as `OrderRequest`s and come back as core `Order`s; a bracket comes back as the
entry followed by its two exit legs. Updates (fills, cancels, rejections) arrive through one
async callback, so the executor handles a paper fill and an Alpaca trade update the same way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from slob_tui.core.models import Fill, Order, Position, Side
from slob_tui.errors import SlobError


class BrokerError(SlobError):
    """A broker call failed; `status` is the HTTP-like status when there is one."""

    def __init__(self, message: str, status: int | None = None, code: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code

    @property
    def retryable(self) -> bool:
        return False


class TransientBrokerError(BrokerError):
    """Timeouts, 429 and 5xx: worth retrying with backoff."""

    @property
    def retryable(self) -> bool:
        return True


class DuplicateOrderError(BrokerError):
    """422 "client_order_id must be unique": the order was already placed; fetch it."""


class OrderRejectedError(BrokerError):
    """The broker refused the order (403 buying power, 422 bad request): do not retry."""


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """One order to place. `take_profit`/`stop_loss` make it a bracket (entry + OCO exits)."""

    client_order_id: str
    symbol: str
    side: Side
    qty: float
    type: str = "market"  # market | limit | stop | stop_limit
    limit_price: float | None = None
    stop_price: float | None = None
    time_in_force: str = "gtc"
    take_profit: float | None = None
    stop_loss: float | None = None
    leg: str = "entry"
    setup_id: str | None = None
    created_at: int = 0

    @property
    def is_bracket(self) -> bool:
        return self.take_profit is not None and self.stop_loss is not None


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """A change the broker reports: `event` is Alpaca's vocabulary (new, fill, canceled, ...)."""

    event: str
    order: Order
    fill: Fill | None = None


UpdateHandler = Callable[[OrderUpdate], Awaitable[None]]


class Broker(Protocol):
    name: str
    paper: bool
    malformed_updates: int
    """Update messages that could not be read (skipped; the stream goes on)."""

    def set_update_handler(self, handler: UpdateHandler) -> None: ...

    def supports_bracket(self, symbol: str) -> bool: ...

    async def connect(self) -> None: ...

    async def close(self) -> None: ...

    async def submit(self, req: OrderRequest) -> list[Order]: ...

    async def get_by_client_id(self, client_order_id: str) -> list[Order]: ...

    async def get_order(self, order_id: str) -> Order | None: ...

    async def open_orders(self) -> list[Order]: ...

    async def positions(self) -> list[Position]: ...

    async def cancel(self, order_id: str) -> None: ...

    async def cancel_all(self) -> None: ...

    async def close_position(
        self, symbol: str, client_order_id: str, side: Side, qty: float, created_at: int = 0
    ) -> list[Order]: ...

    async def account(self) -> dict[str, Any]: ...
