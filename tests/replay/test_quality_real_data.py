"""Real data through the data-quality validator: what it finds, and that it costs no fidelity."""

from __future__ import annotations

import json
from pathlib import Path

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


def test_spy_with_the_validator_reproduces_the_vendor_bars_at_least_as_well(shared_data: Path):
    policy = SaleConditionPolicy.spy_algoseek()
    vendor = load_candles(shared_data / SPY_BARS, "SPY")
    plain = compare(aggregate_file(shared_data / SPY_TICKS, "SPY", "America/New_York", policy),
                    vendor)  # fmt: skip
    ours, validator = validated_candles(shared_data / SPY_TICKS, "SPY", "America/New_York",
                                        SaleConditionPolicy.spy_algoseek())  # fmt: skip
    checked = compare(ours, vendor)
    stats = validator.stats()
    print(f"SPY: without validator {plain}; with {checked}; findings {stats['by_kind']}")
    assert checked["exact"] >= plain["exact"]
    assert checked["missing"] == 0 and checked["extra"] == 0
    # nothing on this day is bad enough to drop: every print reaches a candle
    assert stats["ticks"] == stats["passed"] == 250_601 and stats["rejected"] == 0
    # the far-off prints are flagged: each more than 8 robust deviations from the median
    assert 5 <= stats["by_kind"]["price_outlier"] <= 60
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
    # Thanksgiving (closed at 13:00) and Black Friday (13:15): no holiday calendar, so the
    # afternoons count as missing market minutes, and nothing else does
    assert sorted(x["minutes"] for x in report["worst"]["missing_minutes"]) == [165, 180]


def test_validate_report_and_json(shared_data: Path, tmp_path: Path, capsys):
    import argparse

    from slob_tui.commands import validate

    parser = argparse.ArgumentParser()
    validate.add_arguments(parser)
    out = tmp_path / "report.json"
    args = parser.parse_args([str(shared_data / XRP_TICKS), "--tz", "UTC", "--conditions",
                              "none", "--market-hours", "always", "--json", str(out)])
    assert validate.run(args) == 0
    text = capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["symbol"] == "XRPETH" and report["rows"] == 12_477
    assert text == render(report, "UTC") + "\n"
    assert "missing_minutes" in text and "2019-10-1" in text
