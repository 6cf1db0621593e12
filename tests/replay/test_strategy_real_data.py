"""No look-ahead on real data: every candle of the NQ and BTC-PERP files, and reference parity."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from slob_tui.feeds.files import load_candles
from slob_tui.strategy.params import profile_for
from slob_tui.strategy.parity import check_parity

FILES = {
    "NQ": ("nq_1min_20231119_20231204_et.csv", "America/New_York"),
    "BTC/USD": ("btcperp_1min_20211231_20220201_utc.csv.gz", "UTC"),
}


@pytest.fixture(scope="module", params=sorted(FILES))
def series(request: pytest.FixtureRequest, shared_data: Path):  # noqa: ANN201
    symbol = request.param
    name, tz = FILES[symbol]
    candles = load_candles(shared_data / name, symbol, tz)
    return symbol, candles, profile_for(symbol, candles[0].close)


def test_prefix_invariance_and_reference_parity_on_every_candle(series) -> None:  # noqa: ANN001
    symbol, candles, params = series
    rep = check_parity(candles, symbol, params, json_every=97, literal_every=len(candles) // 12)
    assert rep.violations == []
    assert rep.prefix_checked == len(candles)
    assert rep.json_checked >= len(candles) // 97
    assert rep.literal_prefixes >= 12
    # the files do produce setups of both directions, and some trigger
    states = Counter((s.direction, s.state) for s in rep.tracker)
    assert states[("SHORT", "TRIGGERED")] > 0 and states[("LONG", "TRIGGERED")] > 0
    assert len(rep.tracker) == len(rep.reference)


def test_nq_setup_counts(shared_data: Path) -> None:
    """The figures quoted in the report; a change in the tracker's rules shows up here."""
    name, tz = FILES["NQ"]
    candles = load_candles(shared_data / name, "NQ", tz)
    rep = check_parity(candles, "NQ", json_every=0)
    counts = Counter((s.direction, s.reason or s.state) for s in rep.tracker)
    assert counts == {
        ("SHORT", "TRIGGERED"): 5,
        ("LONG", "TRIGGERED"): 5,
        ("SHORT", "LIQ2_TIMEOUT"): 17,
        ("LONG", "LIQ2_TIMEOUT"): 21,
        ("SHORT", "MARKET_CLOSED"): 6,
        ("LONG", "MARKET_CLOSED"): 8,
        ("SHORT", "ENTRY_TIMEOUT"): 3,
        ("LONG", "ENTRY_TIMEOUT"): 1,
        ("LONG", "RETRACE"): 1,
    }
