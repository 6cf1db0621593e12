"""US equity holidays and early closes: the market calendar against the NYSE's published ones."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from slob_tui.config import ConfigError, load_settings
from slob_tui.core.calendar import parse_extra_holidays, us_equity_calendar
from slob_tui.core.models import Candle
from slob_tui.engine.quality import DataQualityValidator, QualityPolicy

NY = ZoneInfo("America/New_York")

# The NYSE's published full-day closures (2025 includes the day of mourning for J. Carter).
PUBLISHED = {
    2021: "01-01 01-18 02-15 04-02 05-31 07-05 09-06 11-25 12-24",
    2022: "01-17 02-21 04-15 05-30 06-20 07-04 09-05 11-24 12-26",
    2023: "01-02 01-16 02-20 04-07 05-29 06-19 07-04 09-04 11-23 12-25",
    2024: "01-01 01-15 02-19 03-29 05-27 06-19 07-04 09-02 11-28 12-25",
    2025: "01-01 01-09 01-20 02-17 04-18 05-26 06-19 07-04 09-01 11-27 12-25",
    2026: "01-01 01-19 02-16 04-03 05-25 06-19 07-03 09-07 11-26 12-25",
}
EARLY = {2024: "07-03 11-29 12-24", 2025: "07-03 11-28 12-24", 2026: "11-27 12-24"}


def days(year: int, text: str) -> set[date]:
    return {date.fromisoformat(f"{year}-{md}") for md in text.split()}


def ns(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=NY).timestamp()) * 10**9


@pytest.mark.parametrize("year", sorted(PUBLISHED))
def test_closures_match_the_published_calendar(year: int):
    cal = us_equity_calendar()
    d, closed = date(year, 1, 1), set()
    while d.year == year:
        if d.weekday() < 5 and not cal.is_trading_day(d):
            closed.add(d)
        d = date.fromordinal(d.toordinal() + 1)
    assert closed == days(year, PUBLISHED[year])


@pytest.mark.parametrize("year", sorted(EARLY))
def test_early_closes_match_the_published_calendar(year: int):
    cal = us_equity_calendar()
    d, early = date(year, 1, 1), set()
    while d.year == year:
        if cal.is_early_close(d):
            early.add(d)
        d = date.fromordinal(d.toordinal() + 1)
    assert early == days(year, EARLY[year])


def test_early_close_rules_before_2013_and_a_special_one():
    cal = us_equity_calendar()
    assert not cal.is_early_close(date(2002, 7, 3))  # a Wednesday: a full day then
    assert cal.is_early_close(date(2002, 7, 5))  # the Friday after instead
    assert cal.is_early_close(date(2013, 7, 3))  # a Wednesday, from 2013 on
    assert cal.is_early_close(date(2003, 12, 26))  # by decision
    assert not cal.is_early_close(date(2019, 7, 5))
    assert cal.session(date(2025, 11, 28)).close == ns("2025-11-28 13:00")


def test_saturday_new_year_closes_nothing():
    cal = us_equity_calendar()
    assert cal.is_trading_day(date(2021, 12, 31))  # 2022-01-01 was a Saturday
    assert not cal.is_trading_day(date(2022, 1, 1))


def test_hours_open_close_early_close_and_dst():
    is_open = us_equity_calendar().is_open
    assert not is_open(ns("2025-11-26 09:29:59")) and is_open(ns("2025-11-26 09:30"))
    assert is_open(ns("2025-11-26 15:59:59")) and not is_open(ns("2025-11-26 16:00"))
    assert not is_open(ns("2025-11-27 11:00"))  # Thanksgiving
    assert is_open(ns("2025-11-28 12:59:59")) and not is_open(ns("2025-11-28 13:00"))
    assert is_open(ns("2026-03-09 09:30")) and not is_open(ns("2026-03-09 09:29"))  # EDT
    assert not is_open(ns("2026-03-07 11:00"))  # Saturday
    extra = us_equity_calendar(frozenset({date(2026, 3, 9)})).is_open
    assert not extra(ns("2026-03-09 11:00"))


def test_extra_holidays_setting_is_parsed_and_checked():
    settings = load_settings(env={"SLOB_EXTRA_HOLIDAYS": "2026-12-28, 2027-01-04"}, dotenv=None)
    assert settings.extra_holidays == {date(2026, 12, 28), date(2027, 1, 4)}
    assert parse_extra_holidays("") == frozenset()
    with pytest.raises(ConfigError, match="SLOB_EXTRA_HOLIDAYS: not a date .*'12/28'"):
        load_settings(env={"SLOB_EXTRA_HOLIDAYS": "2026-12-28,12/28"}, dotenv=None)


def minute_candle(at: str) -> Candle:
    return Candle("SPY", ns(at), 100.0, 100.5, 99.5, 100.2, 1000.0, 10)


@pytest.mark.parametrize(("holidays", "missing"), [("auto", []), ("us", []), ("none", [390])])
def test_a_holiday_is_not_missing_minutes_unless_the_calendar_is_off(holidays, missing):
    """Friday's close to Tuesday's open over a Monday holiday (2026-01-19, MLK Day)."""
    v = DataQualityValidator(QualityPolicy(holidays=holidays))
    v.check_candle(minute_candle("2026-01-16 15:59"))
    found = v.check_candle(minute_candle("2026-01-20 09:30"))
    assert [e.data.details["minutes"] for e in found if e.data.kind == "missing_minutes"] == missing


def test_an_early_close_ends_the_session_at_one():
    v = DataQualityValidator()
    v.check_candle(minute_candle("2025-11-28 12:59"))
    found = v.check_candle(minute_candle("2025-12-01 09:30"))
    assert [e.data.kind for e in found] == []
    gap = DataQualityValidator()
    gap.check_candle(minute_candle("2025-11-28 12:00"))
    found = gap.check_candle(minute_candle("2025-12-01 09:30"))
    assert [e.data.details["minutes"] for e in found] == [59]


def test_a_bad_holidays_policy_names_the_setting():
    with pytest.raises(Exception, match="SLOB_DQ_HOLIDAYS"):
        QualityPolicy(holidays="nyse")


def test_auto_holidays_only_for_a_market_in_new_york_time():
    """US holidays say nothing of a market kept in another zone: `auto` leaves it alone."""
    mlk = ns("2026-01-19 12:00")  # a Monday the NYSE is closed, 17:00 in London
    london = DataQualityValidator(QualityPolicy(market_tz="Europe/London",
                                                market_hours="08:00-16:30"))  # fmt: skip
    assert london.candles.hours.is_open(mlk - 5 * 3600 * 10**9)
    forced = DataQualityValidator(QualityPolicy(market_tz="Europe/London", holidays="us"))
    assert not forced.candles.hours.is_open(mlk)
    assert not DataQualityValidator().candles.hours.is_open(mlk)
    assert DataQualityValidator(QualityPolicy(holidays="none")).candles.hours.is_open(mlk)
