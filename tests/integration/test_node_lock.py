"""The database lock at a node's start: a second engine is refused, naming the first; a
`slob-tui flatten` acting on the file directly is waited for."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from slob_tui.config import load_settings
from slob_tui.core.clock import ManualClock
from slob_tui.node import NodeConfig, TradingNode
from slob_tui.storage.errors import DatabaseLockedError
from slob_tui.storage.lock import DatabaseLock
from tests.unit.execution.conftest import T0
from tests.unit.execution.test_engine_wiring import IdleFeed


def node(db: Path) -> TradingNode:
    config = NodeConfig(db=str(db), settings=load_settings(env={}, dotenv=None))
    return TradingNode(config, feed=IdleFeed(), clock=ManualClock(T0))


async def test_an_engine_waits_for_a_flatten_holding_the_database(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    held = DatabaseLock(db, role="flatten").acquire()
    waiting = node(db)
    start = asyncio.create_task(waiting.start())
    await asyncio.sleep(0.6)
    assert not start.done()  # waiting, not refused
    held.release()
    await asyncio.wait_for(start, 10)
    assert waiting.lock.held and DatabaseLock(db).holder_role() == "engine"
    await waiting.stop("test over")
    assert not waiting.lock.held


async def test_a_second_engine_is_refused_at_once(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    first = node(db)
    await first.start()
    try:
        with pytest.raises(DatabaseLockedError, match="in use by another engine"):
            await asyncio.wait_for(node(db).start(), 5)
    finally:
        await first.stop("test over")
