"""`TradingNode`: builds every part of a running engine once, owns them, starts and stops them.

One node for the console, headless, replay and check (backtest keeps its own synchronous loop
over the same tracker and paper-fill objects). Built from one `NodeConfig`, it creates the bus,
the candle store, the pipeline (`LiveTradingEngine`, with its validator), the state store, the
broker (and the paper venue behind it), the executor and its runtime, and operations (metrics,
Telegram). Nothing is attached from outside afterwards.

Start order: the database lock is taken (one engine per database); the engine opens the store
and resumes after its history; execution opens the state, restores the paper book and the
trackers, reconciles with the broker and catches up on stored candles; operations start
serving; only then does the feed run. Stop order is the reverse: the pipeline stops (feed off,
ticks processed, open candles flushed), execution drains its orders and saves the trackers,
operations stop, the store closes, the lock is released.

Each closed candle goes to the node's one candle consumer, which calls the execution runtime
(paper fills, the trading gate, tracker saves) before the tracker decides on it.

Faults: the `StoreGuard` (guard.py) halts trading while a store refuses writes and asks for a
stop when the fault outlasts SLOB_STORE_GIVE_UP_S; `run()` then raises StoreUnavailableError
(exit status 75). Stopping takes at most SLOB_STOP_TIMEOUT_S: each step has its share of the
budget and is cancelled past it; under a signal handler (headless, replay) a daemon timer ends
the process if even that did not bring it down (a thread stuck in a system call).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from slob_tui.config import Settings
from slob_tui.core.clock import Clock
from slob_tui.core.health import HealthReport
from slob_tui.core.models import Candle
from slob_tui.engine.aggregator import SaleConditionPolicy
from slob_tui.engine.bus import EventBus
from slob_tui.engine.engine import CandleConsumer, LiveTradingEngine
from slob_tui.engine.health import HealthMonitor
from slob_tui.engine.ports import Feed
from slob_tui.engine.snapshot import EngineSnapshot
from slob_tui.errors import UsageError
from slob_tui.execution.executor import OrderExecutor
from slob_tui.execution.wiring import BrokerSetup, ExecutionRuntime, make_broker
from slob_tui.node.config import NodeConfig
from slob_tui.node.front_door import FrontDoor, FrontDoorConfig
from slob_tui.node.guard import StoreGuard
from slob_tui.ops.wiring import OpsRuntime, equity_market_open
from slob_tui.storage.candles import CandleStore
from slob_tui.storage.database import Database
from slob_tui.storage.errors import DatabaseLockedError, StoreError, StoreUnavailableError
from slob_tui.storage.lock import DatabaseLock
from slob_tui.storage.state import StateManager

log = logging.getLogger(__name__)

VenueFactory = Callable[[StateManager], BrokerSetup]
BACKSTOP_GRACE_S = 5.0  # past the stop timeout, before the process is ended outright


def make_feed(config: NodeConfig) -> tuple[Feed, Clock | None]:
    """The configured feed and the clock it drives (None: the data drives the clock)."""
    settings = config.settings
    if config.feed == "demo":
        from slob_tui.feeds.demo import DemoFeed

        demo = DemoFeed(
            symbols=config.symbols or ("NQ",), seed=config.seed, speed=config.speed or 60.0
        )
        return demo, demo.clock
    if config.feed == "replay":
        if not config.replay_file:
            raise UsageError("--feed replay needs a file: use `slob-tui replay FILE`")
        from slob_tui.feeds.replay import ReplayFeed

        replay = ReplayFeed(
            config.replay_file,
            symbol=config.symbols[0] if config.symbols else None,
            tz=config.tz,
            speed=config.speed,
            exclude_conditions=config.exclude_conditions,
        )
        return replay, None
    if not settings.has_alpaca_keys:
        raise UsageError(
            "--feed alpaca needs ALPACA_API_KEY and ALPACA_API_SECRET (in .env or the "
            "environment); without keys use the demo feed"
        )
    from slob_tui.feeds.alpaca import AlpacaWSFetcher

    alpaca = AlpacaWSFetcher(settings, config.symbols or None, feed=settings.alpaca_feed)
    return alpaca, alpaca.clock


def sale_policy(config: NodeConfig) -> SaleConditionPolicy:
    if config.exclude_conditions is not None:
        return SaleConditionPolicy(config.exclude_conditions)
    if config.feed == "alpaca":
        return SaleConditionPolicy.alpaca_sip()
    return SaleConditionPolicy()


class NodeControls:
    """What a user may do to a running node's trading, from any surface (console K, Telegram,
    `slob-tui flatten`): kill and reset go to the executor's trading gate."""

    def __init__(self, executor: OrderExecutor, venue: BrokerSetup) -> None:
        self._executor = executor
        self._venue = venue

    @property
    def broker_name(self) -> str:
        return self._venue.broker.name

    async def kill_switch(self, reason: str) -> dict[str, Any]:
        return await self._executor.kill_switch(reason)

    async def reset_kill_switch(self) -> None:
        await self._executor.reset_kill_switch()

    def kill_reason(self) -> str:
        """Empty while new orders are allowed."""
        return self._executor.killed

    def confirm_live(self) -> None:
        """The user typed the live confirmation: only now may a live broker connect."""
        if self._venue.stream is not None:
            self._venue.stream.confirm_live()


