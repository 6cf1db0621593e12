"""CandleStore's write path: on the event loop's thread, multi-row statements, lock waits, WAL."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

import slob_tui.storage.candle_rows as rows_mod
import slob_tui.storage.database as database_mod
from slob_tui.core.models import NS_PER_MINUTE, Candle
from slob_tui.storage.candles import CandleStore, StoreError

T0 = 1_381_147_200 * 1_000_000_000  # 2013-10-07 12:00 UTC
M = NS_PER_MINUTE


def make(n: int, start: int = T0, price: float = 100.0) -> list[Candle]:
    return [
        Candle("SPY", start + i * M, price + i / 7, price + i / 3, price - i / 9, price + 0.1 * i,
               10.5 * i, i, gap_filled=i % 7 == 3, backfilled=i % 11 == 5)
        for i in range(n)
    ]  # fmt: skip


async def test_a_write_needs_no_other_thread(tmp_path: Path):
    # In aiosqlite's thread a busy event loop starved the writes of the GIL (no batch of a
    # 10 M-tick replay was committed before its end): a write now completes in one loop step.
    async with CandleStore(tmp_path / "c.db") as store:
        task = asyncio.create_task(store.upsert_many(make(5_000)))
        await asyncio.sleep(0)
        assert task.done() and task.result() == 5_000
        assert await store.count() == 5_000


@pytest.mark.parametrize("n", [1, 2, 63, 64, 65, 128, 129, 1_000])
async def test_every_batch_size_reads_back_exactly(tmp_path: Path, n: int):
    size = rows_mod._rows_per_statement()
    assert 1 <= size <= rows_mod.MAX_ROWS_PER_STATEMENT
    candles = make(n)
    async with CandleStore(tmp_path / "c.db") as store:
        assert await store.upsert_many(candles) == n
        assert await store.candles("SPY") == candles  # floats exact, padding adds no row


async def test_a_later_candle_with_the_same_start_wins_within_a_batch(tmp_path: Path):
    first = make(130)
    again = [Candle(c.symbol, c.start, 1.0, 2.0, 0.5, 1.5, 7.0, 3) for c in first[60:70]]
    last = Candle("SPY", T0 + 129 * M, 9.0, 9.5, 8.5, 9.25, 1.0, 1)
    async with CandleStore(tmp_path / "c.db") as store:
        await store.upsert_many(first + again + [last])  # crosses chunk boundaries
        got = await store.candles("SPY")
    assert len(got) == 130
    assert got[:60] == first[:60] and got[60:70] == again and got[70:129] == first[70:129]
    assert got[129] == last


async def test_a_locked_file_is_waited_for_with_the_loop_free(tmp_path: Path):
    path = tmp_path / "c.db"
    async with CandleStore(path) as store:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # holds the write lock
        task = asyncio.create_task(store.upsert_many(make(10)))
        ticks = 0
        for _ in range(20):  # the loop keeps running while the write waits
            await asyncio.sleep(0.01)
            ticks += 1
        assert not task.done() and ticks == 20
        other.execute("COMMIT")
        other.close()
        assert await asyncio.wait_for(task, 10) == 10
        assert await store.count() == 10 and store.write_errors == 0


async def test_a_lock_held_past_busy_timeout_fails_and_keeps_the_candles(tmp_path: Path):
    path = tmp_path / "c.db"
    async with CandleStore(path, flush_interval=60) as store:
        store.busy_timeout = 0.2
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        store.enqueue(make(5))
        with pytest.raises(StoreError, match="locked"):
            await store.flush()
        assert store.pending == 5 and store.write_errors == 1
        other.execute("COMMIT")
        other.close()
        await store.flush()
        assert store.pending == 0 and await store.count() == 5


async def test_the_wal_is_checkpointed_in_the_background(tmp_path: Path, monkeypatch):
    # A checkpoint fsyncs, which would hold the event loop: the writer connection copies the WAL
    # into the file in a worker thread every CHECKPOINT_EVERY candles.
    monkeypatch.setattr(database_mod, "CHECKPOINT_EVERY", 1_000)
    path = tmp_path / "c.db"
    async with CandleStore(path) as store:
        before = path.stat().st_size
        await store.upsert_many(make(5_000))
        assert store.database.checkpointing is not None
        await store.database.checkpointing
        assert path.stat().st_size > before + 100_000  # the rows reached the main file
        assert await store.count() == 5_000


async def test_small_live_commits_are_checkpointed_too(tmp_path: Path, monkeypatch):
    """Live, a flush commits a few candles but whole pages: the WAL must not grow for days."""
    monkeypatch.setattr(database_mod, "CHECKPOINT_COMMITS", 50)
    path = tmp_path / "c.db"
    candles = make(2_000)
    async with CandleStore(path) as store:
        for k in range(0, 600, 3):  # 200 commits of 3 candles
            await store.upsert_many(candles[k : k + 3])
            if store.database.checkpointing is not None:
                await store.database.checkpointing
        wal = Path(f"{path}-wal").stat().st_size
        assert await store.count() == 600
    assert wal < 60 * 4096 * 2  # about 50 commits' pages, reused after each checkpoint


async def test_a_candle_sqlite_cannot_bind_is_a_store_error_and_the_store_still_closes(
    tmp_path: Path,
):
    bad = replace(make(1)[0], tick_count=2**63)  # beyond SQLite's INTEGER
    store = await CandleStore(tmp_path / "c.db").open()
    with pytest.raises(StoreError, match="cannot write candles"):
        await store.upsert_many([bad])
    store.enqueue([bad])
    with pytest.raises(StoreError):
        await store.close()
    assert store._db is None and not store.database.is_open


async def test_a_candle_sqlite_refuses_is_set_aside_and_the_others_are_written(tmp_path: Path):
    """One bad row (NaN becomes NULL in a NOT NULL column) must not stop all saving: the rest
    of its batch and every later one are written, the bad candle is kept and counted."""
    candles = make(5)
    bad = replace(candles[2], close=float("nan"))
    async with CandleStore(tmp_path / "c.db") as store:
        store.enqueue([*candles[:2], bad, *candles[3:]])
        await store.flush()
        assert store.pending == 0 and store.unwritable == [bad]
        assert [c.start for c in await store.candles("SPY")] == [
            c.start for c in candles if c is not candles[2]]  # fmt: skip
        store.enqueue(make(2, start=T0 + 10 * NS_PER_MINUTE))
        await store.flush()
        assert await store.count() == 6 and (await store.stats())["unwritable"] == 1
