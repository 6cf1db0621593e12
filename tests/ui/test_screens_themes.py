"""Live-trading confirmation, theme files, the colour-system choice and the chart's layout."""

from __future__ import annotations

import colorsys
import subprocess
import sys
from pathlib import Path

import pytest
from textual.color import Color
from textual.widgets import Input

from slob_tui.core.models import NS_PER_MINUTE, Candle
from slob_tui.errors import UsageError
from slob_tui.ui.app import create_app
from slob_tui.ui.launch import choose_color_system
from slob_tui.ui.screens.live_confirm import LiveConfirmScreen
from slob_tui.ui.themes import THEMES_DIR, load_theme_file, load_themes
from slob_tui.ui.widgets.chart_model import Overlay, layout_candles, overlay_from_levels
from slob_tui.ui.widgets.mode_banner import ModeBanner
from tests.ui.helpers import T0, ControlledEngine, make_engine, screen_text

REPO = Path(__file__).resolve().parents[2]


# ---- live confirmation --------------------------------------------------------------------
def live_broker():
    """A real AlpacaBroker for live money, not yet confirmed (no connection is made here)."""
    from slob_tui.brokers.alpaca import AlpacaBroker
    from slob_tui.config import load_settings

    settings = load_settings({"ALPACA_API_KEY": "k", "ALPACA_API_SECRET": "s"}, dotenv=None)
    return AlpacaBroker(settings, paper=False, confirmed_live=False, stream=False)


class LiveControls:
    """The node's trading controls around a live broker: confirming reaches the broker."""

    broker_name = "alpaca"

    def __init__(self, broker):
        self.broker = broker

    def confirm_live(self) -> None:
        self.broker.confirm_live()


async def test_live_needs_the_typed_word_before_the_engine_starts() -> None:
    engine = ControlledEngine(make_engine(mode="LIVE"), LiveControls(live_broker()))
    app = create_app(engine, theme="slob-dark", live_confirm=True)
    async with app.run_test(size=(100, 30)) as pilot:
        assert isinstance(app.screen, LiveConfirmScreen)
        assert app.query_one(ModeBanner).has_class("-live")
        await pilot.press(*"live", "enter")  # wrong case: refused
        await pilot.pause()
        assert isinstance(app.screen, LiveConfirmScreen)
        assert engine.health_monitor.start_ns is None and app.runner.task is None
        assert not engine.controls.broker.confirmed_live
        assert "is not LIVE" in screen_text(app)
        await pilot.press(*"LIVE", "enter")
        await pilot.pause(0.2)
        assert not isinstance(app.screen, LiveConfirmScreen)
        assert app.runner.task is not None
        assert engine.controls.broker.confirmed_live
        assert "REAL MONEY" in screen_text(app)
        await pilot.press("ctrl+q")
    assert engine.stopped


async def test_live_escape_quits_without_starting_anything() -> None:
    engine = ControlledEngine(make_engine(mode="LIVE"), LiveControls(live_broker()))
    app = create_app(engine, theme="slob-dark", live_confirm=True)
    async with app.run_test(size=(100, 30)) as pilot:
        app.screen.query_one(Input).cursor_blink = False
        await pilot.press("escape")
        await pilot.pause()
    assert app.return_code == 1
    assert app.runner.task is None and engine.health_monitor.start_ns is None
    assert not engine.controls.broker.confirmed_live


# ---- themes ---------------------------------------------------------------------------------
def test_three_theme_files_load_with_candle_variables() -> None:
    themes = {t.name: t for t in load_themes(THEMES_DIR)}
    assert {"slob-dark", "slob-light", "slob-colorblind"} <= set(themes)
    assert themes["slob-dark"].dark and not themes["slob-light"].dark
    for theme in themes.values():
        assert Color.parse(theme.variables["candle-up"]) != Color.parse(
            theme.variables["candle-down"]
        )


def _hue_deg(colour: str) -> float:
    c = Color.parse(colour)
    return colorsys.rgb_to_hls(c.r / 255, c.g / 255, c.b / 255)[0] * 360


def test_colorblind_theme_differs_by_more_than_red_green() -> None:
    v = load_theme_file(THEMES_DIR / "slob-colorblind.toml").variables
    up, down = _hue_deg(v["candle-up"]), _hue_deg(v["candle-down"])
    assert 180 <= up <= 260  # blue
    assert 20 <= down <= 50  # orange
    up_l = Color.parse(v["candle-up"]).brightness
    down_l = Color.parse(v["candle-down"]).brightness
    assert abs(up_l - down_l) > 0.0
    assert v["candle-body-up"] == "hollow" and v["candle-body-down"] == "filled"


@pytest.mark.parametrize(
    "content,message",
    [
        ("name = \n", "not valid TOML"),
        ('name = "x"\nprimary = "#fff"\ncolour = "red"\n', "unknown key(s) colour"),
        ('primary = "#fff"\n', "needs a name"),
        ('name = "x"\nprimary = "notacolour"\n', "theme "),
    ],
)
def test_bad_theme_file_is_one_clear_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(UsageError) as err:
        load_theme_file(path)
    assert message in str(err.value) and str(path) in str(err.value)
    assert "\n" not in str(err.value)


def test_user_theme_folder_overrides_by_name(tmp_path: Path) -> None:
    text = (THEMES_DIR / "slob-dark.toml").read_text().replace("#26A69A", "#00FFFF")
    (tmp_path / "mine.toml").write_text(text)
    themes = {t.name: t for t in load_themes(THEMES_DIR, tmp_path)}
    assert themes["slob-dark"].variables["candle-up"] == "#00FFFF"


