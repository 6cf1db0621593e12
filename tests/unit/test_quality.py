"""The data-quality validator: each rule at its boundary, events, stats, settings, properties."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slob_tui.config import ConfigError, load_settings
from slob_tui.core.clock import ManualClock
from slob_tui.core.events import EventType
from slob_tui.core.models import NS_PER_MINUTE, Candle
from slob_tui.engine.aggregator import CandleAggregator, SaleConditionPolicy
from slob_tui.engine.quality import DataQualityValidator, QualityPolicy, QualitySettingsError
from slob_tui.feeds.batches import BatchFeed

T0 = 1_700_000_000 * 10**9 - (1_700_000_000 * 10**9) % NS_PER_MINUTE  # a minute start
MS = 1_000_000


def clean(n: int, price: float = 100.0, start: int = T0, step: int = 100 * MS,
          sym: str = "SPY") -> list[tuple]:  # fmt: skip
    """n clean ticks wiggling one cent around `price`."""
    return [(sym, start + i * step, price + 0.01 * (i % 3), 100.0, "", None, None)
            for i in range(n)]  # fmt: skip


def warmed(policy: QualityPolicy | None = None, **kw: Any) -> tuple[DataQualityValidator, int]:
    """A validator that has seen 400 clean ticks (its median band is set); next free ts."""
    v = DataQualityValidator(policy or QualityPolicy(), **kw)
    batch = clean(400)
    assert v.filter_ticks(batch) is batch
    v.drain_events()
    return v, batch[-1][1] + MS


def one(v: DataQualityValidator, tick: tuple) -> list[tuple]:
    return v.filter_ticks([tick])


# ---- tick rules -------------------------------------------------------------------------
@pytest.mark.parametrize("price", [0.0, -1.0, math.nan, math.inf, "100", None])
def test_non_positive_or_non_finite_price_is_rejected(price: Any):
    v, ts = warmed()
    assert one(v, ("SPY", ts, price, 100.0, "", None, None)) == []
    kind = "bad_price" if isinstance(price, float) else "malformed"  # not a number at all
    assert v.stats()["by_kind"] == {kind: 1}


@pytest.mark.parametrize("size", [0.0, -5.0, math.nan, math.inf])
def test_non_positive_or_non_finite_size_is_rejected(size: float):
    v, ts = warmed()
    assert one(v, ("SPY", ts, 100.0, size, "", None, None)) == []
    assert v.stats()["by_kind"] == {"bad_size": 1}
    tick = ("SPY", ts + 1, 100.0, 1e-9, "", None, None)  # the smallest positive size passes
    assert one(v, tick) == [tick]


def test_integer_sizes_of_any_magnitude_pass_and_zero_does_not():
    v = DataQualityValidator()
    ticks = [("SPY", T0 + i, 100.0, size, "", None, None)
             for i, size in enumerate([100, 2**40, 1, 10**30, 0, 7.5, -3])]  # fmt: skip
    assert v.filter_ticks(ticks) == ticks[:4] + ticks[5:6]
    assert v.stats()["by_kind"] == {"bad_size": 2}


def test_fat_finger_beyond_the_reject_band_is_dropped_and_inside_it_flagged():
    # band unit here is the floor: 5 bps of 100.01 = 0.050005; reject at 75 units = 3.750375
    v, ts = warmed()
    far = ("SPY", ts, 103.77, 100.0, "", None, None)
    assert one(v, far) == []
    near = ("SPY", ts + 1, 103.75, 100.0, "", "@", None)
    out = one(v, near)
    assert out == [near] and out[0] is near  # flagged, passed unchanged
    assert v.stats()["by_kind"] == {"fat_finger": 1, "price_outlier": 1}
    worst = v.examples()["fat_finger"][0]
    assert worst["price"] == 103.77 and worst["median"] == pytest.approx(100.01)


def test_suspect_band_boundary():
    # suspect band: 8 units of 0.050005 around 100.01 -> (99.60996, 100.41004)
    v, ts = warmed()
    inside = ("SPY", ts, 100.41, 100.0, "", None, None)
    assert one(v, inside) == [inside]
    assert v.stats()["flagged"] == 0
    below = ("SPY", ts + 1, 99.61, 100.0, "", None, None)
    assert one(v, below) == [below] and v.stats()["flagged"] == 0
    outside = ("SPY", ts + 2, 100.42, 100.0, "", None, None)
    assert one(v, outside) == [outside]
    assert v.stats()["by_kind"] == {"price_outlier": 1}


def test_a_flagged_outlier_stays_in_the_candle_and_is_reported():
    """A one-tick spike beyond the recent range is the sweep the strategy trades: it must set
    the candle's high (and low, close) while being counted and reported."""
    v, ts = warmed()
    agg = CandleAggregator(SaleConditionPolicy())
    agg.process(clean(400))
    spike = [("SPY", ts, 100.9, 700.0, "", None, None), ("SPY", ts + 1, 100.0, 1.0, "", None,
             None), ("SPY", ts + 2, 99.1, 5.0, "", None, None)]  # fmt: skip
    agg.process(v.filter_ticks(spike))
    forming = agg.forming("SPY")
    assert forming is not None and (forming.high, forming.low, forming.close) == (100.9, 99.1, 99.1)
    assert v.stats()["by_kind"] == {"price_outlier": 2} and v.stats()["passed"] == 403
    events = v.drain_events()
    assert [(e.data.kind, e.data.details["count"], e.data.details["action"]) for e in events] == [
        ("price_outlier", 2, "flagged")
    ]
    assert events[0].data.details["price"] == 100.9


