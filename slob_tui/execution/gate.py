"""TradingGate: the one owner of the kill switch and of trading halts.

Every order asks the gate first. The kill switch is persisted in the state store's
`kill_switch` value, which `slob-tui flatten` in a second process writes too, so the gate
re-reads it (one key, one indexed read) before every placement attempt: a kill or a reset
from anywhere reaches a running engine before its next order, whichever the broker. Between
orders, candles `poll` it, so a kill is acted on (cancel, flatten) with no order due: a poll
reads again when `POLL_EVERY_S` of wall time passed since the last read. Live, that is every
candle; a replay at full speed closes thousands of candles a second, and one read per candle
was a round trip to the state thread each (~1.25 s per million trades replayed).
Halts (reconcile found a position nobody explains, an exit leg could not be placed, the state
store refuses writes) live in memory: they are re-derived at every start by reconciliation,
and the state store's halt is lifted by its owner when a write goes in again.

A kill closes the gate in memory at once, before anything is awaited, so an order already
between two retries stops at its next attempt. Entries are refused while killed or halted;
protective exits only while killed (the kill flattens the position); closing orders always
pass, since they only reduce risk. If the store cannot be read, entries are refused until it
can (fail closed).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

from slob_tui.storage.state import StateManager

log = logging.getLogger(__name__)
KILL_KEY = "kill_switch"
ACK_KEY = "kill_ack"
POLL_EVERY_S = 0.05
"""Wall time between two reads of the switch by `poll` (orders always read it: `admit`)."""
Purpose = Literal["entry", "exit", "close"]
"""What an order does: opens risk, protects a position (target, stop) or flattens one."""


@dataclass(frozen=True, slots=True)
class GateState:
    """The gate as health, the console and the executor see it."""

    killed: str = ""
    """The kill switch's reason; empty when it is off."""
    kill_id: str = ""
    """Names one kill, so every process that acts on it acts once."""
    killed_at: int = 0
    """ns of the kill; the flatten orders' ids derive from it (one per symbol and kill)."""
    halted: str = ""
    store_fault: str = ""
    """Why the persisted switch could not be read (new entries wait until it can)."""

    @property
    def open(self) -> bool:
        return not (self.killed or self.halted or self.store_fault)


@dataclass(frozen=True, slots=True)
class GateDecision:
    allowed: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class GateChange:
    """A transition of the gate; `external` when another process made it (seen on refresh)."""

    before: GateState
    after: GateState
    external: bool


GateListener = Callable[[GateChange], Awaitable[None]]


def decide(state: GateState, purpose: Purpose) -> GateDecision:
    """May an order for `purpose` go out in `state`? The reason names what blocks it."""
    if purpose == "close":
        return GateDecision(True)
    if state.killed:
        return GateDecision(
            False, f"kill switch is on: no new orders until it is reset ({state.killed})"
        )
    if purpose == "exit":
        return GateDecision(True)
    if state.halted:
        return GateDecision(False, f"trading halted: {state.halted}")
    if state.store_fault:
        return GateDecision(
            False,
            f"kill switch unreadable ({state.store_fault}): "
            "no new orders until the state store answers",
        )
    return GateDecision(True)


