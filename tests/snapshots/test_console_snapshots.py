"""Snapshots of the console and of every widget: two themes, 80x24 and 140x45, empty states,
and a triggered setup of real NQ data with its overlays. Seeded data, a fixed clock.

Update after an intended change with `pytest tests/snapshots --snapshot-update` and review the
SVGs in `tests/__snapshots__/`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input

from slob_tui.ui.app import create_app
from tests.snapshots.hosts import WidgetHost
from tests.ui.helpers import make_engine
from tests.ui.scenes import feed_scene, sample_orders, triggered_engine, wait_engine_started

SIZES = {"small": (80, 24), "large": (140, 45)}


def _console(shared_data: Path, theme: str, **kw):
    return create_app(triggered_engine(shared_data), theme=theme, **kw)


@pytest.mark.parametrize("theme", ["slob-dark", "slob-light"])
@pytest.mark.parametrize("size", ["small", "large"])
def test_main_screen_triggered_setup(snap_compare, shared_data, theme, size) -> None:
    app = _console(shared_data, theme)
    assert snap_compare(app, terminal_size=SIZES[size], run_before=feed_scene)


def test_main_screen_colorblind_theme(snap_compare, shared_data) -> None:
    app = _console(shared_data, "slob-colorblind")
    assert snap_compare(app, terminal_size=SIZES["large"], run_before=feed_scene)


class WithBook:
    """The scene's engine as a node presents it: the sample bracket order and short position
    (entered at 16015), which the console marks to the chart's last price."""

    def __init__(self, engine) -> None:
        self.engine = engine

    def __getattr__(self, name: str):
        return getattr(self.engine, name)

    def snapshot(self):
        orders, positions = sample_orders()
        return self.engine.snapshot(orders=orders, positions=positions)


@pytest.mark.parametrize("theme", ["slob-dark", "slob-light"])
@pytest.mark.parametrize("size", ["small", "large"])
def test_main_screen_paused_with_a_position(snap_compare, shared_data, theme, size) -> None:
    app = create_app(WithBook(triggered_engine(shared_data)), theme=theme)

    async def pause(pilot) -> None:
        await feed_scene(pilot.app)
        await pilot.press("p")
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZES[size], run_before=pause)


@pytest.mark.parametrize("theme", ["slob-dark", "slob-light"])
@pytest.mark.parametrize("size", ["small", "large"])
def test_main_screen_empty(snap_compare, theme, size) -> None:
    app = create_app(make_engine(), theme=theme)

    async def started(pilot) -> None:
        await wait_engine_started(pilot.app)
        pilot.app.refresh_now()

    assert snap_compare(app, terminal_size=SIZES[size], run_before=started)


def test_help_screen(snap_compare) -> None:
    app = create_app(make_engine(), theme="slob-dark")
    assert snap_compare(app, terminal_size=SIZES["small"], press=["question_mark"])


def test_kill_switch_dialog(snap_compare, shared_data) -> None:
    app = _console(shared_data, "slob-dark")

    async def ask(pilot) -> None:
        await feed_scene(pilot.app)
        await pilot.press("K")

    assert snap_compare(app, terminal_size=SIZES["small"], run_before=ask)


def test_live_confirmation_screen(snap_compare) -> None:
    app = create_app(make_engine(mode="LIVE"), theme="slob-dark", live_confirm=True)

    async def no_blink(pilot) -> None:
        pilot.app.screen.query_one(Input).cursor_blink = False

    assert snap_compare(app, terminal_size=SIZES["small"], run_before=no_blink)


async def _scene_snapshot(shared_data: Path, orders: bool):
    engine = triggered_engine(shared_data)
    await engine.start()
    await engine.put_candles(list(engine.scene_candles))
    snap = (
        engine.snapshot(orders=sample_orders()[0], positions=sample_orders()[1])
        if orders
        else engine.snapshot()
    )
    await engine.stop("snapshot taken")
    return snap


WIDGET_SIZES = {
    "chart": (80, 24),
    "setups": (50, 24),
    "orders": (60, 10),
    "health": (40, 14),
    "events": (80, 12),
    "banner": (80, 1),
}


@pytest.mark.parametrize("theme", ["slob-dark", "slob-light"])
@pytest.mark.parametrize("kind", list(WIDGET_SIZES))
def test_widget(snap_compare, shared_data, kind, theme) -> None:
    app = WidgetHost(kind, theme)

    async def show(pilot) -> None:
        snap = await _scene_snapshot(shared_data, orders=(kind == "orders"))
        pilot.app.show(snap, mode="LIVE" if theme == "slob-light" else "DEMO")
        await pilot.pause()

    assert snap_compare(app, terminal_size=WIDGET_SIZES[kind], run_before=show)


@pytest.mark.parametrize("kind", ["chart", "setups", "orders", "events"])
def test_widget_empty(snap_compare, kind) -> None:
    app = WidgetHost(kind, "slob-dark")

    async def show(pilot) -> None:
        engine = make_engine()
        await engine.start()
        snap = engine.snapshot()
        await engine.stop("snapshot taken")
        pilot.app.show(snap)
        await pilot.pause()

    assert snap_compare(app, terminal_size=WIDGET_SIZES[kind], run_before=show)
