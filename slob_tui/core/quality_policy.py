"""The data-quality validator's thresholds: one frozen object, the `SLOB_DQ_*` settings.

In core rather than beside the validator so that `slob_tui.config` can read it from the
environment without importing the engine; every field here is documented with its default in
`.env.template`.
"""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slob_tui.errors import ConfigError


class QualitySettingsError(ConfigError):
    """A SLOB_DQ_* setting is out of range; the message names it."""


@dataclass(frozen=True)
class QualityPolicy:
    """Thresholds of the validator; each is the `SLOB_DQ_<NAME>` setting (see .env.template).

    A robust deviation is max(1.4826 x MAD, `min_deviation_bps` of the median) of the recent
    sampled prices of the symbol, so a feed that prints one price all day still has a scale.
    The floor is 5 bps: a quiet 1-minute market (the demo, a calm index future) often has a
    MAD of a point or two, and a sweep of the recent range by 10-20 bps is a normal move, not a
    bad print; a fat finger (75 deviations = 3.75% at the floor) is still far outside it.
    The median is refreshed at every new minute and whenever a tick falls outside the band
    (a sort of 16 floats), so the clean branch never counts or samples.
    """

    suspect_deviations: float = 8.0  # flag (counted, still in the candle) beyond this many
    reject_deviations: float = 75.0  # drop as a fat finger beyond this many
    min_deviation_bps: float = 5.0  # floor of one deviation, basis points of the median
    price_window: int = 16  # sampled prices the median and MAD are taken over
    sample_every: int = 8  # one price in this many in-band ticks enters the window
    min_samples: int = 8  # no outlier check before this many samples
    level_shift_ticks: int = 3  # consecutive same-side outliers that re-anchor the median
    max_future_s: float = 30.0  # ahead of the engine clock (live only) means a bad timestamp
    recent_minutes: int = 3  # minutes of accepted ticks kept, before the current one, for
    # trade corrections (an older correction is reported, not applied); 0 keeps none at all
    volume_spike_factor: float = 10.0  # candle volume above this x the recent median volume
    volume_window: int = 60  # closed candles that median is taken over
    volume_min_candles: int = 20  # no spike check before this many candles
    frozen_minutes: int = 15  # consecutive flat candles at one price while the market is open
    market_hours: str = "09:30-16:00"  # local open-close on weekdays, or "always" (crypto)
    market_tz: str = "America/New_York"
    holidays: str = "auto"  # "us": US equity holidays/early closes; "cme": CME Globex's (NQ,
    # ES); "none"; "auto": "us" in New York time (`market_tz`), else "none"
    max_examples: int = 5  # worst examples kept per kind for reports

    def __post_init__(self) -> None:
        checks = {
            "suspect_deviations": self.suspect_deviations > 0,
            "reject_deviations": self.reject_deviations >= self.suspect_deviations,
            "min_deviation_bps": self.min_deviation_bps > 0,
            "price_window": self.price_window >= 3,
            "sample_every": self.sample_every >= 1,
            "min_samples": 1 <= self.min_samples <= self.price_window,
            "level_shift_ticks": self.level_shift_ticks >= 1,
            "max_future_s": self.max_future_s > 0,
            "recent_minutes": self.recent_minutes >= 0,
            "volume_spike_factor": self.volume_spike_factor > 1,
            "volume_window": self.volume_window >= 3,
            "volume_min_candles": 1 <= self.volume_min_candles <= self.volume_window,
            "frozen_minutes": self.frozen_minutes >= 2,
            "max_examples": self.max_examples >= 0,
            "holidays": self.holidays in ("auto", "us", "cme", "none"),
        }
        for name, ok in checks.items():
            if not ok:
                raise QualitySettingsError(
                    f"SLOB_DQ_{name.upper()}: {getattr(self, name)!r} is out of range"
                )
        parse_market_hours(self.market_hours, self.market_tz)


def parse_market_hours(text: str, tz: str) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """'HH:MM-HH:MM' (weekdays, local to `tz`) or 'always'; None means always open."""
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise QualitySettingsError(f"SLOB_DQ_MARKET_TZ: unknown time zone {tz!r}") from exc
    if text.strip().lower() in ("always", "24/7", ""):
        return None
    try:
        a, b = text.split("-")
        (h1, m1), (h2, m2) = (tuple(int(x) for x in s.strip().split(":")) for s in (a, b))
    except ValueError as exc:
        raise QualitySettingsError(
            f"SLOB_DQ_MARKET_HOURS must be HH:MM-HH:MM or always, got {text!r}"
        ) from exc
    if not (0 <= h1 < 24 and 0 <= m1 < 60 and 0 <= h2 <= 24 and 0 <= m2 < 60):
        raise QualitySettingsError(f"SLOB_DQ_MARKET_HOURS: bad time in {text!r}")
    if (h2, m2) <= (h1, m1):
        raise QualitySettingsError(f"SLOB_DQ_MARKET_HOURS: close must be after open in {text!r}")
    return (h1, m1), (h2, m2)