def test_a_run_of_same_side_outliers_is_a_level_shift_not_bad_prints():
    v, ts = warmed()
    moved = [("SPY", ts + i, 100.5 + 0.01 * i, 100.0, "", None, None) for i in range(6)]
    out = v.filter_ticks(moved)
    assert out == moved  # every one reaches the candle unchanged
    # two flagged before the shift is confirmed; from the third on it is the new level
    assert v.stats()["by_kind"] == {"price_outlier": 2, "level_shift": 1}
    # the window restarts from the run: no band until it has min_samples prices again
    assert list(v._syms["SPY"].window) == [100.5, 100.51, 100.52]
    assert (v._syms["SPY"].lo, v._syms["SPY"].hi) == (0.0, math.inf)


def test_alternating_outliers_never_shift_the_level():
    v, ts = warmed()
    ticks = [("SPY", ts + i, 101.0 if i % 2 else 99.0, 100.0, "", None, None) for i in range(6)]
    assert len(v.filter_ticks(ticks)) == 6
    assert v.stats()["by_kind"] == {"price_outlier": 6}


def test_timestamp_behind_the_current_candle_is_rejected_within_it_flagged():
    v, ts = warmed()
    minute = ts - ts % NS_PER_MINUTE
    assert one(v, ("SPY", minute - 1, 100.0, 1.0, "", None, None)) == []
    inside = ("SPY", minute, 100.0, 1.0, "", None, None)  # earlier than the last, same minute
    assert one(v, inside) == [inside]
    assert v.stats()["by_kind"] == {"stale_ts": 1, "out_of_order": 1}
    assert v.stats()["rejected"] == 1 and v.stats()["flagged"] == 1


def test_future_timestamp_against_the_clock_boundary():
    clock = ManualClock(T0 + 400 * 100 * MS)
    v, ts = warmed(QualityPolicy(max_future_s=30.0), clock=clock)
    limit = clock.now_ns() + 30 * 10**9
    ok = ("SPY", limit, 100.0, 1.0, "", None, None)
    assert one(v, ok) == [ok]
    assert one(v, ("SPY", limit + 1, 100.0, 1.0, "", None, None)) == []
    assert v.stats()["by_kind"] == {"future_ts": 1}


def test_no_clock_means_no_future_judgement():
    v, ts = warmed()
    later = ("SPY", ts + 86_400 * 10**9, 100.0, 1.0, "", None, None)
    assert one(v, later) == [later]


def test_a_redelivered_trade_is_dropped_per_exchange_and_time():
    """A redelivery is the same trade again: same time, exchange and id. The same id at
    another venue, or at a later time (ids are not unique across days), is a real trade."""
    v = DataQualityValidator()
    first = [("BTC", T0 + i * MS, 100.0, 1.0, "V", None, i) for i in range(40)]
    assert v.filter_ticks(first) is first
    assert v.filter_ticks(list(first)) == []  # all of it again, behind the newest
    other_venue = [t[:4] + ("Q",) + t[5:] for t in first[:5]]
    later = [("BTC", T0 + (40 + i) * MS, 100.0, 1.0, "V", None, i) for i in range(5)]
    assert v.filter_ticks(other_venue + later) == other_venue + later
    assert v.stats()["by_kind"] == {"duplicate_id": 40, "out_of_order": 5}


