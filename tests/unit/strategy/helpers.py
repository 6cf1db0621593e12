"""Candle builders for strategy tests: the author's worked example and its edits."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from zoneinfo import ZoneInfo

from slob_tui.core.models import Candle

STO = ZoneInfo("Europe/Stockholm")
DAY = date(2026, 1, 6)  # a Tuesday


def sto_ns(hh: int, mm: int, d: date = DAY) -> int:
    return int(datetime(d.year, d.month, d.day, hh, mm, tzinfo=STO).timestamp()) * 10**9


def hm(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, STO).strftime("%H:%M")


def _rows() -> list[tuple[str, float | None, float, float, float]]:
    """(HH:MM, open or None for the previous close, high, low, close) per minute."""
    rows: list[tuple[str, float | None, float, float, float]] = []

    def at(minutes: int) -> str:
        return f"{minutes // 60:02d}:{minutes % 60:02d}"

    t = 9 * 60
    # reference session 09:00-15:29: REF_H 25,440, REF_L 25,300
    while t < 15 * 60 + 30:
        i = t - 9 * 60
        low = 25300.0 if i == 100 else 25400.0
        rows.append(
            (
                at(t),
                25420.0 if i == 0 else None,
                25440.0 if i in (200, 389) else 25430.0,
                low,
                25438.0 if t == 15 * 60 + 29 else 25420.0,
            )
        )
        t += 1
    rows.append(("15:30", 25440.0, 25452.0, 25435.0, 25445.0))  # LIQ #1
    for m in range(15):  # 15:31-15:45 rising
        h = 25455.0 + 4 * m
        rows.append((at(15 * 60 + 31 + m), None, h, h - 12, h - 2))
    rows += [
        ("15:46", None, 25509.0, 25504.0, 25506.0),
        ("15:47", None, 25510.0, 25506.0, 25507.0),
        ("15:48", None, 25508.0, 25504.0, 25505.0),
        ("15:49", None, 25507.0, 25502.0, 25506.0),
    ]
    for i in range(11):  # 15:50-16:00 rising towards the HIGH
        low = 25505.0 + 6 * i
        rows.append((at(15 * 60 + 50 + i), None, low + 10, low, low + 7))
    rows.append(("16:01", None, 25587.0, 25570.0, 25580.0))  # internal HIGH
    for i in range(9):  # 16:02-16:10 drifting down
        low = 25565.0 - 2 * i
        rows.append((at(16 * 60 + 2 + i), None, 25582.0 - 2 * i, low, low + 5))
    rows.append(("16:11", None, 25560.0, 25542.0, 25555.0))  # internal LOW
    for i in range(13):  # 16:12-16:24 back up, below the HIGH
        low = 25548.0 + 2 * i
        rows.append((at(16 * 60 + 12 + i), None, low + 12, low, low + 8))
    rows.append(("16:25", 25577.4, 25587.0, 25577.0, 25587.0))  # no-wick candle
    rows.append(("16:26", 25586.0, 25592.0, 25576.0, 25578.0))  # LIQ #2
    for i in range(4):  # 16:27-16:30 above the NW low
        rows.append((at(16 * 60 + 27 + i), None, 25585.0, 25578.0, 25580.0))
    rows.append(("16:31", None, 25582.0, 25570.0, 25572.0))  # trigger
    c = 25572.0
    for i in range(24):  # 16:32-16:55 falling to the target
        nc = 25572.0 - 3 * (i + 1)
        rows.append((at(16 * 60 + 32 + i), None, c + 1, nc - 1, nc))
        c = nc
    for i in range(5):  # 16:56-17:00 quiet
        rows.append((at(16 * 60 + 56 + i), None, c + 2, c - 2, c))
    return rows


def worked_example(symbol: str = "NQ", d: date = DAY) -> list[Candle]:
    """The 2026-01-06 example of docs/STRATEGY.md as 1-minute candles (Stockholm times)."""
    out: list[Candle] = []
    prev_close = None
    for stamp, o, h, low, c in _rows():
        hh, mm = map(int, stamp.split(":"))
        op = o if o is not None else prev_close
        assert op is not None and low <= op <= h and low <= c <= h, stamp
        out.append(Candle(symbol, sto_ns(hh, mm, d), op, h, low, c, 100.0))
        prev_close = c
    return out


def find(candles: list[Candle], stamp: str) -> int:
    hh, mm = map(int, stamp.split(":"))
    ns = sto_ns(hh, mm, datetime.fromtimestamp(candles[0].start / 1e9, STO).date())
    return next(i for i, c in enumerate(candles) if c.start == ns)


def edit(candles: list[Candle], stamp: str, **fields: float) -> list[Candle]:
    out = list(candles)
    i = find(out, stamp)
    out[i] = replace(out[i], **fields)
    return out


def mirror(candles: list[Candle], pivot: float = 25500.0) -> list[Candle]:
    """Prices reflected around `pivot`: every SHORT rule becomes the LONG rule."""
    return [
        replace(
            c,
            open=2 * pivot - c.open,
            high=2 * pivot - c.low,
            low=2 * pivot - c.high,
            close=2 * pivot - c.close,
        )
        for c in candles
    ]


def run(tracker, candles: list[Candle]) -> list:  # noqa: ANN001
    events = []
    for c in candles:
        events.extend(tracker.on_candle(c))
    return events
