"""Every binding does what it says, through real key presses on the running console."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from slob_tui.config import load_settings
from slob_tui.core.models import NS_PER_MINUTE, Tick
from slob_tui.errors import UsageError
from slob_tui.ui.app import create_app
from slob_tui.ui.bindings import BINDINGS, keymap_path, load_keymap
from slob_tui.ui.screens.confirm_kill import ConfirmKillScreen
from slob_tui.ui.screens.help import HelpScreen
from slob_tui.ui.widgets.candle_chart import CandleChart
from slob_tui.ui.widgets.event_log import EventLog
from tests.ui.helpers import T0, ControlledEngine, make_engine, screen_text, synthetic_candles
from tests.ui.scenes import wait_engine_started


class RecordingExecutor:
    """Stands in for the order executor in the dialog flow only: records the kill call."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def kill_switch(self, source: str) -> str:
        self.calls.append(source)
        return "cancelled 2 orders, flattened 1 position"


async def _started(tmp_path: Path | None = None, symbols=("NQ", "ES"), n: int = 40,
                   controls: RecordingExecutor | None = None, **kw):  # fmt: skip
    engine = make_engine(symbols, db=(tmp_path / "c.db") if tmp_path else None)
    if controls is not None:
        engine = ControlledEngine(engine, controls)
    app = create_app(engine, theme="slob-dark", **kw)
    return engine, app


async def _push(app, engine, symbols=("NQ", "ES"), n: int = 40) -> None:
    await wait_engine_started(app)
    for i, s in enumerate(symbols):
        await engine.put_candles(synthetic_candles(s, n, T0 - n * NS_PER_MINUTE, 100 + 50 * i))
    app.refresh_now()


def test_every_binding_has_a_unique_id_and_an_action_the_app_defines() -> None:
    from slob_tui.ui.app import SlobConsole

    ids = [b.id for b in BINDINGS]
    assert len(ids) == len(set(ids))
    for spec in BINDINGS:
        name = spec.action.split("(")[0]
        assert hasattr(SlobConsole, f"action_{name}"), spec.action


async def test_pause_key_pauses_and_resumes_the_feed() -> None:
    engine, app = await _started()
    async with app.run_test(size=(100, 30)) as pilot:
        await _push(app, engine)
        await pilot.press("p")
        assert engine.paused and engine.feed.pause_calls == 1
        await pilot.pause()
        assert "PAUSED" in screen_text(app)
        await pilot.press("p")
        assert not engine.paused and engine.feed.resume_calls == 1


async def test_symbol_key_switches_the_chart() -> None:
    engine, app = await _started()
    async with app.run_test(size=(100, 30)) as pilot:
        await _push(app, engine)
        chart = app.query_one(CandleChart)
        assert chart.symbol == "NQ" and chart.history[-1].symbol == "NQ"
        await pilot.press("s")
        assert app.symbol == "ES" and chart.symbol == "ES"
        assert chart.history[-1].symbol == "ES" and chart.history[-1].open > 140
        await pilot.press("s")
        assert chart.symbol == "NQ"


async def test_theme_key_cycles_the_loaded_themes() -> None:
    engine, app = await _started()
    async with app.run_test(size=(100, 30)) as pilot:
        assert app.theme == "slob-dark"
        assert set(app.theme_names) >= {"slob-dark", "slob-light", "slob-colorblind"}
        seen = []
        for _ in app.theme_names:
            await pilot.press("t")
            seen.append(app.theme)
        assert sorted(seen) == sorted(app.theme_names)
        await pilot.pause()
        assert app.theme_variables["candle-up"] == app.get_theme(app.theme).variables["candle-up"]


@pytest.mark.parametrize(
    "key,panel", [("2", "setups"), ("3", "orders"), ("4", "health"), ("5", "events")]
)
async def test_panel_keys_toggle_their_panel(key: str, panel: str) -> None:
    engine, app = await _started()
    async with app.run_test(size=(100, 30)) as pilot:
        assert app.query_one(f"#{panel}").display
        await pilot.press(key)
        assert not app.query_one(f"#{panel}").display
        await pilot.press(key)
        assert app.query_one(f"#{panel}").display


async def test_help_key_opens_and_escape_closes() -> None:
    engine, app = await _started()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = screen_text(app)
        assert "kill.switch" in text and "Pause/resume feed" in text
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_event_filter_key_cycles_categories() -> None:
    engine, app = await _started()
    async with app.run_test(size=(100, 30)) as pilot:
        await _push(app, engine)
        log = app.query_one(EventLog)
        await pilot.press("f")
        assert log.category == "setup"
        await pilot.pause()
        assert "Events · setup" in screen_text(app)
        assert "ENGINE_STARTED" not in screen_text(app)
        for _ in range(4):
            await pilot.press("f")
        assert log.category == "all"
        await pilot.pause()
        assert "ENGINE_STARTED" in screen_text(app)


