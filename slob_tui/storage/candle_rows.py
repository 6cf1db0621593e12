"""The candle store's write path: a Candle as a row, and the multi-row upsert that writes them.

Kept apart from `candles.py` (the `CandleStore`: connections, the writer task, reads) because
this is the hot part of writing, tuned on its own: the fixed-width ISO text of a start time
(`iso_utc`, also used by the reads' range bounds and `candle_frames`), the row tuples, and one
prepared multi-row INSERT ... ON CONFLICT statement fed in padded chunks in one transaction.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import sqlite3
from collections.abc import Iterator, Sequence
from itertools import chain
from operator import attrgetter
from typing import Any

from slob_tui.core.models import Candle

_INSERT = """
INSERT INTO candles (symbol, timestamp, open, high, low, close, volume, tick_count, gap_filled,
                     backfilled, ts_ns)
VALUES """
_ON_CONFLICT = """
ON CONFLICT (symbol, timestamp) DO UPDATE SET
    open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
    volume = excluded.volume, tick_count = excluded.tick_count,
    gap_filled = excluded.gap_filled, backfilled = excluded.backfilled, ts_ns = excluded.ts_ns
"""
_VALUES = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_ROW_PARAMS = _VALUES.count("?")

# Candles per INSERT statement: one multi-row VALUES step per chunk binds and steps faster than a
# step per row. The last chunk is padded by repeating its last candle, so one statement of one
# size is ever prepared (SQLite holds ~1.2 KB per row of a prepared statement: a statement per
# remainder size would keep MBs in the statement cache). Within a statement a later row with the
# same key wins, as with executemany, and a repeated row rewrites identical values.
MAX_ROWS_PER_STATEMENT = 64

_EPOCH = dt.date(1970, 1, 1)
_day_prefix: dict[int, str] = {}
_HHMM = [f"{m // 60:02d}:{m % 60:02d}" for m in range(1440)]
_fields = attrgetter(
    "symbol", "start", "open", "high", "low", "close", "volume", "tick_count", "gap_filled",
    "backfilled",
)  # fmt: skip


def iso_utc(ns: int) -> str:
    """Fixed-width ISO 8601 UTC text of a time in ns (ms resolution).

    Candle starts are whole minutes, so the common case is two table lookups and a concat
    (writing is bound by this and SQLite, ~1 us per candle matters at 300 k candles/s).
    """
    sec, sub = divmod(ns, 1_000_000_000)
    day, sod = divmod(sec, 86_400)
    prefix = _day_prefix.get(day)
    if prefix is None:
        prefix = _day_prefix[day] = (_EPOCH + dt.timedelta(days=day)).isoformat() + "T"
    minute, s = divmod(sod, 60)
    if s == 0 and sub < 1_000_000:
        return prefix + _HHMM[minute] + ":00.000Z"
    return f"{prefix}{_HHMM[minute]}:{s:02d}.{sub // 1_000_000:03d}Z"


def _row(c: Candle) -> tuple[Any, ...]:
    sym, start, o, h, lo, cl, v, n, gf, bf = _fields(c)
    return (sym, iso_utc(start), o, h, lo, cl, v, n, gf, bf, start)


@functools.cache
def _rows_per_statement() -> int:
    """Chunk size within this SQLite build's bound-parameter limit (999 before 3.32)."""
    with contextlib.closing(sqlite3.connect(":memory:")) as conn:
        limit = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    return max(1, min(MAX_ROWS_PER_STATEMENT, limit // _ROW_PARAMS))


@functools.cache
def _upsert_sql(rows: int) -> str:
    return _INSERT + ", ".join([_VALUES] * rows) + _ON_CONFLICT


def _chunks(candles: Sequence[Candle], size: int) -> Iterator[list[Any]]:
    """Each `size` candles' rows as one flat parameter list, the last chunk padded."""
    for i in range(0, len(candles), size):
        part = candles[i : i + size]
        params = list(chain.from_iterable(map(_row, part)))
        if len(part) < size:
            params += _row(part[-1]) * (size - len(part))
        yield params


def _write(wdb: sqlite3.Connection, candles: Sequence[Candle]) -> None:
    """The statements of one batch, inside the transaction the database's writer opened (a
    failure, a bad candle mid-batch too, rolls all of it back there)."""
    size = _rows_per_statement()
    wdb.executemany(_upsert_sql(size), _chunks(candles, size))
