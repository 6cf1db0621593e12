"""Halts by cause: the state store's halt is lifted when it can write again, and lifting it
leaves a halt from another cause (reconcile found a position nobody explains) in force."""

from __future__ import annotations

from pathlib import Path

from slob_tui.execution.gate import GateChange, TradingGate
from slob_tui.execution.wiring import STORE_HALT, STORE_HALT_REASON
from slob_tui.storage.state import StateManager


async def test_lifting_the_store_halt_keeps_another_halt(tmp_path: Path) -> None:
    state = await StateManager(tmp_path / "s.db").open()
    gate = TradingGate(state)
    changes: list[GateChange] = []

    async def heard(change: GateChange) -> None:
        changes.append(change)

    gate.listen(heard)
    assert await gate.halt(STORE_HALT_REASON, STORE_HALT)
    assert not await gate.halt(STORE_HALT_REASON, STORE_HALT)  # the same halt: no news
    assert await gate.halt("position nobody explains: NQ 1")
    assert gate.state.halted == f"{STORE_HALT_REASON}; position nobody explains: NQ 1"
    assert gate.halted_for(STORE_HALT) and not gate.check("entry").allowed
    assert gate.check("exit").allowed and gate.check("close").allowed
    assert await gate.resume(STORE_HALT)
    assert gate.state.halted == "position nobody explains: NQ 1"
    assert not gate.check("entry").allowed
    assert not await gate.resume(STORE_HALT)  # nothing of that cause left
    assert await gate.resume()
    assert gate.state.halted == "" and gate.check("entry").allowed
    assert [c.after.halted for c in changes] == [
        STORE_HALT_REASON,
        f"{STORE_HALT_REASON}; position nobody explains: NQ 1",
        "position nobody explains: NQ 1",
        "",
    ]
    await state.close()
