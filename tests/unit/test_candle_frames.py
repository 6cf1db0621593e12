"""candle_frames: the column-wise range read is bit-exact whichever path a part takes.

The oracle is the plainest read there is: sqlite3 rows as Python objects, compared bit for bit
(floats by their int64 bit patterns, so a lost last bit or a sign of zero shows).
"""

from __future__ import annotations

import contextlib
import math
import random
import sqlite3
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from slob_tui.core.models import NS_PER_MINUTE, Candle
from slob_tui.storage import candle_frames
from slob_tui.storage.candle_frames import FRAME_DTYPES, SPLIT_SPAN_NS, range_sql, read_frame
from slob_tui.storage.candles import CandleStore

T0 = 1_381_147_200 * 1_000_000_000  # 2013-10-07 12:00 UTC
M = NS_PER_MINUTE
FLOATS = ("open", "high", "low", "close", "volume")

AWKWARD = [
    0.1 + 0.2, 1 / 3, -math.pi, 1e-300, 5e-324, -5e-324, 2.2250738585072014e-308,
    2.225073858507201e-308, 1.7976931348623157e308, -1.7976931348623157e308, 2.0**53 + 2,
    2.0**63, 3 * 2.0**64, 1e22, 1e23, 123456789.12345679, -0.0, 0.0, -1234.5678, 100.01, 4.35,
    15873.25 + 2.0**-30, 5e-310, 0.5, 1e18 + 1024,
]  # fmt: skip


def candles(n: int, start: int = T0, step: int = M, symbol: str = "NQ") -> list[Candle]:
    """Quarter-point prices and whole volumes, like the NQ file: the fast path takes them."""
    return [
        Candle(symbol, start + i * step, 15000 + i * 0.25, 15001 + i * 0.25, 14999.5 + i * 0.25,
               15000.75 + i * 0.25, float(10 * i % 997), i % 50, i % 7 == 3, i % 11 == 5)
        for i in range(n)
    ]  # fmt: skip


def write(path: Path, rows: list[Candle]) -> None:
    import asyncio

    async def go() -> None:
        async with CandleStore(path) as store:
            await store.upsert_many(rows)

    asyncio.run(go())


def oracle(path: Path, symbol: str, start: int, end: int) -> dict[str, np.ndarray]:
    where, params = CandleStore._bounds(start, end)
    with contextlib.closing(sqlite3.connect(path)) as conn:
        rows = conn.execute(range_sql(where), [symbol, *params]).fetchall()
    cols = list(zip(*rows, strict=True)) if rows else [()] * len(FRAME_DTYPES)
    out = {}
    for (name, dtype), col in zip(FRAME_DTYPES.items(), cols, strict=True):
        out[name] = np.array([bool(v) for v in col] if dtype is np.bool_ else col, dtype=dtype)
    return out


def assert_bit_exact(got: pd.DataFrame, want: dict[str, np.ndarray], symbol: str) -> None:
    assert list(got.columns) == ["symbol", *FRAME_DTYPES]
    assert (got["symbol"] == symbol).all()
    for name, dtype in FRAME_DTYPES.items():
        col = got[name].to_numpy()
        assert col.dtype == dtype, name
        if dtype is np.float64:
            assert np.array_equal(col.view(np.int64), want[name].view(np.int64)), name
        else:
            assert np.array_equal(col, want[name]), name
    assert isinstance(got.index, pd.DatetimeIndex) and got.index.name == "timestamp"
    assert str(got.index.tz) == "UTC"
    assert np.array_equal(got.index.asi8, want["ts_ns"])


def read(path: Path, symbol: str, start: int, end: int) -> pd.DataFrame:
    where, params = CandleStore._bounds(start, end)
    return read_frame(path, symbol, where, params)


def fast_columns(path: Path, symbol: str, start: int, end: int) -> tuple[list | None, dict | None]:
    """The aggregate path alone, scaled from the range's first and last rows as read_frame does:
    (per float column k of m = x * 2**k, the columns or None when refused)."""
    where, params = CandleStore._bounds(start, end)
    args = [symbol, *params]
    with contextlib.closing(sqlite3.connect(path)) as conn:
        sample = conn.execute(candle_frames._sample_sql(where, "ASC"), args).fetchall()
        sample += conn.execute(candle_frames._sample_sql(where, "DESC"), args).fetchall()
        scales = candle_frames._scale_bits(sample)
        return scales, candle_frames._read_columns(conn, symbol, where, params, scales)


