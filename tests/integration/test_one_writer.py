"""One writer for the database file (issue 13): every write goes through the `Database`'s one
connection; the stores' readers are read-only connections.

The full-run proof traces every sqlite3 connection a real `slob-tui replay` process opens
(`tests/fixtures/sqlite_writers.py`): which ones ran a writing statement, and how many rows
SQLite counted as changed by each.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from slob_tui.core.models import NS_PER_MINUTE, Candle
from slob_tui.storage.candles import CandleStore
from slob_tui.storage.database import Database
from slob_tui.storage.state import StateManager

REPO = Path(__file__).resolve().parents[2]
TRACER = REPO / "tests" / "fixtures" / "sqlite_writers.py"
NQ = "nq_1min_20231119_20231204_et.csv"
T0 = 1_700_000_000 * 1_000_000_000 // NS_PER_MINUTE * NS_PER_MINUTE


def _env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLOB_", "ALPACA_", "APCA_", "REDIS_", "TELEGRAM_"))
    }
    env["PYTHONPATH"] = str(REPO)
    return env


def candles(n: int, start: int = T0) -> list[Candle]:
    return [
        Candle("NQ", start + i * NS_PER_MINUTE, 100.0, 101.0, 99.0, 100.5, 10.0, 3)
        for i in range(n)
    ]


@pytest.mark.slow
def test_a_whole_replay_writes_the_file_through_one_connection(shared_data: Path, tmp_path: Path):
    db, report = tmp_path / "run.db", tmp_path / "writers.json"
    args = ["replay", str(shared_data / NQ), "--no-ui", "--symbol", "NQ", "--speed", "max",
            "--db", str(db)]  # fmt: skip
    proc = subprocess.run(
        [sys.executable, str(TRACER), str(report), str(db), "--", *args],
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    conns = json.loads(report.read_text())
    writers = [c for c in conns if c["writes"] or c["changes"]]
    assert len(writers) == 1, [(c["target"], c["thread"], c["writes"][:3]) for c in writers]
    (writer,) = writers
    others = [c for c in conns if c is not writer]
    assert others, "the stores read through connections of their own"
    assert all(c["target"].endswith("?mode=ro") and c["statements"] for c in others), others
    assert not writer["target"].endswith("?mode=ro")

    # The one writer wrote both stores' rows, the schema and the checkpoints.
    with sqlite3.connect(db) as conn:
        counts = {
            t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
            for t in ("candles", "setups", "orders", "fills", "trades", "hot_state")
        }
    assert all(counts.values()), counts  # the run did trade: every kind of write happened
    written = " ".join(writer["writes"])
    for what in ("INSERT INTO candles", "INTO setups", "INTO orders", "INTO fills",
                 "INTO trades", "CREATE TABLE", "PRAGMA user_version"):  # fmt: skip
        assert what in written, what
    assert writer["changes"] >= sum(counts.values())


async def test_both_stores_on_one_database_share_its_one_writer(tmp_path: Path):
    database = Database(tmp_path / "one.db")
    store = CandleStore(database, flush_interval=60)
    state = StateManager(database)
    await store.open()
    await state.open()
    before = database.commits
    await store.upsert_many(candles(10))
    await state.set_value("kill_switch", {"on": True})
    await store.upsert_many(candles(5, start=T0 + 100 * NS_PER_MINUTE))
    assert database.commits == before + 3
    await store.close()  # the state manager still writes: the writer is open while it is
    assert database.is_open
    await state.set_value("kill_switch", {"on": False})
    assert await state.get_value("kill_switch") == {"on": False}
    await state.close()
    assert not database.is_open
    with sqlite3.connect(database.path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM candles").fetchone()[0] == 15


async def test_writes_are_committed_in_the_order_they_were_asked_for(tmp_path: Path):
    """Another process holds the write lock; candle batches and journal writes asked for
    meanwhile wait in one queue and go in in order once it lets go."""
    database = Database(tmp_path / "q.db")
    store = CandleStore(database, flush_interval=60)
    state = StateManager(database)
    await store.open()
    await state.open()
    order: list[str] = []
    other = sqlite3.connect(database.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")

    async def candle_batch(k: int) -> None:
        await store.upsert_many(candles(3, start=T0 + k * 10 * NS_PER_MINUTE))
        order.append(f"candles {k}")

    async def journal(k: int) -> None:
        await state.set_value(f"v{k}", k)
        order.append(f"value {k}")

    tasks = []
    for k in range(3):
        tasks.append(asyncio.create_task(candle_batch(k)))
        await asyncio.sleep(0)
        tasks.append(asyncio.create_task(journal(k)))
        await asyncio.sleep(0)
    await asyncio.sleep(0.2)
    assert order == []  # all wait for the other process's lock
    other.execute("COMMIT")
    other.close()
    await asyncio.wait_for(asyncio.gather(*tasks), 10)
    assert order == ["candles 0", "value 0", "candles 1", "value 1", "candles 2", "value 2"]
    await state.close()
    await store.close()


async def test_the_stores_readers_cannot_write(tmp_path: Path):
    database = Database(tmp_path / "ro.db")
    async with CandleStore(database) as store:
        state = await StateManager(database).open()
        try:
            reader = store._conn()
            with pytest.raises(sqlite3.OperationalError, match="readonly"):
                await reader.execute("DELETE FROM candles")
            with pytest.raises(sqlite3.OperationalError, match="readonly"):
                await state._run(state._c.execute, "DELETE FROM hot_state")
        finally:
            await state.close()