class TradingGate:
    def __init__(
        self, state: StateManager, now: Callable[[], int] = lambda: 0,
        poll_every_s: float = POLL_EVERY_S, monotonic: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self._store = state
        self._now = now
        self._poll_every_s = poll_every_s
        self._monotonic = monotonic
        self._read_at: float | None = None  # monotonic time of the last read of the switch
        self._state = GateState()
        self._version = 0  # bumped by every local change: a read that raced one is dropped
        self._unsaved: dict[str, Any] | None = None  # a local kill the store has not taken
        self._acted: str = ""  # the kill this process executed (or found done at start)
        self._listeners: list[GateListener] = []
        self._halts: dict[str, str] = {}  # cause -> reason
        self.closed = asyncio.Event()
        """Set while killed: a retry sleep wakes on it instead of sleeping on."""
        self.refreshes = 0

    @property
    def state(self) -> GateState:
        return self._state

    def listen(self, listener: GateListener) -> None:
        self._listeners.append(listener)

    def check(self, purpose: Purpose = "entry") -> GateDecision:
        """The decision on what the gate last knew (see `admit` for a fresh one)."""
        return decide(self._state, purpose)

    async def admit(self, purpose: Purpose = "entry") -> GateDecision:
        """Re-read the persisted switch, then decide: called before every placement attempt."""
        if purpose != "close":
            await self.refresh()
        return self.check(purpose)

    def pending_kill(self) -> GateState | None:
        """A kill this process has not acted on yet (made by another process)."""
        s = self._state
        return s if s.killed and s.kill_id != self._acted else None

    def acted_on(self, kill_id: str) -> None:
        self._acted = kill_id

    # ---- persisted state --------------------------------------------------------------
    async def load(self) -> GateState:
        """At start: the stored switch, taken as already acted on (its process did)."""
        await self.refresh(notify=False)
        self._acted = self._state.kill_id
        return self._state

    async def refresh(self, notify: bool = True) -> GateState:
        """Bring the kill switch in line with the store; listeners hear of a change."""
        if not await self._save_kill():
            return self._state  # a local kill the store has not taken yet stays in force
        version = self._version
        self.refreshes += 1
        self._read_at = self._monotonic()
        try:
            raw = await self._store.get_value(KILL_KEY)
        except Exception as exc:  # noqa: BLE001 - any store failure closes the gate for entries
            fault = f"{type(exc).__name__}: {exc}"
            if version == self._version and self._state.store_fault != fault:
                log.error("kill switch unreadable: %s", fault)
                await self._set(
                    replace(self._state, store_fault=fault), external=True, notify=notify
                )
            return self._state
        if version != self._version:
            return self._state  # a local kill or reset landed meanwhile: it is newer
        killed, kill_id, at = _parse(raw)
        new = replace(self._state, killed=killed, kill_id=kill_id, killed_at=at, store_fault="")
        if new != self._state:
            await self._set(new, external=True, notify=notify)
        return self._state

    async def poll(self) -> GateState:
        """Per candle: `refresh` when `poll_every_s` passed since the switch was last read, or
        when the last read or save failed (it is tried again at once)."""
        read_at = self._read_at
        if (
            read_at is not None
            and self._unsaved is None
            and not self._state.store_fault
            and self._monotonic() - read_at < self._poll_every_s
        ):
            return self._state
        return await self.refresh()

    async def kill(self, reason: str) -> GateState:
        """Close the gate now, then persist the switch (for restarts and other processes).

        If the store refuses the write, the kill still holds here and the write is tried
        again on every refresh (which keeps the gate closed meanwhile)."""
        reason = reason or "kill switch"
        new = replace(self._state, killed=reason, kill_id=uuid.uuid4().hex, killed_at=self._now())
        await self._set(new, external=False)
        self._unsaved = {
            "reason": reason,
            "id": new.kill_id,
            "ts": new.killed_at,
            "pid": os.getpid(),
        }
        log.warning("KILL SWITCH: %s", reason)
        await self._save_kill()
        return new

    async def _save_kill(self) -> bool:
        if self._unsaved is None:
            return True
        try:
            await self._store.set_value(KILL_KEY, self._unsaved)
        except Exception as exc:  # noqa: BLE001 - the kill must go on without the store
            log.error(
                "kill switch not persisted yet (%s: %s): it holds in this process",
                type(exc).__name__,
                exc,
            )
            return False
        self._unsaved = None
        return True

    async def reset(self) -> GateState:
        self._unsaved = None
        await self._set(replace(self._state, killed="", kill_id="", killed_at=0), external=False)
        await self._store.clear_value(KILL_KEY)
        return self._state

    async def acknowledge(self, kill_id: str) -> None:
        """Tell a waiting `slob-tui flatten` that this engine cancelled and flattened."""
        self._acted = kill_id
        await self._store.set_value(ACK_KEY, {"id": kill_id, "pid": os.getpid()})

    async def acknowledged(self, kill_id: str) -> bool:
        ack = await self._store.get_value(ACK_KEY)
        return isinstance(ack, dict) and ack.get("id") == kill_id

    # ---- halts ------------------------------------------------------------------------
    async def halt(self, reason: str, cause: str = "") -> bool:
        """Refuse new entries (fail closed); False when already halted for this reason.

        `cause` names a halt that ends on its own (the state store answering again):
        `resume(cause)` lifts that one and leaves any other in force. Halts from different
        causes are all shown, joined."""
        cause = cause or reason
        if self._halts.get(cause) == reason:
            return False
        log.error("TRADING HALTED: %s", reason)
        self._halts[cause] = reason
        await self._set(replace(self._state, halted=self._halt_text()), external=False)
        return True

    async def resume(self, cause: str | None = None) -> bool:
        """Lift the halt of `cause`, or every halt when None; True when one was lifted."""
        if cause is None:
            lifted = bool(self._halts)
            self._halts.clear()
        else:
            lifted = self._halts.pop(cause, None) is not None
        if lifted or self._state.halted != self._halt_text():
            log.warning("trading halt lifted (%s); still halted: %s", cause or "all",
                        self._halt_text() or "no")  # fmt: skip
            await self._set(replace(self._state, halted=self._halt_text()), external=False)
        return lifted

    def halted_for(self, cause: str) -> bool:
        return cause in self._halts

    def _halt_text(self) -> str:
        return "; ".join(self._halts.values())

    async def _set(self, new: GateState, *, external: bool, notify: bool = True) -> None:
        before, self._state = self._state, new
        if not external:
            self._version += 1
        if new.killed:
            self.closed.set()
        else:
            self.closed.clear()
        if notify and new != before:
            change = GateChange(before, new, external)
            for listener in self._listeners:
                await listener(change)


def _parse(raw: Any) -> tuple[str, str, int]:
    """The stored switch as (reason, id, ts); older records had no id: the reason stands in."""
    if not raw:
        return "", "", 0
    if not isinstance(raw, dict):
        return str(raw), str(raw), 0
    reason = str(raw.get("reason") or "kill switch")
    ts = raw.get("ts")
    at = int(ts) if isinstance(ts, int | float) else 0
    return reason, str(raw.get("id") or f"{reason}@{at}"), at
