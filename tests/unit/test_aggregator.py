"""CandleAggregator and SaleConditionPolicy: boundaries, gaps, late ticks, clock, policy."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from slob_tui.core.event_payloads import CandleGap, CandleGapReport, LateTicks
from slob_tui.core.events import EventType
from slob_tui.core.models import NS_PER_MINUTE, NS_PER_SECOND, Candle
from slob_tui.engine.aggregator import (
    SUSPICIOUS,
    CandleAggregator,
    SaleConditionPolicy,
)

M = NS_PER_MINUTE
S = NS_PER_SECOND
T0 = 1_700_000_040 * S  # a whole minute


def tick(ts, price, size=1, cond=None, sym="AAA"):
    return (sym, ts, price, size, "", cond, None)


def ohlcv(c: Candle):
    return (c.start, c.open, c.high, c.low, c.close, c.volume, c.tick_count, c.gap_filled)


def test_ohlcv_of_one_minute_and_boundary_tick_belongs_to_the_later_candle():
    agg = CandleAggregator()
    out = agg.process([tick(T0, 10), tick(T0 + 20 * S, 12), tick(T0 + 40 * S, 9),
                       tick(T0 + M - 1, 11, 2)])  # fmt: skip
    assert out == []
    out = agg.process([tick(T0 + M, 50)])  # exactly on the boundary
    assert [ohlcv(c) for c in out] == [(T0, 10, 12, 9, 11, 5, 4, False)]
    forming = agg.forming("AAA")
    assert forming is not None and forming.start == T0 + M and forming.open == 50


def test_gaps_of_one_and_two_minutes_are_filled_three_reported():
    agg = CandleAggregator()
    out = agg.process([tick(T0, 10), tick(T0 + 2 * M, 11)])  # one minute missing
    out += agg.process([tick(T0 + 5 * M, 12)])  # two missing
    out += agg.process([tick(T0 + 9 * M, 13)])  # three missing
    out += agg.flush()
    starts = [(c.start - T0) // M for c in out]
    assert starts == [0, 1, 2, 3, 4, 5, 9]
    filled = [c for c in out if c.gap_filled]
    assert [(c.start - T0) // M for c in filled] == [1, 3, 4]
    assert all(c.open == c.high == c.low == c.close for c in filled)
    assert [c.close for c in filled] == [10, 11, 11] and all(c.volume == 0 for c in filled)
    notices = agg.drain_notices()
    assert notices == [
        (EventType.CANDLE_GAP,
         CandleGapReport("AAA", T0 + 6 * M, T0 + 9 * M, 3, 1,
                         (CandleGap("AAA", T0 + 6 * M, T0 + 9 * M, 3),)))
    ]  # fmt: skip
    assert agg.drain_notices() == []
    s = agg.stats()
    assert (s["gap_filled"], s["gaps_reported"], s["candles"]) == (3, 1, 7)


def test_max_fill_minutes_is_configurable():
    agg = CandleAggregator(max_fill_minutes=0)
    out = agg.process([tick(T0, 10), tick(T0 + 2 * M, 11)])
    assert [c.gap_filled for c in out] == [False]
    assert agg.drain_notices()[0][1].minutes == 1


def test_late_ticks_are_counted_per_symbol_never_merged():
    agg = CandleAggregator()
    out = agg.process([tick(T0, 10), tick(T0 + M, 11), tick(T0 + 30 * S, 99),
                       tick(T0 + 5 * S, 98, sym="BBB"), tick(T0 - M, 97)])  # fmt: skip
    assert [ohlcv(c) for c in out] == [(T0, 10, 10, 10, 10, 1, 1, False)]
    out += agg.flush()
    assert 99 not in [c.high for c in out] and 97 not in [c.low for c in out]
    notices = dict(agg.drain_notices())
    assert notices[EventType.LATE_TICK] == LateTicks(2, {"AAA": 2})
    stats = agg.stats()
    assert stats["late_ticks"] == 2 and stats["symbols"]["AAA"]["late_ticks"] == 2
    assert stats["symbols"]["BBB"]["late_ticks"] == 0
    assert stats["ticks"] == 5


def test_tick_for_a_minute_closed_by_the_clock_is_late():
    agg = CandleAggregator(grace_ns=2 * S)
    agg.process([tick(T0 + 10 * S, 10)])
    assert agg.on_clock(T0 + M + 2 * S - 1) == []  # grace not yet over
    out = agg.on_clock(T0 + M + 2 * S)
    assert [c.start for c in out] == [T0] and agg.forming("AAA") is None
    assert agg.last_closed_start("AAA") == T0
    assert agg.process([tick(T0 + 59 * S, 55)]) == []
    assert dict(agg.drain_notices())[EventType.LATE_TICK] == LateTicks(1, {"AAA": 1})
    out = agg.process([tick(T0 + 2 * M, 12)])  # the quiet minute in between is filled
    assert [(c.start, c.gap_filled, c.close) for c in out] == [(T0 + M, True, 10)]


def test_policy_excluded_trades_count_volume_only_and_open_is_first_eligible():
    policy = SaleConditionPolicy(["X"])
    agg = CandleAggregator(policy)
    agg.process([tick(T0, 50, 5, "X"), tick(T0 + S, 10, 1, "@"), tick(T0 + 2 * S, 99, 1, "X"),
                 tick(T0 + 3 * S, 8, 1, ("@", "X")), tick(T0 + 4 * S, 9, 1, ("@", "F")),
                 tick(T0 + 5 * S, 1, 1, ("@", SUSPICIOUS))])  # fmt: skip
    (c,) = agg.flush()
    assert (c.open, c.high, c.low, c.close, c.volume, c.tick_count) == (10, 10, 9, 9, 10, 6)
    assert agg.stats()["excluded_from_ohlc"] == 4


def test_policy_matches_whole_codes_and_presets():
    p = SaleConditionPolicy.spy_algoseek()
    assert not p.decide("20") and p.decide("20002000") and p.decide("2") and p.decide(None)
    assert not p.decide("20100200") and not p.decide(("20002000", SUSPICIOUS))
    assert SaleConditionPolicy(["20"], exclude_suspicious=False).decide((SUSPICIOUS,))
    assert SaleConditionPolicy.none().decide(("I", "Z", SUSPICIOUS))
    sip = SaleConditionPolicy.alpaca_sip()
    assert not sip.decide(("@", "I")) and not sip.decide(("Z",)) and not sip.decide(("U", "T"))
    assert sip.decide(("@",)) and sip.decide(("@", "F", "T"))
    assert p.cache["20"] is False  # decided once, then a dict lookup


def test_minute_of_only_excluded_trades_is_flat_at_previous_close_with_volume():
    agg = CandleAggregator(SaleConditionPolicy(["X"]))
    out = agg.process([tick(T0, 10), tick(T0 + M, 30, 7, "X"), tick(T0 + M + S, 31, 1, "X")])
    out += agg.flush()
    assert [ohlcv(c) for c in out][1] == (T0 + M, 10, 10, 10, 10, 8, 2, False)
    agg2 = CandleAggregator(SaleConditionPolicy(["X"]))
    agg2.process([tick(T0, 30, 7, "X"), tick(T0 + 1, 31, 1, "X")])
    (c,) = agg2.flush()
    assert (c.open, c.close, c.volume) == (31, 31, 8)  # no history: last excluded price


def test_symbols_interleaved_equal_each_symbol_alone():
    a = [tick(T0 + k * 7 * S, 100 + k % 5, 1, None, "AAA") for k in range(40)]
    b = [tick(T0 + k * 11 * S + 3, 200 - k % 7, 2, None, "BBB") for k in range(40)]
    mixed = sorted(a + b, key=lambda t: t[1])
    agg = CandleAggregator()
    together = agg.process(mixed) + agg.flush()
    alone = []
    for part in (a, b):
        one = CandleAggregator()
        alone += one.process(part) + one.flush()
    key = lambda c: (c.symbol, c.start)  # noqa: E731
    assert sorted(together, key=key) == sorted(alone, key=key)
    assert {c.symbol for c in together} == {"AAA", "BBB"}
    assert agg.stats()["symbols"]["BBB"]["ticks"] == 40


def test_ingest_candle_closes_replaces_fills_and_drops_duplicates():
    agg = CandleAggregator()
    agg.process([tick(T0, 10), tick(T0 + S, 11)])
    ext = Candle("AAA", T0 + 3 * M, 20, 21, 19, 20.5, 100)
    out = agg.ingest_candle(ext)  # closes T0, fills +1 +2 at 11, then the candle itself
    assert [(c.start - T0) // M for c in out] == [0, 1, 2, 3]
    assert [c.gap_filled for c in out] == [False, True, True, False] and out[-1] is ext
    assert out[1].close == 11
    assert agg.ingest_candle(Candle("AAA", T0 + 2 * M, 1, 1, 1, 1, 1)) == []  # duplicate
    agg.process([tick(T0 + 4 * M, 30)])
    same = Candle("AAA", T0 + 4 * M, 31, 32, 30, 31, 9)
    assert agg.ingest_candle(same) == [same]  # replaces the forming candle of its minute
    assert agg.forming("AAA") is None
    assert agg.process([tick(T0 + 4 * M + 5 * S, 33)]) == []  # that minute is closed now
    stats = agg.stats()
    assert stats["duplicates"] == 1 and stats["late_ticks"] == 1 and stats["ingested"] == 2


def test_ingest_before_first_forming_candle_keeps_it():
    agg = CandleAggregator()
    agg.process([tick(T0 + 2 * M, 10)])
    early = Candle("AAA", T0 + M, 5, 6, 4, 5, 1)
    assert agg.ingest_candle(early) == [early]
    assert agg.forming("AAA").start == T0 + 2 * M
    (c,) = agg.flush()
    assert c.start == T0 + 2 * M


def test_seed_continues_after_stored_history():
    agg = CandleAggregator()
    agg.seed("AAA", T0, last_close=7.5)
    assert agg.process([tick(T0 + 30 * S, 1)]) == []  # already stored: late
    out = agg.process([tick(T0 + 2 * M, 9)])
    assert [(c.start, c.gap_filled, c.close) for c in out] == [(T0 + M, True, 7.5)]
    agg2 = CandleAggregator()
    agg2.seed("AAA", T0)  # no price: fill at the next candle's open
    out = agg2.process([tick(T0 + 2 * M, 9)])
    assert [(c.start, c.close) for c in out] == [(T0 + M, 9)]


def test_on_clock_closes_quiet_symbols_only():
    agg = CandleAggregator(grace_ns=0)
    agg.process([tick(T0, 1, sym="AAA"), tick(T0 + 2 * M, 2, sym="BBB")])
    out = agg.on_clock(T0 + M)
    assert [c.symbol for c in out] == ["AAA"] and agg.forming("BBB") is not None


def _aggregate(ticks, cuts):
    agg = CandleAggregator(SaleConditionPolicy(["X"]))
    out = []
    prev = 0
    for cut in sorted(set(cuts)) + [len(ticks)]:
        out += agg.process(ticks[prev:cut])
        prev = cut
    out += agg.flush()
    stats = agg.stats()
    return [ohlcv(c) + (c.symbol,) for c in out], stats


tick_lists = st.lists(
    st.tuples(
        st.sampled_from(["AAA", "BBB"]),
        st.integers(0, 8 * 60),  # seconds after T0, out of order allowed: late ticks
        st.integers(1, 50),
        st.integers(1, 5),
        st.sampled_from([None, "X", "Y", ("Y", "X")]),
    ),
    max_size=60,
)


@settings(max_examples=120, deadline=None)
@given(tick_lists, st.lists(st.integers(0, 60), max_size=6))
def test_any_batch_split_gives_the_same_candles(raw, cuts):
    ticks = [(s, T0 + sec * S, float(p), q, "", c, None) for s, sec, p, q, c in raw]
    cuts = [c for c in cuts if c <= len(ticks)]
    one, stats_one = _aggregate(ticks, [])
    split, stats_split = _aggregate(ticks, cuts)
    assert split == one
    assert stats_split == stats_one
    assert sum(c[6] for c in one) + stats_one["late_ticks"] == len(ticks)
