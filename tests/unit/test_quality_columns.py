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


def _edges(policy: QualityPolicy, price: float) -> tuple[float, float]:
    """The band around a symbol whose samples are all `price`, computed as the validator does
    (no spread: one deviation is the floor, `min_deviation_bps` of the median)."""
    scale = price * policy.min_deviation_bps * 1e-4
    s = policy.suspect_deviations * scale
    return max(price - s, 0.0), price + s


@st.composite
def minute_streams(draw) -> tuple[list[int], list[float], list[int]]:
    """Rows in time order, several a minute, at one price with rows exactly on the band's
    edges and just inside them, and sizes at the clean branch's bounds."""
    lo, hi = _edges(QualityPolicy(), 100.0)
    inside = (np.nextafter(lo, 200.0), np.nextafter(hi, 0.0))
    prices = st.sampled_from([100.0] * 12 + [lo, hi, *inside, 100.01, 99.99])
    n = draw(st.integers(200, 700))
    steps = draw(st.lists(st.sampled_from([0, 1, 250, 900, 4_000, 20_000, 61_000]),
                          min_size=n, max_size=n))  # fmt: skip
    ts, t = [], T0
    for step in steps:
        t += step * 1_000_000
        ts.append(t)
    price = [100.0] * 150 + draw(st.lists(prices, min_size=n - 150, max_size=n - 150))
    size = draw(st.lists(st.sampled_from([100] * 8 + [0, 1, (1 << 30) - 1, 1 << 30]),
                         min_size=n, max_size=n))  # fmt: skip
    return ts, price, size


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(minute_streams(), st.lists(st.integers(20, 400), min_size=1, max_size=5),
       st.lists(st.integers(0, 300), min_size=1, max_size=3))  # fmt: skip
def test_minutes_checked_whole_in_ordered_chunks_meet_the_per_tick_verdicts(
    stream: tuple, sizes: list[int], rewinds: list[int]
):
    """In a chunk in time order the rest of each minute is judged from its lowest and highest
    price and size at once (`_MinuteRuns`): rows exactly on the band's edges, sizes on their
    bounds, and chunks that start before the one before them ended (each chunk in order,
    the stream not) must get the verdicts, findings and state the per-tick path gives."""
    ts, price, size = stream
    n = len(ts)
    whole = TickChunk("A", np.array(ts, dtype=np.int64), np.array(price, dtype=np.float64),
                      np.array(size, dtype=np.int64), np.zeros(n, dtype=np.int32), ("",),
                      np.zeros(n, dtype=np.int32), (None,))  # fmt: skip
    chunks, i, k = [], 0, 0
    while i < n:
        j = min(n, i + sizes[k % len(sizes)])
        chunks.append(whole.slice(i, j))
        back = rewinds[k % len(rewinds)]
        i, k = (max(1, j - back) if back < j - i else j), k + 1  # a chunk may repeat rows
    policy = QualityPolicy()
    per_tick = run(chunks, policy, columnar=False)
    assert run(chunks, policy, columnar=True) == per_tick