def test_trades_at_one_time_are_told_apart_by_id_and_venue():
    """Several prints at one time (a sweep) are all kept; one of them again is dropped, in
    the same batch, the next batch, or one tick per batch."""
    burst = [("SPY", T0, 100.0, 1.0, x, None, i) for i in range(3) for x in ("P", "Q")]
    again = [burst[3], ("SPY", T0, 100.0, 1.0, "P", None, 3), burst[0]]
    ticks = burst + again + [("SPY", T0 + 1, 100.0, 1.0, "P", None, 0)]
    for size in (1, 2, len(ticks)):
        v = DataQualityValidator()
        out = [t for k in range(0, len(ticks), size) for t in v.filter_ticks(ticks[k : k + size])]
        assert out == burst + [again[1], ticks[-1]]
        assert v.stats()["by_kind"] == {"duplicate_id": 2}


@pytest.mark.parametrize("size", [1, 2, 3, 100])
def test_the_clean_branch_drops_a_trade_again_at_the_newest_time(size: int):
    """Once the band is set, ticks take the clean branch, which keeps the ids at the newest
    time (the first alone, then a list of the rest). A trade again as the second or a later
    print at that time, in the same batch or the next, goes to the full check and is dropped;
    the same id at another venue, or at a later time, is kept. Ids are compared by value."""
    v, ts = warmed()

    def tick(t: int, venue: str, trade_id: str) -> tuple:
        return ("SPY", t, 100.0, 1.0, venue, None, int(trade_id))  # a new int object each

    burst = [tick(ts, x, str(1000 + i)) for i in range(3) for x in ("P", "Q")]
    again = [tick(ts, "Q", "1002"), tick(ts, "P", "1000"), tick(ts, "Z", "1000"),
             tick(ts, "P", "1003")]  # fmt: skip
    later = [tick(ts + MS, "P", "1000"), tick(ts + MS, "P", "1000"), tick(ts + MS, "P", "7")]
    ticks = burst + again + later
    out = [t for k in range(0, len(ticks), size) for t in v.filter_ticks(ticks[k : k + size])]
    assert out == burst + again[2:] + [later[0], later[2]]
    assert v.stats()["by_kind"] == {"duplicate_id": 3}


def test_ids_are_remembered_for_the_current_minute_only():
    """An older trade is stale before it could be a duplicate: the memory is one minute's."""
    v = DataQualityValidator()
    minute = [("BTC", T0 + i * 100 * MS, 100.0, 1.0, "", None, i) for i in range(600)]
    assert v.filter_ticks(minute) is minute
    state = v._syms["BTC"]
    assert len(state.journal) == 600
    nxt = ("BTC", T0 + NS_PER_MINUTE, 100.0, 1.0, "", None, 600)
    assert one(v, nxt) == [nxt]
    assert state.journal == [nxt] and not state.index
    assert one(v, minute[5]) == []
    assert v.stats()["by_kind"] == {"stale_ts": 1}


def test_an_unhashable_id_is_compared_not_indexed():
    v = DataQualityValidator()
    a = ("BTC", T0 + MS, 100.0, 1.0, "", None, ["x"])
    b = ("BTC", T0 + 2 * MS, 100.0, 1.0, "", None, 7)
    assert v.filter_ticks([a, b, a, b]) == [a, b]
    assert v.stats()["by_kind"] == {"duplicate_id": 2}


def test_malformed_ticks_are_counted_and_dropped():
    v, ts = warmed()
    bad = [
        5,
        ("SPY",),
        ("SPY", "later", 100.0, 1.0, "", None, None),
        ("SPY", ts, 100.0, 1.0, "", None),
        (None, ts, 100.0, 1.0, "", None, None),
    ]
    good = ("SPY", ts + 1, 100.0, 1.0, "", None, None)
    assert v.filter_ticks([*bad, good]) == [good]
    assert v.stats()["by_kind"] == {"malformed": 5}


def test_a_malformed_tick_is_reported_under_its_own_symbol_whatever_the_batches():
    good = clean(3)
    bad = (None, good[-1][1] + 1, 100.0, 1.0, "", None, None)
    whole, split = DataQualityValidator(), DataQualityValidator()
    whole.filter_ticks([*good, bad])
    split.filter_ticks(good)
    split.filter_ticks([bad])
    assert whole.examples() == split.examples()
    assert whole.examples()["malformed"][0]["symbol"] == "?"


def test_mixed_symbols_keep_their_own_state():
    v = DataQualityValidator()
    a, b = clean(300, 100.0), clean(300, 5000.0, sym="NQ")
    mixed = [t for pair in zip(a, b, strict=True) for t in pair]
    assert v.filter_ticks(mixed) is mixed
    ts = mixed[-1][1] + 1
    assert one(v, ("NQ", ts, 100.0, 1.0, "", None, None)) == []  # SPY's price on NQ: fat finger
    assert v.stats()["by_kind"] == {"fat_finger": 1}


