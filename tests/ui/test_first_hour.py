"""Issue 15, "the first hour": what a new user meets on screen and in the headless output.

One test (or more) per item, at the level the user meets it: the screen's text through a real
console on a real engine, or the real command's output and exit status.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from pathlib import Path

from slob_tui.core.clock import ManualClock
from slob_tui.core.event_payloads import BackfillCompleted, OrderFilled
from slob_tui.core.events import Event, EventType
from slob_tui.core.models import (
    NS_PER_MINUTE,
    NS_PER_SECOND,
    Direction,
    Position,
    SetupState,
    SetupUpdate,
    Side,
)
from slob_tui.engine.health import HealthMonitor
from slob_tui.ui.app import create_app
from slob_tui.ui.bindings import BINDINGS
from slob_tui.ui.widgets.candle_chart import CandleChart
from slob_tui.ui.widgets.event_log import render_events
from slob_tui.ui.widgets.health import health_rows
from tests.ui.helpers import T0, IdleFeed, make_engine, screen_text, synthetic_candles
from tests.ui.scenes import feed_scene, triggered_engine, wait_engine_started

ROOT = Path(__file__).resolve().parents[2]


def slob(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200", "SLOB_DB_PATH": "unused.db"}
    return subprocess.run(
        [sys.executable, "-m", "slob_tui", *args], cwd=cwd, capture_output=True, text=True,
        timeout=120, env=env,
    )  # fmt: skip


def notices(app) -> list[str]:
    """The notifications (toasts) the app has shown."""
    return [n.message for n in app._notifications]


async def _settle(pilot, app) -> None:
    app.refresh_now()
    await pilot.pause()


# ---- item 1: a second demo on the same database; an engine whose ticks are all late ---------
def test_a_second_demo_run_on_the_same_database_continues_after_it(tmp_path: Path) -> None:
    first = slob("--no-ui", "--duration", "3", "--speed", "600", "--db", "h.db", cwd=tmp_path)
    second = slob("--no-ui", "--duration", "3", "--speed", "600", "--db", "h.db", cwd=tmp_path)
    assert first.returncode == 0 and second.returncode == 0, second.stderr
    last_first = [ln for ln in first.stdout.splitlines() if " NQ O " in ln][-1][:5]
    live_second = [ln for ln in second.stdout.splitlines() if " NQ O " in ln]
    assert live_second, second.stdout  # candles, not "0 candles" and a frozen price
    assert live_second[0][:5] > last_first  # it carries on after the stored minutes
    assert "every tick was late" not in second.stdout


async def test_an_engine_whose_ticks_are_all_late_says_so(caplog) -> None:
    engine = make_engine(("NQ",))
    clock: ManualClock = engine.clock  # type: ignore[assignment]
    app = create_app(engine, theme="slob-dark")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_engine_started(app)
        await engine.put_candles(synthetic_candles("NQ", 5, T0))
        caplog.set_level(logging.WARNING, logger="slob_tui.engine.health")
        for i in range(4):  # minutes already closed, sent again for 2 engine minutes
            clock.advance(30 * NS_PER_SECOND)
            engine.put_ticks([("NQ", T0 + i * NS_PER_MINUTE + 5, 100.0, 1.0, "X", None, i)])
            await asyncio.sleep(0.15)
        assert engine.health()["status"] == "late_ticks"
        await _settle(pilot, app)
        assert "ticks all late" in screen_text(app)
    assert any("was late" in r.getMessage() for r in caplog.records), caplog.records


def test_late_ticks_on_a_clock_that_stands_still_are_reported_by_count() -> None:
    """A replay's clock follows the data, so late ticks do not move it: the count decides."""
    monitor = HealthMonitor(ManualClock(T0), wall=ManualClock(0))
    monitor.started(T0)
    monitor.on_ticks(999, late=999)
    assert monitor.report()["status"] == "ok"
    monitor.on_ticks(1, late=1)
    assert monitor.report()["status"] == "late_ticks"
    monitor.on_ticks(5, late=0)  # a tick that is not late: data flows again
    assert monitor.report()["status"] == "ok"


