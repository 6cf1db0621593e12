from __future__ import annotations

from pathlib import Path

import pytest

from slob_tui.storage.state import StateError, StateManager

from .state_contract import check_contract


async def test_sqlite_backend_meets_the_contract_and_survives_reopen(tmp_path: Path) -> None:
    db = tmp_path / "slob.db"
    sm = await StateManager(db).open()
    assert sm.backend == "sqlite"
    await check_contract(sm)
    await sm.close()
    again = await StateManager(db).open()  # another process, later
    assert (await again.get_order("a")).order.filled_qty == 2
    assert sorted(await again.load_trackers()) == ["ES", "NQ"]
    assert [t["trade_id"] for t in await again.trades()] == ["a"]
    await again.close()


async def test_bad_paths_fail_with_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(StateError, match=r"state database .*dir\.db"):
        await StateManager(tmp_path / "dir.db").open()
    with pytest.raises(StateError, match="REDIS_URL"):
        await StateManager(tmp_path / "ok.db", redis_url="redis://127.0.0.1:1/0").open()
    closed = StateManager(tmp_path / "x.db")
    with pytest.raises(StateError, match="not open"):
        await closed.get_order("a")
