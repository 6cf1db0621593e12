"""File replay as columns: the same rows, findings and candles as the per-tick path, on the
real SPY and XRP/ETH trades."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from slob_tui.core.models import Candle
from slob_tui.core.tick_chunk import TickChunk
from slob_tui.engine.aggregator import CandleAggregator, SaleConditionPolicy
from slob_tui.engine.quality import DataQualityValidator, QualityPolicy
from slob_tui.feeds.files import ReadReport, iter_tick_chunks, iter_tick_column_chunks
from slob_tui.feeds.replay import CHUNK_ROWS, ReplayFeed
from slob_tui.storage.candles import CandleStore

SPY = "spy_trades_20131007_et.csv.gz"
XRP = "xrpeth_trades_20191011_20191013_utc.csv"
SPY_CODES = ["20", "20000020", "20100000", "20100200"]


def report_of(r: ReadReport) -> tuple:
    return (r.rows, r.bad_rows, r.excluded_rows, r.exclusions_seen, r.first_ts, r.last_ts,
            r.order.backwards)  # fmt: skip


def test_column_chunks_hold_exactly_the_rows_and_report_of_the_tuple_chunks(shared_data: Path):
    path = shared_data / SPY
    a, b = ReadReport(str(path)), ReadReport(str(path))
    tuples = [t for c in iter_tick_chunks(path, "SPY", exclude_conditions=SPY_CODES,
                                          chunk_rows=8_192, report=a) for t in c]  # fmt: skip
    chunks = list(iter_tick_column_chunks(path, "SPY", exclude_conditions=SPY_CODES,
                                          chunk_rows=8_192, report=b))  # fmt: skip
    assert all(isinstance(c, TickChunk) for c in chunks)
    assert [t for c in chunks for t in c.tuples()] == tuples
    assert report_of(b) == report_of(a) and a.excluded_rows > 0


def test_a_file_with_trade_ids_leaves_as_tuples(shared_data: Path):
    path = shared_data / XRP
    chunks = list(iter_tick_column_chunks(path, "XRPETH", "UTC", chunk_rows=4_096))
    assert all(isinstance(c, list) for c in chunks)
    assert [t for c in chunks for t in c] == [
        t for c in iter_tick_chunks(path, "XRPETH", "UTC", chunk_rows=4_096) for t in c
    ]


def without_ids(ticks: list[tuple], symbol: str, size: Any) -> TickChunk:
    """Real ticks as one chunk (the ids dropped, which a chunk cannot hold)."""
    conditions = tuple(dict.fromkeys(t[5] for t in ticks))
    exchanges = tuple(dict.fromkeys(t[4] for t in ticks))
    return TickChunk(
        symbol,
        np.array([t[1] for t in ticks], dtype=np.int64),
        np.array([t[2] for t in ticks], dtype=np.float64),
        np.array([t[3] for t in ticks], dtype=size),
        np.array([exchanges.index(t[4]) for t in ticks], dtype=np.int32),
        exchanges,
        np.array([conditions.index(t[5]) for t in ticks], dtype=np.int32),
        conditions,
    )


def pipeline(chunks: list[TickChunk], policy: SaleConditionPolicy, columnar: bool) -> tuple:
    validator = DataQualityValidator(QualityPolicy())
    agg = CandleAggregator(policy)
    candles: list[Candle] = []
    for chunk in chunks:
        if columnar:
            candles += agg.process_columns(validator.filter_columns(chunk))
        else:
            candles += agg.process(validator.filter_ticks(chunk.tuples()))
    candles += agg.flush()
    return candles, validator.stats(), validator.examples(), agg.stats()


@pytest.mark.parametrize(
    ("name", "symbol", "tz", "size", "codes"),
    [(SPY, "SPY", "America/New_York", np.int64, SPY_CODES),
     (XRP, "XRPETH", "UTC", np.float64, [])],
)  # fmt: skip
@pytest.mark.parametrize("rows", [997, 8_192, CHUNK_ROWS])
def test_validator_and_aggregator_columns_give_the_per_tick_candles_on_real_trades(
    shared_data: Path, name: str, symbol: str, tz: str, size: Any, codes: list[str], rows: int
):
    ticks = [t for c in iter_tick_chunks(shared_data / name, symbol, tz) for t in c]
    whole = without_ids(ticks, symbol, size)
    chunks = [whole.slice(i, i + rows) for i in range(0, len(whole), rows)]
    policy = SaleConditionPolicy(codes)
    per_tick = pipeline(chunks, policy, columnar=False)
    assert pipeline(chunks, SaleConditionPolicy(codes), columnar=True) == per_tick
    assert len(per_tick[0]) > 600 and per_tick[1]["ticks"] == len(ticks)


async def test_the_replay_engine_with_the_validator_stores_the_per_tick_candles(
    shared_data: Path, tmp_path: Path
):
    """`replay --speed max` hands the engine columns: the store holds exactly what the
    per-tick validator and aggregator make of the file's tuples, with the same findings."""
    from slob_tui.engine.engine import LiveTradingEngine

    path = shared_data / SPY
    engine = LiveTradingEngine(
        ReplayFeed(path, symbol="SPY"),
        store=CandleStore(tmp_path / "e.db"),
        policy=SaleConditionPolicy(SPY_CODES),
        quality=QualityPolicy(),
        enable_tracker=False,
    )
    await engine.run()
    assert engine.feed.batches == len(range(0, 250_601, CHUNK_ROWS))  # type: ignore[attr-defined]
    agg = CandleAggregator(SaleConditionPolicy(SPY_CODES))
    validator = DataQualityValidator(QualityPolicy(), sale_policy=agg.policy)
    direct: list[Candle] = []
    for chunk in iter_tick_chunks(path, "SPY", chunk_rows=8_192):
        direct += agg.process(validator.filter_ticks(chunk))
    direct += agg.flush()
    for candle in direct:  # the engine checks each candle as it completes
        validator.check_candle(candle)
    async with CandleStore(tmp_path / "e.db") as store:
        assert await store.candles("SPY") == direct
    assert engine.validator is not None
    assert engine.validator.stats() == validator.stats()
    assert engine.validator.examples() == validator.examples()
    assert engine.aggregator.stats() == agg.stats()
    assert engine.buffer.enqueued == engine.buffer.dequeued == 250_601
