"""The console: a Textual app that hosts the engine and owns its shutdown.

The engine's `run()` is an asyncio task watched by a Textual worker (`EngineRunner` in
`engine_host.py`). Every way out (ctrl+q, the quit command, SIGTERM, SIGHUP, a vanished
terminal, the app unmounting) ends in `EngineRunner.shutdown()`, which requests a stop and
awaits the engine's graceful stop (open candles closed and flushed to the store, orders
drained, trackers saved) before the process may end.

Widgets never read the engine per tick: one timer polls `engine.seq` at `poll_hz` (4-10 Hz) and,
only when it changed, takes one `engine.snapshot()` and hands it to each widget, which redraws
only if its own part changed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from textual.app import App, ComposeResult, SystemCommand
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Footer

from slob_tui.core.health import RunState
from slob_tui.core.models import NS_PER_MINUTE
from slob_tui.errors import SlobError
from slob_tui.ui.bindings import BINDINGS, key_label, textual_bindings
from slob_tui.ui.engine_host import ConsoleEngine, EngineRunner
from slob_tui.ui.format import zone_label
from slob_tui.ui.messages import EngineStarted, EngineStopped, KillSwitchDone
from slob_tui.ui.screens.confirm_kill import ConfirmKillScreen, ConfirmResetScreen
from slob_tui.ui.screens.help import HelpScreen
from slob_tui.ui.screens.live_confirm import LiveConfirmScreen
from slob_tui.ui.themes import DEFAULT_THEME, VARIABLE_DEFAULTS, load_themes
from slob_tui.ui.widgets.candle_chart import CandleChart
from slob_tui.ui.widgets.event_log import EventLog
from slob_tui.ui.widgets.health import HealthPanel
from slob_tui.ui.widgets.mode_banner import ModeBanner
from slob_tui.ui.widgets.orders import OrdersPanel
from slob_tui.ui.widgets.setups import SetupsPanel

PANELS = ("setups", "orders", "health", "events")
OLDER_BATCH = 240  # candles fetched from the store per scroll past the held history


log = logging.getLogger(__name__)


def _default_engine() -> ConsoleEngine:
    """The same node `slob-tui` with no flags builds (demo feed, paper)."""
    from slob_tui.config import load_settings
    from slob_tui.node import NodeConfig, TradingNode

    settings = load_settings()
    return TradingNode(
        NodeConfig(
            feed=settings.feed, symbols=settings.symbols, db=settings.db_path, settings=settings
        )
    )


class SlobConsole(App[int]):
    """The trading console. Build it with `create_app` (tests and `run_console` do)."""

    CSS_PATH = "app.tcss"
    TITLE = "slob-tui"
    BINDINGS = textual_bindings()
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]

    def __init__(
        self,
        engine_or_factory: Any = None,
        *,
        clock: Any = None,
        theme: str | None = None,
        tz: str = "America/New_York",
        symbol: str | None = None,
        live_confirm: bool = False,
        keymap: dict[str, str] | None = None,
        poll_hz: float = 8.0,
        install_signals: bool = False,
        watch_terminal: bool = False,
        duration: float | None = None,
        theme_dirs: Iterable[Path] | None = None,
        stop_timeout: float = 30.0,
    ) -> None:
        super().__init__()
        self.runner = EngineRunner(
            engine_or_factory or _default_engine,
            post_message=self.post_message,
            duration=duration,
            stop_timeout=stop_timeout,
        )
        self.clock = clock
        self._start_theme = theme or DEFAULT_THEME
        self.tz = tz
        self.symbol = symbol
        self.live_confirm = live_confirm
        self.keymap = dict(keymap or {})
        self.poll_hz = min(max(poll_hz, 4.0), 10.0)
        self.install_signals = install_signals
        self.watch_terminal = watch_terminal
        self.theme_dirs = tuple(theme_dirs) if theme_dirs is not None else None
        self.theme_names: list[str] = []
        self.symbols: tuple[str, ...] = ()
        self.last_snapshot: Any = None
        self.redraws = 0  # snapshots handed to the widgets
        self.kill_results: list[KillSwitchDone] = []
        self.stopped_reason: str | None = None
        self._seen_seq = -1
        self._last_poll = 0.0
        self._quitting = False
        self._signals: list[int] = []
        self._load_themes()

    @property
    def engine(self) -> ConsoleEngine | None:
        return self.runner.engine

    def start_engine(self) -> None:
        if self.runner.start():
            self.run_worker(self.runner.watch(), name="engine", group="engine",
                            exit_on_error=False)  # fmt: skip

    # ---- layout ---------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield ModeBanner(id="banner")
        with Horizontal(id="body"):
            with Vertical(id="left"):
                yield CandleChart(tz=self.tz, id="chart")
                yield EventLog(tz=self.tz, id="events")
            with Vertical(id="side"):
                yield HealthPanel(id="health")
                yield SetupsPanel(tz=self.tz, id="setups")
                yield OrdersPanel(id="orders")
        yield Footer()

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return dict(VARIABLE_DEFAULTS)

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for spec in BINDINGS:
            if spec.action in ("quit",):
                continue
            keys = key_label(self.keymap.get(spec.id, spec.keys))
            yield SystemCommand(
                spec.help,
                f"{spec.id} (key {keys})",
                lambda action=spec.action: self.run_action(action),
            )

    # ---- lifecycle ------------------------------------------------------------------------
    def _load_themes(self) -> None:
        """Register the theme files and pick the start theme before the first style pass."""
        dirs = self.theme_dirs
        for theme in load_themes(*dirs) if dirs is not None else load_themes():
            self.register_theme(theme)
            self.theme_names.append(theme.name)
        if not self.theme_names:
            self.theme_names = ["textual-dark"]
        self.theme = self._start_theme if self.get_theme(self._start_theme) else self.theme_names[0]

    def on_mount(self) -> None:
        if self.keymap:
            self.set_keymap(self.keymap)
        self.query_one(ModeBanner).set_mode(
            "LIVE" if self.live_confirm else (self.engine.mode if self.engine else "DEMO")
        )
        if self.install_signals:
            self._install_signal_handlers()
        if self.watch_terminal and sys.stdin.isatty():
            self.set_interval(2.0, self.check_terminal)
        self.set_interval(1.0 / self.poll_hz, self.poll)
        if self.live_confirm:
            detail = ""
            if self.engine is not None:
                detail = f"Feed {self.engine.feed.name}"
            self.push_screen(LiveConfirmScreen(detail), self._live_answer)
        else:
            self.start_engine()

    def _live_answer(self, confirmed: bool | None) -> None:
        if confirmed:
            controls = self.engine.trading_controls() if self.engine else None
            if controls is not None:
                controls.confirm_live()  # only now may a live broker connect
            self.start_engine()
        else:
            self.stopped_reason = "live trading not confirmed"
            self.exit(1, return_code=1, message="LIVE trading not confirmed: nothing was started.")

    # ---- engine -> widgets ------------------------------------------------------------------
    def poll(self) -> None:
        """Take a snapshot only when the engine changed (or once a second for ages/rates)."""
        engine = self.engine
        if engine is None:
            return
        now = time.monotonic()
        seq = engine.seq
        if seq == self._seen_seq and now - self._last_poll < 1.0:
            return
        changed = seq != self._seen_seq
        self._seen_seq = seq
        self._last_poll = now
        self.apply_snapshot(engine.snapshot(), changed)

    def apply_snapshot(self, snap: Any, changed: bool = True) -> None:
        self.last_snapshot = snap
        try:
            self._apply(snap, changed)
        except NoMatches:  # the screen is being torn down (quitting): nothing to draw on
            pass

    def _apply(self, snap: Any, changed: bool) -> None:
        self.symbols = tuple(snap.symbols) or tuple(snap.candles)
        if self.symbol not in self.symbols and self.symbols:
            self.symbol = self.symbols[0]
        banner = self.query_one(ModeBanner)
        detail = f"{snap.feed} · {self.symbol or '—'}"
        if snap.paused:
            detail += " · PAUSED"
        if self.stopped_reason:
            detail += f" · engine stopped: {self.stopped_reason}"
        detail += f" · times: {zone_label(self.tz, snap.now_ns)}"
        banner.set_mode(snap.mode, detail)
        chart = self.query_one(CandleChart)
        health = snap.health
        if self.stopped_reason:  # the figures froze when the engine stopped: say so
            chart.empty_message = f"engine stopped: {self.stopped_reason}"
            failed = self.runner.error is not None  # what the engine's run raised: the feed's
            health = replace(health, run=RunState(True, self.stopped_reason, failed))
        if changed:
            chart.show(snap, self.symbol)
            self.redraws += 1
        self.query_one(SetupsPanel).show(snap)
        self.query_one(OrdersPanel).show(snap)
        self.query_one(EventLog).show(snap.events)
        self.query_one(HealthPanel).show(health, self.store_bytes())

    def store_bytes(self) -> int | None:
        store = self.engine.store if self.engine is not None else None
        path = store.path if store is not None else None
        if path is None:
            return None
        total = 0
        for p in (Path(path), Path(f"{path}-wal")):
            try:
                total += p.stat().st_size
            except OSError:
                pass
        return total

    def refresh_now(self) -> None:
        """Push the current engine state to the widgets at once (after a user action)."""
        if self.engine is not None:
            self._seen_seq = self.engine.seq
            self._last_poll = time.monotonic()
            self.apply_snapshot(self.engine.snapshot())

    def on_engine_started(self, message: EngineStarted) -> None:
        self.refresh_now()

    def on_engine_stopped(self, message: EngineStopped) -> None:
        self.stopped_reason = message.reason
        if message.at_start and isinstance(self.runner.error, SlobError):
            # Bad input (a corrupt database, a bad setting): nothing can run, so leave at once
            # and let `run_console` print the one line and exit 2, as headless does.
            self.exit(2, return_code=2)
            return
        if message.error:
            self.notify(f"engine stopped: {message.error}", severity="error", timeout=30)
        self.refresh_now()

    def on_kill_switch_done(self, message: KillSwitchDone) -> None:
        self.kill_results.append(message)
        self.notify(message.summary, severity="information" if message.ok else "error", timeout=15)
        self.refresh_now()

    # ---- actions --------------------------------------------------------------------------
    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.keymap))

    def action_toggle_pause(self) -> None:
        engine = self.engine
        if engine is None:
            return
        if engine.paused:
            engine.resume_feed()
        else:
            engine.pause_feed()
        self.refresh_now()

    def action_next_symbol(self) -> None:
        if not self.symbols:
            return
        i = self.symbols.index(self.symbol) if self.symbol in self.symbols else -1
        self.symbol = self.symbols[(i + 1) % len(self.symbols)]
        self.query_one(CandleChart).go_live()
        self.refresh_now()

    def action_next_theme(self) -> None:
        names = self.theme_names
        i = names.index(self.theme) if self.theme in names else -1
        self.theme = names[(i + 1) % len(names)]
        self.notify(
            f"theme {self.theme} ({names.index(self.theme) + 1} of {len(names)})", timeout=3
        )

    def action_toggle_panel(self, name: str) -> None:
        if name in PANELS:
            panel = self.query_one(f"#{name}")
            panel.display = not panel.display
            side = self.query_one("#side")
            side.display = any(child.display for child in side.children)  # chart takes it

    def action_cycle_event_filter(self) -> None:
        self.query_one(EventLog).cycle_filter()

    def action_chart_live(self) -> None:
        self.query_one(CandleChart).go_live()

    async def action_chart_scroll(self, delta: int) -> None:
        chart = self.query_one(CandleChart)
        if delta < 0 and chart.needs_older():
            await self.load_older()
        chart.scroll_candles(delta)

    async def load_older(self) -> int:
        """Fetch candles older than the chart holds from the store; returns how many."""
        chart = self.query_one(CandleChart)
        store = self.engine.store if self.engine is not None else None
        if store is None or self.symbol is None or not chart.history:
            return 0
        first = chart.history[0].start
        try:
            older = await store.candles(
                self.symbol, start_ns=first - OLDER_BATCH * NS_PER_MINUTE, end_ns=first
            )
        except Exception as exc:  # noqa: BLE001 - e.g. the store already closed
            self.notify(f"older candles unavailable: {exc}", severity="warning")
            return 0
        return chart.add_older(self.symbol, older)

    def action_kill_switch(self) -> None:
        self.push_screen(ConfirmKillScreen(), self._kill_answer)

    def _kill_answer(self, yes: bool | None) -> None:
        if yes:
            self.run_worker(self._kill(), name="kill-switch", group="kill", exit_on_error=False)
        else:
            self.notify("kill switch cancelled: nothing was touched")

    async def _kill(self) -> None:
        controls = self.engine.trading_controls() if self.engine is not None else None
        if controls is None:
            self.post_message(
                KillSwitchDone("this engine places no orders: nothing to cancel", ok=False)
            )
            return
        try:
            result = await controls.kill_switch("console")
        except Exception as exc:  # noqa: BLE001 - shown to the user
            self.post_message(KillSwitchDone(f"kill switch FAILED: {exc}", ok=False))
            return
        self.post_message(KillSwitchDone(describe_kill(result)))

    def action_reset_kill_switch(self) -> None:
        self.push_screen(ConfirmResetScreen(), self._reset_answer)

    def _reset_answer(self, yes: bool | None) -> None:
        if yes:
            self.run_worker(self._reset(), name="kill-reset", group="kill", exit_on_error=False)
        else:
            self.notify("kill switch left as it was")

    async def _reset(self) -> None:
        controls = self.engine.trading_controls() if self.engine is not None else None
        if controls is None:
            self.post_message(KillSwitchDone("this engine places no orders: no switch", ok=False))
            return
        try:
            await controls.reset_kill_switch()
        except Exception as exc:  # noqa: BLE001 - shown to the user
            self.post_message(KillSwitchDone(f"clearing the kill switch FAILED: {exc}", ok=False))
            return
        self.post_message(KillSwitchDone("kill switch cleared: new orders allowed"))

    # ---- ways out ---------------------------------------------------------------------------
    async def shutdown_engine(self, reason: str) -> None:
        await self.runner.shutdown(reason)

    async def graceful_quit(self, reason: str) -> None:
        if self._quitting:
            return
        self._quitting = True
        await self.runner.shutdown(reason)
        failed = self.runner.error is not None
        self.exit(1 if failed else 0, return_code=1 if failed else 0)

    async def action_quit(self) -> None:
        await self.graceful_quit("quit")

    async def on_unmount(self) -> None:
        await self.runner.shutdown("console closed")
        self._remove_signal_handlers()

    def _install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGHUP):
            try:
                loop.add_signal_handler(sig, self.on_signal, sig)
                self._signals.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):
                pass

    def _remove_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in self._signals:
            loop.remove_signal_handler(sig)
        self._signals.clear()

    def on_signal(self, sig: int) -> None:
        """SIGTERM/SIGHUP: the same graceful stop as ctrl+q."""
        name = signal.Signals(sig).name
        self.call_later(self.graceful_quit, f"signal {name}")

    def check_terminal(self, fd: int = 0) -> bool:
        """Quit gracefully when our terminal is gone (a dropped SSH session); True if alive."""
        try:
            alive = os.isatty(fd)
            if alive:
                os.get_terminal_size(fd)
        except OSError:
            alive = False
        if not alive:
            self.call_later(self.graceful_quit, "terminal vanished")
        return alive


def describe_kill(result: Any) -> str:
    """One line from the executor's kill-switch result (a dict of what it cancelled)."""
    if isinstance(result, dict):
        cancelled = result.get("cancelled") or []
        flattened = result.get("flattened") or []
        return (
            f"kill switch done: cancelled {len(cancelled)} order(s), flattened "
            f"{', '.join(flattened) if flattened else 'no position'}; new orders blocked"
        )
    return f"kill switch done: {result}"


def create_app(
    engine_or_factory: Any = None,
    *,
    clock: Any = None,
    theme: str | None = None,
    **kwargs: Any,
) -> SlobConsole:
    """The console around an engine (or a zero-argument factory building one).

    Tests pass an engine built on a feed they control and a `ManualClock`; `run_console` passes
    the node built from the command line's `NodeConfig`.
    """
    return SlobConsole(engine_or_factory, clock=clock, theme=theme, **kwargs)
