"""One market calendar: is this minute a trading minute, when does a day's session open and close.

Every user asks a `MarketCalendar`: the validator's missing-minute and frozen-feed checks, the
Alpaca feed's stall check, /healthz, and the strategy's exchange-anchored windows. Each day's
session is computed once and cached as integer nanoseconds, and `is_open` keeps the span it last
answered: measured, the stall check's / healthz's `is_open` costs 0.09 us (the old per-day cache
0.5-1.1 us) and the validator's count over a 7-minute gap 0.27 us (1.8-2.5 us), where a
library call costs 6-220 us.

Holidays and early closes come from exchange-calendars (maintained, it already lists the
decided closures such as 2025-01-09), not from hand-written rules. Measured before adopting it:

- XNYS equals the NYSE's published closures and early closes on every weekday of 2001-2030
  (tests/unit/test_holidays.py); the old hand rules differed before 1998 (MLK Day).
- Its import costs ~0.15 s on top of pandas (~0.7 s cold) and a schedule ~0.16 s whatever
  the range, and a library lookup 6-220 us a call: hence the lazy import (never at
  `slob-tui --help`), one bulk load of 1990-2045 on the first question, and the per-day cache.
  That load is kept on disk (`cache_dir()`, named by the library's version), so only the first
  process after an install or upgrade pays it: a replay or a console start then imports
  neither pandas nor the library for its calendar (~0.5 s and ~65 MB less).
- Its CME calendar (CMES) against NQ's minutes over Thanksgiving 2023
  (nq_1min_20231119_20231204_et.csv): the Thanksgiving halt at 13:00 ET is right, but it runs
  every session to 17:00 CT with no daily 16:00-17:00 CT halt (60 false missing minutes a
  day), so `cme_equity_calendar` ends each session at 16:00 CT; and it closes Black Friday at
  12:00 CT where NQ traded to 12:15 CT, so 15 traded minutes read as closed (kept: a minute
  wrongly closed hides a check, it never invents a missing minute).
- `us_futures` (the other futures calendar) knows neither the holidays nor the daily halt: 1,066
  of its minutes in that file have no trade.
"""

from __future__ import annotations

import importlib.util
import json
import os
import warnings
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

NS = 1_000_000_000
NS_PER_MINUTE = 60 * NS
US_EQUITY_TZ = "America/New_York"
CME_TZ = "America/Chicago"
_CACHE_DAYS = 4096
_FIRST_YEAR, _LAST_YEAR = 1990, 2045  # loaded at once: one schedule costs the same for any range


@dataclass(frozen=True, slots=True)
class Session:
    """One trading session `[open, close)` in ns UTC, labelled by its trade date."""

    day: date
    open: int
    close: int
    early_close: bool = False


class SessionSource(Protocol):
    """Where sessions come from: an exchange's schedule, a weekday window, or always open."""

    tz: ZoneInfo

    def session(self, day: date) -> Session | None: ...

    def prepare(self) -> None:
        """Do any slow loading now, so that no later question pays for it."""


def local_ns(day: date, hm: tuple[int, int], tz: ZoneInfo) -> int:
    """A wall-clock time of `day` in `tz` as ns UTC (DST-correct through the tz database)."""
    at = datetime(day.year, day.month, day.day, tzinfo=tz) + timedelta(hours=hm[0], minutes=hm[1])
    return int(at.timestamp()) * NS  # wall-clock addition: 24:00 is the next midnight


Schedule = dict[int, tuple[int, int, bool]]  # by the session date's ordinal
CACHE_ENV = "SLOB_CACHE_DIR"
LIBRARY_MODULE = "exchange_calendars"


def cache_dir() -> Path:
    """Where computed tables are kept between runs: `SLOB_CACHE_DIR`, else the user's cache."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "slob-tui"


def _library_stamp() -> str | None:
    """The installed library's name and version, from its dist-info folder beside the package
    (`importlib.metadata` costs 15-35 ms to import and search); None when it is not installed.
    An install without that folder is named by its files' own stamp."""
    spec = importlib.util.find_spec(LIBRARY_MODULE)
    if spec is None or spec.origin is None:
        return None
    package = Path(spec.origin).parent
    found = sorted(package.parent.glob(f"{LIBRARY_MODULE}-*.dist-info"))
    if len(found) == 1:
        return found[0].name.removesuffix(".dist-info")
    stat = Path(spec.origin).stat()
    return f"{LIBRARY_MODULE}-{stat.st_mtime_ns}-{stat.st_size}"


def _cache_file(code: str, first: int, last: int) -> Path | None:
    """The schedule's file, named by the library's installed version (an upgrade that adds a
    closure makes a new file), or None when the library is not installed."""
    stamp = _library_stamp()
    if stamp is None:
        return None
    try:
        folder = cache_dir()
    except RuntimeError:  # no home folder to be found (a bare service account): no cache
        return None
    return folder / f"calendar-{code}-{first}-{last}-{stamp}.json"


