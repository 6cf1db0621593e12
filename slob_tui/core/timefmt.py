"""Engine times (ns since the epoch, UTC) as people read them: one named zone per surface.

The console and the headless log both show times in the zone the user chose (`--tz`, else
`SLOB_TZ`), say once which zone that is, and never print a raw nanosecond integer.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slob_tui.errors import UsageError

NS_PER_S = 1_000_000_000
# An int this large in an event's data is a time in ns (1973 onwards), not a count or a price.
MIN_TIME_NS = 10**17
TIME_KEYS = ("ts", "time", "start", "end", "from", "to", "at")


@lru_cache(maxsize=16)
def zone(name: str) -> ZoneInfo:
    """The zone named `name`; an unknown name is a one-line `UsageError`."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise UsageError(f"--tz {name}: unknown time zone (try America/New_York or UTC)") from exc


def local(ns: int, tz: str) -> datetime:
    return datetime.fromtimestamp(ns / NS_PER_S, UTC).astimezone(zone(tz))


def hhmm(ns: int, tz: str) -> str:
    return local(ns, tz).strftime("%H:%M")


def hhmmss(ns: int, tz: str) -> str:
    return local(ns, tz).strftime("%H:%M:%S")


def zone_label(tz: str, at_ns: int | None = None) -> str:
    """A short name for the zone as people say it: `New York (EST)`, `UTC`."""
    place = tz.rsplit("/", 1)[-1].replace("_", " ")
    if at_ns is None:
        return place
    abbrev = local(at_ns, tz).strftime("%Z")
    return place if abbrev in ("", place) else f"{place} ({abbrev})"


def is_time_key(key: str) -> bool:
    return key in TIME_KEYS or key.endswith(tuple(f"_{k}" for k in TIME_KEYS))


def human(key: str, value: Any, tz: str) -> Any:
    """`value` as shown: a time in ns under a time-like key becomes HH:MM:SS in `tz`."""
    if isinstance(value, int) and not isinstance(value, bool) and is_time_key(key) \
            and value >= MIN_TIME_NS:  # fmt: skip
        return hhmmss(value, tz)
    return value