def test_large_batches_are_judged_in_blocks_and_returned_whole_when_clean():
    v = DataQualityValidator()
    batch = clean(5000)
    assert v.filter_ticks(batch) is batch
    bad = list(batch[-10:])
    batch2 = clean(3000, start=batch[-1][1] + 1)
    batch2[2500] = ("SPY", batch2[2500][1], -1.0, 1.0, "", None, None)
    out = v.filter_ticks(batch2)
    assert len(out) == 2999 and batch2[2500] not in out and bad


# ---- events, stats, settings ------------------------------------------------------------
def test_tick_findings_become_one_event_per_batch_kind_and_symbol():
    v, ts = warmed()
    v.filter_ticks([("SPY", ts + i, -1.0, 1.0, "", None, None) for i in range(10)])
    events = v.drain_events()
    assert len(events) == 1
    e = events[0]
    assert e.type is EventType.DATA_QUALITY and e.source == "validator"
    assert e.data.kind == "bad_price" and e.data.details["count"] == 10
    assert e.data.details["action"] == "rejected" and len(e.data.details["examples"]) == 3
    assert e.data.details["price"] == -1.0 and e.ts == ts
    assert v.drain_events() == []


def test_policy_from_settings_and_bad_values():
    env = {"SLOB_DQ_SUSPECT_DEVIATIONS": "6", "SLOB_DQ_MARKET_HOURS": "always",
           "SLOB_DQ_FROZEN_MINUTES": "10"}  # fmt: skip
    p = load_settings(env, dotenv=None).quality
    assert (p.suspect_deviations, p.market_hours, p.frozen_minutes) == (6.0, "always", 10)
    with pytest.raises(ConfigError, match="SLOB_DQ_VOLUME_WINDOW must be a whole number"):
        load_settings({"SLOB_DQ_VOLUME_WINDOW": "lots"}, dotenv=None)
    with pytest.raises(QualitySettingsError, match="SLOB_DQ_FROZEN_MINUTES"):
        load_settings({"SLOB_DQ_FROZEN_MINUTES": "1"}, dotenv=None)
    with pytest.raises(QualitySettingsError, match="SLOB_DQ_REJECT_DEVIATIONS"):
        QualityPolicy(reject_deviations=2.0)
    with pytest.raises(Exception, match="SLOB_DQ_MARKET_HOURS"):
        QualityPolicy(market_hours="9-5")


# ---- candle rules -----------------------------------------------------------------------
def candle(k: int, o: float = 100.0, h: float = 100.5, lo: float = 99.5, c: float = 100.2,
           v: float = 1000.0, start: int | None = None, sym: str = "SPY") -> Candle:  # fmt: skip
    # 2023-11-15 (a Wednesday) 10:00 New York = 15:00 UTC, plus k minutes
    base = 1_700_060_400 * 10**9 if start is None else start
    return Candle(sym, base + k * NS_PER_MINUTE, o, h, lo, c, v, 10)


def kinds(events: list) -> list[str]:
    return [e.data.kind for e in events]


@pytest.mark.parametrize(("o", "h", "lo", "c", "v", "bad"), [
    (100.0, 100.5, 99.5, 100.2, 10.0, False),
    (99.5, 99.5, 99.5, 99.5, 0.0, False),  # flat and empty: still sane
    (100.6, 100.5, 99.5, 100.2, 10.0, True),  # open above high
    (100.0, 100.5, 99.5, 99.4, 10.0, True),  # close below low
    (100.0, 100.5, 0.0, 100.2, 10.0, True),  # non-positive
    (100.0, math.nan, 99.5, 100.2, 10.0, True),
    (100.0, 100.5, 99.5, 100.2, -1.0, True),
])  # fmt: skip
def test_ohlc_sanity(o: float, h: float, lo: float, c: float, v: float, bad: bool):
    val = DataQualityValidator()
    found = kinds(val.check_candle(candle(0, o, h, lo, c, v)))
    assert ("ohlc_invalid" in found) is bad


def test_volume_spike_boundary():
    val = DataQualityValidator(QualityPolicy(volume_min_candles=20, volume_spike_factor=10))
    for k in range(20):
        assert val.check_candle(candle(k, v=100.0)) == []
    assert val.check_candle(candle(20, v=1000.0)) == []  # exactly 10x: not a spike
    events = val.check_candle(candle(21, v=1000.1))
    assert kinds(events) == ["volume_spike"] and events[0].data.details["median"] == 100.0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 50), min_size=1, max_size=150))
