"""Session windows in Europe/Stockholm across both DST changes, weekends, and the NY anchor."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from slob_tui.core.events import EventType
from slob_tui.core.sessions import Phase, SessionCalendar
from slob_tui.strategy.tracker import SetupTracker

from .helpers import hm, run, sto_ns, worked_example


def utc_hm(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%H:%M")


@pytest.mark.parametrize(
    ("day", "utc_open"),
    [
        (date(2026, 3, 27), "14:30"),  # Friday before the spring change (CET, UTC+1)
        (date(2026, 3, 30), "13:30"),  # Monday after it (CEST, UTC+2)
        (date(2026, 10, 23), "13:30"),  # Friday before the autumn change (CEST)
        (date(2026, 10, 26), "14:30"),  # Monday after it (CET)
    ],
)
def test_trade_window_follows_local_time_across_dst(day: date, utc_open: str) -> None:
    cal = SessionCalendar()
    b = cal.bounds(day)
    assert utc_hm(b.trade_start) == utc_open
    assert b.close - b.trade_start == 390 * 60 * 10**9
    assert cal.phase_at(sto_ns(15, 29, day)) is Phase.REF
    assert cal.phase_at(sto_ns(15, 30, day)) is Phase.TRADE
    assert cal.phase_at(sto_ns(21, 59, day)) is Phase.TRADE
    assert cal.phase_at(sto_ns(22, 0, day)) is Phase.CLOSED
    assert cal.phase_at(sto_ns(8, 59, day)) is Phase.CLOSED
    assert cal.phase_at(sto_ns(9, 0, day)) is Phase.REF


def test_dst_days_are_23_and_25_hours_and_spans_tile_the_day() -> None:
    cal = SessionCalendar()
    spring, autumn = cal.bounds(date(2026, 3, 29)), cal.bounds(date(2026, 10, 25))
    assert spring.day_end - spring.day_start == 23 * 3600 * 10**9
    assert autumn.day_end - autumn.day_start == 25 * 3600 * 10**9
    for d in (date(2026, 3, 30), date(2026, 10, 26)):
        spans = cal.bounds(d).spans
        assert spans[0].start == cal.bounds(d).day_start and spans[-1].end == cal.bounds(d).day_end
        assert all(a.end == b.start for a, b in zip(spans, spans[1:], strict=False))


def test_weekend_is_closed_from_friday_close_to_monday() -> None:
    cal = SessionCalendar()
    assert cal.phase_at(sto_ns(22, 0, date(2026, 1, 9))) is Phase.CLOSED  # Friday 22:00
    for d in (date(2026, 1, 10), date(2026, 1, 11)):
        assert {s.phase for s in cal.bounds(d).spans} == {Phase.CLOSED}
    assert cal.phase_at(sto_ns(9, 0, date(2026, 1, 12))) is Phase.REF  # Monday


def test_anchor_to_exchange_moves_the_window_when_us_dst_starts_first() -> None:
    cal = SessionCalendar(anchor_to_exchange=True)
    mismatch = date(2026, 3, 16)  # New York on EDT, Stockholm still on CET
    assert cal.phase_at(sto_ns(14, 30, mismatch)) is Phase.TRADE
    assert cal.phase_at(sto_ns(14, 29, mismatch)) is Phase.REF
    assert cal.phase_at(sto_ns(21, 0, mismatch)) is Phase.CLOSED
    normal = date(2026, 4, 6)
    assert cal.phase_at(sto_ns(15, 30, normal)) is Phase.TRADE
    assert cal.phase_at(sto_ns(15, 29, normal)) is Phase.REF
    plain = SessionCalendar()
    assert plain.phase_at(sto_ns(14, 30, mismatch)) is Phase.REF


@pytest.mark.parametrize("day", [date(2026, 3, 31), date(2026, 10, 27)])
def test_worked_example_after_each_dst_change_triggers_at_1631_local(day: date) -> None:
    events = run(SetupTracker("NQ"), worked_example(d=day))
    trig = next(e.data for e in events if e.type is EventType.SETUP_TRIGGERED)
    assert hm(trig.time) == "16:31"
    assert trig.time == sto_ns(16, 31, day)
