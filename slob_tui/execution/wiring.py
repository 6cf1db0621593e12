"""`attach_execution`: the broker, the state store and the executor, plugged into an engine.

Order of the bus subscriptions is the "persisted before acted on" rule: the setup recorder
subscribes before the executor. At start: open the state, restore the paper book and the
trackers, catch the tracker and the paper broker up on candles the store holds but they have not
seen, reconcile with the broker, and only then let the feed run.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from slob_tui.brokers.paper import PaperBroker
from slob_tui.core.events import Event, EventType
from slob_tui.core.models import Candle, SetupUpdate
from slob_tui.errors import UsageError
from slob_tui.execution.executor import OrderExecutor
from slob_tui.execution.risk import RiskLimits
from slob_tui.storage.state import StateManager

log = logging.getLogger(__name__)
SETUP_EVENTS = (EventType.SETUP_STARTED, EventType.SETUP_TRANSITION, EventType.SETUP_TRIGGERED,
                EventType.SETUP_INVALIDATED)
SAVE_EVERY = 60  # candles between tracker-state saves when nothing happened
CATCH_UP_NS = 2 * 86_400 * 1_000_000_000  # without a saved tracker, re-read this much history


def paper_persist(state: StateManager) -> Callable[[dict[str, Any]], Any]:
    """Where a PaperBroker saves its book: the state store's hot values."""

    async def persist(book: dict[str, Any]) -> None:
        await state.set_value("paper_book", book)

    return persist


def make_broker(opts: Any, settings: Any, state: StateManager) -> Any:
    """Paper unless SLOB_BROKER=alpaca or --live; live money needs its confirmation."""
    kind = (settings.extra.get("SLOB_BROKER") or ("alpaca" if opts.live else "paper")).lower()
    if kind == "paper":
        if opts.live:
            raise UsageError("--live needs the Alpaca broker (SLOB_BROKER=alpaca and API keys)")
        raw = settings.extra.get("SLOB_PAPER_BALANCE") or "100000"
        try:
            balance = float(raw)
        except ValueError:
            raise UsageError(f"SLOB_PAPER_BALANCE must be a number, got {raw!r}") from None
        return PaperBroker(starting_balance=balance, persist=paper_persist(state))
    if kind == "alpaca":
        if not settings.has_alpaca_keys:
            raise UsageError("SLOB_BROKER=alpaca needs ALPACA_API_KEY and ALPACA_API_SECRET")
        from slob_tui.brokers.alpaca import AlpacaBroker

        paper = not opts.live and settings.alpaca_paper
        return AlpacaBroker(settings, paper=paper,
                            confirmed_live=bool(opts.extra.get("live_confirmed")))
    raise UsageError(f"SLOB_BROKER must be paper or alpaca, got {kind!r}")


