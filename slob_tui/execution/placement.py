"""OrderSubmitter: every broker call the executor makes, under the one retry policy and the gate.

Transient errors (timeouts, 429, 5xx) are retried with `core.retry` backoff; before every
attempt to place an order the trading gate is asked again (it re-reads the persisted kill
switch), and a kill wakes a retry sleep at once, so nothing is sent after a kill has begun.
A 422 "must be unique" means an earlier attempt got through: the order is fetched instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from slob_tui.brokers.base import Broker, BrokerError, DuplicateOrderError, OrderRequest
from slob_tui.core.models import Order
from slob_tui.core.retry import RetryPolicy
from slob_tui.execution.gate import Purpose, TradingGate

log = logging.getLogger(__name__)
T = TypeVar("T")
ORDER_RETRY = RetryPolicy(base_s=0.35, cap_s=4.0, attempts=5)
"""About 4 s of backoff over five tries: long enough for a 429 minute or a 5xx blip."""


class GateClosedError(BrokerError):
    """The gate refused the order before an attempt; `attempted` says whether an earlier
    attempt may have reached the broker (its outcome unknown)."""

    def __init__(self, reason: str, attempted: bool) -> None:
        super().__init__(reason)
        self.attempted = attempted


class OrderSubmitter:
    def __init__(
        self,
        broker: Broker,
        gate: TradingGate,
        policy: RetryPolicy = ORDER_RETRY,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        seed: int | None = 0,
    ) -> None:
        self.broker = broker
        self.gate = gate
        self.policy = policy
        self._sleep = sleep
        self._seed = seed
        self.retries = 0
        self.duplicates = 0

    async def submit(self, req: OrderRequest, purpose: Purpose) -> list[Order]:
        """Place `req` once: gate-checked before each attempt, retried, duplicates fetched."""
        attempted = False

        async def attempt() -> list[Order]:
            nonlocal attempted
            decision = await self.gate.admit(purpose)
            if not decision.allowed:
                raise GateClosedError(decision.reason, attempted)
            attempted = True
            return await self.broker.submit(req)

        try:
            return await self.call(attempt, interruptible=purpose != "close")
        except DuplicateOrderError:
            self.duplicates += 1
            found = await self.call(lambda: self.broker.get_by_client_id(req.client_order_id))
            if not found:
                raise BrokerError(
                    f"{req.client_order_id}: broker says duplicate but has no such order"
                ) from None
            return found

    async def call(self, fn: Callable[[], Awaitable[T]], interruptible: bool = False) -> T:
        """`fn()` with retries on transient errors; `interruptible`: a kill ends the wait."""
        backoff = self.policy.start(self._seed)
        while True:
            try:
                return await fn()
            except BrokerError as exc:
                backoff.failed()
                if not exc.retryable or backoff.exhausted:
                    raise
                self.retries += 1
                delay = backoff.next_delay()
                log.warning(
                    "broker call failed (%s), retry %d in %.2fs", exc, backoff.failures, delay
                )
                await self._pause(delay, interruptible)

    async def _pause(self, delay: float, interruptible: bool) -> None:
        if not interruptible:
            await self._sleep(delay)
            return
        sleeper = asyncio.ensure_future(self._sleep(delay))
        killed = asyncio.ensure_future(self.gate.closed.wait())
        try:
            await asyncio.wait((sleeper, killed), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, killed):
                task.cancel()
            await asyncio.gather(sleeper, killed, return_exceptions=True)
