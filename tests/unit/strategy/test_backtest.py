"""Paper fills of the pure backtest: entry at the next open, touch rules, open and cancelled."""

from __future__ import annotations

import pytest

from slob_tui.core.events import EventType
from slob_tui.strategy.backtest import SetupRecord, backtest, compute_stats, run_tracker
from slob_tui.strategy.tracker import SetupTracker

from .helpers import edit, find, hm, mirror, run, worked_example


def _trade(candles: list) -> SetupRecord:  # noqa: ANN001
    res = backtest(candles, "NQ")
    return next(s for s in res.setups if s.state == "TRIGGERED")


def test_worked_example_reaches_target_at_1655() -> None:
    res = backtest(worked_example(), "NQ")
    t = next(s for s in res.setups if s.state == "TRIGGERED")
    assert hm(t.entry_time) == "16:32" and t.entry == 25572.0
    assert t.outcome == "win" and hm(t.exit_time) == "16:55" and t.exit == 25501.0
    assert t.r_multiple == pytest.approx(71 / 21) and t.points == 71.0
    assert res.stats["wins"] == 1 and res.stats["win_rate"] == 1.0
    assert res.equity == [(t.exit_time, round(71 / 21, 6))]


def test_long_mirror_wins_the_same_r() -> None:
    t = _trade(mirror(worked_example()))
    assert t.direction == "LONG" and t.outcome == "win"
    assert t.r_multiple == pytest.approx(71 / 21)


def test_stop_and_target_in_one_candle_counts_as_stop() -> None:
    candles = edit(worked_example(), "16:40", high=25600.0, low=25400.0)
    t = _trade(candles)
    assert t.outcome == "loss" and t.exit == 25593.0 and t.r_multiple == -1.0
    assert hm(t.exit_time) == "16:40"


def test_open_beyond_the_stop_exits_at_that_open() -> None:
    candles = edit(worked_example(), "16:40", open=25610.0, high=25612.0)
    t = _trade(candles)
    assert t.outcome == "loss" and t.exit == 25610.0
    assert t.r_multiple == pytest.approx(-(25610 - 25572) / 21)


def test_trade_open_at_end_of_data_and_no_fill_on_last_candle() -> None:
    base = worked_example()
    t = _trade(base[: find(base, "16:45") + 1])
    assert t.outcome == "open" and t.exit is None
    t = _trade(base[: find(base, "16:31") + 1])
    assert t.outcome == "no_fill" and t.entry == 25572.0


def test_fill_beyond_stop_is_cancelled() -> None:
    t = _trade(edit(worked_example(), "16:32", open=25595.0, high=25596.0))
    assert t.outcome == "cancelled" and t.r_multiple is None


def test_stats_drawdown_and_rates() -> None:
    recs = []
    for i, r in enumerate([2.0, -1.0, -1.0, 3.0]):
        recs.append(
            SetupRecord(
                f"s{i}",
                "NQ",
                "SHORT",
                "TRIGGERED",
                None,
                i,
                i,
                i,
                outcome="win" if r > 0 else "loss",
                exit_time=i,
                r_multiple=r,
                points=r * 10,
            )
        )
    recs.append(SetupRecord("x", "NQ", "LONG", "INVALIDATED", "RETRACE", 9, 9, 9))
    stats, equity = compute_stats(recs, 100)
    assert [e[1] for e in equity] == [2.0, 1.0, 0.0, 3.0]
    assert stats["max_drawdown_r"] == 2.0 and stats["win_rate"] == 0.5
    assert stats["total_r"] == 3.0 and stats["avg_r"] == 0.75 and stats["points"] == 30.0
    assert stats["by_reason"] == {"RETRACE": 1}
    assert stats["by_direction"] == {"SHORT": {"win": 2, "loss": 2}, "LONG": {"RETRACE": 1}}


def test_run_tracker_returns_exactly_the_trackers_events() -> None:
    candles = worked_example()
    events = run_tracker(candles, "NQ")
    direct = run(SetupTracker("NQ"), candles)
    assert [e.data for e in events] == [e.data for e in direct]
    assert events[0].type is EventType.SETUP_STARTED