def test_a_clock_that_jumps_at_start_is_not_called_stale() -> None:
    """A demo resuming after its stored candles moves its clock past them as it starts."""
    clock = ManualClock(T0)
    monitor = HealthMonitor(clock, wall=ManualClock(0))
    monitor.started(T0)
    clock.advance(8 * NS_PER_MINUTE)  # where the stored candles end
    monitor.on_ticks(10)
    assert monitor.report()["status"] == "ok"
    clock.advance(4 * NS_PER_MINUTE)  # and no candle since: now it is stale
    assert monitor.report()["status"] == "stale"


# ---- item 4: a corrupt database in the console -------------------------------------------------
async def test_a_corrupt_database_closes_the_console_with_the_one_line_and_exit_2(
    tmp_path: Path,
) -> None:
    from slob_tui.errors import SlobError
    from slob_tui.node import NodeConfig, TradingNode

    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not a database" * 300)
    app = create_app(TradingNode(NodeConfig(db=str(bad))), theme="slob-dark")
    async with app.run_test(size=(80, 24)):
        for _ in range(200):
            if app.return_code is not None:
                break
            await asyncio.sleep(0.05)
    assert app.return_code == 2
    assert isinstance(app.runner.error, SlobError) and "not a database" in str(app.runner.error)


class BrokenFeed(IdleFeed):
    """A feed that fails once running (a lost data source): the engine stops with its error."""

    async def run(self, sink) -> None:
        raise RuntimeError("data source went away")


async def test_an_engine_that_fails_later_stays_on_screen_and_quit_exits_1() -> None:
    from slob_tui.engine.engine import LiveTradingEngine

    engine = LiveTradingEngine(BrokenFeed(), clock=ManualClock(T0), clock_tick_s=0.05)
    app = create_app(engine, theme="slob-dark")
    async with app.run_test(size=(100, 30)) as pilot:
        for _ in range(100):
            if app.stopped_reason:
                break
            await asyncio.sleep(0.05)
        await pilot.pause()
        text = screen_text(app)
        assert "engine stopped" in text and "failed" in text
        assert "waiting for the first candle" not in text
        await pilot.press("ctrl+q")
    assert app.return_code == 1


