"""The consolidation after LIQ #1: internal HIGH and LOW, their confirmation, and the quality score.

Everything here works in "SHORT space": the HIGH is the extreme that LIQ #2 will sweep. A LONG
candidate feeds negated prices (high' = -low, low' = -high), which turns every LONG rule into the
SHORT rule exactly; the range is divided by `abs(HIGH)` so it stays `(HIGH - LOW) / LOW` for LONG.

Choice where the spec is silent: the LOW is the lowest low of the candles strictly after the
HIGH's candle (the HIGH candle's own low is not a LOW candidate). This keeps a restart at a wide
candle from restarting again on the same candle.
"""

from __future__ import annotations

from collections.abc import Sequence

INF = float("inf")

# Results of one `update` step.
NOTHING = 0
NEW_HIGH = 1
NEW_LOW = 2
RESTART = 3


class IncrementalConsolidationDetector:
    """HIGH/LOW tracking for one candidate, O(1) per candle and no allocation per candle."""

    __slots__ = (
        "high_confirm",
        "low_confirm",
        "range_min",
        "range_max",
        "hi",
        "hi_idx",
        "hi_conf",
        "lo",
        "lo_idx",
        "lo_conf",
        "lo_conf_idx",
    )

    def __init__(
        self,
        high_confirm: int = 5,
        low_confirm: int = 3,
        range_min_pct: float = 0.10,
        range_max_pct: float = 0.50,
    ) -> None:
        self.high_confirm = high_confirm
        self.low_confirm = low_confirm
        self.range_min = range_min_pct
        self.range_max = range_max_pct
        self.clear()

    def clear(self) -> None:
        """Forget HIGH and LOW: the next candle's high becomes the HIGH candidate."""
        self.hi = -INF
        self.hi_idx = -1
        self.hi_conf = False
        self.lo = INF
        self.lo_idx = -1
        self.lo_conf = False
        self.lo_conf_idx = -1

    def _set_high(self, k: int, high: float) -> None:
        self.hi = high
        self.hi_idx = k
        self.hi_conf = False
        self.lo = INF
        self.lo_idx = -1
        self.lo_conf = False
        self.lo_conf_idx = -1

    def update(self, k: int, high: float, low: float) -> int:
        """Apply candle `k`: higher high, lower low or range break, then confirmations."""
        result = NOTHING
        if high > self.hi:
            self._set_high(k, high)
            return NEW_HIGH
        if low < self.lo:
            hi = self.hi
            if (hi - low) / abs(hi) * 100.0 > self.range_max:
                self._set_high(k, high)
                return RESTART
            self.lo = low
            self.lo_idx = k
            self.lo_conf = False
            result = NEW_LOW
        if not self.hi_conf and k - self.hi_idx >= self.high_confirm:
            self.hi_conf = True
        if (
            self.hi_conf
            and not self.lo_conf
            and self.lo_idx >= 0
            and k - self.lo_idx >= self.low_confirm
        ):
            self.lo_conf = True
            self.lo_conf_idx = k
        return result

    def range_pct(self) -> float | None:
        if self.lo_idx < 0:
            return None
        return (self.hi - self.lo) / abs(self.hi) * 100.0

    def ready(self, k: int, consol_min: int) -> bool:
        """Both confirmed, the range inside its bounds, and at least `consol_min` candles."""
        if not (self.hi_conf and self.lo_conf) or k - self.hi_idx + 1 < consol_min:
            return False
        r = (self.hi - self.lo) / abs(self.hi) * 100.0
        return self.range_min <= r <= self.range_max

    def state(self) -> list[float | int | bool]:
        return [
            self.hi,
            self.hi_idx,
            self.hi_conf,
            self.lo,
            self.lo_idx,
            self.lo_conf,
            self.lo_conf_idx,
        ]

    def load(self, s: Sequence[float | int | bool]) -> None:
        (
            self.hi,
            self.hi_idx,
            self.hi_conf,
            self.lo,
            self.lo_idx,
            self.lo_conf,
            self.lo_conf_idx,
        ) = (float(s[0]), int(s[1]), bool(s[2]), float(s[3]), int(s[4]), bool(s[5]), int(s[6]))


def quality_score(
    highs: Sequence[float],
    lows: Sequence[float],
    closes: Sequence[float],
    volumes: Sequence[float],
    high: float,
    low: float | None,
) -> float:
    """Q = 0.35 T + 0.25 V + 0.20 P + 0.20 O over the window (SHORT space), rounded to 1e-6.

    Computed only when shown or frozen at LIQ #2, never per candle. `low` is None while no
    LOW exists yet: P is then 0.5 and the midpoint is the HIGH.
    """
    n = len(highs)
    if n == 0:
        return 0.0
    h = n // 2
    tight = 0.0
    if h >= 2:
        r1 = max(highs[:h]) - min(lows[:h])
        r2 = max(highs[h:]) - min(lows[h:])
        if r1 > 0:
            tight = min(max(1.0 - r2 / r1, 0.0), 1.0)
    vol = 0.3
    if n >= 10 and h > 0:
        first = sum(volumes[:h]) / h
        second = sum(volumes[h:]) / (n - h)
        if second < first:
            vol = 1.0
    if low is None or high == low:
        pos = 0.5
        mid = high if low is None else (high + low) / 2
    else:
        pos = 1.0 if (closes[-1] - low) / (high - low) > 0.7 else 0.5
        mid = (high + low) / 2
    crossings = 0
    prev = closes[0] - mid
    for c in closes[1:]:
        cur = c - mid
        if (cur > 0 > prev) or (cur < 0 < prev):
            crossings += 1
        prev = cur
    osc = min(crossings / 4, 1.0)
    return round(0.35 * tight + 0.25 * vol + 0.20 * pos + 0.20 * osc, 6)
