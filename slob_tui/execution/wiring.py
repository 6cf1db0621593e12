"""The execution side of a node: the broker, the state store, the executor, and their runtime.

Order of the bus subscriptions is the "persisted before acted on" rule: the setup recorder
subscribes before the executor. At start: open the state, restore the paper book and the
trackers, catch the tracker and the paper broker up on candles the store holds but they have not
seen, reconcile with the broker, and only then let the feed run. The node builds all of it
(`slob_tui/node/`) and calls `start`, `on_candle` and `stop` in its order.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slob_tui.brokers.base import Broker
from slob_tui.brokers.paper import PaperBroker
from slob_tui.config import Settings
from slob_tui.core.events import Event, EventType
from slob_tui.core.models import Candle, SetupUpdate
from slob_tui.engine.engine import LiveTradingEngine
from slob_tui.errors import UsageError
from slob_tui.execution.executor import OrderExecutor
from slob_tui.storage.candles import CandleStore
from slob_tui.storage.state import StateManager
from slob_tui.strategy.params import SlobParams

if TYPE_CHECKING:  # alpaca-py costs 60 ms to import: only when that broker is chosen
    from slob_tui.brokers.alpaca import AlpacaBroker

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


@dataclass(frozen=True)
class BrokerSetup:
    """The broker orders go to and, with paper trading, the simulated venue behind it: the
    venue fills on candles (a candle consumer) and its book is saved in the state store."""

    broker: Broker
    simulator: PaperBroker | None = None
    stream: AlpacaBroker | None = None
    """A broker whose update stream can drop: reconciled again after each reconnect."""


def make_broker(
    settings: Settings, state: StateManager, *, live: bool = False, live_confirmed: bool = False
) -> BrokerSetup:
    """Paper unless SLOB_BROKER=alpaca or --live; live money needs its confirmation."""
    kind = (settings.extra.get("SLOB_BROKER") or ("alpaca" if live else "paper")).lower()
    if kind == "paper":
        if live:
            raise UsageError("--live needs the Alpaca broker (SLOB_BROKER=alpaca and API keys)")
        raw = settings.extra.get("SLOB_PAPER_BALANCE") or "100000"
        try:
            balance = float(raw)
        except ValueError:
            raise UsageError(f"SLOB_PAPER_BALANCE must be a number, got {raw!r}") from None
        paper = PaperBroker(starting_balance=balance, persist=paper_persist(state))
        return BrokerSetup(paper, simulator=paper)
    if kind == "alpaca":
        if not settings.has_alpaca_keys:
            raise UsageError("SLOB_BROKER=alpaca needs ALPACA_API_KEY and ALPACA_API_SECRET")
        from slob_tui.brokers.alpaca import AlpacaBroker

        alpaca = AlpacaBroker(settings, paper=not live and settings.alpaca_paper,
                              confirmed_live=live_confirmed)  # fmt: skip
        return BrokerSetup(alpaca, stream=alpaca)
    raise UsageError(f"SLOB_BROKER must be paper or alpaca, got {kind!r}")


class ExecutionRuntime:
    """The engine-facing side of execution: setup recorder, candle consumer, start and stop."""

    def __init__(self, engine: LiveTradingEngine, store: CandleStore, state: StateManager,
                 venue: BrokerSetup, executor: OrderExecutor,
                 params: SlobParams | None = None) -> None:  # fmt: skip
        self.engine = engine
        self.store = store
        self.state = state
        self.broker = venue.broker
        self.simulator = venue.simulator
        self.executor = executor
        self.params = params
        self._dirty: set[str] = set()
        self._since_save = 0
        self.caught_up = 0
        for etype in SETUP_EVENTS:
            engine.bus.subscribe(etype, self.on_setup_event)
        executor.subscribe(detached=self.simulator is None)

    async def on_setup_event(self, event: Event) -> None:
        """Journal every transition (before the executor sees it)."""
        update: SetupUpdate = event.data
        await self.state.record_setup(update)
        self._dirty.add(update.symbol)

    async def on_candle(self, candle: Candle) -> None:
        """Runs before the tracker sees `candle`: paper fills, then saving the tracker's state
        as of the previous candle (so a crash re-derives at most that candle's events)."""
        if self.simulator is not None:
            await self.simulator.on_candle(candle)
        await self.executor.check_kill_request()
        self._since_save += 1
        if self._dirty or self._since_save >= SAVE_EVERY:
            await self.save_trackers()

    async def save_trackers(self) -> None:
        for symbol, tracker in self.engine.trackers.items():
            await self.state.save_tracker(symbol, tracker.state_dict())
        self._dirty.clear()
        self._since_save = 0

    async def start(self) -> None:
        await self.state.open()
        if self.simulator is not None:
            book = await self.state.get_value("paper_book")
            if book:
                self.simulator.load(book)
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
                self.engine.trackers[symbol] = SetupTracker.from_state(saved, self.params)
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("tracker state for %s not restored (%s): rebuilding from candles",
                            symbol, exc)
        for update in await self.state.live_setups():
            self.engine.record_setup(update)  # the journal keeps only the last ended ones

    async def _catch_up(self) -> None:
        """Feed stored candles the tracker or the paper book has not seen, in engine order."""
        store = self.store
        for symbol in await store.symbols():
            tracker = self.engine.trackers.get(symbol)
            last = await store.latest(symbol)
            if last is None:
                continue
            marks = [tracker.state_dict()["prev_ts"] if tracker is not None
                     else last.start - CATCH_UP_NS]
            if self.simulator is not None:
                marks.append(self.simulator.last_start.get(symbol, marks[0]))
            since = min(marks)
            for candle in await store.candles(symbol, start_ns=since + 1):
                await self.on_candle(candle)
                for event in self.engine.tracker_for(symbol, candle.close).on_candle(candle):
                    self.engine.record_setup(event.data)
                    await self.engine.bus.emit_and_wait(event)
                self.caught_up += 1
        if self.caught_up:
            log.info("caught up on %d stored candles", self.caught_up)

    async def stop(self) -> None:
        try:
            await self.executor.drain()
            await self.save_trackers()
            await self.broker.close()
            await self.state.clear_value("engine")
        finally:
            await self.state.close()

    def apply_mode(self, mode: str) -> str:
        """The banner says where orders go, not where data comes from."""
        if not self.broker.paper:
            return "LIVE"
        return "PAPER" if mode == "LIVE" else mode