async def test_builtin_theme_still_has_candle_colours() -> None:
    app = create_app(make_engine(), theme="nord")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.theme == "nord"
        assert app.theme_variables["candle-up"] == "#26A69A"


# ---- colour system --------------------------------------------------------------------------
def test_truecolor_forced_only_when_nothing_says_otherwise() -> None:
    assert choose_color_system({"TERM": "xterm-256color"}) == "truecolor"  # SSH: no COLORTERM
    assert choose_color_system({"COLORTERM": "truecolor"}) is None
    assert choose_color_system({"TEXTUAL_COLOR_SYSTEM": "256"}) is None
    assert choose_color_system({"TERM": "linux"}) is None


# ---- chart layout ---------------------------------------------------------------------------
def _c(i: int, o: float, h: float, lo: float, c: float, v: float = 10) -> Candle:
    return Candle("X", T0 + i * NS_PER_MINUTE, o, h, lo, c, v)


def _glyphs(layout, x: int) -> list[str]:
    return [row[x][0] for row in layout.rows]


def test_half_blocks_put_body_and_wicks_on_the_right_rows() -> None:
    candles = [_c(0, 10, 10, 0, 0), _c(1, 2, 8, 2, 8)]  # down full-range bar, up with wick none
    layout = layout_candles(candles, 2, 5, 0)
    down = _glyphs(layout, 0)
    assert set(down) == {"█"}  # a body over the whole range fills every row
    up = _glyphs(layout, 1)
    # body from 8 to 2 of a 0..10 scale over 10 half-rows: top rows empty, bottom empty
    assert up[0] == " " and up[-1] == " "
    assert "█" in up
    assert [row[1][1] for row in layout.rows if row[1][0] != " "] == ["up"] * (
        sum(1 for g in up if g != " ")
    )


def test_hollow_up_bodies_use_thin_bars() -> None:
    candles = [_c(0, 0, 10, 0, 10), _c(1, 10, 10, 0, 0)]
    layout = layout_candles(candles, 2, 5, 0, hollow_up=True)
    assert set(_glyphs(layout, 0)) == {"┃"}
    assert set(_glyphs(layout, 1)) == {"█"}


def test_volume_bars_scale_to_the_largest() -> None:
    candles = [_c(0, 1, 2, 0, 1.5, v=100), _c(1, 1, 2, 0, 0.5, v=50)]
    layout = layout_candles(candles, 2, 4, 2)
    vol = layout.rows[4:]
    assert [r[0][0] for r in vol] == ["█", "█"]
    assert [r[1][0] for r in vol] == [" ", "█"]
    assert vol[1][1][1] == "vol-down"


def test_overlay_lines_and_marks_land_at_their_prices() -> None:
    candles = [_c(i, 10, 10.5, 9.5, 10) for i in range(10)]
    ov = Overlay(
        direction="SHORT",
        state="TRIGGERED",
        entry=10.0,
        stop=10.9,
        target=9.2,
        trigger_time=candles[5].start,
        liq1=(candles[2].start, 10.5),
    )
    layout = layout_candles(candles, 10, 20, 0, overlay=ov)
    styles = [[cell[1] for cell in row] for row in layout.rows]
    stop_rows = [r for r, row in enumerate(styles) if "stop" in row]
    target_rows = [r for r, row in enumerate(styles) if "target" in row]
    assert stop_rows == [0] and target_rows == [19]  # the range grew to include both
    assert all(cell == "" for cell in styles[0][:5])  # trade lines start at the trigger column
    assert layout.rows[stop_rows[0]][6] == ("─", "stop")
    marks = [
        (r, x) for r, row in enumerate(layout.rows) for x, c in enumerate(row) if c[1] == "liq"
    ]
    assert len(marks) == 1 and marks[0][1] == 2


def test_far_trade_levels_are_named_at_the_edge_not_stretching_the_candles() -> None:
    """A replay's target far from the recent candles once squeezed them into four rows."""
    candles = [_c(i, 10, 10.5, 9.5, 10) for i in range(10)]
    ov = Overlay(
        direction="SHORT",
        state="TRIGGERED",
        entry=10.0,
        stop=12.0,
        target=6.0,
        trigger_time=candles[5].start,
    )
    layout = layout_candles(candles, 10, 20, 0, overlay=ov)
    candle_rows = {r for r, row in enumerate(layout.rows) if any(c[1] == "up" for c in row)}
    assert len(candle_rows) >= 10  # the candles keep at least half the price rows
    styles = {cell[1] for row in layout.rows for cell in row}
    assert "stop" not in styles and "target" not in styles
    assert layout.axis[0] == "▲S12.0" and layout.axis[-1] == "▼T6.0"


def test_overlay_maps_tracker_indexes_to_candle_times() -> None:
    times = [T0 + i * NS_PER_MINUTE for i in range(20)]
    levels = {
        "high": 11.0,
        "high_index": 105,
        "low": 9.0,
        "low_index": 108,
        "liq2_time": times[15],
        "liq2_price": 11.5,
    }
    ov = overlay_from_levels(levels, "SHORT", "WATCHING_LIQ2", 115, times[15], times)
    assert ov.box_start == times[5] and ov.box_end == times[15]
    assert ov.entry is None  # trade lines only once triggered


def test_architecture_contracts_hold() -> None:
    """core, strategy and engine never import textual (import-linter, as `make test` runs it)."""
    exe = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run([str(exe)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "never import textual KEPT" in proc.stdout
