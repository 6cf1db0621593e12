"""CandleStore on real SQLite files under tmp_path."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest

from slob_tui.core.models import NS_PER_MINUTE, Candle
from slob_tui.storage.candle_frames import read_frame
from slob_tui.storage.candles import CandleStore, StoreError, iso_utc

T0 = 1_381_147_200 * 1_000_000_000  # 2013-10-07 12:00 UTC
M = NS_PER_MINUTE


def make(n: int, symbol: str = "SPY", start: int = T0, price: float = 100.0) -> list[Candle]:
    return [
        Candle(symbol, start + i * M, price + i, price + i + 1, price + i - 1, price + i + 0.5,
               10 * i, i, gap_filled=i % 7 == 3, backfilled=i % 11 == 5)
        for i in range(n)
    ]  # fmt: skip


def test_iso_timestamps_are_fixed_width_and_sort_like_time():
    assert iso_utc(T0) == "2013-10-07T12:00:00.000Z"
    assert iso_utc(T0 + 1_234_567_890) == "2013-10-07T12:00:01.234Z"
    times = [0, 59 * M, T0, T0 + 86_400 * 10**9 * 400]
    texts = [iso_utc(t) for t in times]
    assert len({len(t) for t in texts}) == 1 and texts == sorted(texts)


async def test_upsert_is_idempotent_and_reads_back_exactly(tmp_path: Path):
    async with CandleStore(tmp_path / "c.db") as store:
        candles = make(30)
        assert await store.upsert_many(candles) == 30
        assert await store.upsert_many(candles) == 30
        assert await store.count() == 30 and await store.count("SPY") == 30
        assert await store.candles("SPY") == candles
        changed = Candle("SPY", T0 + 5 * M, 1, 2, 0.5, 1.5, 7, 3)
        await store.upsert_many([changed])
        assert (await store.candles("SPY"))[5] == changed
        assert await store.count() == 30


async def test_range_queries_are_half_open(tmp_path: Path):
    async with CandleStore(tmp_path / "c.db") as store:
        await store.upsert_many(make(20) + make(5, "QQQ"))
        got = await store.candles("SPY", T0 + 3 * M, T0 + 8 * M)
        assert [(c.start - T0) // M for c in got] == [3, 4, 5, 6, 7]
        assert [c.start for c in await store.candles("SPY", T0 + 3 * M + 1, None, 2)] == [
            T0 + 4 * M, T0 + 5 * M]  # fmt: skip
        df = await store.range("SPY", T0 + 10 * M, T0 + 13 * M)
        assert list(df["open"]) == [110.0, 111.0, 112.0]
        assert str(df.index[0]) == "2013-10-07 12:10:00+00:00"
        assert df["gap_filled"].tolist() == [True, False, False]
        empty = await store.range("SPY", T0 - 5 * M, T0)
        assert len(empty) == 0
        assert [c.start for c in await store.recent("SPY", 3)] == [T0 + k * M for k in (17, 18, 19)]
        latest = await store.latest("QQQ")
        assert latest is not None and latest.start == T0 + 4 * M
        assert await store.latest("NONE") is None
        assert await store.symbols() == ["QQQ", "SPY"]


async def test_enqueue_is_written_by_the_writer_and_on_close(tmp_path: Path):
    path = tmp_path / "c.db"
    store = CandleStore(path, flush_interval=0.05, batch_size=10_000)
    await store.open()
    store.enqueue(make(3))
    assert store.pending == 3
    for _ in range(200):
        if store.pending == 0 and await store.count() == 3:
            break
        await asyncio.sleep(0.01)
    assert await store.count() == 3 and store.flushes >= 1
    store.enqueue(make(10, start=T0 + 100 * M))
    await store.close()  # flushes what is queued
    async with CandleStore(path) as again:  # restart: reopen and read back
        assert await again.count() == 13
        assert (await again.latest("SPY")).start == T0 + 109 * M
        stats = await again.stats()
        assert stats["rows"] == 13 and stats["symbols"] == 1
        assert stats["first"] == "2013-10-07T12:00:00.000Z" and stats["file_size_bytes"] > 0


async def test_batch_size_wakes_the_writer_early(tmp_path: Path):
    async with CandleStore(tmp_path / "c.db", flush_interval=30, batch_size=50) as store:
        store.enqueue(make(60))
        for _ in range(300):
            if store.pending == 0:
                break
            await asyncio.sleep(0.01)
        assert store.pending == 0 and await store.count() == 60


async def test_second_connection_reads_while_the_writer_flushes(tmp_path: Path):
    path = tmp_path / "c.db"
    async with CandleStore(path, flush_interval=0.01, batch_size=100) as store:
        seen: list[int] = []

        async def writer():
            for k in range(20):
                store.enqueue(make(100, start=T0 + k * 100 * M))
                await asyncio.sleep(0.005)
            await store.flush()

        async def reader():
            async with CandleStore(path) as other:
                while True:
                    n = await other.count("SPY")
                    seen.append(n)
                    rows = await other.candles("SPY", limit=5)
                    # a commit may land between the two reads: rows only ever get more
                    assert min(5, n) <= len(rows) <= 5
                    if n == 2000:
                        return
                    await asyncio.sleep(0.002)

        await asyncio.wait_for(asyncio.gather(writer(), reader()), 30)
        assert seen == sorted(seen) and seen[-1] == 2000
        assert len(set(seen)) > 2  # the reader saw intermediate states, not only the end


async def test_failed_write_keeps_candles_and_retries(tmp_path: Path):
    path = tmp_path / "c.db"
    async with CandleStore(path, flush_interval=60) as store:
        con = sqlite3.connect(path)
        con.execute("CREATE TRIGGER refuse BEFORE INSERT ON candles "
                    "BEGIN SELECT RAISE(ABORT, 'refused by test trigger'); END")  # fmt: skip
        con.commit()
        store.enqueue(make(5))
        with pytest.raises(StoreError, match="refused by test trigger"):
            await store.flush()
        assert store.pending == 5 and (await store.stats())["write_errors"] == 1
        con.execute("DROP TRIGGER refuse")
        con.commit()
        con.close()
        await store.flush()
        assert store.pending == 0 and await store.count() == 5


async def test_other_tables_in_the_file_are_left_alone(tmp_path: Path):
    path = tmp_path / "c.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE setups (id TEXT PRIMARY KEY, state TEXT)")
    con.execute("INSERT INTO setups VALUES ('s1', 'WATCHING_LIQ1')")
    con.commit()
    con.close()
    async with CandleStore(path) as store:
        await store.upsert_many(make(2))
        await store.vacuum()
    con = sqlite3.connect(path)
    assert con.execute("SELECT * FROM setups").fetchall() == [("s1", "WATCHING_LIQ1")]
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("SELECT timestamp FROM candles LIMIT 1").fetchone()[0] == (
        "2013-10-07T12:00:00.000Z")  # fmt: skip
    con.close()


async def test_bad_paths_give_a_clear_error(tmp_path: Path):
    with pytest.raises(StoreError, match="is a directory"):
        await CandleStore(tmp_path).open()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot create folder"):
        await CandleStore(blocker / "sub" / "c.db").open()
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(StoreError, match="cannot open candle store .*junk.db"):
        await CandleStore(junk).open()
    with pytest.raises(StoreError, match="not open"):
        await CandleStore(tmp_path / "x.db").count()


async def test_creates_missing_parent_folders(tmp_path: Path):
    async with CandleStore(tmp_path / "a" / "b" / "c.db") as store:
        await store.upsert_many(make(1))
    assert (tmp_path / "a" / "b" / "c.db").is_file()


# ---- range(): column-wise DataFrame reads -----------------------------------------------

FRAME_COLUMNS = ["symbol", "ts_ns", "open", "high", "low", "close", "volume", "tick_count",
                 "gap_filled", "backfilled"]  # fmt: skip


def expected_frame(candles: list[Candle]) -> pd.DataFrame:
    """The frame built the slow, obvious way: one dict per candle."""
    rows = [{"symbol": c.symbol, "ts_ns": c.start, "open": c.open, "high": c.high, "low": c.low,
             "close": c.close, "volume": float(c.volume), "tick_count": c.tick_count,
             "gap_filled": c.gap_filled, "backfilled": c.backfilled} for c in candles]  # fmt: skip
    df = pd.DataFrame(rows, columns=FRAME_COLUMNS).astype(
        {"ts_ns": "int64", "open": "float64", "high": "float64", "low": "float64",
         "close": "float64", "volume": "float64", "tick_count": "int64", "gap_filled": "bool",
         "backfilled": "bool"})  # fmt: skip
    df.index = pd.DatetimeIndex(pd.to_datetime(df["ts_ns"], unit="ns", utc=True), name="timestamp")
    return df


def test_read_frame_bounds_are_half_open_to_the_nanosecond(tmp_path: Path):
    path = tmp_path / "c.db"
    candles = make(50) + make(10, "QQQ")

    async def write() -> None:
        async with CandleStore(path) as store:
            await store.upsert_many(candles)

    asyncio.run(write())
    spy = candles[:50]
    cases = [
        (T0, T0 + 50 * M, spy),  # everything
        (T0 + 10 * M, T0 + 20 * M, spy[10:20]),  # end is exclusive
        (T0 + 10 * M - 1, T0 + 20 * M + 1, spy[10:21]),  # 1 ns either side
        (T0 + 10 * M + 1, T0 + 20 * M - 1, spy[11:20]),
        (T0 + 10 * M + 1_000_000, T0 + 11 * M, []),  # inside one candle, ms-aligned
        (T0 - 5 * M, T0, []),
        (T0 + 49 * M, T0 + 10**6 * M, spy[49:]),
    ]
    for start, end, want in cases:
        where, params = CandleStore._bounds(start, end)
        got = read_frame(path, "SPY", where, params)
        pdt.assert_frame_equal(got, expected_frame(want), check_index_type=True)
        assert pd.api.types.is_string_dtype(got["symbol"])  # object in pandas 2, str in 3
        assert list(got.dtypes.astype(str))[1:] == ["int64", *["float64"] * 5, "int64",
                                                    "bool", "bool"]  # fmt: skip


async def test_range_works_on_paths_with_spaces_and_url_characters(tmp_path: Path):
    folder = tmp_path / "my data #1 ?x=y"
    async with CandleStore(folder / "candles 100%.db") as store:
        await store.upsert_many(make(3))
        df = await store.range("SPY", T0, T0 + 3 * M)
    assert df["open"].tolist() == [100.0, 101.0, 102.0]
    assert not (tmp_path / "my data ").exists()  # no stray file from a half-parsed URI


async def test_range_needs_an_open_store(tmp_path: Path):
    store = CandleStore(tmp_path / "c.db")
    with pytest.raises(StoreError, match="not open"):
        await store.range("SPY", T0, T0 + M)


async def test_range_reads_committed_prefixes_while_the_writer_flushes(tmp_path: Path):
    path = tmp_path / "c.db"
    batches, per = 30, 200
    async with CandleStore(path, flush_interval=0.01, batch_size=per) as store:
        lengths: list[int] = []

        async def writer() -> None:
            for k in range(batches):
                store.enqueue(make(per, start=T0 + k * per * M, price=100.0 + k * per))
                await asyncio.sleep(0.003)
            await store.flush()

        async def reader() -> None:
            async with CandleStore(path) as other:
                while True:
                    df = await other.range("SPY", T0, T0 + batches * per * M)
                    n = len(df)
                    # Each flush is one transaction: a reader sees whole batches, in order,
                    # starting at the first candle, never a hole or a half-written batch.
                    assert n % per == 0
                    assert (df["ts_ns"].to_numpy() == T0 + np.arange(n) * M).all()
                    assert (df["open"].to_numpy() == 100.0 + np.arange(n)).all()
                    lengths.append(n)
                    if n == batches * per:
                        return
                    await asyncio.sleep(0.002)

        await asyncio.wait_for(asyncio.gather(writer(), reader()), 60)
    assert lengths == sorted(lengths) and lengths[-1] == batches * per
    assert len(set(lengths)) > 2


async def test_store_connection_keeps_a_small_page_cache(tmp_path: Path):
    async with CandleStore(tmp_path / "c.db") as store:
        db = store._conn()
        for pragma, want in (("cache_size", -256), ("journal_size_limit", 8 * 1024 * 1024),
                             ("synchronous", 1)):  # fmt: skip
            async with db.execute(f"PRAGMA {pragma}") as cur:
                assert (await cur.fetchone())[0] == want, pragma


async def test_a_bad_candle_mid_batch_writes_none_of_the_batch(tmp_path: Path):
    async with CandleStore(tmp_path / "c.db") as store:
        await store.upsert_many(make(3))
        batch: list = make(10, start=T0 + 100 * M)
        batch[6] = ("not", "a", "candle")
        with pytest.raises(AttributeError):
            await store.upsert_many(batch)
        assert await store.count() == 3  # rows 0..5 of the bad batch were rolled back
        await store.upsert_many(make(4, start=T0 + 200 * M))  # the connection still writes
        assert await store.count() == 7


async def test_bulk_upsert_larger_than_the_page_cache_reads_back(tmp_path: Path):
    candles = make(20_000)  # ~2 MB of rows through a 256 KB cache, one transaction
    async with CandleStore(tmp_path / "c.db") as store:
        assert await store.upsert_many(candles) == 20_000
    async with CandleStore(tmp_path / "c.db") as store:
        assert await store.candles("SPY") == candles