async def test_history_keys_scroll_back_into_the_store_and_return_live(tmp_path: Path) -> None:
    engine = make_engine(("NQ",), db=tmp_path / "c.db")
    engine._recent_n = 50  # the snapshot holds 50; the store holds all 300
    app = create_app(engine, theme="slob-dark")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_engine_started(app)
        await engine.put_candles(synthetic_candles("NQ", 300, T0 - 300 * NS_PER_MINUTE))
        await engine.store.flush()
        app.refresh_now()
        chart = app.query_one(CandleChart)
        assert len(chart.history) == 50
        newest = chart.history[-1].start
        await pilot.press("left_square_bracket")
        assert chart.back == 10
        assert len(chart.history) > 50  # older candles came from the store
        assert chart.history[0].start < newest - 49 * NS_PER_MINUTE
        starts = [c.start for c in chart.history]
        assert starts == sorted(set(starts))  # no duplicates, in time order
        await pilot.press("right_square_bracket")
        assert chart.back == 0
        await pilot.press("left_square_bracket", "left_square_bracket", "end")
        assert chart.back == 0


async def test_kill_switch_asks_first_and_no_touches_nothing() -> None:
    engine, app = await _started(controls=RecordingExecutor())
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("K")
        assert isinstance(app.screen, ConfirmKillScreen)
        assert engine.controls.calls == []
        await pilot.press("n")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmKillScreen)
        assert engine.controls.calls == []
        await pilot.press("K")
        await pilot.press("escape")
        await pilot.pause()
        assert engine.controls.calls == []


async def test_kill_switch_yes_cancels_through_the_executor() -> None:
    engine, app = await _started(controls=RecordingExecutor())
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("K")
        await pilot.press("y")
        for _ in range(100):
            if app.kill_results:
                break
            await pilot.pause(0.02)
        assert engine.controls.calls == ["console"]
        assert app.kill_results[-1].ok
        assert "flattened 1 position" in app.kill_results[-1].summary


async def test_kill_switch_on_an_engine_without_orders_says_so() -> None:
    engine, app = await _started()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("K")
        await pilot.click("#kill-yes")
        for _ in range(100):
            if app.kill_results:
                break
            await pilot.pause(0.02)
        assert not app.kill_results[-1].ok
        assert "places no orders" in app.kill_results[-1].summary


async def test_remapped_key_drives_the_action(tmp_path: Path) -> None:
    keymap_file = tmp_path / "keymap.toml"
    keymap_file.write_text('[keys]\n"feed.pause" = "space"\n', encoding="utf-8")
    keymap = load_keymap(
        keymap_path(load_settings({"SLOB_KEYMAP": str(keymap_file)}, dotenv=None).keymap)
    )
    engine, app = await _started(keymap=keymap)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("p")
        assert not engine.paused  # the old key no longer pauses
        await pilot.press("space")
        assert engine.paused


@pytest.mark.parametrize(
    "content,message",
    [
        ("[keys\n", "not valid TOML"),
        ('[keys]\n"nope.action" = "x"\n', "unknown binding id 'nope.action'"),
        ('[keys]\n"feed.pause" = ""\n', "must be a non-empty key string"),
        ("keys = 3\n", "expected a [keys] table"),
    ],
)
def test_bad_keymap_is_one_clear_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "keymap.toml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(UsageError) as err:
        load_keymap(path)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert str(path) in str(err.value)


def test_missing_keymap_named_by_env_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="file not found"):
        load_keymap(keymap_path(str(tmp_path / "absent.toml")))


async def test_redraws_follow_engine_changes_not_ticks() -> None:
    """Many tick batches between two polls become one redraw; an idle engine redraws nothing."""
    engine, app = await _started(poll_hz=4.0)
    async with app.run_test(size=(100, 30)) as pilot:
        await _push(app, engine)
        await pilot.pause(0.3)
        before = app.redraws
        await pilot.pause(0.8)  # three or more polls with no engine change
        assert app.redraws == before
        batches = 0
        for i in range(300):
            engine.put_ticks([Tick("NQ", T0 + i * 1_000_000, 100 + i * 0.01, 1)])
            batches += 1
            if i % 50 == 0:
                await asyncio.sleep(0)
        await pilot.pause(0.6)
        chart = app.query_one(CandleChart)
        assert chart.ticks_seen == 300 and chart.forming is not None
        assert chart.forming.close == pytest.approx(102.99)
        assert 1 <= app.redraws - before < batches // 10
