"""Candle ranges as pandas DataFrames, built column-wise by numpy with no Python object per value.

Why not rows: the sqlite3 module makes a Python object per value and drops and retakes the GIL per
row and per column. For 350 k rows x 9 columns that cost ~0.3 s; the SQLite scan itself ~0.06 s.

Instead one aggregate query per part returns each column as one text of comma-separated integers
(`group_concat`, built by SQLite in C), which `np.fromstring` parses in C:
- `ts_ns` as is; `tick_count` and both flags packed into one integer (tick_count * 4 + flags).
- a float column x as m = CAST(x * 2**k AS INTEGER), with k per column from the first and last rows
  (the fraction bits they need; less if m could come near 2**62). Scaling by a power of two is
  exact, so x == m * 2**-k exactly whenever x * 2**k is an integer, and the same query checks that
  for every row (SQLite compares an integer with a real exactly). If any value fails (more fraction
  bits than the sample had, an infinity, a value of another type), that part is read row by row as
  before, in the same read transaction. Floats never travel as SQLite text: its float printing
  (`%!.15g` in CAST, json, quote) does not round-trip every double.

A range spanning more than SPLIT_SPAN_NS is read as two halves, by two connections in two threads:
an aggregate runs inside one sqlite3_step, during which the sqlite3 module releases the GIL, so the
halves use two cores. Both connections open their read transactions on one snapshot (no commit
between: `PRAGMA data_version` on a third connection unchanged), so the frame never mixes two
states of the file. In WAL mode none of them waits for the store's writer.

Not ADBC/Arrow: `adbc-driver-sqlite` links its own copy of SQLite, and two SQLite copies in one
process on the same file break each other's POSIX locks (a reader closing its file drops the
writer's locks); a test run with it hung the writer. Imported only by `CandleStore.range`, so the
engine never loads pandas.
"""

from __future__ import annotations

import math
import sqlite3
import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from slob_tui.storage.candle_rows import iso_utc
from slob_tui.storage.database import read_only_uri

# The frame's columns after `symbol`, in order, with their dtypes.
FRAME_DTYPES: dict[str, Any] = {
    "ts_ns": np.int64,
    "open": np.float64,
    "high": np.float64,
    "low": np.float64,
    "close": np.float64,
    "volume": np.float64,
    "tick_count": np.int64,
    "gap_filled": np.bool_,
    "backfilled": np.bool_,
}
# One SQLite row as numpy reads it: flags arrive as integers (0/1) and become bool afterwards.
_ROW = np.dtype([(name, np.int64 if dt is np.bool_ else dt) for name, dt in FRAME_DTYPES.items()])
_SELECT = ", ".join(FRAME_DTYPES)
# A piece of a frame: a structured array of `_ROW` rows, or a dict of column arrays.
FramePart = Mapping[str, np.ndarray] | np.ndarray
_FLOATS = ("open", "high", "low", "close", "volume")

SPLIT_SPAN_NS = 2 * 86_400 * 1_000_000_000  # shorter ranges: one part, no second thread
_SAMPLE_ROWS = 32  # first and last rows of the range that choose each float column's scale
_HEADROOM_BITS = 4  # m stays below 2**58 for the sample's largest value: 16x room for the rest
# A sample needing at most _GRID_BITS fraction bits is on a binary tick grid (1/4, 1/32, ...): k is
# what it needs plus _SPARE_BITS for a finer tick later (each extra bit costs digits: k = 44
# instead of 2 read the 350 k NQ rows ~15% slower). Else (cents, decimals) every value needs its
# whole significand, and k is as large as the headroom allows.
_GRID_BITS = 20
_SPARE_BITS = 4
_SNAPSHOT_TRIES = 3


def range_sql(where: str) -> str:
    """One symbol's candles, oldest first; `where` adds `AND ...` bounds on the primary key."""
    return f"SELECT {_SELECT} FROM candles WHERE symbol = ?{where} ORDER BY timestamp"


