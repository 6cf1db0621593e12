"""The console over the real node (the one `slob-tui` builds)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from slob_tui.config import Settings
from slob_tui.node import NodeConfig, TradingNode
from slob_tui.ui.app import create_app
from slob_tui.ui.widgets.candle_chart import CandleChart
from slob_tui.ui.widgets.health import HealthPanel
from tests.ui.scenes import wait_engine_started


async def test_kill_switch_reaches_the_real_executor(tmp_path: Path) -> None:
    engine = TradingNode(NodeConfig(db=str(tmp_path / "k.db"), speed=600.0, settings=Settings()))
    app = create_app(engine, theme="slob-dark")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_engine_started(app)
        await pilot.press("K")
        assert not engine.executor.killed  # asked first: nothing happened yet
        await pilot.press("y")
        for _ in range(300):
            if app.kill_results:
                break
            await pilot.pause(0.02)
        assert engine.executor.killed == "console"
        assert app.kill_results[-1].ok
        assert "new orders blocked" in app.kill_results[-1].summary
        app.refresh_now()
        await pilot.pause()
        assert ("breaker", "KILLED", "bold red") in app.query_one(HealthPanel)._shown
        await pilot.press("ctrl+q")
    assert engine.stopped


async def test_replay_opens_in_the_console_and_stores_every_candle(
    tmp_path: Path, shared_data: Path
) -> None:
    db = tmp_path / "r.db"
    config = NodeConfig(
        feed="replay",
        replay_file=str(shared_data / "spy_1min_20131007_et.csv"),
        symbols=("SPY",),
        db=str(db),
        speed=None,
        settings=Settings(),
    )
    engine = TradingNode(config)
    assert engine.mode == "REPLAY"
    app = create_app(engine, theme="slob-dark")
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(1500):  # max speed: the file is done in well under a few seconds
            if app.stopped_reason:
                break
            await pilot.pause(0.02)
        assert app.stopped_reason == "feed ended"
        chart = app.query_one(CandleChart)
        assert chart.symbol == "SPY" and chart.history
        assert app.query_one("#banner").has_class("-replay")
    with sqlite3.connect(db) as conn:
        real = conn.execute(
            "SELECT COUNT(*) FROM candles WHERE symbol='SPY' AND gap_filled=0"
        ).fetchone()[0]
    assert real == 828  # every vendor bar of the file, plus the aggregator's gap fills


async def test_the_console_clears_the_kill_switch_after_asking(tmp_path: Path) -> None:
    """K kills; R asks, and only a yes clears the stored switch so that the running engine's
    next order may go out (as `slob-tui flatten --reset` does from outside)."""
    db = tmp_path / "r.db"
    engine = TradingNode(NodeConfig(db=str(db), speed=600.0, settings=Settings()))
    app = create_app(engine, theme="slob-dark")

    async def settle(pilot, count: int) -> None:
        for _ in range(300):
            if len(app.kill_results) >= count:
                return
            await pilot.pause(0.02)

    def stored_switch() -> list[tuple]:
        with sqlite3.connect(db) as conn:
            return conn.execute(
                "SELECT key FROM hot_state WHERE key = 'value:kill_switch'"
            ).fetchall()

    async with app.run_test(size=(120, 40)) as pilot:
        await wait_engine_started(app)
        await pilot.press("K", "y")
        await settle(pilot, 1)
        assert engine.executor.killed == "console" and stored_switch()
        await pilot.press("R", "n")  # asked, refused: still killed
        await pilot.pause()
        assert engine.executor.killed == "console" and stored_switch()
        await pilot.press("R")
        assert "Allow new orders again?" in str(app.screen.query("Static").last().render())
        await pilot.press("y")
        await settle(pilot, 2)
        assert app.kill_results[-1].ok and "cleared" in app.kill_results[-1].summary
        assert engine.executor.killed == "" and stored_switch() == []
        app.refresh_now()
        await pilot.pause()
        assert ("breaker", "KILLED", "bold red") not in app.query_one(HealthPanel)._shown
        await pilot.press("ctrl+q")
    assert engine.stopped
