"""The execution side of a node: the broker, the state store, the executor, and their runtime.

Order of the bus subscriptions is the "persisted before acted on" rule: the setup recorder
subscribes before the executor. At start: open the state, restore the paper book and the
trackers, catch the tracker and the paper broker up on candles the store holds but they have not
seen, reconcile with the broker, and only then let the feed run. The node builds all of it
(`slob_tui/node/`) and calls `start`, `on_candle` and `stop` in its order.

When the state store refuses a write (disk full, read-only), nothing here raises into the
candle pipeline: the setup transitions, the paper book and the trackers that could not be
saved are kept in order, trading is halted through the gate (cause `store`, new entries
refused), and a recovery task tries again under `STATE_RETRY`; once everything kept is
written it reconciles with the broker (orders and fills whose rows failed meanwhile) and
reports `state_fault` empty, after which the node's store guard lifts the halt.
"""

from __future__ import annotations

import asyncio
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
from slob_tui.core.retry import RetryPolicy
from slob_tui.engine.engine import LiveTradingEngine
from slob_tui.errors import UsageError
from slob_tui.execution.executor import OrderExecutor
from slob_tui.storage.candles import CandleStore
from slob_tui.storage.errors import StateError
from slob_tui.storage.state import StateManager
from slob_tui.strategy.params import SlobParams

if TYPE_CHECKING:  # alpaca-py costs 60 ms to import: only when that broker is chosen
    from slob_tui.brokers.alpaca import AlpacaBroker

log = logging.getLogger(__name__)
SETUP_EVENTS = (
    EventType.SETUP_STARTED,
    EventType.SETUP_TRANSITION,
    EventType.SETUP_TRIGGERED,
    EventType.SETUP_INVALIDATED,
)
SAVE_EVERY = 60  # candles between tracker-state saves when nothing happened
CATCH_UP_NS = 2 * 86_400 * 1_000_000_000  # without a saved tracker, re-read this much history
STATE_RETRY = RetryPolicy(base_s=0.5, cap_s=5.0)
STORE_HALT = "store"
"""The gate's halt cause while a store refuses writes (the node's store guard lifts it)."""
STORE_HALT_REASON = "state cannot be persisted: trading resumes once it can"


class BookSaver:
    """Where a PaperBroker saves its book: the state store's hot values. A refused save is
    kept (the latest book) for `flush`, never raised into the venue's fill path."""

    def __init__(self, state: StateManager) -> None:
        self.state = state
        self.unsaved: dict[str, Any] | None = None
        self.error = ""

    async def __call__(self, book: dict[str, Any]) -> None:
        self.unsaved = book
        try:
            await self.flush()
        except StateError as exc:
            self.error = str(exc)
            log.error("paper book not saved (kept for the retry): %s", exc)

    async def flush(self) -> None:
        """Save the kept book, if any; raises StateError while the store refuses it."""
        if self.unsaved is None:
            return
        await self.state.set_value("paper_book", self.unsaved)
        self.unsaved = None
        self.error = ""


def paper_persist(state: StateManager) -> Callable[[dict[str, Any]], Any]:
    """Where a PaperBroker saves its book: the state store's hot values."""
    return BookSaver(state)


@dataclass(frozen=True)
class BrokerSetup:
    """The broker orders go to and, with paper trading, the simulated venue behind it: the
    venue fills on candles (a candle consumer) and its book is saved in the state store."""

    broker: Broker
    simulator: PaperBroker | None = None
    stream: AlpacaBroker | None = None
    """A broker whose update stream can drop: reconciled again after each reconnect."""
    book: BookSaver | None = None
    """The paper book's saver, retried by the runtime after a refused save."""


def make_broker(
    settings: Settings, state: StateManager, *, live: bool = False, live_confirmed: bool = False
) -> BrokerSetup:
    """Paper unless SLOB_BROKER=alpaca or --live; live money needs its confirmation."""
    kind = settings.broker.kind or ("alpaca" if live else "paper")
    if kind == "paper":
        if live:
            raise UsageError("--live needs the Alpaca broker (SLOB_BROKER=alpaca and API keys)")
        book = BookSaver(state)
        paper = PaperBroker(starting_balance=settings.broker.paper_balance, persist=book)
        return BrokerSetup(paper, simulator=paper, book=book)
    if not settings.has_alpaca_keys:
        raise UsageError("SLOB_BROKER=alpaca needs ALPACA_API_KEY and ALPACA_API_SECRET")
    from slob_tui.brokers.alpaca import AlpacaBroker

    alpaca = AlpacaBroker(settings, paper=not live and settings.alpaca_paper,
                          confirmed_live=live_confirmed)  # fmt: skip
    return BrokerSetup(alpaca, stream=alpaca)