def test_volume_median_is_over_the_last_window_of_candles(volumes: list[int]):
    """The sorted copy kept beside the window is the window, sorted, after every candle."""
    val = DataQualityValidator(QualityPolicy(volume_window=7, volume_min_candles=3))
    for k, v in enumerate(volumes):
        val.check_candle(candle(k, v=float(v)))
        state = val.candles._state["SPY"]
        assert state.ordered == sorted(state.volumes) == sorted(volumes[max(0, k - 6) : k + 1])


def test_frozen_feed_while_open_only():
    val = DataQualityValidator(QualityPolicy(frozen_minutes=3))
    val.check_candle(candle(0, 100, 100.5, 99.5, 100))
    flat = [val.check_candle(candle(k, 100, 100, 100, 100)) for k in range(1, 5)]
    assert [kinds(e) for e in flat] == [[], [], ["frozen_feed"], []]  # once per streak
    night = 1_700_010_000 * 10**9  # 01:00 New York: closed
    val2 = DataQualityValidator(QualityPolicy(frozen_minutes=2))
    val2.check_candle(candle(0, 100, 100.5, 99.5, 100, start=night))
    assert all(val2.check_candle(candle(k, 100, 100, 100, 100, start=night)) == []
               for k in range(1, 5))  # fmt: skip


def test_missing_minutes_counted_in_market_hours():
    val = DataQualityValidator()
    val.check_candle(candle(0))
    events = val.check_candle(candle(4))
    assert kinds(events) == ["missing_minutes"] and events[0].data.details["minutes"] == 3
    # 15:58 -> next day 09:31 New York: only 15:59 and 09:30 are market minutes
    val2 = DataQualityValidator()
    close = 1_700_082_000 * 10**9  # 2023-11-15 16:00 New York
    val2.check_candle(candle(-2, start=close))
    nxt = val2.check_candle(candle(0, start=close + (17 * 60 + 31) * NS_PER_MINUTE))
    assert kinds(nxt) == ["missing_minutes"] and nxt[0].data.details["minutes"] == 2
    always = DataQualityValidator(QualityPolicy(market_hours="always"))
    always.check_candle(candle(0, start=close))
    assert always.check_candle(candle(61, start=close))[0].data.details["minutes"] == 60


# ---- corrections ------------------------------------------------------------------------
def test_cancel_and_correction_adjust_the_candle_they_belong_to():
    v = DataQualityValidator(sale_policy=SaleConditionPolicy())
    ticks = [("AAPL", T0 + i * MS, p, 10.0, "Q", None, i) for i, p in
             enumerate([100.0, 101.0, 99.0, 100.5])]  # fmt: skip
    ticks.append(("AAPL", T0 + NS_PER_MINUTE, 100.0, 10.0, "Q", None, 9))  # next minute
    v.filter_ticks(ticks)
    cancel = v.apply_correction("AAPL", T0 + MS, 1, "Q")
    assert (
        cancel is not None and cancel.data.kind == "trade_cancel" and cancel.data.details["found"]
    )
    assert cancel.data.details["before"] == (100.0, 101.0, 99.0, 100.5, 40.0)
    assert cancel.data.details["after"] == (100.0, 100.5, 99.0, 100.5, 30.0)
    fix = v.apply_correction("AAPL", T0 + 2 * MS, 2, "Q", (99.8, 5.0, None))
    assert fix is not None and fix.data.details["after"] == (100.0, 101.0, 99.8, 100.5, 35.0)
    missing = v.apply_correction("AAPL", T0, 77, "Q")
    assert missing is not None and missing.data.details["found"] is False
    assert v.stats()["by_kind"] == {"trade_cancel": 2, "trade_correction": 1}
    assert [c.high for c in v.candles.adjusted] == [100.5, 101.0]


def test_correction_of_the_forming_minute_waits_for_its_close():
    v = DataQualityValidator()
    v.filter_ticks([("AAPL", T0 + i, 100.0 + i, 1.0, "", None, i) for i in range(3)])
    assert v.apply_correction("AAPL", T0 + 2, 2, "") is None
    done = v.check_candle(Candle("AAPL", T0, 100.0, 102.0, 100.0, 102.0, 3.0, 3))
    assert [e.data.kind for e in done] == ["trade_cancel"]
    assert done[0].data.details["after"] == (100.0, 101.0, 100.0, 101.0, 2.0)
    assert v.candles.pending == []


