"""TrackerStateText: a tracker's saved state, its history rows encoded once, always equal to a
fresh encoding of `state_dict()`."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from slob_tui.storage.state import TrackerStateText
from slob_tui.strategy.tracker import SetupTracker
from tests.unit.strategy.helpers import worked_example


def fresh(state: dict) -> dict:
    return json.loads(json.dumps(state))


@pytest.fixture
def rows_encoded(monkeypatch) -> list[tuple]:
    """Every history row `TrackerStateText` encodes, in order (its other encodings are dicts)."""
    import slob_tui.storage.state as state_module

    encoded: list[tuple] = []
    real_dumps = json.dumps

    def counting_dumps(value, **kw):
        if isinstance(value, tuple):
            encoded.append(value)
        return real_dumps(value, **kw)

    monkeypatch.setattr(state_module.json, "dumps", counting_dumps)
    return encoded


def test_every_save_equals_a_fresh_encoding_and_each_row_is_encoded_once(rows_encoded) -> None:
    encoder = TrackerStateText()
    tracker = SetupTracker("NQ")
    candles = worked_example()
    saved_rows = 0
    for candle in candles:
        tracker.on_candle(candle)
        state = tracker.state_dict()
        saved_rows += len(state["hist"])
        assert json.loads(encoder.encode("NQ", state)) == fresh(state)
    assert saved_rows > 5 * len(candles)  # a live setup kept a long history in every save
    assert len(rows_encoded) == len(set(map(id, rows_encoded))) <= len(candles)


def test_a_restored_or_different_tracker_under_the_same_symbol_is_encoded_afresh() -> None:
    """Rows at the same positions but from another tracker (restored from its state, or another
    series of candles) are not the tuples encoded before: their own values are written."""
    candles = worked_example()
    encoder = TrackerStateText()
    first = SetupTracker("NQ")
    for candle in candles[:60]:
        first.on_candle(candle)
    encoder.encode("NQ", first.state_dict())
    restored = SetupTracker.from_state(fresh(first.state_dict()))
    assert json.loads(encoder.encode("NQ", restored.state_dict())) == fresh(first.state_dict())
    other = SetupTracker("NQ")
    for candle in candles[:60]:  # the same times, other prices
        other.on_candle(replace(candle, high=candle.high + 1.0, close=candle.close + 0.5))
    state = other.state_dict()
    assert state["hist_base"] == first.state_dict()["hist_base"]
    assert json.loads(encoder.encode("NQ", state)) == fresh(state)
    assert json.loads(encoder.encode("NQ", state)) != fresh(first.state_dict())


def test_a_history_that_grows_at_both_ends_reuses_the_middle(rows_encoded) -> None:
    """A new setup can keep rows from before the last save's first row (the history's start
    moves back): those and the new rows are encoded, the rows saved before are not."""
    rows = [(60 * k, 1.0 + k, 2.0 + k, 0.5, 1.5, 10) for k in range(12)]
    encoder = TrackerStateText()
    first = {"version": 3, "hist_base": 5, "hist": rows[5:10]}
    assert json.loads(encoder.encode("X", first)) == fresh(first)
    rows_encoded.clear()
    second = {"version": 3, "hist_base": 3, "hist": rows[3:12]}
    assert json.loads(encoder.encode("X", second)) == fresh(second)
    assert rows_encoded == [rows[3], rows[4], rows[10], rows[11]]
