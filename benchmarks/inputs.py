"""Inputs built before any timing: the SPY ticks as tuples and arrays, candles, Alpaca frames.

The suite loads the real files itself (pandas, whole file: they are small) so that the inputs of
ours and of the peers come from one parse; loading is never part of a timed figure.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.suite import Context, Skip

SPY_TICKS = "spy_trades_20131007_et.csv.gz"
NQ_CANDLES = "nq_1min_20231119_20231204_et.csv"
BTC_CANDLES = "btcperp_1min_20211231_20220201_utc.csv.gz"

# AlgoSeek codes the data README names as odd-lot / out-of-sequence prints, and the Alpaca-style
# condition list the frames carry for them ("I" = odd lot). Everything else is a regular sale.
ODD_LOT_CODES = frozenset({"20", "20000020", "20100000", "20100200"})
ALPACA_ODD_LOT = ["@", "I"]
ALPACA_REGULAR = ["@"]


def ours(module: str, attr: str | None = None) -> Any:
    """A slob-tui module or attribute, or `Skip` naming what is missing."""
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and module.startswith(exc.name):
            raise Skip(f"{module} does not exist yet") from exc
        raise
    if attr is None:
        return mod
    if not hasattr(mod, attr):
        raise Skip(f"{module}.{attr} does not exist yet")
    return getattr(mod, attr)


@dataclass
class TickSet:
    """One parse of a tick file in the shapes each contender wants."""

    symbol: str
    tuples: list[tuple[Any, ...]]  # Tick field order: symbol, ts, price, size, exchange, cond, id
    ts: Any  # numpy int64, ns UTC
    price: Any  # numpy float64
    size: Any  # numpy float64

    def __len__(self) -> int:
        return len(self.tuples)


def load_spy_ticks(ctx: Context) -> TickSet:
    """The SPY trades of 2013-10-07 (250,601 prints), conditions kept as the vendor's code."""

    def build() -> TickSet:
        import pandas as pd

        path = ctx.data_dir / SPY_TICKS
        if not path.is_file():
            raise Skip(f"{path} is missing")
        df = pd.read_csv(path, dtype={"exchange": str, "condition": str})
        ts = (
            pd.to_datetime(df["timestamp"], utc=True, format="ISO8601")
            .dt.as_unit("ns")
            .astype("int64")
        )
        ts_np = ts.to_numpy()
        price = df["price"].to_numpy(dtype="float64")
        size = df["size"].to_numpy(dtype="float64")
        tuples = list(
            zip(
                ["SPY"] * len(df),
                ts_np.tolist(),
                price.tolist(),
                size.tolist(),
                df["exchange"].fillna("").tolist(),
                df["condition"].fillna("").tolist(),
                range(len(df)),
                strict=True,
            )
        )
        return TickSet("SPY", tuples, ts_np, price, size)

    return ctx.cached("spy_ticks", build)


def shifted(ticks: list[tuple[Any, ...]], offset_ns: int) -> list[tuple[Any, ...]]:
    """The same ticks moved later in time (for long runs that cycle the one real day)."""
    return [(s, t + offset_ns, p, q, x, c, i) for s, t, p, q, x, c, i in ticks]


def load_candles(ctx: Context, name: str, symbol: str, tz: str) -> list[Any]:
    """A candle file as `Candle`s; naive timestamps are read in `tz`."""

    def build() -> list[Any]:
        import pandas as pd

        from slob_tui.core.models import Candle

        path = ctx.data_dir / name
        if not path.is_file():
            raise Skip(f"{path} is missing")
        df = pd.read_csv(path)
        stamps = pd.to_datetime(df["timestamp"])
        if stamps.dt.tz is None:
            stamps = stamps.dt.tz_localize(tz)
        # nanoseconds whatever unit pandas parsed to (pandas 3 picks microseconds)
        starts = stamps.dt.tz_convert("UTC").dt.as_unit("ns").astype("int64").tolist()
        cols = [df[c].astype("float64").tolist() for c in ("open", "high", "low", "close")]
        vols = df["volume"].astype("float64").tolist()
        return [
            Candle(symbol, s, o, h, lo, c, v)
            for s, o, h, lo, c, v in zip(starts, *cols, vols, strict=True)
        ]

    return ctx.cached(f"candles:{name}", build)


def alpaca_frames(ticks: list[tuple[Any, ...]], per_frame: int = 100) -> list[bytes]:
    """Raw msgpack frames as Alpaca's stock stream sends batched trades.

    Each frame is an array of trade maps with `t` as a msgpack Timestamp (extension type -1);
    `per_frame` trades per frame (Alpaca batches what arrived together; 100 is a busy second).
    """
    import msgpack

    frames = []
    for start in range(0, len(ticks), per_frame):
        batch = []
        for symbol, ts, price, size, exchange, cond, tid in ticks[start : start + per_frame]:
            batch.append(
                {
                    "T": "t",
                    "S": symbol,
                    "i": tid,
                    "x": exchange,
                    "p": price,
                    "s": int(size),
                    "t": msgpack.Timestamp.from_unix_nano(ts),
                    "c": ALPACA_ODD_LOT if cond in ODD_LOT_CODES else ALPACA_REGULAR,
                    "z": "B",
                }
            )
        frames.append(msgpack.packb(batch, use_bin_type=True))
    return frames


def tmp_path(ctx: Context, name: str) -> Path:
    """A fresh path under the run's scratch folder (deleted when the run ends)."""
    path = ctx.work_dir / name
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    return path
