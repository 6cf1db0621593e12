"""Loading a file for the strategy commands (imported inside `run`, never at CLI start).

Candle files and tick files both end up as the candles the live engine would see: each goes
through the engine's `CandleAggregator` (ticks aggregated, candles ingested), so short gaps are
filled the same way as in `slob-tui replay`.
"""

from __future__ import annotations

from dataclasses import dataclass

from slob_tui.commands._file_progress import RowProgress
from slob_tui.core.models import Candle
from slob_tui.engine.aggregator import CandleAggregator, SaleConditionPolicy
from slob_tui.errors import UsageError
from slob_tui.feeds.files import ReadReport, detect_kind, iter_candle_chunks, iter_tick_chunks
from slob_tui.feeds.sources import expand
from slob_tui.strategy.params import SlobParams, parse_param_args, profile_for


def symbol_for(path: str, symbol: str | None) -> str:
    """The `--symbol`, or what the file name implies (as `replay` does; see `sources.py`)."""
    return symbol or expand(path).default_symbol()


@dataclass
class FileCandles:
    """The candles of a file and what was lost on the way: rows unreadable (in `read`),
    candle rows at or before a minute already closed, ticks of a minute already closed."""

    candles: list[Candle]
    read: ReadReport
    dropped_candles: int
    late_ticks: int


def load_file_candles(
    path: str, symbol: str, tz: str, progress: RowProgress | None = None
) -> FileCandles:
    """The candles the engine would close for this file, in time order, with the reading;
    `progress` is told the rows read after each chunk."""
    agg = CandleAggregator(policy=SaleConditionPolicy())
    read = ReadReport(str(path))
    out: list[Candle] = []
    if detect_kind(path) == "candles":
        for chunk in iter_candle_chunks(path, symbol, tz, report=read):
            for c in chunk:
                out.extend(agg.ingest_candle(c))
            if progress is not None:
                progress.update(read.rows)
    else:
        for ticks in iter_tick_chunks(path, symbol, tz, report=read):
            out.extend(agg.process(ticks))
            if progress is not None:
                progress.update(read.rows)
        out.extend(agg.flush())
    if not out:
        raise UsageError(f"{path}: no candles in the file")
    stats = agg.stats()
    return FileCandles(out, read, stats["duplicates"], stats["late_ticks"])


def load_engine_candles(path: str, symbol: str, tz: str) -> list[Candle]:
    """The candles the engine would close for this file, in time order."""
    return load_file_candles(path, symbol, tz).candles


def params_for(symbol: str, candles: list[Candle], overrides: list[str] | None) -> SlobParams:
    """The instrument profile for `symbol`, then the `--param name=value` overrides."""
    base = profile_for(symbol, candles[0].close)
    return base.with_overrides(parse_param_args(overrides))
