"""LiveTradingEngine: wires feed -> buffer -> aggregator -> store, bus and tracker.

One kernel for demo, replay and live: adapters differ only at the edges. A single consumer task
moves ticks in batches; every completed candle goes, in this order, to the store (queued), the
bus, the candle hooks (paper fills, quality checks) and then the tracker, whose setup events are
delivered with `emit_and_wait` so that state is persisted before anything acts on it.

The engine is the pipeline only: everything around it (execution, operations, the database
lock) is built and started by the node (`slob_tui/node/`), which hands the engine its candle
consumers at construction and drives its lifecycle in steps (`open`, `start_feed`,
`stop_pipeline`, `close`). Standing alone (tests, benchmarks) `run()` does all the steps.
The read side (setup timelines, notable events, the snapshot) lives in `journal.py`.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import date
from typing import Any

from slob_tui.core.clock import Clock, ManualClock, WallClock
from slob_tui.core.event_payloads import (
    DataQualityFinding,
    EngineStarted,
    EngineStopped,
    ErrorReport,
    SafeModeChange,
)
from slob_tui.core.events import Event, EventType
from slob_tui.core.health import (
    AttachHealth,
    HealthReport,
    RunState,
    StoreHealth,
    TradingHealth,
)
from slob_tui.core.models import Candle, Order, Position, SetupUpdate
from slob_tui.core.tick_chunk import TickChunk
from slob_tui.engine import gc_policy
from slob_tui.engine.aggregator import CandleAggregator, SaleConditionPolicy
from slob_tui.engine.buffer import TickBuffer
from slob_tui.engine.bus import EventBus
from slob_tui.engine.health import HealthMonitor
from slob_tui.engine.journal import SetupJournal, build_snapshot
from slob_tui.engine.ports import CandleSink, Feed
from slob_tui.engine.quality import DataQualityValidator, QualityPolicy
from slob_tui.engine.snapshot import EngineSnapshot

log = logging.getLogger(__name__)

CandleConsumer = Callable[[Candle], Awaitable[None] | None]


class LiveTradingEngine:
    """The async pipeline. Construct, then `await run()` (or `start()` ... `stop()`)."""

    def __init__(
        self,
        feed: Feed,
        *,
        store: CandleSink | None = None,
        bus: EventBus | None = None,
        clock: Clock | None = None,
        params: Any | None = None,
        tracker_factory: Callable[[str], Any] | None = None,
        policy: SaleConditionPolicy | None = None,
        quality: QualityPolicy | None = None,
        extra_holidays: frozenset[date] = frozenset(),
        market_open: Callable[[int], bool] | None = None,
        candle_consumers: Sequence[CandleConsumer] = (),
        mode: str | None = None,
        buffer_size: int = 10_000,
        recent_candles: int = 600,
        clock_tick_s: float = 0.25,
        stall_report_s: float = 2.0,
        stall_settle_s: float = 2.0,
        enable_tracker: bool = True,
    ) -> None:
        self.feed = feed
        self.store = store
        self.bus = bus or EventBus()
        self.data_driven_clock = clock is None and feed.mode == "REPLAY"
        self.clock: Clock = clock or (ManualClock() if self.data_driven_clock else WallClock())
        self.mode = mode or feed.mode
        # TTL is about ticks stuck in memory, so it runs on wall time even in a replay.
        self.buffer = TickBuffer(maxsize=buffer_size, clock=WallClock())
        self.aggregator = CandleAggregator(policy=policy)
        # The engine clock judges "far in the future" only when it runs ahead of the data
        # (live, demo); a clock driven by the data itself (replay) cannot.
        self.validator = (
            None
            if quality is None
            else DataQualityValidator(
                quality,
                clock=None if self.data_driven_clock else self.clock,
                sale_policy=self.aggregator.policy,
                extra_holidays=extra_holidays,
            )
        )
        self.params = params
        self._tracker_factory = tracker_factory
        self.enable_tracker = enable_tracker
        self.trackers: dict[str, Any] = {}
        self.clock_tick_s = clock_tick_s
        self.stall_report_s = stall_report_s
        self.stall_settle_s = stall_settle_s
        self.loop_stalls = 0
        self.longest_stall_s = 0.0
        self._recent_n = recent_candles
        self.recent: dict[str, deque[Candle]] = {}
        self.journal = SetupJournal()
        self.health_monitor = HealthMonitor(self.clock, market_open=market_open)
        self._candle_consumers: tuple[CandleConsumer, ...] = tuple(candle_consumers)
        self._lock = asyncio.Lock()
        self._stop_requested = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._feed_task: asyncio.Task[Any] | None = None
        self._opened = False
        self._started = False
        self._pipeline_stopped = False
        self._stopped = False
        self._holds_gc = False
        self.stop_reason = ""
        self.paused = False
        self.seq = 0
        self.candles_processed = 0
        self.consumer_errors = 0
        self.setup_events = 0
        self.feed_error: BaseException | None = None
        self.resumed_from: dict[str, int] = {}
        self.bus.subscribe(None, self.journal.remember)

    def tracker_for(self, symbol: str, price: float | None = None) -> Any:
        """The symbol's tracker, made on first use with the instrument profile for `price`
        (the first candle's close, as `backtest` does) unless explicit params were given."""
        tracker = self.trackers.get(symbol)
        if tracker is None:
            if self._tracker_factory is not None:
                tracker = self._tracker_factory(symbol)
            else:
                from slob_tui.strategy.params import profile_for
                from slob_tui.strategy.tracker import SetupTracker

                params = self.params or profile_for(symbol, price)
                tracker = SetupTracker(symbol, params)
            self.trackers[symbol] = tracker
        return tracker

    # ---- FeedSink -----------------------------------------------------------------------
    def put_ticks(self, ticks: Sequence[tuple[Any, ...]]) -> None:
        self.buffer.put_batch(ticks)

    async def put_ticks_wait(self, ticks: Sequence[tuple[Any, ...]]) -> None:
        await self.buffer.put_batch_wait(ticks)

    async def put_tick_columns(self, chunk: TickChunk) -> None:
        """A chunk of columns (file replay at `--speed max`): processed at once, after
        everything buffered, through the validator's and the aggregator's columnar entries
        (the same candles and findings as its tuples); from the candles on, as any batch."""
        async with self._lock:
            await self._process_ticks(self.buffer.take_all())
            self.buffer.count_passed(len(chunk))
            await self._process_columns(chunk)
            await self._publish_notices()

    async def put_candles(self, candles: Sequence[Candle]) -> None:
        async with self._lock:
            await self._process_ticks(self.buffer.take_all())
            for candle in candles:
                for done in self.aggregator.ingest_candle(candle):
                    await self._on_candle(done)
            await self._publish_notices()

    def set_time(self, ns: int) -> None:
        if isinstance(self.clock, ManualClock) and ns > self.clock.now_ns():
            self.clock.set(ns)

    def feed_event(self, event: Event) -> None:
        if event.type is EventType.FEED_CONNECTED:
            self.health_monitor.connected = True
        elif event.type is EventType.FEED_DISCONNECTED:
            self.health_monitor.connected = False
            self.health_monitor.reconnects += 1
        elif event.type is EventType.SAFE_MODE:
            self.health_monitor.safe_mode = event.payload(SafeModeChange).on
        self.seq += 1
        self.bus.emit(event)

    def last_candle_start(self, symbol: str) -> int | None:
        return self.aggregator.last_closed_start(symbol)

    def apply_correction(
        self, symbol: str, ts: int, trade_id: Any, exchange: str = "",
        corrected: tuple[float, float, Any] | None = None,
    ) -> None:  # fmt: skip
        """A trade cancel or correction from the feed: the validator recomputes the candle it
        belongs to and a closed one replaces its stored row. The tracker already decided on
        the original candle and is not rewound; the DATA_QUALITY event says what changed."""
        if self.validator is None:
            return
        event = self.validator.apply_correction(symbol, ts, trade_id, exchange, corrected)
        if event is not None:
            self.bus.emit(event)
        self._store_adjusted()

    def repair_candle(self, candle: Candle) -> None:
        """The source's own candle of a closed minute the stream carried only in part (a feed
        gap's edge; `feeds/alpaca_backfill.py`). When its prices or volume differ from the
        aggregated candle, it replaces the stored row and the chart's copy as a trade
        correction does, and a DATA_QUALITY event names the minute with both versions. The
        tracker already decided on the partial candle and is not rewound."""
        recent = self.recent.get(candle.symbol) or deque()
        at = next(
            (i for i in range(len(recent) - 1, -1, -1) if recent[i].start == candle.start), -1
        )
        before = recent[at] if at >= 0 else None
        if before is not None and (
            (before.open, before.high, before.low, before.close, before.volume)
            == (candle.open, candle.high, candle.low, candle.close, candle.volume)
        ):
            return
        if self.store is not None:
            self.store.enqueue((candle,))
        if before is not None:
            recent[at] = candle
        self.seq += 1
        finding = DataQualityFinding(
            "gap_edge_repaired",
            candle.symbol,
            candle.start,
            {
                "candle_start": candle.start,
                "before": None if before is None else before.to_dict(),
                "after": candle.to_dict(),
            },
        )
        self.bus.emit(Event(EventType.DATA_QUALITY, candle.start, finding, "feed"))

    def _store_adjusted(self) -> list[Candle]:
        if self.validator is None:
            return []
        adjusted = self.validator.drain_adjusted()
        for candle in adjusted:
            if self.store is not None:
                self.store.enqueue((candle,))
            recent = self.recent.get(candle.symbol)
            for i in range(len(recent) - 1 if recent else -1, -1, -1):
                if recent is not None and recent[i].start == candle.start:
                    recent[i] = candle
                    break
            self.seq += 1
        return adjusted

    # ---- pipeline -----------------------------------------------------------------------
    async def _process_ticks(self, batch: list[Any]) -> None:
        if not batch:
            return
        if self.validator is not None:
            batch = self.validator.filter_ticks(batch)
            for finding in self.validator.drain_events():
                self.bus.emit(finding)
        late = self.aggregator.late_total
        completed = self.aggregator.process(batch)
        await self._on_aggregated(len(batch), late, completed)

    async def _process_columns(self, chunk: TickChunk) -> None:
        if not len(chunk):
            return
        if self.validator is not None:
            chunk = self.validator.filter_columns(chunk)
            for finding in self.validator.drain_events():
                self.bus.emit(finding)
        late = self.aggregator.late_total
        completed = self.aggregator.process_columns(chunk)
        await self._on_aggregated(len(chunk), late, completed)

    async def _on_aggregated(self, ticks: int, late: int, completed: list[Candle]) -> None:
        """After a batch was aggregated: health counts, then its candles in order."""
        self.health_monitor.on_ticks(ticks, late=self.aggregator.late_total - late)
        self.seq += 1
        follow = self.data_driven_clock  # a replay batch may span hours: the clock keeps up
        for candle in completed:
            if follow:
                self.set_time(candle.end)
            await self._on_candle(candle)
        if completed:
            await self._publish_notices()

    def record_setup(self, update: SetupUpdate) -> None:
        """A setup transition decided outside the live path (restored, caught up)."""
        self.journal.record(update)

    async def _on_candle(self, candle: Candle) -> None:
        if self.store is not None:
            self.store.enqueue((candle,))
        recent = self.recent.get(candle.symbol)
        if recent is None:
            recent = self.recent[candle.symbol] = deque(maxlen=self._recent_n)
        recent.append(candle)
        self.candles_processed += 1
        self.health_monitor.on_candle(candle)
        self.seq += 1
        self.bus.emit(Event(EventType.CANDLE_COMPLETED, candle.start, candle, "aggregator"))
        if self.validator is not None:
            for finding in self.validator.check_candle(candle):
                self.bus.emit(finding)
            for adjusted in self._store_adjusted():
                if adjusted.symbol == candle.symbol and adjusted.start == candle.start:
                    candle = adjusted  # corrected before the tracker decided on it
        for consumer in self._candle_consumers:
            try:
                result = consumer(candle)
                if result is not None:
                    await result
            except Exception as exc:  # noqa: BLE001 - one hook's failure must not end the feed
                self._consumer_failed(consumer, candle, exc)
        if not self.enable_tracker:
            return
        for event in self.tracker_for(candle.symbol, candle.close).on_candle(candle):
            self.journal.record(event.payload(SetupUpdate))
            self.setup_events += 1
            await self.bus.emit_and_wait(event)

    def _consumer_failed(self, consumer: CandleConsumer, candle: Candle, exc: Exception) -> None:
        """Logged, counted and announced; the candle still reaches the tracker and the next
        candle the hook again (it keeps what it could not do: see the execution runtime)."""
        self.consumer_errors += 1
        name = getattr(consumer, "__qualname__", repr(consumer))
        log.error("candle hook %s failed on %s %d: %s", name, candle.symbol, candle.start, exc)
        report = ErrorReport(str(exc), "candle_hook_failed", hook=name)
        self.bus.emit(Event(EventType.ERROR, self.clock.now_ns(), report, "engine"))

    async def _publish_notices(self) -> None:
        for etype, data in self.aggregator.drain_notices():
            self.bus.emit(Event(etype, self.clock.now_ns(), data, "aggregator"))

    async def _consume(self) -> None:
        """The single consumer: batches out of the buffer into the pipeline.

        After the event loop stalled (a VM pause, SIGSTOP, a long lock), the clock has jumped
        while ticks received before the jump may still sit in the socket or the buffer: the
        clock closes no minute until the feed has had `stall_settle_s` of wall time to hand
        them over, and the stall is reported. Without that, those ticks would arrive after
        the clock closed their minute and be dropped as late."""
        last_turn = time.monotonic()
        settle_until = 0.0
        while True:
            await self.buffer.wait_ready(timeout=self.clock_tick_s)
            # The clock as of this turn: a candle hook awaited below (a slow or failing store
            # write) lets the feed run on, and a later reading would close minutes whose ticks
            # arrived meanwhile and still wait in the buffer.
            now_ns = self.clock.now_ns()
            turn = time.monotonic()
            stalled = turn - last_turn - self.clock_tick_s
            last_turn = turn
            if stalled > self.stall_report_s:
                settle_until = turn + self.stall_settle_s
                self._report_stall(stalled)
            async with self._lock:
                # taken under the lock: no tick is ever held outside it, so `put_candles`
                # (which replay uses as a barrier) has processed everything handed over
                await self._process_ticks(self.buffer.take_all())
                if not self.data_driven_clock and turn >= settle_until:
                    # ticks the feed handed over while candle consumers were awaited belong to
                    # minutes the clock may be about to close: aggregate them first
                    await self._process_ticks(self.buffer.take_all())
                    for candle in self.aggregator.on_clock(now_ns):
                        await self._on_candle(candle)
                    await self._publish_notices()
            if self.buffer.closed and len(self.buffer) == 0:
                return

    def _report_stall(self, seconds: float) -> None:
        self.loop_stalls += 1
        self.longest_stall_s = max(self.longest_stall_s, seconds)
        log.warning("event loop stalled for %.1f s: no minute is closed by the clock for "
                    "%.1f s while the feed catches up", seconds, self.stall_settle_s)  # fmt: skip
        finding = DataQualityFinding(
            "loop_stall", details={"seconds": round(seconds, 3), "settle_s": self.stall_settle_s}
        )
        self.bus.emit(Event(EventType.DATA_QUALITY, self.clock.now_ns(), finding, "engine"))

    async def _run_feed(self) -> None:
        try:
            await self.feed.run(self)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.feed_error = exc
            log.error("feed %s failed: %s", self.feed.name, exc)
            report = ErrorReport(str(exc))
            self.bus.emit(Event(EventType.ERROR, self.clock.now_ns(), report, "feed"))
        finally:
            self.buffer.close()

    # ---- lifecycle ----------------------------------------------------------------------
    async def open(self) -> None:
        """Open the store and continue after its history; the feed does not run yet."""
        if self._opened:
            return
        self._opened = True
        if self.store is not None:
            await self.store.open()
            await self._resume_from_store()

    def start_feed(self) -> None:
        """Start the consumer and the feed: from here on candles flow."""
        if self._started:
            return
        self._started = True
        self.health_monitor.started(self.clock.now_ns())
        started = EngineStarted(self.mode)
        self.bus.emit(Event(EventType.ENGINE_STARTED, self.clock.now_ns(), started))
        gc_policy.acquire()  # process-wide collector settings while engines run
        self._holds_gc = True
        self._tasks.append(asyncio.create_task(self._consume(), name="engine-consumer"))
        self._feed_task = asyncio.create_task(self._run_feed(), name="engine-feed")
        self._tasks.append(self._feed_task)

    async def start(self) -> None:
        await self.open()
        self.start_feed()

    async def _resume_from_store(self) -> None:
        """Continue after the stored history: the chart gets recent candles, and the aggregator
        treats minutes already stored as closed (a restarted replay or feed adds no duplicate)."""
        store = self.store
        if store is None:
            return
        for symbol in await store.symbols():
            recent = await store.recent(symbol, self._recent_n)
            if not recent:
                continue
            self.recent[symbol] = deque(recent, maxlen=self._recent_n)
            self.aggregator.seed(symbol, recent[-1].start, recent[-1].close)
            self.resumed_from[symbol] = recent[-1].start

    async def wait(self, duration: float | None = None) -> str:
        """Until the feed ends, `duration` seconds pass or a stop is requested: the reason."""
        consumer = self._tasks[0]
        waiters = {consumer, asyncio.create_task(self._stop_requested.wait())}
        if duration is not None:
            waiters.add(asyncio.create_task(asyncio.sleep(duration)))
        done, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            if task is not consumer:
                task.cancel()
        return "feed ended" if consumer in done else (self.stop_reason or "duration elapsed")

    async def run(self, duration: float | None = None) -> None:
        """Start, run until the feed ends, `duration` seconds pass or a stop is requested."""
        await self.start()
        await self.stop(await self.wait(duration))
        if self.feed_error is not None:
            raise self.feed_error

    def request_stop(self, reason: str = "stop requested") -> None:
        """Safe from signal handlers: the running `run()` performs the graceful stop."""
        self.stop_reason = self.stop_reason or reason
        self._stop_requested.set()

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            try:
                loop.add_signal_handler(sig, self.request_stop, f"signal {sig.name}")
            except (NotImplementedError, RuntimeError, ValueError):
                pass

    async def stop_pipeline(self, reason: str = "stopped") -> None:
        """Feed off, buffered ticks processed, open candles closed and queued for the store."""
        if self._pipeline_stopped:
            return
        self._pipeline_stopped = True
        self.stop_reason = self.stop_reason or reason
        try:
            await asyncio.wait_for(self.feed.stop(), timeout=5)
        except Exception as exc:  # noqa: BLE001 - stopping must go on
            log.warning("feed stop failed: %s", exc)
        if self._feed_task is not None and not self._feed_task.done():
            self._feed_task.cancel()
            await asyncio.gather(self._feed_task, return_exceptions=True)
        self.buffer.close()
        consumer = self._tasks[0] if self._tasks else None
        if consumer is not None and not consumer.done():
            try:
                await asyncio.wait_for(asyncio.shield(consumer), timeout=10)
            except (TimeoutError, asyncio.CancelledError):
                consumer.cancel()
        async with self._lock:
            await self._process_ticks(self.buffer.take_all())
            for candle in self.aggregator.flush():
                await self._on_candle(candle)
            await self._publish_notices()
        await self.bus.drain()

    async def close(self, store_timeout_s: float = 0.0) -> None:
        """The store flushed (retried for up to `store_timeout_s` while it refuses writes)
        and closed; ENGINE_STOPPED. After `stop_pipeline`."""
        if self._stopped:
            return
        self._stopped = True
        try:
            if self.store is not None and self._opened:
                await self.store.close(store_timeout_s)
        finally:
            stopped = EngineStopped(self.stop_reason)
            self.bus.emit(Event(EventType.ENGINE_STOPPED, self.clock.now_ns(), stopped))
            self.seq += 1
            if self._holds_gc:
                self._holds_gc = False
                gc_policy.release()

    async def stop(self, reason: str = "stopped") -> None:
        """Graceful stop: `stop_pipeline`, then `close`."""
        await self.stop_pipeline(reason)
        await self.close()

    @property
    def stopped(self) -> bool:
        return self._stopped

    # ---- read side ----------------------------------------------------------------------
    def health(
        self,
        *,
        storage: StoreHealth | None = None,
        trading: TradingHealth | None = None,
        ops: Mapping[str, Any] | None = None,
        attach: AttachHealth | None = None,
    ) -> HealthReport:
        """The health report: the pipeline's sections, and those a node owns when given."""
        return HealthReport(
            at_ns=self.clock.now_ns(),
            mode=self.mode,
            pipeline=self.health_monitor.report(),
            run=RunState(
                stopped=self.stopped,
                stop_reason=self.stop_reason,
                feed_failed=self.feed_error is not None,
            ),
            feed=self.feed.health(),
            buffer=self.buffer.health(),
            bus=self.bus.health(),
            aggregator=self.aggregator.stats(),
            data_quality=None if self.validator is None else self.validator.stats(),
            setup_events=self.setup_events,
            candle_hook_errors=self.consumer_errors,
            loop_stalls=self.loop_stalls,
            longest_stall_s=round(self.longest_stall_s, 3),
            storage=storage,
            trading=trading,
            ops=ops,
            attach=attach,
        )

    def snapshot(
        self,
        health: HealthReport | None = None,
        orders: Sequence[Order] = (),
        positions: Sequence[Position] = (),
    ) -> EngineSnapshot:
        symbols = tuple(self.feed.symbols or self.recent.keys())
        return build_snapshot(
            seq=self.seq,
            now_ns=self.clock.now_ns(),
            mode=self.mode,
            feed=self.feed.name,
            symbols=symbols,
            paused=self.paused,
            recent=self.recent,
            forming={s: self.aggregator.forming(s) for s in symbols},
            journal=self.journal,
            health=self.health() if health is None else health,
            orders=orders,
            positions=positions,
        )

    def trading_controls(self) -> None:
        """A bare pipeline places no orders: nothing to kill (the node has controls)."""
        return None

    # ---- control ------------------------------------------------------------------------
    def pause_feed(self) -> None:
        self.paused = True
        self.feed.pause()
        self.seq += 1

    def resume_feed(self) -> None:
        self.paused = False
        self.feed.resume()
        self.seq += 1