class ExecutionRuntime:
    """The engine-facing side of execution: setup recorder, candle consumer, start and stop."""

    def __init__(self, engine: LiveTradingEngine, store: CandleStore, state: StateManager,
                 venue: BrokerSetup, executor: OrderExecutor, params: SlobParams | None = None,
                 retry: RetryPolicy = STATE_RETRY) -> None:  # fmt: skip
        self.engine = engine
        self.store = store
        self.state = state
        self.broker = venue.broker
        self.simulator = venue.simulator
        self.book = venue.book
        self.executor = executor
        self.params = params
        self.retry = retry
        self._dirty: set[str] = set()
        self._since_save = 0
        self.caught_up = 0
        self._unsaved: list[SetupUpdate] = []  # transitions the journal refused, in order
        self._fault = ""
        self._recovery: asyncio.Task[None] | None = None
        self.recoveries = 0
        for etype in SETUP_EVENTS:
            engine.bus.subscribe(etype, self.on_setup_event)
        # A remote broker's round trips leave the candle path, unless the data drives the
        # clock (a replay): its time must not run on while an order is in flight, or how
        # stale a signal is would depend on the machine's speed.
        executor.subscribe(detached=self.simulator is None and not engine.data_driven_clock)

    @property
    def state_fault(self) -> str:
        """Why state is not fully persisted now; empty when everything is saved."""
        return self._fault

    async def on_setup_event(self, event: Event) -> None:
        """Journal every transition (before the executor sees it). A refused write halts
        trading before the executor is asked, and the transition is kept for the retry."""
        update = event.payload(SetupUpdate)
        self._dirty.add(update.symbol)
        if self._fault:
            self._unsaved.append(update)  # behind the ones already waiting: order is kept
            return
        try:
            await self.state.record_setup(update)
        except StateError as exc:
            self._unsaved.append(update)
            await self._faulted(exc)

    async def on_candle(self, candle: Candle) -> None:
        """Runs before the tracker sees `candle`: paper fills, then saving the tracker's state
        as of the previous candle (so a crash re-derives at most that candle's events)."""
        try:
            if self.simulator is not None:
                await self.simulator.on_candle(candle)
            await self.executor.check_kill_request()
        except StateError as exc:  # an order or fill row refused: reconciled on recovery
            await self._faulted(exc)
        if not self._fault and (self.state.health.failing or self._book_unsaved()):
            await self._faulted(self.state.health.last_error or self.book_error())
        self._since_save += 1
        if not self._fault and (self._dirty or self._since_save >= SAVE_EVERY):
            try:
                await self.save_trackers()
            except StateError as exc:
                await self._faulted(exc)

    def _book_unsaved(self) -> bool:
        return self.book is not None and self.book.unsaved is not None

    def book_error(self) -> str:
        return self.book.error if self.book is not None else ""

    async def save_trackers(self) -> None:
        for symbol, tracker in self.engine.trackers.items():
            await self.state.save_tracker(symbol, tracker.state_dict())
        self._dirty.clear()
        self._since_save = 0

    # ---- a store that refuses writes ------------------------------------------------------
    async def _faulted(self, exc: BaseException | str) -> None:
        """Halt new entries now and start retrying what was not saved."""
        reason = f"state cannot be saved ({exc})"
        first = not self._fault
        self._fault = reason
        await self.executor.gate.halt(STORE_HALT_REASON, STORE_HALT)
        if first:
            log.error("%s: trading halted, retrying", reason)
        if self._recovery is None or self._recovery.done():
            self._recovery = asyncio.get_running_loop().create_task(
                self._recover(), name="state-recovery"
            )

    async def _recover(self) -> None:
        backoff = self.retry.start()
        while True:
            backoff.failed()
            await asyncio.sleep(backoff.next_delay())
            try:
                await self._save_kept()
                await self.executor.reconcile()  # orders and fills whose rows were refused
            except Exception as exc:  # noqa: BLE001 - a broker error during reconcile: try again
                self._fault = f"state cannot be saved ({exc})"
                continue
            self._fault = ""
            self.recoveries += 1
            log.warning("state store writable again: kept state saved, broker reconciled")
            return

    async def _save_kept(self) -> None:
        """Everything kept while the store refused it, oldest first; a probe write first, so
        a store with nothing kept still proves it takes writes."""
        await self.state.set_value("engine", {"pid": os.getpid(), "broker": self.broker.name})
        while self._unsaved:
            await self.state.record_setup(self._unsaved[0])
            self._unsaved.pop(0)
        if self.book is not None:
            await self.book.flush()
        await self.save_trackers()

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
                log.warning(
                    "tracker state for %s not restored (%s): rebuilding from candles", symbol, exc
                )
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
            marks = [
                tracker.state_dict()["prev_ts"] if tracker is not None else last.start - CATCH_UP_NS
            ]
            if self.simulator is not None:
                marks.append(self.simulator.last_start.get(symbol, marks[0]))
            since = min(marks)
            for candle in await store.candles(symbol, start_ns=since + 1):
                await self.on_candle(candle)
                for event in self.engine.tracker_for(symbol, candle.close).on_candle(candle):
                    self.engine.record_setup(event.payload(SetupUpdate))
                    await self.engine.bus.emit_and_wait(event)
                self.caught_up += 1
        if self.caught_up:
            log.info("caught up on %d stored candles", self.caught_up)

    async def stop(self) -> None:
        """Drain orders and save what is kept; a store still refusing writes loses only what
        the next start re-derives (the tracker catches up on stored candles, the broker is
        reconciled), and the state is closed whatever happens."""
        try:
            if self._recovery is not None:
                self._recovery.cancel()
                await asyncio.gather(self._recovery, return_exceptions=True)
                self._recovery = None
            await self.executor.drain()
            try:
                await self._save_kept()
                self._fault = ""
            except StateError as exc:
                log.error("at stop, %d setup transition(s), the trackers%s not saved (%s): "
                          "the next start re-derives them from the stored candles",
                          len(self._unsaved), " and the paper book" if self._book_unsaved()
                          else "", exc)  # fmt: skip
            await self.broker.close()
            await self.state.clear_value("engine")
        finally:
            await self.state.close()

    def apply_mode(self, mode: str) -> str:
        """The banner says where orders go, not where data comes from."""
        if not self.broker.paper:
            return "LIVE"
        return "PAPER" if mode == "LIVE" else mode
