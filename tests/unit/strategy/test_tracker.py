"""Every transition and invalidation reason of the SLOB tracker, SHORT and its LONG mirror."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from slob_tui.core.events import EventType
from slob_tui.core.models import Candle, Direction
from slob_tui.strategy.params import SlobParams
from slob_tui.strategy.tracker import SetupTracker

from .helpers import edit, find, hm, mirror, run, sto_ns, worked_example

PIVOT = 25500.0


def _events(candles: list[Candle], **overrides: object) -> list:
    params = replace(SlobParams(), **overrides) if overrides else None
    return run(SetupTracker("NQ", params), candles)


def _first(events: list, etype: EventType):  # noqa: ANN202
    return next(e.data for e in events if e.type is etype)


@pytest.fixture(params=["SHORT", "LONG"])
def side(request: pytest.FixtureRequest) -> str:
    return request.param


def _series(side: str) -> list[Candle]:
    base = worked_example()
    return base if side == "SHORT" else mirror(base, PIVOT)


def _px(side: str, price: float) -> float:
    return price if side == "SHORT" else 2 * PIVOT - price


def _edit(side: str, candles: list[Candle], stamp: str, **fields: float) -> list[Candle]:
    """Edit in SHORT terms; for LONG the edit is mirrored (high <-> low)."""
    if side == "LONG":
        swap = {"high": "low", "low": "high"}
        fields = {swap.get(k, k): 2 * PIVOT - v for k, v in fields.items()}
    return edit(candles, stamp, **fields)


def test_worked_example_triggers_short_at_1631_with_spec_levels() -> None:
    events = _events(worked_example())
    kinds = [(e.type, hm(e.data.time), e.data.state.value) for e in events[:4]]
    assert kinds == [
        (EventType.SETUP_STARTED, "15:30", "WATCHING_CONSOL"),
        (EventType.SETUP_TRANSITION, "16:15", "WATCHING_LIQ2"),
        (EventType.SETUP_TRANSITION, "16:26", "WAITING_ENTRY"),
        (EventType.SETUP_TRIGGERED, "16:31", "TRIGGERED"),
    ]
    trig = events[3].data
    lv = trig.levels
    assert trig.direction is Direction.SHORT
    assert (lv["stop"], lv["target"], lv["entry"]) == (25593.0, 25501.0, 25572.0)
    assert lv["entry_index"] == trig.index + 1
    assert (lv["high"], lv["low"], lv["liq1_price"], lv["liq2_price"]) == (
        25587.0,
        25542.0,
        25452.0,
        25592.0,
    )
    assert hm(worked_example()[lv["nw_index"]].start) == "16:25"
    assert hm(worked_example()[lv["high_index"]].start) == "16:01"
    assert hm(worked_example()[lv["low_index"]].start) == "16:11"
    assert lv["liq2_time"] == sto_ns(16, 26)
    assert 3.2 <= lv["rr"] <= 3.4
    assert round(lv["range_pct"], 3) == 0.176
    assert 0.0 <= lv["quality"] <= 1.0
    # every event carries its own candle's index and time
    candles = worked_example()
    assert all(candles[e.data.index].start == e.data.time == e.ts for e in events)
    assert all(e.source == "tracker" for e in events)


def test_long_mirror_triggers_with_mirrored_levels() -> None:
    events = _events(mirror(worked_example(), PIVOT))
    trig = _first(events, EventType.SETUP_TRIGGERED)
    assert trig.direction is Direction.LONG and hm(trig.time) == "16:31"
    lv = trig.levels
    assert (lv["stop"], lv["target"], lv["entry"]) == (25407.0, 25499.0, 25428.0)
    assert (lv["low"], lv["high"]) == (2 * PIVOT - 25587.0, 2 * PIVOT - 25542.0)
    assert lv["target_kind"] == "swing"
    assert all(e.data.direction is Direction.LONG for e in events)


def test_setup_id_is_derived_from_symbol_direction_and_start_time(side: str) -> None:
    a = _events(_series(side))
    b = _events(_series(side))
    assert [e.data.setup_id for e in a] == [e.data.setup_id for e in b]
    assert a[0].data.setup_id == f"NQ-{side}-20260106T143000Z"
    # the next candidate starts on the candle after the trigger, with a new id, no new sweep
    started = [e.data for e in a if e.type is EventType.SETUP_STARTED]
    assert hm(started[1].time) == "16:32" and started[1].prev_state is None
    assert started[1].setup_id != started[0].setup_id
    assert started[1].levels["liq1_index"] == started[0].levels["liq1_index"]


@pytest.mark.parametrize(
    ("overrides", "stamp", "reason"),
    [
        ({"consol_min": 10, "consol_max": 12}, "16:13", "CONSOL_TIMEOUT"),
        ({"liq2_timeout": 5}, "16:20", "LIQ2_TIMEOUT"),
        ({"nowick_max_wick": 0.01}, "16:26", "NO_WICK_NOT_FOUND"),
        ({"entry_timeout": 3}, "16:29", "ENTRY_TIMEOUT"),
        ({"min_rr": 5.0}, "16:31", "BAD_RR"),
        ({"min_quality": 1.0}, "16:26", "LOW_QUALITY"),
    ],
)
def test_parameter_driven_invalidations(
    side: str, overrides: dict, stamp: str, reason: str
) -> None:
    events = _events(_series(side), **overrides)
    inv = _first(events, EventType.SETUP_INVALIDATED)
    assert (inv.reason, hm(inv.time)) == (reason, stamp)
    assert inv.direction.value == side
    assert not any(e.type is EventType.SETUP_TRIGGERED and e.data.time < inv.time for e in events)


def test_retrace_invalidates(side: str) -> None:
    candles = _edit(side, _series(side), "16:28", high=25700.0)
    inv = _first(_events(candles), EventType.SETUP_INVALIDATED)
    assert (inv.reason, hm(inv.time)) == ("RETRACE", "16:28")


def test_market_closed_invalidates_live_candidate(side: str) -> None:
    base = _series(side)
    cut = base[: find(base, "16:20") + 1]
    late = replace(cut[-1], start=sto_ns(22, 0))
    events = _events([*cut, late])
    inv = events[-1].data
    assert (inv.reason, hm(inv.time), inv.prev_state.value) == (
        "MARKET_CLOSED",
        "22:00",
        "WATCHING_LIQ2",
    )
    assert inv.index == len(cut)


def test_missing_minute_is_a_data_gap_unless_gap_check_is_off(side: str) -> None:
    base = _series(side)
    candles = base[: find(base, "16:20")] + base[find(base, "16:21") :]
    inv = _first(_events(candles), EventType.SETUP_INVALIDATED)
    assert (inv.reason, hm(inv.time)) == ("DATA_GAP", "16:21")
    # the next candidate starts on the following candle
    started = [e.data for e in _events(candles) if e.type is EventType.SETUP_STARTED]
    assert hm(started[1].time) == "16:22"
    trig = _first(_events(candles, gap_check=False), EventType.SETUP_TRIGGERED)
    assert hm(trig.time) == "16:31"


def test_open_gap_and_gap_filled_candles_are_data_gaps(side: str) -> None:
    base = _series(side)
    i = find(base, "16:20")
    jumped = list(base)
    jumped[i] = replace(
        base[i],
        open=base[i - 1].close + (20 if side == "SHORT" else -20),
        high=max(base[i].high, base[i - 1].close + 20),
        low=min(base[i].low, base[i - 1].close - 20),
    )
    inv = _first(_events(jumped), EventType.SETUP_INVALIDATED)
    assert (inv.reason, hm(inv.time)) == ("DATA_GAP", "16:20")
    filled = list(base)
    filled[i] = replace(base[i], gap_filled=True)
    inv = _first(_events(filled), EventType.SETUP_INVALIDATED)
    assert (inv.reason, hm(inv.time)) == ("DATA_GAP", "16:20")


def test_higher_high_before_min_wait_returns_to_consolidation(side: str) -> None:
    events = _events(_series(side), liq2_min_wait=15)
    back = [
        e.data
        for e in events
        if e.type is EventType.SETUP_TRANSITION and e.data.state.value == "WATCHING_CONSOL"
    ]
    assert back and (back[0].reason, hm(back[0].time)) == ("HIGH_REPLACED", "16:26")
    assert back[0].levels["high" if side == "SHORT" else "low"] == _px(side, 25592.0)


def test_lower_low_in_liq2_unconfirms_and_rearms(side: str) -> None:
    candles = _edit(side, _series(side), "16:20", low=25540.0)
    events = _events(candles)
    trans = [
        (e.data.state.value, e.data.reason, hm(e.data.time))
        for e in events
        if e.type is EventType.SETUP_TRANSITION
    ]
    assert trans[:3] == [
        ("WATCHING_LIQ2", None, "16:15"),
        ("WATCHING_CONSOL", "LOW_REPLACED", "16:20"),
        ("WATCHING_LIQ2", None, "16:23"),
    ]
    # LIQ #2 at 16:26 is only 3 candles after the LOW's new confirmation (16:23): a new HIGH
    assert trans[3] == ("WATCHING_CONSOL", "HIGH_REPLACED", "16:26")


def test_lower_low_past_range_max_restarts_structure(side: str) -> None:
    candles = _edit(side, _series(side), "16:20", low=25400.0)
    events = _events(candles)
    back = [e.data for e in events if e.type is EventType.SETUP_TRANSITION][1]
    assert (back.reason, hm(back.time)) == ("RANGE_BROKEN", "16:20")
    far = "high" if side == "SHORT" else "low"
    assert back.levels[far + "_index"] == find(candles, "16:20")
    assert "range_pct" not in back.levels  # LOW cleared


def test_spike_rule_sets_stop_above_the_body(side: str) -> None:
    candles = _edit(side, _series(side), "16:26", open=25580.0, close=25582.0)
    trig = _first(_events(candles), EventType.SETUP_TRIGGERED)
    assert trig.levels["stop_kind"] == "spike"
    assert trig.levels["stop"] == _px(side, 25582.0) + (2.0 if side == "SHORT" else -2.0)


def test_target_falls_back_to_reference_low(side: str) -> None:
    trig = _first(_events(_series(side), tp_mode="tp2"), EventType.SETUP_TRIGGERED)
    assert trig.levels["target_kind"] == "ref"
    assert trig.levels["target"] == (25299.0 if side == "SHORT" else 2 * PIVOT - 25300 + 1)
    no_swing = _edit(side, _series(side), "15:49", low=25505.0)
    trig = _first(_events(no_swing), EventType.SETUP_TRIGGERED)
    assert trig.levels["target_kind"] == "ref"


def test_no_reference_candles_means_no_setups() -> None:
    candles = [c for c in worked_example() if c.start >= sto_ns(15, 30)]
    assert _events(candles) == []


def test_weekend_has_no_setups() -> None:
    shift = 4 * 86400 * 10**9  # Tuesday -> Saturday
    candles = [replace(c, start=c.start + shift) for c in worked_example()]
    assert _events(candles) == []


def test_out_of_order_candle_is_skipped_without_consuming_an_index() -> None:
    candles = worked_example()
    t = SetupTracker("NQ")
    run(t, candles[:10])
    assert t.on_candle(candles[5]) == [] and t.skipped == 1 and t.index == 10


def test_live_setups_and_state_roundtrip_through_json() -> None:
    candles = worked_example()
    t = SetupTracker("NQ")
    cut = find(candles, "16:20")
    run(t, candles[:cut])
    live = t.live_setups()
    assert [u.state.value for u in live] == ["WATCHING_LIQ2"]
    state = json.loads(json.dumps(t.state_dict(), allow_nan=False))
    t2 = SetupTracker.from_state(state)
    rest_a = run(t, candles[cut:])
    rest_b = run(t2, candles[cut:])
    assert [e.data for e in rest_a] == [e.data for e in rest_b]
    assert t.state_dict() == t2.state_dict()
    with pytest.raises(ValueError, match="version"):
        SetupTracker.from_state({**state, "version": 99})


def test_nowick_after_liq2_looks_at_the_next_candles(side: str) -> None:
    events = _events(_series(side), nowick_after_liq2=3)
    trig = _first(events, EventType.SETUP_TRIGGERED)
    assert hm(trig.time) == "16:31"
    assert hm(worked_example()[trig.levels["nw_index"]].start) == "16:27"
    assert trig.levels["nw_low" if side == "SHORT" else "nw_high"] == _px(side, 25578.0)