def test_corrections_of_minutes_no_longer_kept_are_reported_not_applied():
    """`recent_minutes` bounds what is kept; a minute that may have lost ticks is never
    recomputed from the rest (that would replace a good candle with a wrong one)."""
    v = DataQualityValidator(QualityPolicy(recent_minutes=1), sale_policy=SaleConditionPolicy())
    for m in range(5):
        v.filter_ticks([("AAPL", T0 + m * NS_PER_MINUTE + i * MS, 100.0 + i, 1.0, "Q", None,
                         10 * m + i) for i in range(3)])  # fmt: skip
    assert len(v._recent) == 2  # the current minute and one before it
    old = v.apply_correction("AAPL", T0 + 2 * NS_PER_MINUTE + MS, 21, "Q")
    assert old is not None and (old.data.details["kept"], old.data.details["found"]) == (
        False,
        False,
    )
    kept = v.apply_correction("AAPL", T0 + 3 * NS_PER_MINUTE + MS, 31, "Q")
    assert kept is not None and (kept.data.details["kept"], kept.data.details["found"]) == (
        True,
        True,
    )
    assert kept.data.details["after"] == (100.0, 102.0, 100.0, 102.0, 2.0)
    assert [c.start for c in v.candles.adjusted] == [T0 + 3 * NS_PER_MINUTE]
    off = DataQualityValidator(QualityPolicy(recent_minutes=0))
    off.filter_ticks([("AAPL", T0 + i * MS, 100.0, 1.0, "Q", None, i) for i in range(3)])
    off.filter_ticks([("AAPL", T0 + NS_PER_MINUTE, 100.0, 1.0, "Q", None, 3)])
    none = off.apply_correction("AAPL", T0 + MS, 1, "Q")
    assert none is not None and (none.data.details["kept"], none.data.details["found"]) == (
        False,
        False,
    )


# ---- properties -------------------------------------------------------------------------
anything = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=3),
                     st.tuples(st.text(max_size=2)))  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(anything, st.tuples(anything, anything, anything, anything, anything,
                                              anything, anything)), max_size=40))  # fmt: skip
def test_never_raises_on_arbitrary_input(batch: list):
    v = DataQualityValidator(clock=ManualClock(T0))
    out = v.filter_ticks(batch)
    assert all(t in batch for t in out)
    s = v.stats()
    assert s["ticks"] == len(batch) and s["passed"] == len(out)
    v.drain_events()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["A", "B"]), st.integers(0, 5_000_000),
                       st.floats(-0.003, 0.003), st.floats(0.001, 1e6), st.integers(0, 3)),
             min_size=1, max_size=300),
    st.sampled_from([1, 7, 64, 2000]),
)  # fmt: skip
def test_never_drops_a_clean_tick(rows: list, batch: int):
    """Clean: time never goes back, price within 0.3% of the symbol's level, size positive."""
    v = DataQualityValidator()
    ticks, ts = [], T0
    for sym, dt, rel, size, tid in rows:
        ts += dt
        level = 100.0 if sym == "A" else 2500.0
        trade_id = None if tid == 0 else len(ticks)  # some feeds send ids (unique), some not
        ticks.append((sym, ts, level * (1 + rel), size, "Q" if tid == 1 else "", None, trade_id))
    out = []
    for i in range(0, len(ticks), batch):
        out += v.filter_ticks(ticks[i : i + batch])
    assert out == ticks
    assert v.stats()["rejected"] == 0 and v.stats()["flagged"] == 0


# ---- the same verdicts for any split into batches -----------------------------------------
SMALL = QualityPolicy(
    price_window=6, sample_every=2, min_samples=4, level_shift_ticks=2
)  # every mechanism turns often
CLOCK_NOW = T0 + 3000 * 10**9
KINDS = ["clean"] * 40 + ["drift", "int_size", "outlier"] * 3 + [
    "far", "bad_price", "bad_size", "dup", "again", "again", "same_time", "same_time", "back",
    "stale", "future", "shift", "other_symbol",
    "malformed"]  # fmt: skip