def _read_cached(path: Path) -> Schedule | None:
    try:
        raw = json.loads(path.read_text())
        days, opens, closes, early = raw["days"], raw["opens"], raw["closes"], set(raw["early"])
        # built at C speed: a dict comprehension of date objects took ~8 ms of every replay
        rows = zip(opens, closes, map(early.__contains__, days), strict=True)
        return dict(zip(days, rows, strict=True))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # missing, partial or from elsewhere: built again from the library


def _write_cached(path: Path, table: Schedule) -> None:
    """Written whole under a temporary name, then renamed: a reader never sees half a file.
    A folder that refuses it costs the next run the library's time, nothing else."""
    days = sorted(table)
    raw = {
        "days": days,
        "opens": [table[d][0] for d in days],
        "closes": [table[d][1] for d in days],
        "early": [d for d in days if table[d][2]],
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(raw, separators=(",", ":")))
        os.replace(tmp, path)
    except OSError:
        return


def _library_schedule(code: str, first: int, last: int) -> Schedule:
    import exchange_calendars  # lazy: with pandas ~0.9 s to import, never at `--help`

    with warnings.catch_warnings():  # the library's own use of a pandas API pandas deprecates
        warnings.filterwarnings("ignore", message="Series.values returning an ndarray")
        cal = exchange_calendars.get_calendar(code, start=f"{first}-01-01", end=f"{last}-12-31")
    early = {ts.date() for ts in cal.early_closes}
    table = cal.schedule
    opens = table["open"].array.asi8.tolist()
    closes = table["close"].array.asi8.tolist()
    return {
        label.date().toordinal(): (o, c, label.date() in early)
        for label, o, c in zip(table.index, opens, closes, strict=True)
    }


@lru_cache(maxsize=8)
def _schedule(code: str, first: int, last: int) -> Schedule:
    """An exchange's (open, close, early close) by session date, shared by every calendar.

    The library's answer is kept in `cache_dir()` as a small JSON table (~0.3 MB for 56 years):
    read back in a few ms, where the library costs ~0.5 s and ~65 MB (pandas) per process.
    The table is the library's own output, so it answers exactly as the library does."""
    path = _cache_file(code, first, last)
    if path is not None:
        cached = _read_cached(path)
        if cached is not None:
            return cached
    table = _library_schedule(code, first, last)
    if path is not None:
        _write_cached(path, table)
    return table


class ExchangeSessions:
    """An exchange's sessions from exchange-calendars, imported and loaded on first use."""

    def __init__(self, code: str, tz: str, daily_close: tuple[int, int] | None = None) -> None:
        self.code = code
        self.tz = ZoneInfo(tz)
        self.daily_close = daily_close  # the latest close of a session's own day, local time
        self._table: Schedule = {}
        self._years: tuple[int, int] | None = None

    def prepare(self) -> None:
        self.session(date(_FIRST_YEAR, 1, 1))

    def session(self, day: date) -> Session | None:
        years = self._years
        if years is None or not years[0] <= day.year <= years[1]:
            first, last = min(day.year, _FIRST_YEAR), max(day.year, _LAST_YEAR)
            if years is not None:
                first, last = min(first, years[0]), max(last, years[1])
            self._table, self._years = _schedule(self.code, first, last), (first, last)
        row = self._table.get(day.toordinal())
        if row is None:
            return None
        opens, closes, early = row
        if self.daily_close is not None:
            closes = min(closes, local_ns(day, self.daily_close, self.tz))
        return Session(day, opens, closes, early)


class WeekdaySessions:
    """A fixed local window on weekdays; with an exchange, its closed days are closed and its
    early closes end the window (whatever zone the window is kept in)."""

    def __init__(
        self, window: tuple[tuple[int, int], tuple[int, int]], tz: str,
        exchange: ExchangeSessions | None = None,
    ) -> None:  # fmt: skip
        self.window = window
        self.tz = ZoneInfo(tz)
        self.exchange = exchange

    def prepare(self) -> None:
        if self.exchange is not None:
            self.exchange.prepare()

    def session(self, day: date) -> Session | None:
        if day.weekday() >= 5:
            return None
        opens, closes = (
            local_ns(day, self.window[0], self.tz),
            local_ns(day, self.window[1], self.tz),
        )
        if self.exchange is None:
            return Session(day, opens, closes)
        traded = self.exchange.session(day)
        if traded is None:
            return None
        if traded.early_close and traded.close < closes:
            return Session(day, opens, traded.close, True)
        return Session(day, opens, closes)


class AlwaysOpen:
    """24/7 (crypto): every UTC day is one whole session."""

    tz = ZoneInfo("UTC")

    def prepare(self) -> None:
        return None

    def session(self, day: date) -> Session | None:
        start = local_ns(day, (0, 0), self.tz)
        return Session(day, start, start + 86_400 * NS)


