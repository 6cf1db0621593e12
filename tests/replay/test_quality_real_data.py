"""Real data through the data-quality validator: what it finds, and that it costs no fidelity."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path
from typing import Any

import pytest

from slob_tui.commands.validate import render, validate_file
from slob_tui.core.models import Candle
from slob_tui.engine.aggregator import CandleAggregator, SaleConditionPolicy
from slob_tui.engine.quality import DataQualityValidator, QualityPolicy
from slob_tui.feeds.files import iter_tick_chunks, load_candles
from tests.replay.test_vendor_bars import (
    SPY_BARS,
    SPY_TICKS,
    XRP_BARS,
    XRP_TICKS,
    aggregate_file,
    compare,
)


def validated_candles(
    path: Path, symbol: str, tz: str, policy: SaleConditionPolicy
) -> tuple[list[Candle], DataQualityValidator]:
    validator = DataQualityValidator(sale_policy=policy)
    agg = CandleAggregator(policy)
    out: list[Candle] = []
    for chunk in iter_tick_chunks(path, symbol, tz, chunk_rows=50_000):
        for c in agg.process(validator.filter_ticks(chunk)):
            validator.check_candle(c)
            out.append(c)
    out += agg.flush()
    return out, validator


@pytest.fixture(scope="module")
def spy_ticks(shared_data: Path) -> list[tuple]:
    return [t for chunk in iter_tick_chunks(shared_data / SPY_TICKS, "SPY", "America/New_York")
            for t in chunk]  # fmt: skip


def test_spy_with_the_validator_reproduces_the_vendor_bars_exactly_as_well(shared_data: Path):
    policy = SaleConditionPolicy.spy_algoseek()
    vendor = load_candles(shared_data / SPY_BARS, "SPY")
    plain = compare(aggregate_file(shared_data / SPY_TICKS, "SPY", "America/New_York", policy),
                    vendor)  # fmt: skip
    ours, validator = validated_candles(shared_data / SPY_TICKS, "SPY", "America/New_York",
                                        SaleConditionPolicy.spy_algoseek())  # fmt: skip
    checked = compare(ours, vendor)
    stats = validator.stats()
    print(f"SPY: without validator {plain}; with {checked}; findings {stats['by_kind']}")
    # flagged prints stay in the candles, so the bars are the very same: 824 of 828 exact
    assert checked == plain and checked["exact"] == 824
    # nothing on this day is bad enough to drop: every print reaches a candle
    assert stats["ticks"] == stats["passed"] == 250_601 and stats["rejected"] == 0
    # the far-off prints are flagged: each more than 8 robust deviations (>= 0.4%) from the
    # median; 9 of them at the default 5 bps floor (16 with a 2 bps floor)
    assert stats["by_kind"]["price_outlier"] == 9 and "level_shift" not in stats["by_kind"]
    worst = validator.examples()["price_outlier"]
    assert all(ex["deviations"] > 8 for ex in worst)
    assert max(ex["price"] for ex in worst) == 168.9  # the day's highest print, far off


def test_spy_flagged_prints_are_the_odd_condition_ones(shared_data: Path):
    """Every flagged print carries a sale condition other than a regular sale ('1')."""
    _, validator = validated_candles(shared_data / SPY_TICKS, "SPY", "America/New_York",
                                     SaleConditionPolicy.spy_algoseek())  # fmt: skip
    for ex in validator.examples()["price_outlier"]:
        assert ex["conditions"] not in (None, "1"), ex


def test_xrp_trades_pass_unchanged_and_still_match_all_candles(shared_data: Path):
    vendor = load_candles(shared_data / XRP_BARS, "XRPETH", tz="UTC")
    ours, validator = validated_candles(shared_data / XRP_TICKS, "XRPETH", "UTC",
                                        SaleConditionPolicy.none())  # fmt: skip
    counts = compare(ours, vendor, rel=1e-9)
    assert counts["exact"] == len(vendor) == 2469
    stats = validator.stats()
    assert stats["passed"] == stats["ticks"] == 12_477
    assert stats["by_kind"].get("duplicate_id", 0) == 0  # ids are contiguous, none repeated


def test_nq_candles_are_sane(shared_data: Path):
    report = validate_file(str(shared_data / "nq_1min_20231119_20231204_et.csv"), "NQ",
                           "America/New_York", QualityPolicy(), SaleConditionPolicy())  # fmt: skip
    kinds = report["stats"]["by_kind"]
    assert report["candles"] == 14_714
    assert "ohlc_invalid" not in kinds and "frozen_feed" not in kinds
    # Thanksgiving is a holiday and Black Friday closes at 13:00 in the US equity calendar:
    # no market minute is missing in the whole file (NQ itself traded until 13:00 and 13:15)
    assert "missing_minutes" not in kinds
    # without the calendar those two afternoons count as missing, and nothing else does
    report = validate_file(str(shared_data / "nq_1min_20231119_20231204_et.csv"), "NQ",
                           "America/New_York", QualityPolicy(holidays="none"),
                           SaleConditionPolicy())  # fmt: skip
    assert sorted(x["minutes"] for x in report["worst"]["missing_minutes"]) == [165, 180]


def test_validate_report_and_json(shared_data: Path, tmp_path: Path, capsys):
    import argparse

    from slob_tui.commands import validate

    parser = argparse.ArgumentParser()
    validate.add_arguments(parser)
    out = tmp_path / "report.json"
    args = parser.parse_args(
        [
            str(shared_data / XRP_TICKS),
            "--tz",
            "UTC",
            "--conditions",
            "none",
            "--market-hours",
            "always",
            "--json",
            str(out),
        ]
    )
    assert validate.run(args) == 0
    text = capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["symbol"] == "XRPETH" and report["rows"] == 12_477
    assert text == render(report, "UTC") + "\n"
    assert "missing_minutes" in text and "2019-10-1" in text


def split_run(ticks: list[tuple], sizes: Any) -> tuple:
    """The SPY day through one validator in batches of `sizes(k)` ticks."""
    v = DataQualityValidator()
    out: list[tuple] = []
    i = k = 0
    while i < len(ticks):
        size = sizes(k)
        out += v.filter_ticks(ticks[i : i + size])
        i, k = i + size, k + 1
    return out, v.stats(), v.examples()


def test_spy_findings_do_not_depend_on_the_batch_sizes(spy_ticks: list[tuple]):
    """Batches of 30 gave 16 outliers + 1 level shift before the fix, all others 17."""
    rng = random.Random(20131007)
    reference = split_run(spy_ticks, lambda k: 1000)
    assert reference[1]["by_kind"] == {"price_outlier": 9}
    for sizes in (lambda k: 1, lambda k: 30, lambda k: rng.randint(1, 3000),
                  lambda k: len(spy_ticks)):  # fmt: skip
        out, stats, worst = split_run(spy_ticks, sizes)
        assert (stats, worst) == reference[1:]
        assert len(out) == len(reference[0]) and all(
            a is b for a, b in zip(out, reference[0], strict=True)
        )


def random_split(ticks: list[tuple], seed: int) -> list[list[tuple]]:
    """The SPY day in random batch sizes of 1 to 3,000 ticks."""
    rng = random.Random(seed)
    batches, i = [], 0
    while i < len(ticks):
        size = rng.randint(1, 3000)
        batches.append(ticks[i : i + size])
        i += size
    return batches


def test_spy_through_the_engine_gives_the_same_findings(spy_ticks: list[tuple], tmp_path: Path):
    from slob_tui.engine.engine import LiveTradingEngine
    from slob_tui.engine.quality import QualityPolicy
    from slob_tui.feeds.batches import BatchFeed
    from slob_tui.storage.candles import CandleStore

    _, reference, _ = split_run(spy_ticks, lambda k: 1000)
    for seed in (1, 2):
        engine = LiveTradingEngine(BatchFeed(random_split(spy_ticks, seed)), store=CandleStore(
            tmp_path / f"e{seed}.db"), policy=SaleConditionPolicy.spy_algoseek(),
            enable_tracker=False, quality=QualityPolicy())  # fmt: skip
        validator = engine.validator
        assert validator is not None
        asyncio.run(engine.run())
        stats = validator.stats()
        ticks_kinds = {k: n for k, n in stats["by_kind"].items() if k != "volume_spike"}
        assert (stats["ticks"], stats["passed"], ticks_kinds) == (
            reference["ticks"],
            reference["passed"],
            reference["by_kind"],
        )
        assert stats["by_kind"]["volume_spike"] == 52  # the candle checks ran too
