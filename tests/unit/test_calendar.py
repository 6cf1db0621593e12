"""The market calendar: CME hours against NQ's real minutes, 24/7, the per-day cache, the
span `is_open` keeps, and the library staying out of start-up."""

from __future__ import annotations

import csv
import os
import random
import subprocess
import sys
from datetime import date, datetime, timedelta
from itertools import accumulate
from pathlib import Path
from zoneinfo import ZoneInfo

from slob_tui.core.calendar import (
    CACHE_ENV,
    NS_PER_MINUTE,
    MarketCalendar,
    Session,
    _library_schedule,
    _schedule,
    always_open_calendar,
    cme_equity_calendar,
    local_ns,
    us_equity_calendar,
    weekday_calendar,
)
from slob_tui.engine.quality import DataQualityValidator, QualityPolicy
from slob_tui.feeds.files import load_candles

NY = ZoneInfo("America/New_York")
NQ_FILE = "nq_1min_20231119_20231204_et.csv"


def ns(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=NY).timestamp()) * 10**9


def et(ts: int) -> str:
    return datetime.fromtimestamp(ts // 10**9, NY).strftime("%Y-%m-%d %H:%M")


def nq_minutes(path: Path) -> list[int]:
    with path.open(newline="") as f:
        return [ns(row["timestamp"]) for row in csv.DictReader(f)]


def test_cme_calendar_against_nq_over_thanksgiving_2023(shared_data: Path):
    """Every NQ minute traded is a CME minute but Black Friday's last quarter hour (the
    library closes at 12:00 CT, CME at 12:15 CT), and the only CME minute with no trade is the
    file's one real gap: the daily 16:00-17:00 CT halt and the Thanksgiving halt are closed."""
    traded = nq_minutes(shared_data / NQ_FILE)
    cal = cme_equity_calendar()
    first, last = traded[0], traded[-1]
    open_minutes = {t for t in range(first, last + 1, NS_PER_MINUTE) if cal.is_open(t)}
    outside = sorted(set(traded) - open_minutes)
    assert [et(t) for t in outside] == [f"2023-11-24 13:{m:02d}" for m in range(15)]
    assert [et(t) for t in sorted(open_minutes - set(traded))] == ["2023-11-22 22:29"]
    assert cal.open_minutes(first, last + NS_PER_MINUTE) == len(open_minutes)


def test_cme_holiday_hours_are_not_the_nyse_s():
    cme, nyse = cme_equity_calendar(), us_equity_calendar()
    thanksgiving = date(2023, 11, 23)
    assert not nyse.is_trading_day(thanksgiving)
    assert cme.is_early_close(thanksgiving) and cme.session(thanksgiving) == Session(
        thanksgiving, ns("2023-11-22 18:00"), ns("2023-11-23 13:00"), True
    )
    mlk = date(2024, 1, 15)
    assert not nyse.is_trading_day(mlk) and cme.is_early_close(mlk)
    assert cme.is_open(ns("2024-01-14 18:00")) and not cme.is_open(ns("2024-01-14 17:59"))
    assert not cme.is_open(ns("2023-12-01 17:30"))  # the daily halt
    assert not cme.is_open(ns("2023-12-02 12:00"))  # Saturday


def test_always_open_counts_every_minute():
    cal = always_open_calendar()
    a = ns("2022-01-01 00:00")
    assert cal.open_minutes(a, a + 3 * 1440 * NS_PER_MINUTE) == 3 * 1440
    assert cal.is_open(a) and cal.is_open(ns("2022-01-02 12:00"))  # a Sunday
    assert cal.is_trading_day(date(2025, 12, 25))


def test_extra_closures_close_a_whole_day():
    cal = us_equity_calendar(frozenset({date(2026, 12, 28)}))
    assert not cal.is_trading_day(date(2026, 12, 28))
    assert cal.open_minutes(ns("2026-12-24 12:59"), ns("2026-12-29 09:31")) == 2  # 12:59, 09:30


def test_years_far_from_the_loaded_range_still_answer():
    cal = us_equity_calendar()
    assert not cal.is_trading_day(date(2060, 7, 5))  # a Monday: Independence Day observed
    assert cal.is_trading_day(date(1985, 7, 5))
    assert not cal.is_trading_day(date(1985, 9, 27))  # Hurricane Gloria


class CountingWeekdays:
    """A real session source that counts how often it is asked."""

    tz = NY

    def __init__(self) -> None:
        self.asked: list[date] = []

    def session(self, day: date) -> Session | None:
        self.asked.append(day)
        if day.weekday() >= 5:
            return None
        return Session(day, local_ns(day, (9, 30), NY), local_ns(day, (16, 0), NY))


def test_each_day_is_asked_of_the_source_once():
    source = CountingWeekdays()
    cal = MarketCalendar(source)
    start = ns("2026-03-02 09:00")
    for m in range(0, 5 * 1440, 7):
        cal.is_open(start + m * NS_PER_MINUTE)
        cal.open_minutes(start, start + m * NS_PER_MINUTE)
    assert len(source.asked) == len(set(source.asked))


def in_a_session(cal: MarketCalendar, t: int) -> bool:
    day = cal.local_date(t)
    found = (cal.session(day + timedelta(days=k)) for k in (-1, 0, 1))
    return any(s.open <= t < s.close for s in found if s is not None)


def test_is_open_and_open_minutes_agree_with_the_sessions_in_any_order():
    """`is_open` keeps the span it answered and `open_minutes` reuses it: asked out of order,
    across a DST change, an early close, a holiday and weekends, both still say what the
    day's sessions say."""
    cals = [us_equity_calendar(), cme_equity_calendar(),
            weekday_calendar(((8, 0), (16, 30)), "Europe/London")]  # fmt: skip
    for start in (ns("2026-03-05 00:00"), ns("2025-11-24 00:00")):
        minutes = [start + m * NS_PER_MINUTE for m in range(12 * 1440)]
        minutes_end = start + 12 * 1440 * NS_PER_MINUTE
        random.Random(start).shuffle(minutes)
        order = sorted(minutes[:2000]) + minutes
        for cal in cals:
            truth = {t: in_a_session(cal, t) for t in minutes}
            before = list(accumulate((truth[t] for t in sorted(truth)), initial=0))
            for t in order:
                assert cal.is_open(t) == truth[t], et(t)
                assert cal.open_minutes(t, t + NS_PER_MINUTE) == truth[t], et(t)
            rng = random.Random(7)
            gaps = [(t, min(t + rng.randint(1, 120) * NS_PER_MINUTE, minutes_end)) for t in order]
            for a, b in [*gaps, *zip(order[:300], order[300:600], strict=True)]:
                a, b = min(a, b), max(a, b)
                span = before[(b - start) // NS_PER_MINUTE] - before[(a - start) // NS_PER_MINUTE]
                assert cal.open_minutes(a, b) == span, (et(a), et(b))


def test_weekday_window_until_midnight():
    cal = weekday_calendar(((0, 0), (24, 0)), "America/New_York")
    day = date(2026, 3, 8)  # the spring change: a 23-hour Sunday, but a weekend
    assert cal.session(day) is None
    monday = cal.session(day + timedelta(days=1))
    assert monday is not None and monday.close - monday.open == 24 * 3600 * 10**9


def test_the_calendar_library_stays_out_of_start_up(tmp_path: Path):
    """`--help` imports neither pandas nor exchange-calendars; building a validator does not
    import the library either (its first question does), `prepare()` does, once: a second
    process reads the schedule the first kept and imports neither."""
    probe = (
        "import sys, contextlib, io\n"
        "from slob_tui.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    main(['--help'])\n"
        "from slob_tui.engine.quality import DataQualityValidator\n"
        "DataQualityValidator()\n"
        "print(sorted({'pandas', 'exchange_calendars'} & set(sys.modules)))\n"
        "from slob_tui.core.calendar import us_equity_calendar\n"
        "print(us_equity_calendar().prepare().is_open_minute(10**18))\n"
        "print(sorted({'pandas', 'exchange_calendars'} & set(sys.modules)))\n"
    )
    env = {**os.environ, CACHE_ENV: str(tmp_path / "cache")}

    def run() -> list[str]:
        return subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                              check=True, env=env).stdout.split("\n")[:3]  # fmt: skip

    first = run()
    assert first[0] == "[]" and "exchange_calendars" in first[2]
    assert len(list((tmp_path / "cache").glob("calendar-XNYS-*.json"))) == 1
    assert run() == [first[0], first[1], "[]"]


def test_the_kept_schedule_is_the_library_s_own(tmp_path: Path, monkeypatch):
    """Read back from its file, the schedule equals the library's (open, close, early close
    for every session of 1990-2045, XNYS and CME); a damaged file is built again."""
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    for code in ("XNYS", "CMES"):
        library = _library_schedule(code, 1990, 2045)
        assert _schedule.__wrapped__(code, 1990, 2045) == library  # builds and keeps it
        [kept] = tmp_path.glob(f"calendar-{code}-*.json")
        assert _schedule.__wrapped__(code, 1990, 2045) == library  # read from the file
        assert sum(early for _, _, early in library.values()) > 100
        kept.write_text(kept.read_text()[:1000])
        assert _schedule.__wrapped__(code, 1990, 2045) == library
        assert len(kept.read_text()) > 100_000  # written whole again


def test_the_validator_on_cme_hours_sees_a_hole_on_thanksgiving_the_nyse_calendar_hides(
    shared_data: Path,
):
    """NQ traded on Thanksgiving morning: ten minutes taken out of it are missing on CME's
    calendar, not on the NYSE's (closed all day); without any calendar the afternoons after
    the two early closes count as well."""
    candles = load_candles(shared_data / NQ_FILE, "NQ")
    hole = range(ns("2023-11-23 10:00"), ns("2023-11-23 10:10"))
    kept = [c for c in candles if c.start not in hole]
    assert len(candles) - len(kept) == 10
    found = {}
    for holidays in ("us", "cme", "none"):
        validator = DataQualityValidator(QualityPolicy(holidays=holidays))
        events = [e for c in kept for e in validator.check_candle(c)]
        found[holidays] = sorted(
            e.data.details["minutes"] for e in events if e.data.kind == "missing_minutes"
        )
    assert found == {"us": [], "cme": [10], "none": [10, 165, 180]}