def test_fast_path_reads_quarter_points_bit_for_bit(tmp_path: Path):
    path = tmp_path / "c.db"
    rows = candles(500)
    write(path, rows + candles(5, symbol="ES"))
    end = T0 + 500 * M
    assert fast_columns(path, "NQ", T0, end)[1] is not None  # the aggregate path was taken
    assert_bit_exact(read(path, "NQ", T0, end), oracle(path, "NQ", T0, end), "NQ")
    assert_bit_exact(read(path, "NQ", T0 + 7 * M + 1, T0 + 9 * M), oracle(path, "NQ",
                     T0 + 7 * M + 1, T0 + 9 * M), "NQ")  # fmt: skip
    for start, stop in ((T0 - 5 * M, T0), (T0 + 3 * M, T0 + 4 * M)):  # empty, one row
        assert_bit_exact(read(path, "NQ", start, stop), oracle(path, "NQ", start, stop), "NQ")


@pytest.mark.parametrize("value", AWKWARD)
@pytest.mark.parametrize("column", FLOATS)
def test_a_value_the_sample_did_not_show_is_refused_then_read_exactly(tmp_path, column, value):
    """One awkward value mid-range, outside the sampled first/last rows: the aggregate's check
    must refuse it (a truncated bit would pass silently otherwise) and the frame stay exact."""
    path = tmp_path / "c.db"
    rows = candles(200)
    rows[100] = replace(rows[100], **{column: value})
    write(path, rows)
    end = T0 + 200 * M
    want = oracle(path, "NQ", T0, end)
    scales, got = fast_columns(path, "NQ", T0, end)
    assert scales is not None
    k = scales[FLOATS.index(column)]
    stored = float(want[column][100])  # -0.0 is stored as 0
    scaled = stored * 2.0**k
    assert (got is not None) == (scaled.is_integer() and abs(scaled) < 2.0**63)
    if got is not None:
        assert np.array_equal(got[column].view(np.int64), want[column].view(np.int64))
    assert_bit_exact(read(path, "NQ", T0, end), want, "NQ")


def test_awkward_values_everywhere_read_back_bit_for_bit(tmp_path: Path):
    path = tmp_path / "c.db"
    n = 3 * 24 * 60  # three days: the range is read as two halves
    rows = candles(n)
    for i in range(n):
        vals = [AWKWARD[(i + j) % len(AWKWARD)] for j in range(5)]
        rows[i] = replace(rows[i], **dict(zip(FLOATS, vals, strict=True)))
    write(path, rows)
    end = T0 + n * M
    assert fast_columns(path, "NQ", T0, end)[1] is None
    assert_bit_exact(read(path, "NQ", T0, end), oracle(path, "NQ", T0, end), "NQ")


def test_cent_prices_and_random_doubles_read_back_bit_for_bit(tmp_path: Path):
    rng = random.Random(7)
    path = tmp_path / "c.db"
    n = 4 * 24 * 60
    rows = []
    for c in candles(n):
        cents = [round(rng.uniform(20, 400), 2) for _ in range(4)]  # not multiples of 2**-k
        rows.append(replace(c, open=cents[0], high=cents[1], low=cents[2], close=cents[3],
                            volume=float(rng.randrange(0, 10**7))))  # fmt: skip
    write(path, rows)
    end = T0 + n * M
    assert fast_columns(path, "NQ", T0, end)[1] is not None  # 40+ fraction bits, still exact
    assert_bit_exact(read(path, "NQ", T0, end), oracle(path, "NQ", T0, end), "NQ")

    for i in range(n):  # now any finite double in the volume column
        bits = rng.getrandbits(64)
        x = np.array([bits], dtype=np.uint64).view(np.float64)[0]
        rows[i] = replace(rows[i], volume=float(x) if math.isfinite(x) else 1.5)
    write(path, rows)
    assert_bit_exact(read(path, "NQ", T0, end), oracle(path, "NQ", T0, end), "NQ")


@pytest.mark.parametrize("ticks", [[0, 1, 2**40, -3, 255, 2**61 - 1], [5, 2**62, 7], [-(2**62), 1]])
def test_tick_counts_and_flags_read_back_exactly(tmp_path: Path, ticks: list[int]):
    """tick_count and both flags travel packed in one integer; one that cannot pack (overflow)
    sends the part to the row path."""
    path = tmp_path / "c.db"
    rows = []
    for i, c in enumerate(candles(64)):
        rows.append(replace(c, tick_count=ticks[i % len(ticks)], gap_filled=bool(i & 1),
                            backfilled=bool(i & 2)))  # fmt: skip
    write(path, rows)
    end = T0 + 64 * M
    want = oracle(path, "NQ", T0, end)
    assert want["gap_filled"].any() and want["backfilled"].any()
    fits = all(-(2**61) <= t < 2**61 for t in ticks)
    assert (fast_columns(path, "NQ", T0, end)[1] is not None) == fits
    assert_bit_exact(read(path, "NQ", T0, end), want, "NQ")