@cache
def _columns_sql(where: str) -> str:
    """Row count, each column as comma-separated integers, 1 if every float was exact, and the
    largest value of the row's number columns (a number unless one of them holds text).

    The inner query scales each float once (y = x * 2**k; parameters: the five 2**k, then the
    range's); the outer one casts and compares (13% less CPU than scaling twice).
    """
    scaled = ", ".join(f"{c} * ? AS y_{c}" for c in _FLOATS)
    # Arithmetic reads text as 0, so text or a blob in a number column would pass as 0. SQLite
    # orders numbers before text before blobs: the largest value of the row's columns is a
    # number only if they all are (one max() per row, far cheaper than typeof() per column).
    top = f"max({', '.join((*_FLOATS, 'tick_count', 'gap_filled', 'backfilled'))})"
    rows = (
        "SELECT ts_ns, tick_count * 4 + (gap_filled <> 0) * 2 + (backfilled <> 0) AS packed, "
        f"{scaled}, {top} AS top FROM candles WHERE symbol = ?{where} ORDER BY timestamp"
    )
    texts = ", ".join(f"group_concat(CAST(y_{c} AS INTEGER))" for c in _FLOATS)
    exact = " AND ".join(f"CAST(y_{c} AS INTEGER) = y_{c}" for c in _FLOATS)
    return (
        f"SELECT count(*), group_concat(ts_ns), group_concat(packed), {texts}, min({exact}),"
        f" max(top) FROM ({rows})"
    )


def _sample_sql(where: str, order: str) -> str:
    return (
        f"SELECT ts_ns, {', '.join(_FLOATS)} FROM candles WHERE symbol = ?{where}"
        f" ORDER BY timestamp {order} LIMIT {_SAMPLE_ROWS}"
    )


def read_frame(path: Path, symbol: str, where: str, params: Sequence[Any]) -> pd.DataFrame:
    """The candles as a DataFrame indexed by UTC start (blocking: run it in a thread).

    `where` and `params` are `CandleStore._bounds`: `AND ...` terms on the time columns.
    Raises `sqlite3.Error` when the file cannot be read.
    """
    main = _connect(path)
    try:
        version = _data_version(main)
        args = [symbol, *params]
        head = main.execute(_sample_sql(where, "ASC"), args).fetchall()
        if not head:
            return build_frame(symbol, [np.empty(0, _ROW)])
        tail = main.execute(_sample_sql(where, "DESC"), args).fetchall()
        scales = _scale_bits(head + tail)
        first, last = head[0][0], tail[0][0]
        parts = None
        if last - first >= SPLIT_SPAN_NS:
            mid = first + (last - first + 1) // 2  # first < mid <= last: no half is empty
            parts = _read_halves(path, main, version, symbol, where, params, mid, scales)
        if parts is None:
            parts = [_read_part(main, symbol, where, params, scales)]
    finally:
        main.close()
    return build_frame(symbol, parts)


def _connect(path: Path) -> sqlite3.Connection:
    # Read-only (the database's writer is the only connection that writes the file).
    # Autocommit: transactions are opened explicitly. One connection per thread, but a half's
    # connection is opened here and handed to the worker thread.
    return sqlite3.connect(
        read_only_uri(path), uri=True, isolation_level=None, check_same_thread=False
    )


def _data_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA data_version").fetchone()[0])


def _read_halves(
    path: Path,
    main: sqlite3.Connection,
    version: int,
    symbol: str,
    where: str,
    params: Sequence[Any],
    mid: int,
    scales: list[int] | None,
) -> list[FramePart] | None:
    """Both halves in parallel on one snapshot; None if commits kept landing (read in one part)."""
    conns = [_connect(path), _connect(path)]
    try:
        for _ in range(_SNAPSHOT_TRIES):
            for conn in conns:
                conn.execute("BEGIN")
                conn.execute("SELECT 1 FROM candles LIMIT 1").fetchall()  # fixes the snapshot
            now = _data_version(main)
            if now == version:
                break
            for conn in conns:
                conn.execute("ROLLBACK")
            version = now
        else:
            return None
        # The half's bounds come first: SQLite seeks with the first of several range terms on
        # `timestamp` (measured: appended, the later half scanned from the range's start).
        mid_iso = iso_utc(mid)
        halves = [
            (f" AND timestamp <= ? AND ts_ns < ?{where}", [mid_iso, mid, *params]),
            (f" AND timestamp >= ? AND ts_ns >= ?{where}", [mid_iso, mid, *params]),
        ]
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="candle-frame") as pool:
            later = pool.submit(_read_columns, conns[1], symbol, *halves[1], scales)
            got = [_read_columns(conns[0], symbol, *halves[0], scales), later.result()]
        # A half the fast path refused is read row by row here, not in the worker: two threads
        # both making Python objects would only trade the GIL back and forth.
        return [
            cols if cols is not None else _read_rows(conn, symbol, *half)
            for cols, conn, half in zip(got, conns, halves, strict=True)
        ]
    finally:
        for conn in conns:
            conn.close()


