from __future__ import annotations

import pytest

from slob_tui.core.models import Direction
from slob_tui.execution.ids import (
    MAX_LEN,
    client_order_id,
    kill_client_order_id,
    setup_client_order_id,
)

from .conftest import T0, triggered


def test_same_setup_same_id_and_legs_differ() -> None:
    a = triggered(10, Direction.SHORT, 100, 101, 98)
    b = triggered(10, Direction.SHORT, 100.5, 101.5, 97)  # re-derived, other levels
    assert setup_client_order_id(a) == setup_client_order_id(b)
    legs = {setup_client_order_id(a, leg) for leg in ("entry", "target", "stop", "close")}
    assert len(legs) == 4
    assert setup_client_order_id(a) == "slob-NQ-S-20231114222100-E"


def test_id_changes_with_symbol_direction_and_liq2_time() -> None:
    base = client_order_id("NQ", "SHORT", T0)
    assert client_order_id("ES", "SHORT", T0) != base
    assert client_order_id("NQ", "LONG", T0) != base
    assert client_order_id("NQ", "SHORT", T0 + 60_000_000_000) != base
    assert client_order_id("NQ", "SHORT", T0 + 1) == base  # same second: same candle


def test_long_and_odd_symbols_stay_within_48_chars_and_distinct() -> None:
    a = client_order_id("BTC/USD", "LONG", T0)
    b = client_order_id("BTCUSD", "LONG", T0)
    c = client_order_id("A-VERY-LONG-SYMBOL-NAME-THAT-GOES-ON/USD", "LONG", T0, "close")
    assert a != b
    assert all(len(x) <= MAX_LEN for x in (a, b, c))
    assert all(ch.isalnum() or ch == "-" for ch in a + c)
    assert len(kill_client_order_id("A-VERY-LONG-SYMBOL-NAME/USD", T0)) <= MAX_LEN


def test_bad_leg_or_direction_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown leg"):
        client_order_id("NQ", "SHORT", T0, "middle")
    with pytest.raises(ValueError, match="direction"):
        client_order_id("NQ", "UP", T0)


def test_missing_liq2_time_falls_back_to_the_setup_start() -> None:
    u = triggered(10, Direction.LONG, 100, 99, 103)
    levels = dict(u.levels)
    del levels["liq2_time"]
    from dataclasses import replace

    no_liq2 = replace(u, setup_id="NQ-LONG-20231114T221000Z", levels=levels)
    assert setup_client_order_id(no_liq2) == "slob-NQ-L-20231114221000-E"
