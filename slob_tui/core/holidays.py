"""US equity market holidays and early closes, from the exchanges' published rules.

Without them a day like Thanksgiving reads as a trading day with no trades: /healthz turns
stale, the feed's stall check fires and the validator counts 390 missing minutes. The rules
(NYSE and Nasdaq share them) are computed, not listed, so no table goes out of date; closures
that follow no rule come from `SPECIAL_CLOSURES` (those since 2001) and the
`SLOB_EXTRA_HOLIDAYS` setting, a comma-separated list of dates, for the next one.

- New Year's Day (a Sunday moves to Monday; a Saturday one is not made up on the Friday),
  Martin Luther King Jr. Day (3rd Monday of January), Washington's Birthday (3rd Monday of
  February), Good Friday, Memorial Day (last Monday of May), Juneteenth (from 2022),
  Independence Day, Labor Day (1st Monday of September), Thanksgiving (4th Thursday of
  November), Christmas. A fixed date on a Saturday is observed on the Friday, on a Sunday on
  the Monday.
- Early close at 13:00 New York time: the day after Thanksgiving, and July 3 and December 24
  when they are weekdays that are not themselves holidays (before 2013: not a Wednesday July 3,
  but a Friday July 5).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

NS = 1_000_000_000
US_EQUITY_TZ = "America/New_York"
REGULAR_SESSION = ((9, 30), (16, 0))
EARLY_CLOSE = (13, 0)
# Closures by decision, not by rule: 9/11, the funerals of Presidents Reagan, Ford, G. H. W.
# Bush and Carter, Hurricane Sandy.
SPECIAL_CLOSURES = frozenset(
    date.fromisoformat(d)
    for d in ("2001-09-11", "2001-09-12", "2001-09-13", "2001-09-14", "2004-06-11",
              "2007-01-02", "2012-10-29", "2012-10-30", "2018-12-05", "2025-01-09")
)  # fmt: skip
SPECIAL_EARLY_CLOSES = frozenset({date(2003, 12, 26)})


def easter(year: int) -> date:
    """Easter Sunday of the Gregorian calendar (the anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 19 * ell) // 433
    month = (h + ell - 7 * m + 90) // 25
    return date(year, month, (h + ell - 7 * m + 33 * month + 19) % 32)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The n-th given weekday (Monday 0) of a month; n = -1 for the last one."""
    if n > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    last = date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _observed(d: date) -> date:
    return d - timedelta(days=1) if d.weekday() == 5 else d + timedelta(days=d.weekday() == 6)


@cache
def us_equity_holidays(year: int) -> frozenset[date]:
    """The full-day closures of one calendar year."""
    days = {
        _nth_weekday(year, 1, 0, 3),  # Martin Luther King Jr. Day
        _nth_weekday(year, 2, 0, 3),  # Washington's Birthday
        easter(year) - timedelta(days=2),  # Good Friday
        _nth_weekday(year, 5, 0, -1),  # Memorial Day
        _observed(date(year, 7, 4)),
        _nth_weekday(year, 9, 0, 1),  # Labor Day
        _nth_weekday(year, 11, 3, 4),  # Thanksgiving
        _observed(date(year, 12, 25)),
    }
    new_year = date(year, 1, 1)
    if new_year.weekday() != 5:  # a Saturday New Year's Day closes nothing
        days.add(_observed(new_year))
    if year >= 2022:
        days.add(_observed(date(year, 6, 19)))  # Juneteenth
    return frozenset(days)


class UsEquityCalendar:
    """Whether a local (New York) date trades, and until when; extra closures from settings."""

    def __init__(self, extra_holidays: frozenset[date] = frozenset()) -> None:
        self.extra = SPECIAL_CLOSURES | extra_holidays

    def is_holiday(self, d: date) -> bool:
        return d in us_equity_holidays(d.year) or d in self.extra

    def is_trading_day(self, d: date) -> bool:
        return d.weekday() < 5 and not self.is_holiday(d)

    def early_close(self, d: date) -> tuple[int, int] | None:
        """13:00 on a shortened session, else None (a holiday or a weekend is not one)."""
        if not self.is_trading_day(d):
            return None
        thanksgiving = _nth_weekday(d.year, 11, 3, 4)
        if d == thanksgiving + timedelta(days=1) or (d.month, d.day) == (12, 24) or (
            d in SPECIAL_EARLY_CLOSES
        ):
            return EARLY_CLOSE
        if (d.month, d.day) == (7, 3):  # before 2013 a Wednesday July 3 was a full day
            return EARLY_CLOSE if d.year >= 2013 or d.weekday() != 2 else None
        if (d.month, d.day) == (7, 5) and d.year < 2013 and d.weekday() == 4:
            return EARLY_CLOSE  # ... and a Friday after a Thursday Independence Day was short
        return None

    def session(self, d: date) -> tuple[tuple[int, int], tuple[int, int]] | None:
        """The regular session's (open, close) in New York time on `d`; None when closed."""
        if not self.is_trading_day(d):
            return None
        return REGULAR_SESSION[0], self.early_close(d) or REGULAR_SESSION[1]


def us_equity_hours(calendar: UsEquityCalendar | None = None) -> Callable[[int], bool]:
    """`is_open(ns)`: inside the regular session of a trading day (each day computed once)."""
    cal = calendar or UsEquityCalendar()
    zone = ZoneInfo(US_EQUITY_TZ)
    days: dict[date, tuple[int, int] | None] = {}

    def span(d: date) -> tuple[int, int] | None:
        hours = cal.session(d)
        if hours is None:
            return None
        (h1, m1), (h2, m2) = hours
        at = datetime(d.year, d.month, d.day, tzinfo=zone)
        return (int(at.replace(hour=h1, minute=m1).timestamp()) * NS,
                int(at.replace(hour=h2, minute=m2).timestamp()) * NS)  # fmt: skip

    def is_open(ns: int) -> bool:
        d = datetime.fromtimestamp(ns // NS, zone).date()
        hit = days.get(d, False)
        if hit is False:
            if len(days) > 4096:
                days.clear()
            hit = days[d] = span(d)
        return hit is not None and hit[0] <= ns < hit[1]  # type: ignore[index]

    return is_open


def parse_extra_holidays(text: str | None) -> frozenset[date]:
    """`2025-01-09, 2018-12-05` -> dates; raises ValueError naming the bad entry."""
    out = set()
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            out.add(date.fromisoformat(part))
        except ValueError:
            raise ValueError(f"not a date (YYYY-MM-DD): {part!r}") from None
    return frozenset(out)
