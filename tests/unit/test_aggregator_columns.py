"""The aggregator's columnar entry builds exactly the candles the per-tick path builds."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slob_tui.core.models import NS_PER_MINUTE
from slob_tui.core.tick_chunk import TickChunk
from slob_tui.engine.aggregator import SUSPICIOUS, CandleAggregator, SaleConditionPolicy

T0 = 1_700_000_000 * 10**9 - (1_700_000_000 * 10**9) % NS_PER_MINUTE
CONDITIONS = (None, "I", ("F", "T"), "@", (SUSPICIOUS,), ("@", "Z"))
POLICY_CODES = ("I", "Z")


@st.composite
def streams(draw: Any) -> tuple[list[int], list[float], list[Any], list[int]]:
    """Times that mostly rise, with jumps of minutes (gaps) and steps back (late ticks)."""
    n = draw(st.integers(1, 300))
    steps = draw(
        st.lists(
            st.sampled_from([0, 0, 1, 7, 900, 4_000, 25_000, 61_000, 190_000, -3_000, -70_000]),
            min_size=n,
            max_size=n,
        )
    )
    prices = draw(st.lists(st.floats(0.5, 2.0, allow_nan=False), min_size=n, max_size=n))
    sizes = draw(st.lists(st.one_of(st.integers(1, 5_000), st.floats(1e-6, 1e3)),
                          min_size=n, max_size=n))  # fmt: skip
    conds = draw(st.lists(st.integers(0, len(CONDITIONS) - 1), min_size=n, max_size=n))
    ts, t = [], T0
    for step in steps:
        t += step * 1_000_000
        ts.append(t)
    return ts, prices, sizes, conds


def chunk_of(ts: list[int], prices: list[float], sizes: list[Any], conds: list[int],
             int_sizes: bool) -> TickChunk:  # fmt: skip
    size = (np.array([max(1, int(z)) for z in sizes], dtype=np.int64) if int_sizes
            else np.array(sizes, dtype=np.float64))  # fmt: skip
    n = len(ts)
    return TickChunk("A", np.array(ts, dtype=np.int64), np.array(prices, dtype=np.float64),
                     size, np.zeros(n, dtype=np.int32), ("",), np.array(conds, dtype=np.int32),
                     CONDITIONS)  # fmt: skip


def state_of(agg: CandleAggregator) -> dict[str, tuple]:
    return {
        sym: (s.start, s.end, s.o, s.h, s.l, s.c, s.v, type(s.v), s.n, s.has, s.xp,
              s.last_closed, s.last_close)
        for sym, s in agg._states.items()
    }  # fmt: skip


def run(chunks: list[TickChunk], columnar: bool, seed: int | None) -> tuple:
    agg = CandleAggregator(SaleConditionPolicy(POLICY_CODES))
    if seed is not None:
        agg.seed("A", seed)
    candles: list = []
    for chunk in chunks:
        candles += agg.process_columns(chunk) if columnar else agg.process(chunk.tuples())
    notices = agg.drain_notices()
    forming = state_of(agg)  # before the flush closes the forming candle
    candles += agg.flush()
    return [(c, type(c.volume)) for c in candles], notices, agg.stats(), forming


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams(), st.lists(st.integers(1, 80), min_size=1, max_size=6), st.booleans(),
       st.sampled_from([None, T0, T0 + 3 * NS_PER_MINUTE]))  # fmt: skip
def test_the_columnar_entry_builds_the_per_tick_candles_for_any_chunk_boundaries(
    stream: tuple, sizes: list[int], int_sizes: bool, seed: int | None
):
    whole = chunk_of(*stream, int_sizes=int_sizes)
    chunks, i, k = [], 0, 0
    while i < len(whole):
        chunks.append(whole.slice(i, i + sizes[k % len(sizes)]))
        i, k = i + sizes[k % len(sizes)], k + 1
    per_tick = run(chunks, columnar=False, seed=seed)
    assert run(chunks, columnar=True, seed=seed) == per_tick
    assert run([whole], columnar=True, seed=seed) == per_tick


def test_a_chunk_with_a_price_that_is_not_positive_gives_the_per_tick_candles():
    ts = [T0, T0 + 1, T0 + 2, T0 + NS_PER_MINUTE]
    chunk = chunk_of(ts, [1.0, float("nan"), 3.0, 2.0], [1, 1, 1, 1], [0, 0, 0, 0], True)
    assert run([chunk], columnar=True, seed=None) == run([chunk], columnar=False, seed=None)