class ExecutionRuntime:
    """The engine-facing side: setup recorder, candle hook, start and stop hooks."""

    def __init__(self, engine: Any, state: StateManager, broker: Any,
                 executor: OrderExecutor) -> None:
        self.engine = engine
        self.state = state
        self.broker = broker
        self.executor = executor
        self._dirty: set[str] = set()
        self._since_save = 0
        self.caught_up = 0

    async def on_setup_event(self, event: Event) -> None:
        """Journal every transition (before the executor sees it)."""
        update: SetupUpdate = event.data
        await self.state.record_setup(update)
        self._dirty.add(update.symbol)

    async def on_candle(self, candle: Candle) -> None:
        """Runs before the tracker sees `candle`: paper fills, then saving the tracker's state
        as of the previous candle (so a crash re-derives at most that candle's events)."""
        if isinstance(self.broker, PaperBroker):
            await self.broker.on_candle(candle)
        await self.executor.check_kill_request()
        self._since_save += 1
        if self._dirty or self._since_save >= SAVE_EVERY:
            await self.save_trackers()

    async def save_trackers(self) -> None:
        for symbol, tracker in self.engine.trackers.items():
            await self.state.save_tracker(symbol, tracker.state_dict())
        self._dirty.clear()
        self._since_save = 0

    async def start(self, engine: Any) -> None:
        await self.state.open()
        if isinstance(self.broker, PaperBroker):
            book = await self.state.get_value("paper_book")
            if book:
                self.broker.load(book)
        await self.broker.connect()
        await self.state.set_value("engine", {"pid": os.getpid(), "broker": self.broker.name})
        await self._restore_trackers()
        await self.executor.load()
        await self.executor.reconcile()  # before any new order, including caught-up ones
        await self._catch_up()

    async def _restore_trackers(self) -> None:
        from slob_tui.strategy.tracker import SetupTracker

        for symbol, saved in (await self.state.load_trackers()).items():
            try:
                self.engine.trackers[symbol] = SetupTracker.from_state(saved, self.engine.params)
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("tracker state for %s not restored (%s): rebuilding from candles",
                            symbol, exc)
        for update in await self.state.live_setups():
            self.engine._record_setup(update)  # the engine keeps only the last ended ones

    async def _catch_up(self) -> None:
        """Feed stored candles the tracker or the paper book has not seen, in engine order."""
        store = self.engine.store
        if store is None:
            return
        for symbol in await store.symbols():
            tracker = self.engine.trackers.get(symbol)
            last = await store.latest(symbol)
            if last is None:
                continue
            marks = [tracker.state_dict()["prev_ts"] if tracker is not None
                     else last.start - CATCH_UP_NS]
            if isinstance(self.broker, PaperBroker):
                marks.append(self.broker.last_start.get(symbol, marks[0]))
            since = min(marks)
            for candle in await store.candles(symbol, start_ns=since + 1):
                await self.on_candle(candle)
                for event in self.engine.tracker_for(symbol).on_candle(candle):
                    self.engine._record_setup(event.data)
                    await self.engine.bus.emit_and_wait(event)
                self.caught_up += 1
        if self.caught_up:
            log.info("caught up on %d stored candles", self.caught_up)

    async def stop(self, engine: Any) -> None:
        try:
            await self.executor.drain()
            await self.save_trackers()
            await self.broker.close()
            await self.state.clear_value("engine")
        finally:
            await self.state.close()


def attach_execution(engine: Any, opts: Any, settings: Any, *,
                     broker_factory: Callable[[StateManager], Any] | None = None
                     ) -> OrderExecutor:
    """Plug orders and state into `engine`; sets `engine.executor` for the console.

    `broker_factory(state)` replaces the configured broker (tests, other venues)."""
    state = StateManager(opts.db, redis_url=settings.redis_url, tz=settings.tz)
    broker = (broker_factory or (lambda st: make_broker(opts, settings, st)))(state)
    limits = RiskLimits.from_env(settings.extra)
    health = engine.health_monitor
    executor = OrderExecutor(broker, state, engine.bus, limits=limits, clock=engine.clock,
                             safe_mode=lambda: bool(getattr(health, "safe_mode", False)))
    runtime = ExecutionRuntime(engine, state, broker, executor)
    for etype in SETUP_EVENTS:
        engine.bus.subscribe(etype, runtime.on_setup_event)
    executor.subscribe(detached=not isinstance(broker, PaperBroker))
    engine.add_start_hook(runtime.start)
    engine.add_candle_hook(runtime.on_candle)
    engine.add_stop_hook(runtime.stop)
    engine.add_health_source("execution", executor.health)
    engine.set_orders_provider(executor.orders_view)
    if hasattr(broker, "on_reconnect"):
        broker.on_reconnect = executor.reconcile  # updates missed while the stream was down
    engine.executor = executor
    engine.execution = runtime
    if not broker.paper:
        engine.mode = "LIVE"
    elif engine.mode == "LIVE":
        engine.mode = "PAPER"  # the banner says where orders go, not where data comes from
    return executor
