"""`StoreGuard`: a running node's watch over its stores' writes.

While the candle store or the state journal refuses writes, or the execution runtime still
holds state it could not save, trading is halted through the gate (cause `store`), health is
not ok with the reason, and an ERROR event of kind `store_fault` (an alert, a console line)
says why; when every store takes writes again and the runtime has saved what it kept and
reconciled, the halt is lifted and `store_recovered` is announced. A fault that outlasts
`store_give_up_s`, or a candle queue past its bound, stops the node (exit status 75) so that
the supervisor restarts it. A Redis copy that is stale only degrades health: SQLite, the
truth, still takes every write, so trading goes on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from slob_tui.core.clock import Clock
from slob_tui.core.event_payloads import ErrorReport
from slob_tui.core.events import Event, EventType
from slob_tui.engine.bus import EventBus
from slob_tui.execution.gate import TradingGate
from slob_tui.execution.wiring import STORE_HALT, STORE_HALT_REASON, ExecutionRuntime
from slob_tui.storage.candles import CandleStore
from slob_tui.storage.state import StateManager

log = logging.getLogger(__name__)


class StoreGuard:
    def __init__(
        self,
        store: CandleStore,
        state: StateManager,
        runtime: ExecutionRuntime,
        gate: TradingGate,
        bus: EventBus,
        clock: Clock,
        *,
        give_up_s: float,
        give_up: Callable[[str], None],
        poll_s: float = 0.25,
    ) -> None:
        self.store = store
        self.state = state
        self.runtime = runtime
        self.gate = gate
        self.bus = bus
        self.clock = clock
        self.give_up_s = give_up_s
        self._give_up = give_up
        self.poll_s = poll_s
        self.fault = ""
        """Why state cannot be persisted now; empty when it can."""
        self.faults = 0
        self.gave_up = ""
        self._task: asyncio.Task[None] | None = None

    def problems(self) -> list[str]:
        """Each store's current refusal, in words."""
        out = []
        candles = self.store.health
        if candles.failing:
            out.append(f"candle store unwritable for {candles.failing_for():.0f} s "
                       f"({candles.last_error}; {self.store.pending} candles queued)")  # fmt: skip
        journal = self.state.health
        if journal.failing:
            out.append(f"state journal unwritable for {journal.failing_for():.0f} s "
                       f"({journal.last_error})")  # fmt: skip
        elif self.runtime.state_fault:
            out.append(self.runtime.state_fault)
        return out

    def check(self) -> str:
        """One look: the give-up reason when the node must stop, else empty."""
        if self.store.overflowing:
            return (f"{self.store.pending} candles queued for an unwritable store "
                    f"(limit {self.store.max_pending}): stopping for a restart")  # fmt: skip
        worst = max(self.store.health.failing_for(), self.state.health.failing_for())
        if worst > self.give_up_s:
            return (f"a store stayed unwritable for {worst:.0f} s (SLOB_STORE_GIVE_UP_S "
                    f"{self.give_up_s:g}): {'; '.join(self.problems())}")  # fmt: skip
        return ""

    async def poll(self) -> None:
        problems = self.problems()
        if problems:
            reason = "; ".join(problems)
            if not self.fault:
                self.faults += 1
                log.error("STORE FAULT: %s; trading halted, candles queued", reason)
                self._emit("store_fault", reason)
            self.fault = reason
            await self.gate.halt(STORE_HALT_REASON, STORE_HALT)
        elif self.fault or self.gate.halted_for(STORE_HALT):
            was, self.fault = self.fault, ""
            await self.gate.resume(STORE_HALT)
            log.warning("stores writable again, trading resumes (was: %s)", was or "a refused "
                        "state write")  # fmt: skip
            self._emit("store_recovered", was)
        reason = self.check()
        if reason and not self.gave_up:
            self.gave_up = reason
            log.critical("giving up: %s", reason)
            self._emit("store_give_up", reason)
            self._give_up(reason)

    def _emit(self, kind: str, reason: str) -> None:
        report = ErrorReport(reason, kind, queued=self.store.pending)
        self.bus.emit(Event(EventType.ERROR, self.clock.now_ns(), report, "storage"))

    async def _run(self) -> None:
        while True:
            try:
                await self.poll()
            except Exception:  # noqa: BLE001 - the watch must outlive one failed look
                log.exception("store guard: a check failed")
            await asyncio.sleep(self.poll_s)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="store-guard")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def report(self) -> dict[str, Any]:
        """The health report's `storage` part."""
        out: dict[str, Any] = {
            "ok": not self.fault,
            "fault": self.fault or None,
            "candles": {
                **self.store.health.as_dict(),
                "queued": self.store.pending,
                "max_queue": self.store.max_pending,
            },  # fmt: skip
            "journal": self.state.health.as_dict(),
            "give_up_s": self.give_up_s,
        }
        cache = self.state.cache_health
        if cache is not None:
            out["redis"] = {"stale": cache.stale, "failures": cache.failures,
                            "last_error": cache.last_error}  # fmt: skip
        return out