class TradingNode:
    """The owner of one running engine and everything around it."""

    def __init__(
        self,
        config: NodeConfig,
        *,
        feed: Feed | None = None,
        clock: Clock | None = None,
        venue: VenueFactory | None = None,
        observers: Sequence[CandleConsumer] = (),
        clock_tick_s: float = 0.25,
    ) -> None:
        """`feed`, `clock` and `venue` replace the configured ones (tests, other venues);
        `observers` see each closed candle after execution and before the tracker."""
        self.config = config
        settings: Settings = config.settings
        if feed is None:
            feed, feed_clock = make_feed(config)
            clock = clock or feed_clock
        db = config.db_path
        db.parent.mkdir(parents=True, exist_ok=True)
        self.limits = config.faults
        self.lock = DatabaseLock(db)
        self.database = Database(db)  # the file's one writer: both stores write through it
        self.store = CandleStore(self.database, max_pending=self.limits.store_max_queue)
        self.state = StateManager(self.database, redis_url=settings.redis_url, tz=settings.tz)
        self.venue = (
            venue(self.state)
            if venue is not None
            else make_broker(
                settings, self.state, live=config.live, live_confirmed=config.live_confirmed
            )
        )
        mode = "LIVE" if config.live else feed.mode
        if not self.venue.broker.paper:
            mode = "LIVE"
        elif mode == "LIVE":
            mode = "PAPER"  # the banner says where orders go, not where data comes from
        self.engine = LiveTradingEngine(
            feed,
            store=self.store,
            bus=EventBus(),
            clock=clock,
            params=config.params,
            policy=sale_policy(config),
            quality=settings.quality if config.validate else None,
            extra_holidays=settings.extra_holidays,
            market_open=equity_market_open(config.feed, settings),
            candle_consumers=(self._on_candle, *observers),
            mode=mode,
            clock_tick_s=clock_tick_s,
        )
        monitor = self.engine.health_monitor
        self.executor = OrderExecutor(
            self.venue.broker,
            self.state,
            self.engine.bus,
            limits=settings.risk,
            clock=self.engine.clock,
            safe_mode=lambda: monitor.safe_mode,
        )
        self.execution = ExecutionRuntime(
            self.engine, self.store, self.state, self.venue, self.executor, params=config.params
        )
        self.controls = NodeControls(self.executor, self.venue)
        self.guard = StoreGuard(
            self.store, self.state, self.execution, self.executor.gate, self.engine.bus,
            self.engine.clock, give_up_s=self.limits.store_give_up_s, give_up=self.request_stop,
        )  # fmt: skip
        self._backstop = False
        self._stop_done = False
        self.unwritten = ""
        """Why candles queued at the stop could not be written (empty when all were)."""
        if self.venue.stream is not None:
            self.venue.stream.on_reconnect = self.executor.reconcile  # updates missed meanwhile
        self.ops = OpsRuntime(
            self,
            settings,
            feed=config.feed,
            db_path=config.db,
            metrics_port=config.metrics_port,
            metrics_host=config.metrics_host,
        )
        self.front_door = FrontDoor(self, FrontDoorConfig.from_settings(config.db, settings))
        self._started: list[str] = []
        self._stopped = False

    # ---- the one candle consumer ----------------------------------------------------------
    async def _on_candle(self, candle: Candle) -> None:
        await self.execution.on_candle(candle)

    # ---- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        """Open, restore, reconcile and catch up, then let the feed run. A failure undoes the
        steps already taken (an open store's thread would keep the process alive)."""
        if self._started:
            return
        await self._take_lock()
        try:
            await self.engine.open()
            self._started.append("engine")
            await self.execution.start()
            self._started.append("execution")
            await self.ops.start()
            self._started.append("ops")
            await self.front_door.start()
            self._started.append("front_door")
        except BaseException:
            await self._undo_start()
            raise
        self.guard.start()
        self.engine.start_feed()

    async def _take_lock(self, flatten_wait_s: float = 60.0) -> None:
        """One engine per database: a second engine is refused here, naming the first. A
        `slob-tui flatten` acting on the file directly holds it for a moment: wait for it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + flatten_wait_s
        while True:
            try:
                self.lock.acquire()
                return
            except DatabaseLockedError:
                if self.lock.holder_role() != "flatten" or loop.time() > deadline:
                    raise
                await asyncio.sleep(0.2)

    async def _undo_start(self) -> None:
        if "front_door" in self._started:
            await self.front_door.stop("engine failed to start")
        if "ops" in self._started:
            await self.ops.stop()
        if "execution" in self._started:
            await self.execution.stop()
        else:
            await self.state.close()
        await self.engine.close()
        self.lock.release()
        self._stopped = True

    async def wait(self, duration: float | None = None) -> str:
        return await self.engine.wait(duration)

    async def run(self, duration: float | None = None) -> None:
        """Start, run until the feed ends, `duration` passes or a stop is requested; stop."""
        await self.start()
        await self.stop(await self.wait(duration))
        if self.guard.gave_up or self.unwritten:
            why = "; ".join(w for w in (self.guard.gave_up, self.unwritten) if w)
            raise StoreUnavailableError(f"stopped for a restart: {why}")
        if self.engine.feed_error is not None:
            raise self.engine.feed_error

    def request_stop(self, reason: str = "stop requested") -> None:
        """Safe from signal handlers: the running `run()` performs the graceful stop."""
        self.engine.request_stop(reason)

    def install_signal_handlers(self) -> None:
        """Signals stop gracefully (the engine's handlers); this process is the engine's own
        (headless, replay), so a stop that overruns its timeout also ends the process (see
        `_arm_backstop`)."""
        self._backstop = True
        self.engine.install_signal_handlers()

    async def stop(self, reason: str = "stopped") -> None:
        """The reverse of `start`; every step runs even when an earlier one failed, each within
        its share of SLOB_STOP_TIMEOUT_S (cancelled past it)."""
        if self._stopped:
            return
        self._stopped = True
        if not self._started:  # never started (refused at start): nothing to stop
            self.engine.stop_reason = self.engine.stop_reason or reason
            return
        loop = asyncio.get_running_loop()
        budget = self.limits.stop_timeout_s
        deadline = loop.time() + budget
        self._arm_backstop(budget + BACKSTOP_GRACE_S)
        await self.guard.stop()
        try:
            await _within(self.engine.stop_pipeline(reason), budget * 0.4, "pipeline stop")
        finally:
            await _within(self.front_door.stop(reason), 2.0, "front door stop")
            left = deadline - loop.time()
            await _within(self.execution.stop(), left * 0.6, "execution stop")
            await _within(self.ops.stop(), min(5.0, (deadline - loop.time()) * 0.5),
                          "operations stop")  # fmt: skip
            try:
                left = max(2.0, deadline - loop.time())  # the connections must still close
                await asyncio.wait_for(self.engine.close(left * 0.8), left)
            except TimeoutError:
                self.unwritten = "closing the store overran the stop timeout"
                log.error("%s: cancelled", self.unwritten)
            except StoreError as exc:  # the queue could not be written before the stop
                self.unwritten = str(exc)
                log.error("%s", exc)
            finally:
                self.lock.release()
                self._stop_done = True

    def _arm_backstop(self, after_s: float) -> None:
        """A daemon timer ending the process if, `after_s` from now, the stop has not finished
        or the interpreter is still exiting (its main thread done, waiting on a thread that
        cannot be cancelled: a system call on a hung disk), so that nothing keeps it past the
        supervisor's TimeoutStopSec. Only for the engine's own process (see signals)."""
        if not self._backstop:
            return

        def end() -> None:
            if self._stop_done and threading.main_thread().is_alive():
                return  # stopped in time and the process still has work (a caller, a test)
            log.critical("still alive %.0f s after the stop began: ending the process", after_s)
            logging.shutdown()
            os._exit(75 if self.guard.gave_up else 1)

        timer = threading.Timer(after_s, end)
        timer.daemon = True
        timer.start()

    # ---- what the console, operations and commands read -------------------------------------
    @property
    def stopped(self) -> bool:
        return self._stopped

    @property
    def stop_reason(self) -> str:
        return self.engine.stop_reason

    @property
    def feed_error(self) -> BaseException | None:
        return self.engine.feed_error

    @property
    def feed(self) -> Feed:
        return self.engine.feed

    @property
    def bus(self) -> EventBus:
        return self.engine.bus

    @property
    def clock(self) -> Clock:
        return self.engine.clock

    @property
    def health_monitor(self) -> HealthMonitor:
        return self.engine.health_monitor

    @property
    def mode(self) -> str:
        return self.engine.mode

    @property
    def seq(self) -> int:
        return self.engine.seq

    @property
    def paused(self) -> bool:
        return self.engine.paused

    @property
    def setup_events(self) -> int:
        return self.engine.setup_events

    def health(self) -> HealthReport:
        """The pipeline's report with every section the node owns filled in."""
        return self.engine.health(
            storage=self.guard.report(),
            trading=self.executor.health(),
            ops=self.ops.health() or None,
            attach=self.front_door.health(),
        )

    def snapshot(self) -> EngineSnapshot:
        orders, positions = self.executor.orders_view()
        return self.engine.snapshot(self.health(), orders, positions)

    def trading_controls(self) -> NodeControls:
        """Kill switch and its reset: what the console's K and Telegram's /flatten call."""
        return self.controls

    def pause_feed(self) -> None:
        self.engine.pause_feed()

    def resume_feed(self) -> None:
        self.engine.resume_feed()

    def symbols(self) -> Sequence[str]:
        return self.engine.feed.symbols


async def _within(step: Awaitable[None], seconds: float, name: str) -> None:
    """One stop step, cancelled past its share of the stop timeout; a failure is logged so
    the next step still runs."""
    try:
        await asyncio.wait_for(step, max(seconds, 0.1))
    except TimeoutError:
        log.error("%s overran %.1f s: cancelled", name, seconds)
    except Exception as exc:  # noqa: BLE001 - the store must still close
        log.error("%s failed: %s", name, exc)