def _read_part(
    conn: sqlite3.Connection,
    symbol: str,
    where: str,
    params: Sequence[Any],
    scales: list[int] | None,
) -> FramePart:
    cols = _read_columns(conn, symbol, where, params, scales)
    return cols if cols is not None else _read_rows(conn, symbol, where, params)


def _read_rows(
    conn: sqlite3.Connection, symbol: str, where: str, params: Sequence[Any]
) -> np.ndarray:
    """The general path: one structured array row by row from the cursor."""
    return np.fromiter(conn.execute(range_sql(where), [symbol, *params]), _ROW)


def _fraction_bits(x: float) -> int:
    """How many bits after the binary point `x` needs: x * 2**bits is an integer."""
    if x == 0.0:
        return 0
    mantissa, exp = math.frexp(x)  # x = mantissa * 2**exp, 0.5 <= |mantissa| < 1
    n = abs(int(mantissa * 2.0**53))  # the 53-bit significand, exactly
    return max(0, 53 - exp - ((n & -n).bit_length() - 1))


def _scale_bits(sample: list[tuple[Any, ...]]) -> list[int] | None:
    """Per float column the k of m = x * 2**k, from sample rows (ts_ns, open, ..., volume)."""
    out = []
    for i in range(1, 1 + len(_FLOATS)):
        values = [row[i] for row in sample]
        if not all(type(v) is float and math.isfinite(v) for v in values):
            return None  # not plain finite reals: leave it to the row path
        largest = max(abs(v) for v in values)
        room = 62 - _HEADROOM_BITS - (math.frexp(largest)[1] if largest else 0)
        need = max(_fraction_bits(v) for v in values)
        k = min(need + _SPARE_BITS, room) if need <= _GRID_BITS else room
        out.append(max(-1000, min(k, 1000)))  # 2.0**k stays a normal double
    return out


def _parse(text: str | None, n: int) -> np.ndarray | None:
    if text is None:
        return None
    try:
        with warnings.catch_warnings():
            # numpy 1.x only warns at a value that is not an integer and returns the prefix
            # before it: that prefix may even have the right length when the last one is bad
            warnings.simplefilter("error", DeprecationWarning)
            values = np.fromstring(text, dtype=np.int64, sep=",")
    except (ValueError, DeprecationWarning):
        return None
    return values if len(values) == n else None


def _read_columns(
    conn: sqlite3.Connection,
    symbol: str,
    where: str,
    params: Sequence[Any],
    scales: list[int] | None,
) -> dict[str, np.ndarray] | None:
    """The columns through one aggregate query; None when a value cannot take this path."""
    if scales is None:
        return None
    factors = [2.0**k for k in scales]
    args = [*factors, symbol, *params]
    try:
        n, ts_text, packed_text, *float_texts, exact, top = conn.execute(
            _columns_sql(where), args
        ).fetchone()
    except sqlite3.DataError:  # a text longer than SQLite's limit (~1 GB): huge ranges
        return None
    if exact != 1 or type(top) not in (int, float):  # inexact, not a number, or no rows
        return None
    ts_ns, packed, *parsed = (_parse(t, n) for t in (ts_text, packed_text, *float_texts))
    scaled = [m for m in parsed if m is not None]
    if ts_ns is None or packed is None or len(scaled) < len(parsed):
        return None
    if n > 1 and not (ts_ns[1:] > ts_ns[:-1]).all():
        return None  # group_concat's order is SQLite's choice; it must be the scan's order
    cols = {
        "ts_ns": ts_ns,
        "tick_count": packed >> 2,
        "gap_filled": (packed & 2) != 0,
        "backfilled": (packed & 1) != 0,
    }
    for name, m, k in zip(_FLOATS, scaled, scales, strict=True):
        cols[name] = m.astype(np.float64) * 2.0**-k  # exact: m == x * 2**k was checked
    return cols


def build_frame(symbol: str, parts: Sequence[FramePart]) -> pd.DataFrame:
    """DataFrame from parts in time order (structured row arrays or dicts of columns)."""
    data: dict[str, Any] = {}
    for name, dtype in FRAME_DTYPES.items():
        pieces = [part[name] for part in parts]
        column = np.concatenate(pieces) if len(pieces) > 1 else pieces[0]
        data[name] = np.ascontiguousarray(column, dtype=dtype)
    n = len(data["ts_ns"])
    data = {"symbol": np.full(n, symbol, dtype=object), **data}
    index = pd.DatetimeIndex(pd.to_datetime(data["ts_ns"], unit="ns", utc=True), name="timestamp")
    return pd.DataFrame(data, index=index, copy=False)