@st.composite
def tick_streams(draw: Any) -> list:
    """Ticks of two symbols with every kind of finding mixed into a clean stream."""
    n = draw(st.integers(1, 400))
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=n, max_size=n))
    steps = draw(st.lists(st.integers(0, 12_000), min_size=n, max_size=n))  # ms
    noise = draw(st.lists(st.integers(-10, 10), min_size=n, max_size=n))
    ticks: list = []
    ts, level = T0, 100.0
    for i, (kind, step, e) in enumerate(zip(kinds, steps, noise, strict=True)):
        ts += step * MS
        sym, t, price, size, tid = "A", ts, level * (1 + e * 1e-4), 10.0, i
        if kind == "outlier":  # from inside the band to well outside it, both sides
            price = level * (1 + e * 1e-3)
        elif kind == "far":
            price = level * 3
        elif kind == "bad_price":
            price = -1.0 if e > 0 else math.nan
        elif kind == "bad_size":
            size = 0.0 if e > 0 else math.inf
        elif kind == "int_size":  # shares: the clean branch compares them against int bounds
            size = 2**40 if e > 7 else abs(e) + 1
        elif kind == "again" and ticks:  # a redelivery: an earlier tick exactly
            ticks.append(ticks[abs(e) % len(ticks)])
            continue
        elif kind == "same_time" and ticks:  # a print at the previous time, maybe its id
            ts -= step * MS
            t, tid = ts, ticks[-1][6] if e > 0 else i
        elif kind == "dup" and ticks:
            tid = ticks[abs(e) % len(ticks)][6]
        elif kind == "back":
            t = ts - abs(e) * 3 * 10**9  # out of order, or stale when in an earlier minute
        elif kind == "stale":
            t = ts - NS_PER_MINUTE
        elif kind == "future":
            t = CLOCK_NOW + 31 * 10**9
        elif kind == "shift":
            level *= 1.03
        elif kind == "drift":  # moves the median, so where it is refreshed matters
            level *= 1.003 if e >= 0 else 0.997
        elif kind == "other_symbol":
            sym, price = "B", 2500.0 * (1 + e * 1e-4)
        elif kind == "malformed":
            ticks.append(("A", str(ts), price, size, "", None, tid))
            continue
        ticks.append((sym, t, price, size, "Q" if e > 5 else "", None, None if e == 0 else tid))
    return ticks


def run_split(ticks: list, sizes: list[int], policy: QualityPolicy) -> tuple:
    v = DataQualityValidator(policy, clock=ManualClock(CLOCK_NOW))
    out: list = []
    i = k = 0
    while i < len(ticks):
        size = sizes[k % len(sizes)]
        out += v.filter_ticks(ticks[i : i + size])
        i, k = i + size, k + 1
    s = v.stats()
    # the state the next batch is judged against: the minute's journal, samples and band
    state = {
        sym: (st.journal, st.sampled, list(st.window), st.lo, st.hi, st.last)
        for sym, st in v._syms.items()
    }
    return out, s["ticks"], s["passed"], s["by_kind"], v.examples(), state


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tick_streams(), st.lists(st.integers(1, 70), min_size=1, max_size=8),
       st.sampled_from([SMALL, QualityPolicy()]))  # fmt: skip
def test_verdicts_do_not_depend_on_the_split_into_batches(ticks: list, sizes: list[int],
                                                          policy: QualityPolicy):  # fmt: skip
    one_by_one = run_split(ticks, [1], policy)
    assert run_split(ticks, sizes, policy) == one_by_one
    assert run_split(ticks, [len(ticks)], policy) == one_by_one
    out = one_by_one[0]
    assert all(any(t is x for x in ticks) for t in out)  # passed unchanged, never rebuilt


@pytest.mark.parametrize("sizes", [[1], [36, 16], [20, 7], [53]])
def test_the_reference_refreshed_at_a_new_minute_applies_to_the_rest_of_that_batch(
    sizes: list[int],
):
    """36 prints around 100.01 give the band (99.61, 100.41); six at 100.35 inside it are
    sampled too, so at the next minute the median moves to 100.185 and the band to (99.785,
    100.585): the print at 99.7 after the new minute's first is an outlier, also when it comes
    in the same batch as the minute before (the refresh applies from the tick that made it)."""
    ticks = clean(36, step=MS)
    ticks += [("SPY", T0 + (36 + i) * MS, 100.35, 1.0, "", None, None) for i in range(6)]
    nxt = T0 + NS_PER_MINUTE
    ticks.append(("SPY", nxt, 100.35, 1.0, "", None, None))
    ticks.append(("SPY", nxt + MS, 99.7, 1.0, "", None, None))
    ticks += [("SPY", nxt + (2 + i) * MS, 100.35, 1.0, "", None, None) for i in range(9)]
    out, _, _, kinds, worst, _ = run_split(ticks, sizes, SMALL)
    assert out == ticks and kinds == {"price_outlier": 1}
    assert worst["price_outlier"][0]["median"] == pytest.approx(100.185)


