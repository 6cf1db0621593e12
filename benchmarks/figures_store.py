"""Candle store: bulk write candles/s and a 350 k-row range read into a DataFrame.

The NQ candles (14,714) are repeated, shifted later in time, to 350,000 rows of one symbol.
The peer is plain `sqlite3` in the same run, on the same table shape and WAL mode, with rows
already built: the floor the store's write queue, row conversion and batching sit on.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from benchmarks.inputs import NQ_CANDLES, load_candles, ours, tmp_path
from benchmarks.suite import Context, Record, figure, goal, median, rate, side_by_side, speedup

ROWS = 350_000
QUICK_ROWS = 100_000
SPAN_NS = 16 * 24 * 3600 * 1_000_000_000  # the NQ file covers 15 days; shift whole copies

SCHEMA = """
CREATE TABLE IF NOT EXISTS candles (
    symbol TEXT NOT NULL, timestamp TEXT NOT NULL, open REAL, high REAL, low REAL, close REAL,
    volume REAL, tick_count INTEGER, gap_filled INTEGER, backfilled INTEGER,
    PRIMARY KEY (symbol, timestamp))
"""


def many_candles(base: list[Any], rows: int) -> list[Any]:
    out: list[Any] = []
    copy = 0
    while len(out) < rows:
        offset = copy * SPAN_NS
        out.extend(replace(c, start=c.start + offset) for c in base[: rows - len(out)])
        copy += 1
    return out


def iso(ns: int) -> str:
    import datetime as dt

    seconds, rest = divmod(ns, 1_000_000_000)
    stamp = dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{rest:09d}Z"


def sqlite_peer(ctx: Context, candles: list[Any]) -> tuple[Any, Any]:
    """Factories for the floor: executemany of ready rows, and read_sql of the same range."""
    import pandas as pd

    rows = [
        (c.symbol, iso(c.start), c.open, c.high, c.low, c.close, c.volume, 0, 0, 0) for c in candles
    ]
    path = tmp_path(ctx, "peer.db")

    def write_factory() -> Any:
        path.unlink(missing_ok=True)
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(SCHEMA)

        def run() -> int:
            with conn:
                conn.executemany(
                    "INSERT OR REPLACE INTO candles VALUES (?,?,?,?,?,?,?,?,?,?)", rows
                )
            conn.close()
            return len(rows)

        return run

    def read_factory() -> Any:
        def run() -> Any:
            conn = sqlite3.connect(path)
            try:
                return pd.read_sql_query(
                    "SELECT * FROM candles WHERE symbol=? AND timestamp>=? AND timestamp<=?"
                    " ORDER BY timestamp",
                    conn,
                    params=(candles[0].symbol, rows[0][1], rows[-1][1]),
                )
            finally:
                conn.close()

        return run

    return write_factory, read_factory


@figure("store", "CandleStore bulk upsert candles/s and a 350 k-row range -> DataFrame")
def store_figures(ctx: Context) -> Iterator[Record]:
    store_cls = ours("slob_tui.storage.candles", "CandleStore")
    n = QUICK_ROWS if ctx.quick else ROWS
    candles = many_candles(load_candles(ctx, NQ_CANDLES, "NQ", "America/New_York"), n)
    path = tmp_path(ctx, "ours.db")
    loop = asyncio.new_event_loop()

    def write_factory() -> Any:
        tmp_path(ctx, "ours.db")
        store = store_cls(path)
        loop.run_until_complete(store.open())

        def run() -> int:
            written = loop.run_until_complete(store.upsert_many(candles))
            loop.run_until_complete(store.close())
            return written

        return run

    def read_factory() -> Any:
        def run() -> Any:
            async def go() -> Any:
                async with store_cls(path) as store:
                    return await store.range("NQ", candles[0].start, candles[-1].end)

            return loop.run_until_complete(go())

        return run

    peer_write, peer_read = sqlite_peer(ctx, candles)
    try:
        writes = side_by_side(ctx.reps, write_factory, peer_write)
        frame = read_factory()()
        if len(frame) != n:
            raise AssertionError(f"range returned {len(frame)} rows, {n} were written")
        reads = side_by_side(ctx.reps, read_factory, peer_read)
        if len(reads.peer_result) != n:
            raise AssertionError(f"peer read {len(reads.peer_result)} rows, {n} were written")
    finally:
        loop.close()

    w_rate, pw_rate = rate(n, writes.ours), rate(n, writes.peer)
    text, met = goal("candles/s", w_rate, min_value=300_000)
    yield Record(
        "store: bulk upsert",
        w_rate,
        "candles/s",
        "sqlite3 executemany (ready rows)",
        pw_rate,
        speedup(w_rate, pw_rate, True),
        text,
        met,
        note=f"{n:,} NQ candles into a fresh WAL file, commit and close included",
        reps=ctx.reps,
        extra=writes.cpu_rates(n),
    )
    r_sec, pr_sec = median(reads.ours), median(reads.peer)
    text, met = goal("s", r_sec, max_value=0.3)
    yield Record(
        f"store: {n // 1000} k-row range -> DataFrame",
        r_sec,
        "s",
        "pandas.read_sql_query on sqlite3",
        pr_sec,
        speedup(r_sec, pr_sec, False),
        text,
        met,
        note="open, query, build the frame, close",
        higher_is_better=False,
        reps=ctx.reps,
        extra={"ours_cpu_s": median(reads.ours_cpu), "peer_cpu_s": median(reads.peer_cpu)},
    )
