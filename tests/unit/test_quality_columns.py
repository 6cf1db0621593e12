"""The validator's columnar entry gives exactly what the per-tick path gives on the same rows."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slob_tui.core.clock import ManualClock
from slob_tui.core.tick_chunk import TickChunk
from slob_tui.engine.quality import DataQualityValidator, QualityPolicy
from tests.unit.test_quality import CLOCK_NOW, SMALL, T0, tick_streams

CONDITIONS = (None, "I", ("F", "T"))
EXCHANGES = ("", "Q", "P")


def chunk_of(rows: list[tuple], int_sizes: bool) -> TickChunk:
    """One symbol's rows (no ids) as a chunk; sizes all ints or all floats, as a file has."""
    size = [(int(r[3]) if math.isfinite(r[3]) else 0) if int_sizes else float(r[3]) for r in rows]
    return TickChunk(
        "A",
        np.array([r[1] for r in rows], dtype=np.int64),
        np.array([r[2] for r in rows], dtype=np.float64),
        np.array(size, dtype=np.int64 if int_sizes else np.float64),
        np.array([EXCHANGES.index(r[4]) for r in rows], dtype=np.int32),
        EXCHANGES,
        np.array([k % len(CONDITIONS) for k in range(len(rows))], dtype=np.int32),
        CONDITIONS,
    )


def columnar_rows(ticks: list) -> list[tuple]:
    """The stream's well-formed ticks of symbol A, without ids (what a chunk can hold)."""
    return [(*t[:6], None) for t in ticks if t[0] == "A" and type(t[1]) is int]


def state_of(v: DataQualityValidator) -> dict[str, tuple]:
    """What the next tick is judged against; the journal as the prices its samples take."""
    return {
        sym: ([u if type(u) is float else u[2] for u in s.journal], s.sampled, list(s.window),
              s.lo, s.hi, s.rlo, s.rhi, s.median, s.scale, s.last, s.start, s.end, s.sizes,
              s.shift_side, s.shift_prices, s.refreshes)
        for sym, s in v._syms.items()
    }  # fmt: skip


def run(chunks: list[TickChunk], policy: QualityPolicy, columnar: bool) -> tuple:
    v = DataQualityValidator(policy, clock=ManualClock(CLOCK_NOW))
    out: list[tuple] = []
    for chunk in chunks:
        if columnar:
            out += v.filter_columns(chunk).tuples()
        else:
            out += v.filter_ticks(chunk.tuples())
    s = v.stats()
    return out, s, v.examples(), state_of(v), v._newest


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tick_streams(), st.lists(st.integers(1, 90), min_size=1, max_size=8), st.booleans(),
       st.sampled_from([SMALL, QualityPolicy()]))  # fmt: skip
def test_the_columnar_entry_gives_the_per_tick_verdicts_counts_findings_and_state(
    ticks: list, sizes: list[int], int_sizes: bool, policy: QualityPolicy
):
    rows = columnar_rows(ticks)
    whole = chunk_of(rows, int_sizes) if rows else None
    if whole is None:
        return
    chunks, i, k = [], 0, 0
    while i < len(rows):
        chunks.append(whole.slice(i, i + sizes[k % len(sizes)]))
        i, k = i + sizes[k % len(sizes)], k + 1
    per_tick = run(chunks, policy, columnar=False)
    assert run(chunks, policy, columnar=True) == per_tick
    assert run([whole], policy, columnar=True) == per_tick


@pytest.mark.parametrize("back", [False, True])
def test_a_long_clean_run_crosses_minutes_and_windows_with_its_outliers_found(back: bool):
    """Thousands of rows across minutes, two of them exactly on a minute's start, a fat
    finger and an outlier inside, in time order or with one tick a little out of it (the
    window then doubles past its first size): the same drops and flags as per tick."""
    n = 30_000
    ts = T0 + np.arange(n, dtype=np.int64) * 5_000_000  # 5 ms apart: 150 s
    if back:
        ts[20_000] -= 7_000_000
    price = 100.0 + np.sin(np.arange(n) / 50.0) * 0.05
    price[9_000] = 180.0  # fat finger
    price[15_000] = 100.9  # outlier
    chunk = TickChunk("A", ts, price, np.full(n, 100, dtype=np.int64),
                      np.zeros(n, dtype=np.int32), ("",), np.zeros(n, dtype=np.int32),
                      (None,))  # fmt: skip
    got = run([chunk], QualityPolicy(), columnar=True)
    assert got == run([chunk], QualityPolicy(), columnar=False)
    kinds = {"fat_finger": 1, "price_outlier": 1}
    assert got[1]["by_kind"] == ({**kinds, "out_of_order": 1} if back else kinds)
    assert len(got[0]) == n - 1