def test_halves_meet_without_a_gap_or_a_repeat(tmp_path: Path):
    """Around the split point: candles a nanosecond apart in time order, odd steps, a hole."""
    path = tmp_path / "c.db"
    first, last = T0, T0 + SPLIT_SPAN_NS + 2 * M
    mid = first + (last - first + 1) // 2
    starts = [first, mid - 2 * M, mid - M, mid - 1_000_000, mid, mid + 1_000_000, mid + M, last]
    rows = [replace(c, start=s) for c, s in zip(candles(len(starts)), starts, strict=True)]
    write(path, rows)
    for start, end in ((first, last + 1), (first - M, last + M), (first + 1, last)):
        got = read(path, "NQ", start, end)
        assert_bit_exact(got, oracle(path, "NQ", start, end), "NQ")
    assert len(read(path, "NQ", first, last + 1)) == len(starts)


def test_a_text_scale_or_infinity_in_the_sample_uses_the_row_path(tmp_path: Path):
    path = tmp_path / "c.db"
    rows = candles(40)
    rows[0] = replace(rows[0], high=math.inf)
    rows[-1] = replace(rows[-1], low=-math.inf)
    write(path, rows)
    end = T0 + 40 * M
    assert fast_columns(path, "NQ", T0, end)[1] is None
    assert_bit_exact(read(path, "NQ", T0, end), oracle(path, "NQ", T0, end), "NQ")


@pytest.mark.parametrize(
    ("column", "value"),
    [("close", "'abc'"), ("volume", "x'00'"), ("tick_count", "'many'"), ("backfilled", "2.5")],
)
def test_a_value_of_another_type_mid_range_is_never_read_as_a_number(tmp_path, column, value):
    """Arithmetic in SQLite turns text into 0; the aggregate must refuse, and the row path
    then reads what is really there (text in a number column is a corrupt file: it raises)."""
    path = tmp_path / "c.db"
    write(path, candles(200))
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(f"UPDATE candles SET {column} = {value} WHERE ts_ns = ?", [T0 + 100 * M])
    end = T0 + 200 * M
    if column == "backfilled":  # a real there is still a number: read as the row path does
        assert_bit_exact(read(path, "NQ", T0, end), oracle(path, "NQ", T0, end), "NQ")
        return
    assert fast_columns(path, "NQ", T0, end)[1] is None
    with pytest.raises(ValueError):
        read(path, "NQ", T0, end)


def test_fraction_bits():
    f = candle_frames._fraction_bits
    assert [f(x) for x in (0.0, 1.0, 3.0, 0.25, -0.75, 2.0**60, 2.0**-1074)] == [
        0, 0, 0, 2, 2, 0, 1074]  # fmt: skip
    for x in [*AWKWARD, 0.1, 100.01, 15873.25]:
        if math.isfinite(x):
            assert f(x) == x.as_integer_ratio()[1].bit_length() - 1, x


def test_a_commit_between_the_halves_snapshots_is_never_mixed_in(tmp_path, monkeypatch):
    """A writer commits after the first half's read transaction began and before the second's:
    the halves must not read two states of the file (the read retries on one snapshot)."""
    path = tmp_path / "c.db"
    n = 3 * 24 * 60
    write(path, candles(n))
    begins: list[int] = []

    class Hooked(sqlite3.Connection):
        def execute(self, sql: str, *args):  # type: ignore[override]
            if sql == "BEGIN":
                begins.append(id(self))
                if len(begins) == 2:  # the second half's BEGIN, first try: commit before it
                    with contextlib.closing(sqlite3.connect(path)) as writer, writer:
                        writer.execute("UPDATE candles SET open = open + 1000000")
            return super().execute(sql, *args)

    def connect(p: Path) -> sqlite3.Connection:  # as candle_frames._connect, with the hook
        return sqlite3.connect(p, isolation_level=None, check_same_thread=False, factory=Hooked)

    monkeypatch.setattr(candle_frames, "_connect", connect)
    got = read(path, "NQ", T0, T0 + n * M)
    assert len(begins) == 4  # both halves began again after the commit
    assert len(got) == n
    assert (got["open"].to_numpy() == 1_015_000 + np.arange(n) * 0.25).all()
