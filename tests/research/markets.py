"""Markets for the optimize tests: a generated one with a known best stop buffer, and NQ."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from slob_tui.core.models import Candle
from tests.unit.strategy.helpers import edit, worked_example

DAYS = [date(2026, 1, d) for d in (6, 7, 8, 9, 12, 13, 14, 15)]
SPIKE = 3.5  # points above LIQ #2's high: a stop buffer of at most this is stopped out
NQ_FILE = "nq_1min_20231119_20231204_et.csv"


def spiky_days() -> list[Candle]:
    """The worked example on eight days, each with a spike 3.5 points above LIQ #2's high.

    A stop buffer <= 3.5 loses 1 R every day; any wider one wins 71 / (20 + buffer) R every
    day, so the best buffer is the narrowest one above 3.5.
    """
    out: list[Candle] = []
    for d in DAYS:
        out += edit(worked_example(d=d), "16:40", high=25592.0 + SPIKE)
    return out


def write_csv(candles: list[Candle], path: Path) -> Path:
    """A candle file in UTC, as `slob-tui` reads one with `--tz UTC`."""
    rows = ["timestamp,open,high,low,close,volume"]
    for c in candles:
        stamp = datetime.fromtimestamp(c.start // 10**9, UTC).strftime("%Y-%m-%d %H:%M:%S")
        rows.append(f"{stamp},{c.open},{c.high},{c.low},{c.close},{c.volume}")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path
