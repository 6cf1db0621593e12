"""A minimal app that shows one console widget with the console's CSS and themes.

Used for the per-widget snapshots: the widget gets a real `EngineSnapshot` taken from a real
engine that processed the scene's candles.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.app import App, ComposeResult
from textual.widget import Widget

import slob_tui.ui.app as console_app
from slob_tui.ui.themes import VARIABLE_DEFAULTS, load_themes
from slob_tui.ui.widgets.candle_chart import CandleChart
from slob_tui.ui.widgets.event_log import EventLog
from slob_tui.ui.widgets.health import HealthPanel
from slob_tui.ui.widgets.mode_banner import ModeBanner
from slob_tui.ui.widgets.orders import OrdersPanel
from slob_tui.ui.widgets.setups import SetupsPanel

TZ = "America/New_York"


def make_widget(kind: str) -> Widget:
    return {
        "chart": lambda: CandleChart(tz=TZ, id="chart"),
        "setups": lambda: SetupsPanel(tz=TZ, id="setups"),
        "orders": lambda: OrdersPanel(id="orders"),
        "health": lambda: HealthPanel(id="health"),
        "events": lambda: EventLog(tz=TZ, id="events"),
        "banner": lambda: ModeBanner(id="banner"),
    }[kind]()


class WidgetHost(App[None]):
    CSS_PATH = Path(console_app.__file__).with_name("app.tcss")
    CSS = "#setups, #orders, #health, #events { height: 1fr; } #chart { height: 1fr; }"

    def __init__(self, kind: str, theme: str) -> None:
        super().__init__()
        self.kind = kind
        self._theme_name = theme

    def compose(self) -> ComposeResult:
        yield make_widget(self.kind)

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return dict(VARIABLE_DEFAULTS)

    def on_mount(self) -> None:
        for theme in load_themes():
            self.register_theme(theme)
        self.theme = self._theme_name

    def show(self, snap: Any, mode: str = "DEMO") -> None:
        w = self.query_one(f"#{self.kind}")
        if self.kind == "chart":
            w.show(snap, "NQ")
        elif self.kind == "events":
            w.show(snap.events)
        elif self.kind == "health":
            w.show(snap.health, 1_234_567)
        elif self.kind == "banner":
            w.set_mode(mode, f"{snap.feed} · NQ")
        else:
            w.show(snap)