def test_no_outlier_check_until_enough_samples_then_from_the_next_tick():
    """With too few samples every tick takes `_check`, which refreshes as each sample comes:
    the band exists from the tick after the `min_samples`-th sample, whatever the batches."""
    warm = clean(7, step=MS)  # SMALL: a sample every 2nd tick, 4 needed: the 8th tick is one
    spike = [("SPY", T0 + 7 * MS, 100.01, 1.0, "", None, None),
             ("SPY", T0 + 8 * MS, 101.0, 1.0, "", None, None)]  # fmt: skip
    for sizes in ([1], [9], [7, 2], [8, 1]):
        v = DataQualityValidator(SMALL)
        got = [t for k in range(0, 9, sizes[0]) for t in v.filter_ticks((warm + spike)[k : k
               + sizes[0]])]  # fmt: skip
        assert got == warm + spike
        assert v.stats()["by_kind"] == {"price_outlier": 1}, sizes
    early = DataQualityValidator(SMALL)
    assert early.filter_ticks([*warm[:5], spike[1]]) == [*warm[:5], spike[1]]
    assert early.stats()["by_kind"] == {}


def test_ticks_of_the_slow_path_count_towards_sampling():
    """An out-of-order tick inside the band is judged by `_check`; it must enter the journal
    (where samples come from) exactly as a clean tick does, or the median would depend on the
    batches."""
    a, b = DataQualityValidator(SMALL), DataQualityValidator(SMALL)
    ticks = clean(11)
    ticks.append(("SPY", ticks[-1][1] - 1, 100.3, 1.0, "", None, None))  # out of order
    ticks.append(("SPY", T0 + NS_PER_MINUTE, 100.0, 1.0, "", None, None))  # a new minute
    for t in ticks:
        a.filter_ticks([t])
    b.filter_ticks(ticks)
    sa, sb = a._syms["SPY"], b._syms["SPY"]
    # samples: the 2nd, 4th, ... in-band ticks; the 12th is the out-of-order one (100.3)
    assert list(sa.window) == list(sb.window) == [100.01, 100.0, 100.02, 100.01, 100.0, 100.3]
    assert (sa.sampled, sa.journal) == (sb.sampled, sb.journal) == (1, ticks[-1:])


# ---- the engine ---------------------------------------------------------------------------
def test_engine_drops_rejected_ticks_and_shows_findings(tmp_path: Path):
    from slob_tui.engine.engine import LiveTradingEngine
    from slob_tui.engine.quality import QualityPolicy
    from slob_tui.storage.candles import CandleStore

    ticks = clean(1200, step=200 * MS)  # four minutes
    ticks[700] = ("SPY", ticks[700][1], 1000.0, 100.0, "", None, None)  # fat finger
    engine = LiveTradingEngine(BatchFeed([ticks[:600], ticks[600:]]), store=CandleStore(
        tmp_path / "c.db"), enable_tracker=False, quality=QualityPolicy())  # fmt: skip
    validator = engine.validator
    assert validator is not None
    seen: list = []
    engine.bus.subscribe(EventType.DATA_QUALITY, seen.append)
    asyncio.run(engine.run())
    assert validator.clock is None  # the data drives this engine's clock
    assert max(c.high for c in engine.recent["SPY"]) < 101
    assert [e.data.kind for e in seen] == ["fat_finger"]
    assert (engine.health().data_quality or {})["by_kind"] == {"fat_finger": 1}
    assert any(e.type is EventType.DATA_QUALITY for e in engine.snapshot().events)


def test_env_template_documents_every_setting_with_its_default():
    from dotenv import dotenv_values

    template = Path(__file__).resolve().parents[2] / ".env.template"
    env = {k: v for k, v in dotenv_values(template).items() if k.startswith("SLOB_DQ_")}
    from dataclasses import fields

    assert {f"SLOB_DQ_{f.name.upper()}" for f in fields(QualityPolicy)} == set(env)
    assert load_settings(env, dotenv=None).quality == QualityPolicy()


def test_the_node_puts_the_validator_in_the_replay_pipeline(tmp_path: Path, shared_data):
    from slob_tui.config import load_settings
    from slob_tui.node import NodeConfig, TradingNode

    settings = load_settings(env={}, dotenv=None)
    path = str(shared_data / "xrpeth_trades_20191011_20191013_utc.csv")
    node = TradingNode(NodeConfig(feed="replay", replay_file=path, db=str(tmp_path / "r.db"),
                                  speed=None, settings=settings))  # fmt: skip
    assert isinstance(node.engine.validator, DataQualityValidator)
    assert node.engine.validator.clock is None and node.health().data_quality is not None
    off = TradingNode(NodeConfig(feed="replay", replay_file=path, validate=False,
                                 db=str(tmp_path / "s.db"), settings=settings))  # fmt: skip
    assert off.engine.validator is None