def test_a_corrupt_database_headless_is_the_same_line(tmp_path: Path) -> None:
    (tmp_path / "bad.db").write_bytes(b"this is not a database" * 300)
    result = slob("--no-ui", "--duration", "2", "--db", "bad.db", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("slob-tui: error:") and "not a database" in (
        result.stderr
    )


# ---- item 5: the open position follows the market --------------------------------------------
class WithPosition:
    """The engine as a node presents it, holding one short position at 100."""

    def __init__(self, engine) -> None:
        self.engine = engine

    def __getattr__(self, name: str):
        return getattr(self.engine, name)

    def snapshot(self):
        return self.engine.snapshot(positions=(Position("NQ", -1, 100.0, last_price=100.0),))


async def test_the_open_position_is_marked_to_the_last_price() -> None:
    engine = make_engine(("NQ",))
    app = create_app(WithPosition(engine), theme="slob-dark")
    async with app.run_test(size=(140, 45)) as pilot:
        await wait_engine_started(app)
        candles = synthetic_candles("NQ", 30, T0 - 30 * NS_PER_MINUTE)
        await engine.put_candles(candles)
        await _settle(pilot, app)
        last = candles[-1].close
        text = screen_text(app)
        row = next(ln for ln in text.splitlines() if "-1" in ln and "100.00" in ln)
        assert f"{last:.2f}" in row and f"{(last - 100.0) * -1:+.2f}" in row, row
        assert "Orders & positions · NQ" in text
        assert "-0.00" not in text


# ---- item 7: one clock per line, one labelled zone, no raw nanoseconds ------------------------
def test_event_log_is_newest_first_by_the_time_it_shows_and_prints_no_raw_ns() -> None:
    candle = T0 + 39 * NS_PER_MINUTE  # the 10:49 candle (New York) decides at 10:50
    update = SetupUpdate("s1", "NQ", Direction.SHORT, SetupState.WATCHING_CONSOL,
                         SetupState.WATCHING_LIQ1, None, 5, candle, {})  # fmt: skip
    fill_ts = candle + NS_PER_MINUTE + 200_000_000
    events = (
        Event(EventType.ORDER_FILLED, fill_ts, OrderFilled("c1", "o1", "NQ", Side.SELL, 1.0,
              1.0, "entry", "x1", "s1", fill_ts)),
        Event(EventType.SETUP_STARTED, candle, update),
        Event(EventType.BACKFILL_COMPLETED, fill_ts + 5 * NS_PER_MINUTE,
              BackfillCompleted("NQ", 6, candle, fill_ts + 5 * NS_PER_MINUTE)),
    )  # fmt: skip
    lines = render_events(events, "all", "America/New_York", 20).plain.splitlines()
    times = [ln.split()[0] for ln in lines]
    assert times == sorted(times, reverse=True), lines
    assert lines[-1].startswith("10:50:00 SETUP_STARTED")
    assert "start=10:49:00" in lines[0] and "end=10:55:00" in lines[0]
    assert not any(ch.isdigit() and len(tok) > 12 for ln in lines for tok in ln.split()
                   for ch in tok[:1])  # fmt: skip


def test_last_candle_age_counts_wall_seconds_not_market_seconds() -> None:
    market, wall = ManualClock(T0), ManualClock(5 * NS_PER_SECOND)
    monitor = HealthMonitor(market, wall=wall)
    monitor.started(T0)
    monitor.on_candle(synthetic_candles("NQ", 1, T0)[0])
    market.advance(53 * NS_PER_SECOND)  # the demo's market runs 60x
    wall.advance(1 * NS_PER_SECOND)
    rows = dict((label, value) for label, value, _ in health_rows(monitor.report(), None))
    assert rows["last candle"] == "1s ago"


async def test_the_console_names_its_zone_once(shared_data: Path) -> None:
    app = create_app(triggered_engine(shared_data), theme="slob-dark", tz="UTC")
    async with app.run_test(size=(80, 24)) as pilot:
        await feed_scene(pilot)
        await pilot.pause()
        text = screen_text(app)
        assert text.count("times: UTC") == 1
        assert "16:" in text  # the chart's axis and the log in UTC, not New York


def test_headless_times_are_in_the_chosen_zone_and_named(tmp_path: Path) -> None:
    result = slob("--no-ui", "--duration", "2", "--speed", "600", "--tz", "UTC", "--db", "t.db",
                  cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "times in UTC" in result.stdout.splitlines()[0]
    assert "Z " not in result.stdout  # no second, unlabelled zone
    bad = slob("--no-ui", "--tz", "Mars/Olympus", cwd=tmp_path)
    assert bad.returncode == 2 and "Mars/Olympus" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


# ---- item 8: pause ---------------------------------------------------------------------------
async def test_pause_replaces_live_in_the_chart_title() -> None:
    engine = make_engine(("NQ",))
    app = create_app(engine, theme="slob-dark")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_engine_started(app)
        await engine.put_candles(synthetic_candles("NQ", 20, T0 - 20 * NS_PER_MINUTE))
        await _settle(pilot, app)
        assert "● live" in screen_text(app)
        await pilot.press("p")
        await pilot.pause()
        title = screen_text(app).splitlines()[1]
        assert "⏸ paused" in title and "live" not in title


# ---- item 11: light theme borders, theme names -------------------------------------------------
async def test_light_theme_borders_stand_out_and_t_names_the_theme() -> None:
    app = create_app(make_engine(), theme="slob-light")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        panel = app.query_one("#health")
        _, border = panel.styles.border.top
        background = app.screen.styles.background
        shown = background + border  # the border colour as blended over the background
        assert abs(shown.brightness - background.brightness) > 0.2, (shown, background)
        await pilot.press("t")
        await pilot.pause()
        assert any(app.theme in n for n in notices(app)), app.theme


# ---- item 12: fits at 80x24 and 140x45; hidden panels give the chart the width ----------------
async def test_title_and_footer_fit_at_80x24_and_140x45(shared_data: Path) -> None:
    for size in ((80, 24), (140, 45)):
        app = create_app(triggered_engine(shared_data), theme="slob-dark")
        async with app.run_test(size=size) as pilot:
            await feed_scene(pilot)
            await pilot.pause()
            lines = screen_text(app).splitlines()
            title = lines[1]
            assert "● live" in title and "16008.75" in title, title
            assert "SHORT TRIGGERED" in title or "SHORT WATCHING_CONSOL" in title
            assert "K Kill" in lines[-1], lines[-1]


async def test_the_banner_keeps_pause_and_zone_at_80_columns(shared_data: Path) -> None:
    for size, explained in (((80, 24), False), ((140, 45), True)):
        app = create_app(triggered_engine(shared_data), theme="slob-dark")
        async with app.run_test(size=size) as pilot:
            await feed_scene(pilot)
            await pilot.press("p")
            await pilot.pause()
            banner = screen_text(app).splitlines()[0]
            assert banner.lstrip().startswith("DEMO") and "PAUSED" in banner
            assert banner.rstrip().endswith("times: New York (EST)"), banner
            assert ("synthetic market" in banner) is explained


async def test_hiding_the_side_panels_gives_the_chart_the_width() -> None:
    app = create_app(make_engine(), theme="slob-dark")
    async with app.run_test(size=(100, 30)) as pilot:
        for key in "234":
            await pilot.press(key)
        await pilot.pause()
        assert app.query_one(CandleChart).size.width == 100
        await pilot.press("2")
        await pilot.pause()
        assert app.query_one(CandleChart).size.width < 100


async def test_command_palette_shows_keys_as_typed() -> None:
    app = create_app(make_engine(), theme="slob-dark")
    async with app.run_test(size=(100, 30)):
        helps = [c.help for c in app.get_system_commands(app.screen)]
        assert any("key [" in h for h in helps) and any("key ]" in h for h in helps)
        assert not any("square_bracket" in h or "question_mark" in h for h in helps)


# ---- item 14: 16-colour terminals --------------------------------------------------------------
async def test_help_and_docs_name_the_colour_setting() -> None:
    app = create_app(make_engine(), theme="slob-dark")
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        text = screen_text(app)
        assert "TEXTUAL_COLOR_SYSTEM=standard" in text and "close: escape, q, ?, f1" in text
    assert "TEXTUAL_COLOR_SYSTEM=standard" in (ROOT / "docs" / "CONSOLE.md").read_text()


# ---- the walk: every key of the help screen, in order ------------------------------------------
async def test_a_new_user_walks_every_key_in_the_help_screen(shared_data: Path) -> None:
    """Open help, read the keys in the order shown, close it, press each, check what shows."""
    engine = triggered_engine(shared_data)
    app = create_app(engine, theme="slob-dark")
    async with app.run_test(size=(140, 45)) as pilot:
        await feed_scene(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        help_text = screen_text(app)
        order = [spec for spec in BINDINGS if spec.help in help_text]
        assert [s.id for s in order] == [s.id for s in BINDINGS]  # every key is listed
        await pilot.press("escape")
        chart = app.query_one(CandleChart)
        for spec in order:
            key = spec.keys.split(",")[0]
            if spec.id == "app.quit":
                continue  # last: it ends the walk
            await pilot.press(key)
            await pilot.pause()
            text = screen_text(app)
            if spec.id == "app.help":
                assert "slob-tui — keys" in text and "close:" in text
                await pilot.press("escape")
            elif spec.id == "feed.pause":
                assert engine.paused and "⏸ paused" in text and "PAUSED" in text
                await pilot.press("p")
                assert not engine.paused
            elif spec.id == "symbol.next":
                assert app.symbol == "NQ" and "NQ" in text.splitlines()[1]  # the only one
            elif spec.id == "theme.next":
                assert app.theme != "slob-dark" and any(app.theme in n for n in notices(app))
            elif spec.id == "kill.switch":
                assert "KILL SWITCH" in text
                await pilot.press("n")
                await pilot.pause()
                assert any("nothing was touched" in n for n in notices(app))
            elif spec.id == "kill.reset":
                assert "CLEAR THE KILL SWITCH" in text and "Allow new orders again?" in text
                await pilot.press("n")
                await pilot.pause()
                assert any("left as it was" in n for n in notices(app))
            elif spec.id.startswith("panel."):
                name = spec.id.split(".")[1]
                assert not app.query_one(f"#{name}").display
                await pilot.press(key)
                await pilot.pause()
                assert app.query_one(f"#{name}").display
            elif spec.id == "chart.older":
                assert chart.back == 10 and "◀ 10 back" in text
            elif spec.id == "chart.newer":
                assert chart.back == 0 and "● live" in text
            elif spec.id == "chart.live":
                assert chart.back == 0 and "● live" in text
            elif spec.id == "events.filter":
                assert "Events · setup" in text
            else:
                raise AssertionError(f"the walk does not know {spec.id}")
        await pilot.press("ctrl+q")
    assert app.return_code == 0 and engine.stopped
