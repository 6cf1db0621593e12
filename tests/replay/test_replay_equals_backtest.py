"""Replay equals backtest: the live engine fed a file emits the setup events the pure
backtest emits over the same file (one strategy code path everywhere)."""

from __future__ import annotations

from slob_tui.commands._strategy_data import load_engine_candles, params_for
from slob_tui.config import load_settings
from slob_tui.core.events import EventCategory
from slob_tui.node import NodeConfig, TradingNode
from slob_tui.strategy.backtest import backtest


def _key(event):
    u = event.data
    return (
        event.type,
        u.setup_id,
        u.state,
        u.reason,
        u.index,
        u.time,
        tuple(sorted((k, v) for k, v in u.levels.items())),
    )


async def test_nq_replay_through_the_engine_equals_backtest(shared_data, tmp_path):
    path = str(shared_data / "nq_1min_20231119_20231204_et.csv")
    config = NodeConfig(
        feed="replay",
        symbols=("NQ",),
        db=str(tmp_path / "r.db"),
        speed=None,
        replay_file=path,
        tz="America/New_York",
        settings=load_settings(env={}, dotenv=None),
    )
    engine = TradingNode(config)
    seen = []
    engine.bus.subscribe(
        None, lambda e: seen.append(e) if e.type.category is EventCategory.SETUP else None
    )
    await engine.run()

    candles = load_engine_candles(path, "NQ", "America/New_York")
    expected = backtest(candles, "NQ", params_for("NQ", candles, None)).events
    assert len(expected) > 50, "the NQ file should yield many setup events"
    assert [_key(e) for e in seen] == [_key(e) for e in expected]
    triggered = [e for e in expected if e.type.name == "SETUP_TRIGGERED"]
    assert triggered, "the NQ file should trigger setups"