class MarketCalendar:
    """The one calendar of a market: sessions per day (cached), open minutes, early closes."""

    def __init__(
        self, source: SessionSource, extra_closures: frozenset[date] = frozenset()
    ) -> None:
        self.source = source
        self.tz = source.tz
        self.extra_closures = extra_closures  # SLOB_EXTRA_HOLIDAYS: closures no calendar knows
        self.always_open = isinstance(source, AlwaysOpen)
        self._days: dict[date, Session | None] = {}
        self._span = (0, 0, False)  # the last answer of `is_open`: [lo, hi) and open or not

    def prepare(self) -> MarketCalendar:
        """Load the exchange's schedule now (~0.3-1.4 s measured, with the imports), at build
        time, rather than on the first question from a hot path or the event loop."""
        self.source.prepare()
        return self

    def local_date(self, ns: int) -> date:
        return datetime.fromtimestamp(ns // NS, self.tz).date()

    def session(self, day: date) -> Session | None:
        """The session labelled `day`, or None when the market does not trade that day."""
        try:
            return self._days[day]
        except KeyError:
            pass
        if len(self._days) > _CACHE_DAYS:
            self._days.clear()
        found = None if day in self.extra_closures else self.source.session(day)
        self._days[day] = found
        return found

    def is_trading_day(self, day: date) -> bool:
        return self.session(day) is not None

    def is_early_close(self, day: date) -> bool:
        found = self.session(day)
        return found is not None and found.early_close

    def _near(self, ns: int) -> list[Session]:
        """Sessions that may hold `ns`: its local day's and the neighbours' (CME opens the
        evening before its trade date)."""
        day = self.local_date(ns)
        found = (self.session(day + timedelta(days=k)) for k in (-1, 0, 1))
        return [s for s in found if s is not None]

    def is_open(self, ns: int) -> bool:
        """Whether `ns` is inside a session; the span answered is kept for the next call."""
        lo, hi, is_open = self._span
        if lo <= ns < hi:
            return is_open
        near = self._near(ns)
        for s in near:
            if s.open <= ns < s.close:
                self._span = (s.open, s.close, True)
                return True
        day = self.local_date(ns)
        lo = max([s.close for s in near if s.close <= ns], default=local_ns(day, (0, 0), self.tz))
        hi = min([s.open for s in near if s.open > ns],
                 default=local_ns(day + timedelta(days=1), (0, 0), self.tz))  # fmt: skip
        self._span = (min(lo, ns), max(hi, ns + 1), False)
        return False

    def open_minutes(self, a: int, b: int) -> int:
        """Whole minutes of market time in [a, b) (both minute starts)."""
        if b <= a:
            return 0
        if self.always_open:
            return (b - a) // NS_PER_MINUTE
        self.is_open(a)  # keeps the span holding `a`
        _, hi, is_open = self._span
        if b <= hi:  # the gap lies inside that span: no day to walk
            return (b - a) // NS_PER_MINUTE if is_open else 0
        day, last = (
            self.local_date(a) - timedelta(days=1),
            self.local_date(b - 1) + timedelta(days=1),
        )
        total = 0
        while day <= last:
            s = self.session(day)
            if s is not None:
                lo, hi = max(a, s.open), min(b, s.close)
                if hi > lo:
                    total += (hi - lo) // NS_PER_MINUTE
            day += timedelta(days=1)
        return total

    def is_open_minute(self, ns: int) -> bool:
        """Whether the minute holding `ns` is market time (sessions start at whole minutes)."""
        return self.is_open(ns - ns % NS_PER_MINUTE)


def us_equity_sessions() -> ExchangeSessions:
    """NYSE/Nasdaq regular sessions (XNYS): holidays, 13:00 early closes, decided closures."""
    return ExchangeSessions("XNYS", US_EQUITY_TZ)


def cme_equity_sessions() -> ExchangeSessions:
    """CME Globex equity index futures (NQ, ES): 17:00-16:00 CT with CME's holiday hours."""
    return ExchangeSessions("CMES", CME_TZ, daily_close=(16, 0))


def us_equity_calendar(extra_closures: frozenset[date] = frozenset()) -> MarketCalendar:
    return MarketCalendar(us_equity_sessions(), extra_closures)


def cme_equity_calendar(extra_closures: frozenset[date] = frozenset()) -> MarketCalendar:
    return MarketCalendar(cme_equity_sessions(), extra_closures)


def always_open_calendar() -> MarketCalendar:
    """Crypto: no closures, no sessions to end."""
    return MarketCalendar(AlwaysOpen())


def weekday_calendar(
    window: tuple[tuple[int, int], tuple[int, int]] | None, tz: str,
    exchange: ExchangeSessions | None = None, extra_closures: frozenset[date] = frozenset(),
) -> MarketCalendar:  # fmt: skip
    """A window on weekdays in `tz` (None: always open), optionally under an exchange's days."""
    if window is None:
        return always_open_calendar()
    return MarketCalendar(WeekdaySessions(window, tz, exchange), extra_closures)


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
