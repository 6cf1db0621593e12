"""Candle ranges as pandas DataFrames, built column-wise by numpy straight from the cursor.

The old path (aiosqlite rows -> `DataFrame.from_records`) paid a thread hop per fetch and pandas'
per-row record handling. Here one blocking function runs in a worker thread on a connection of its
own: `np.fromiter` consumes the cursor into one structured array (no list of 350 k tuples kept),
whose fields become the frame's columns. In WAL mode that connection sees the last committed
state and never waits for the store's writer.

Not ADBC/Arrow: `adbc-driver-sqlite` links its own copy of SQLite, and two SQLite copies in one
process on the same file break each other's POSIX locks (a reader closing its file drops the
writer's locks); a test run with it hung the writer. Imported only by `CandleStore.range`, so the
engine never loads pandas.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

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


def range_sql(where: str) -> str:
    """One symbol's candles, oldest first; `where` adds `AND ...` bounds on the primary key."""
    return f"SELECT {_SELECT} FROM candles WHERE symbol = ?{where} ORDER BY timestamp"


def read_frame(path: Path, symbol: str, where: str, params: Sequence[Any]) -> pd.DataFrame:
    """The candles as a DataFrame indexed by UTC start (blocking: run it in a thread).

    Raises `sqlite3.Error` when the file cannot be read.
    """
    conn = sqlite3.connect(path)
    try:
        rows = np.fromiter(conn.execute(range_sql(where), [symbol, *params]), _ROW)
    finally:
        conn.close()
    return build_frame(symbol, rows)


def build_frame(symbol: str, rows: np.ndarray) -> pd.DataFrame:
    """DataFrame from a structured array of rows, indexed by the start as UTC time."""
    data: dict[str, Any] = {"symbol": np.full(len(rows), symbol, dtype=object)}
    for name, dtype in FRAME_DTYPES.items():
        data[name] = rows[name].astype(dtype)
    index = pd.DatetimeIndex(pd.to_datetime(data["ts_ns"], unit="ns", utc=True), name="timestamp")
    return pd.DataFrame(data, index=index, copy=False)
