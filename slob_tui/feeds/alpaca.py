"""Alpaca's market-data stream as a `Feed`: trades in batches, reconnects, SAFE MODE, backfill.

One connection at a time (Alpaca allows one per endpoint on the free plan). Each session runs:
connect -> `connected` -> auth -> subscribe (the reply is checked) -> gap backfill from REST
bars while the new connection's ticks are held -> ticks straight to the sink. At every
subscription (after a drop, at a restart, at a first start) and at a resume, the edge minutes
of the time without the stream (see `alpaca_backfill`) are compared with their REST bars once
the sink has closed them, and replaced through `FeedSink.repair_candle`; a feed without REST
history (`test`, or backfill off) flags them incomplete instead. Any drop, stall or
retryable error ends the session and the loop reconnects with exponential backoff and jitter;
after `safe_mode_after` consecutive failures the feed announces SAFE MODE and probes slowly
until a session succeeds again (both timed by `core/retry.py`, the project's one retry
policy). 402 (bad keys), 405 (too many symbols) and 409 (plan lacks the feed) stop the feed
with a `FeedError` naming the setting to fix.

This module is the session's state machine (hold and release around the backfill, pause,
failure); the rest lives beside it: `alpaca_connection` (endpoints, connect, handshake, read
loop and stall check, error codes; it yields parsed frames), `alpaca_frames` (parsing),
`alpaca_rest` (bars), `alpaca_backfill` (what was missed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from slob_tui.config import Settings
from slob_tui.core.calendar import us_equity_calendar
from slob_tui.core.clock import Clock, WallClock
from slob_tui.core.event_payloads import (
    BackfillCompleted,
    DataQualityFinding,
    FeedConnected,
    FeedDisconnected,
    SafeModeChange,
)
from slob_tui.core.events import Event, EventPayload, EventType
from slob_tui.core.health import FeedHealth
from slob_tui.core.models import NS_PER_MINUTE, Candle
from slob_tui.core.retry import RetryPolicy
from slob_tui.feeds.alpaca_backfill import (
    EdgeMinute,
    GapEdges,
    cold_start_ns,
    edge_bars,
    missed_candles,
)
from slob_tui.feeds.alpaca_connection import (
    DEFAULT_SYMBOLS,
    STREAM_PATHS,
    AlpacaConnection,
    RetryableStreamError,
    StreamFrame,
    stream_url_for,
)
from slob_tui.feeds.alpaca_frames import format_rfc3339_ns
from slob_tui.feeds.alpaca_rest import AlpacaBarsClient, BackfillError
from slob_tui.feeds.base import FeedError, FeedSink

log = logging.getLogger(__name__)

__all__ = ["AlpacaWSFetcher", "stream_url_for"]


class AlpacaWSFetcher:
    """Streams Alpaca trades into a `FeedSink` (see the module docstring for the lifecycle)."""

    name = "alpaca"

    def __init__(
        self,
        settings: Settings,
        symbols: Sequence[str] | None = None,
        feed: str = "iex",
        clock: Clock | None = None,
        *,
        stream_url: str | None = None,
        data_url: str | None = None,
        encoding: str = "msgpack",
        backoff_base_s: float = 1.0,
        backoff_cap_s: float = 60.0,
        safe_mode_after: int = 10,
        safe_mode_probe_s: float = 60.0,
        stall_timeout_s: float = 30.0,
        handshake_timeout_s: float = 10.0,
        market_open: Callable[[int], bool] | None = None,
        backfill: bool | None = None,
        backfill_lookback_s: float | None = None,
        backfill_attempts: int = 3,
        edge_settle_s: float = 10.0,
        edge_poll_s: float = 1.0,
        seed: int | None = None,
    ) -> None:
        if feed not in STREAM_PATHS:
            raise FeedError(f"ALPACA_FEED must be iex, sip, crypto or test, got {feed!r}")
        if encoding not in ("msgpack", "json"):
            raise ValueError("encoding must be msgpack or json")
        self._settings = settings
        self.feed = feed
        self.symbols = tuple(symbols) if symbols else DEFAULT_SYMBOLS[feed]
        self.mode = "PAPER" if settings.alpaca_paper else "LIVE"
        self.clock = clock or WallClock()
        self.url = stream_url or stream_url_for(feed, settings.alpaca_data_stream_url)
        self.data_url = data_url or settings.alpaca_data_url
        self.encoding = encoding
        self.reconnect_policy = RetryPolicy(
            base_s=backoff_base_s,
            cap_s=backoff_cap_s,
            trip_after=safe_mode_after,
            probe_s=safe_mode_probe_s,
        )
        self._reconnect = self.reconnect_policy.start(seed)
        # a failed bars request is retried on the same curve, `backfill_attempts` tries in all
        self.backfill_policy = RetryPolicy(
            base_s=backoff_base_s, cap_s=backoff_cap_s, attempts=backfill_attempts
        )
        self._seed = seed
        self.stall_timeout_s = stall_timeout_s
        self.handshake_timeout_s = handshake_timeout_s
        self._market_open = market_open or (
            us_equity_calendar(settings.extra_holidays).prepare().is_open
            if feed in ("iex", "sip") else (lambda _ns: True)
        )  # fmt: skip
        self.backfill_enabled = feed != "test" if backfill is None else backfill
        self.backfill_lookback_s = backfill_lookback_s
        # a gap's edge minutes are compared once their minute ended this long ago (REST bars
        # appear a few seconds after the minute), checked every `edge_poll_s`
        self.edge_settle_ns = int(edge_settle_s * 1e9)
        self.edge_poll_s = edge_poll_s
        # state
        self.state = "stopped"
        self.messages = 0
        self.ticks = 0
        self.reconnects = 0
        self.rejected_messages = 0
        self.corrections = 0
        self.backfilled_candles = 0
        self.backfill_failures = 0
        self.paused_dropped = 0
        self.last_error = ""
        self._paused = False
        self._stopping = False
        self._stop_event = asyncio.Event()
        self._conn: AlpacaConnection | None = None  # the current (or last) session's
        self._sink: FeedSink | None = None
        self._holding = False
        self._held: list[tuple[Any, ...]] = []
        self._paused_buf: list[tuple[Any, ...]] = []
        self._backfill_task: asyncio.Task[None] | None = None
        self._fatal: FeedError | None = None
        self._session_retry = ""
        self._covered: dict[str, int] = {}  # per symbol: ticks before this are in a bar
        self._covered_max = 0
        self.backfill_overlap = 0
        self._sessions = 0
        self._newest_tick_ns: int | None = None  # newest tick received, where a drop begins
        self._paused_after_ns: int | None = None  # newest tick delivered before a pause
        self._edges = GapEdges()
        self._repair_task: asyncio.Task[None] | None = None
        self.edge_minutes_checked = 0
        self.edge_minutes_flagged = 0

    # ----------------------------------------------------------------- Feed protocol
    async def run(self, sink: FeedSink) -> None:
        """Stream until `stop()`; raises `FeedError` when a setting must be fixed first."""
        if not self._settings.has_alpaca_keys:
            raise FeedError(
                "Alpaca keys are missing: set ALPACA_API_KEY and ALPACA_API_SECRET "
                "(or APCA_API_KEY_ID and APCA_API_SECRET_KEY) in the environment or .env"
            )
        self._sink = sink
        self._stopping = False
        self._stop_event.clear()
        try:
            while not self._stopping:
                try:
                    await self._session(sink)
                except FeedError:
                    self.state = "failed"
                    raise
                except (
                    RetryableStreamError,
                    ConnectionClosed,
                    InvalidHandshake,
                    OSError,
                    TimeoutError,
                ) as exc:
                    self.last_error = _describe(exc)
                except InvalidURI as exc:
                    raise FeedError(
                        f"ALPACA_DATA_STREAM_URL is not a websocket URL: {exc}"
                    ) from None
                if self._stopping:
                    break
                self._failed(sink)
                await self._sleep(self._reconnect.next_delay())
        finally:
            await self._stop_repairs(sink)
            if self.state != "failed":
                self.state = "stopped"

    async def stop(self) -> None:
        self._stopping = True
        self._stop_event.set()
        conn = self._conn
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()

    def pause(self) -> None:
        """Stop delivering ticks. Only the current minute's ticks are kept (older ones are
        counted in `paused_dropped`); `resume` backfills the minutes in between from REST and
        checks the minute the pause began in, like the edge of a gap."""
        if not self._paused:
            self._paused_after_ns = self._newest_tick_ns
        self._paused = True

    def resume(self) -> None:
        if not self._paused:
            return
        self._paused = False
        kept, self._paused_buf = self._paused_buf, []
        if self._sink is not None and self.state == "subscribed":
            self._held = kept + self._held
            if self._paused_after_ns is not None:
                self._note_edges(self._sink, dict.fromkeys(self.symbols, self._paused_after_ns))
            self._start_backfill(self._sink)

    def health(self) -> FeedHealth:
        age = None
        last = self._conn.last_message_mono if self._conn is not None else None
        if last is not None:
            age = round(time.monotonic() - last, 3)
        return FeedHealth(
            name=f"alpaca-{self.feed}",
            state=self.state,
            reconnects=self.reconnects,
            safe_mode=self.safe_mode,
            counters=self._counters(age),
        )

    def _counters(self, last_message_age_s: float | None) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "ticks": self.ticks,
            "consecutive_failures": self.consecutive_failures,
            "last_message_age_s": last_message_age_s,
            "rejected_messages": self.rejected_messages,
            "corrections": self.corrections,
            "backfilled_candles": self.backfilled_candles,
            "backfill_failures": self.backfill_failures,
            "backfill_overlap_ticks": self.backfill_overlap,
            "edge_minutes_checked": self.edge_minutes_checked,
            "edge_minutes_flagged": self.edge_minutes_flagged,
            "edge_minutes_pending": len(self._edges.pending),
            "paused": self._paused,
            "last_error": self.last_error,
        }

    # ----------------------------------------------------------------- one session
    async def _session(self, sink: FeedSink) -> None:
        self.state = "reconnecting" if self._sessions else "connecting"
        self._sessions += 1
        conn = self._conn = AlpacaConnection(
            self._settings,
            self.url,
            self.feed,
            self.symbols,
            self.clock,
            self._market_open,
            encoding=self.encoding,
            handshake_timeout_s=self.handshake_timeout_s,
            stall_timeout_s=self.stall_timeout_s,
        )
        async with conn:
            if self._stopping:
                return
            self._holding = True
            self._held = []
            self.state = "connected"
            await conn.authenticate()
            self.state = "authenticated"
            await conn.subscribe()
            if self._stopping:
                return
            self.state = "subscribed"
            if self._reconnect.succeeded():
                sink.feed_event(
                    self._event(EventType.SAFE_MODE, SafeModeChange(False, "feed recovered"))
                )
            sink.feed_event(
                self._event(EventType.FEED_CONNECTED, FeedConnected(self.url, self.feed))
            )
            self._fatal = None
            self._session_retry = ""
            self._note_edges(sink, self._last_fed(sink))
            self._start_backfill(sink)
            try:
                async for frame in conn.frames():
                    self._on_frame(sink, frame)
            finally:
                task = self._backfill_task
                if task is not None and not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
                self._backfill_task = None
                self._holding = False
                self._held = []
                sink.feed_event(
                    self._event(
                        EventType.FEED_DISCONNECTED, FeedDisconnected(self.last_error or "closed")
                    )
                )
                if self._fatal is not None:
                    raise self._fatal
                if self._session_retry:
                    reason, self._session_retry = self._session_retry, ""
                    raise RetryableStreamError(reason)

    def _on_frame(self, sink: FeedSink, frame: StreamFrame) -> None:
        self.messages += frame.messages
        self.rejected_messages += frame.rejected
        if frame.error:
            self.last_error = frame.error
        if frame.ticks:
            newest = frame.ticks[-1][1]  # frames come in time order: one compare per frame
            if self._newest_tick_ns is None or newest > self._newest_tick_ns:
                self._newest_tick_ns = newest
            self._deliver(sink, frame.ticks)
        if frame.corrections:
            self._correct(sink, frame.corrections)

    def _deliver(self, sink: FeedSink, ticks: list[tuple[Any, ...]]) -> None:
        self.ticks += len(ticks)
        cmax = self._covered_max
        if cmax and (ticks[0][1] < cmax or ticks[-1][1] < cmax):
            # still in flight when REST bars already covered their minute: the bar has them
            covered = self._covered
            kept = [t for t in ticks if t[1] >= covered.get(t[0], 0)]
            self.backfill_overlap += len(ticks) - len(kept)
            if not kept:
                return
            ticks = kept
        if self._paused:
            self._keep_current_minute(ticks)
        elif self._holding:
            self._held.extend(ticks)
        else:
            sink.put_ticks(ticks)

    def _correct(self, sink: FeedSink, corrections: list[tuple[Any, ...]]) -> None:
        """Cancels and corrections go to the engine, which recomputes the candle they touch
        (a minute not closed yet is settled when it closes, after any held ticks)."""
        self.corrections += len(corrections)
        for symbol, ts, trade_id, exchange, corrected in corrections:
            sink.apply_correction(symbol, ts, trade_id, exchange, corrected)

    def _keep_current_minute(self, ticks: list[tuple[Any, ...]]) -> None:
        buf = self._paused_buf
        buf.extend(ticks)
        newest = max(t[1] for t in ticks)
        minute = newest - newest % NS_PER_MINUTE
        if buf[0][1] < minute:
            kept = [t for t in buf if t[1] >= minute]
            self.paused_dropped += len(buf) - len(kept)
            self._paused_buf = kept

    # ----------------------------------------------------------------- gap backfill
    def _start_backfill(self, sink: FeedSink) -> None:
        self._holding = True
        self._backfill_task = asyncio.create_task(self._backfill_then_release(sink))

    async def _backfill_then_release(self, sink: FeedSink) -> None:
        covered: dict[str, int] = {}
        retry = self.backfill_policy.start(self._seed)
        while self.backfill_enabled:
            try:
                covered = await self._backfill(sink)
                break
            except FeedError as exc:
                self._fatal = exc
                await self._end_session()
                return
            except BackfillError as exc:
                self.backfill_failures += 1
                retry.failed()
                if retry.exhausted:
                    # Releasing the held ticks now would leave a hole for good: end the
                    # session instead, and the next one backfills from the same minute.
                    self._session_retry = f"backfill failed {retry.failures} times: {exc}"
                    finding = DataQualityFinding("backfill_error", details={"error": str(exc)})
                    sink.feed_event(self._event(EventType.DATA_QUALITY, finding))
                    await self._end_session()
                    return
                await asyncio.sleep(retry.next_delay())
        held = self._held
        self._held = []
        if covered:
            held = [t for t in held if t[1] >= covered.get(t[0], 0)]
            self._covered.update(covered)
            self._covered_max = max(self._covered.values())
        self._holding = False
        if held:
            if self._paused:
                self._keep_current_minute(held)
            else:
                sink.put_ticks(held)

    async def _end_session(self) -> None:
        if self._conn is not None:
            await self._conn.close()

    def _bars_client(self) -> AlpacaBarsClient:
        return AlpacaBarsClient(
            self.data_url,
            self._settings.alpaca_api_key.get_secret_value(),
            self._settings.alpaca_api_secret.get_secret_value(),
            feed=self.feed,
        )

    async def _backfill(self, sink: FeedSink) -> dict[str, int]:
        """Fetch and hand over the missed minutes; returns per symbol the end they cover."""
        now = self.clock.now_ns()
        client = self._bars_client()
        cold = cold_start_ns(self.feed, now, self.backfill_lookback_s)
        covered: dict[str, int] = {}
        for sym, fresh in (await missed_candles(client, sink, self.symbols, now, cold)).items():
            await sink.put_candles(fresh)
            self.backfilled_candles += len(fresh)
            covered[sym] = fresh[-1].end
            done = BackfillCompleted(sym, len(fresh), fresh[0].start, covered[sym])
            sink.feed_event(self._event(EventType.BACKFILL_COMPLETED, done))
        return covered

    # ----------------------------------------------------------------- a gap's edge minutes
    def _last_fed(self, sink: FeedSink) -> dict[str, int]:
        """Per symbol, when the stream last fed it: the newest tick received, or before any
        tick of this feed (a restart) the sink's last stored minute, which a graceful stop
        flushed with the trades it had."""
        if self._newest_tick_ns is not None:
            return dict.fromkeys(self.symbols, self._newest_tick_ns)
        stored = {sym: sink.last_candle_start(sym) for sym in self.symbols}
        return {sym: start for sym, start in stored.items() if start is not None}

    def _note_edges(self, sink: FeedSink, last_fed: dict[str, int]) -> None:
        """The minutes on both edges of a time without the stream (a drop, a restart, a
        pause): each symbol's minute of `last_fed` and the minute now (which starts without
        the trades before this moment, on a first start too) got only part of their trades."""
        edges = self._edges.add(self.symbols, last_fed, self.clock.now_ns())
        if not self.backfill_enabled:
            reason = f"no REST history on the {self.feed!r} feed to repair it from"
            for edge in edges:
                self._flag(sink, edge, reason)
            self._edges.done(edges)
            return
        if self._repair_task is None or self._repair_task.done():
            self._repair_task = asyncio.create_task(self._repair_edges(sink))

    async def _repair_edges(self, sink: FeedSink) -> None:
        """Hand each edge minute's REST bar to the sink once it is due (the sink compares it
        with what it aggregated and replaces a differing candle); flag what cannot be had.
        Runs across sessions: REST does not depend on the stream."""
        while self._edges.pending and not self._stopping:
            due = self._edges.due(sink, self.clock.now_ns(), self.edge_settle_ns)
            if not due:
                await self._sleep(self.edge_poll_s)
                continue
            bars, error = await self._fetch_edge_bars(due)
            if self._stopping:
                return  # the stop flags what is left
            for edge in due:
                bar = bars.get(edge)
                if error:
                    self._flag(sink, edge, error)
                    continue
                self.edge_minutes_checked += 1
                if bar is not None:
                    sink.repair_candle(bar)
                # no bar: the source has no trade in that minute, so nothing was missed
            self._edges.done(due)

    async def _fetch_edge_bars(
        self, edges: list[EdgeMinute]
    ) -> tuple[dict[EdgeMinute, Candle], str]:
        """The edges' bars, retried like the backfill; on giving up, why."""
        retry = self.backfill_policy.start(self._seed)
        while True:
            try:
                return await edge_bars(self._bars_client(), edges), ""
            except FeedError as exc:
                return {}, str(exc)
            except BackfillError as exc:
                retry.failed()
                if retry.exhausted:
                    return {}, f"REST bars failed {retry.failures} times: {exc}"
                await self._sleep(retry.next_delay())
                if self._stopping:
                    return {}, "the feed stopped"

    async def _stop_repairs(self, sink: FeedSink) -> None:
        task, self._repair_task = self._repair_task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for edge in self._edges.pending:
            self._flag(sink, edge, "the feed stopped before its REST bar could be compared")
        self._edges.done(list(self._edges.pending))

    def _flag(self, sink: FeedSink, edge: EdgeMinute, reason: str) -> None:
        """A DATA_QUALITY finding: this minute's stored candle may miss trades."""
        self.edge_minutes_flagged += 1
        log.warning(
            "Alpaca feed: the minute %s of %s (%s edge of a gap) may be incomplete: %s",
            format_rfc3339_ns(edge.start), edge.symbol, edge.side, reason,
        )  # fmt: skip
        details = {"candle_start": edge.start, "edge": edge.side, "reason": reason}
        finding = DataQualityFinding("incomplete_minute", edge.symbol, edge.start, details)
        sink.feed_event(Event(EventType.DATA_QUALITY, edge.start, finding, self.name))

    # ----------------------------------------------------------------- failures
    def _failed(self, sink: FeedSink) -> None:
        self.reconnects += 1
        tripped = self._reconnect.failed()
        self.state = "safe_mode" if self._reconnect.tripped else "reconnecting"
        log.warning(
            "Alpaca stream session ended (%s); failure %d in a row",
            self.last_error,
            self._reconnect.failures,
        )
        if tripped:
            reason = f"{self._reconnect.failures} consecutive stream failures: {self.last_error}"
            log.error("Alpaca feed enters SAFE MODE: %s", reason)
            sink.feed_event(self._event(EventType.SAFE_MODE, SafeModeChange(True, reason)))

    @property
    def consecutive_failures(self) -> int:
        return self._reconnect.failures

    @property
    def safe_mode(self) -> bool:
        return self._reconnect.tripped

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop_event.wait(), seconds)

    def _event(self, kind: EventType, payload: EventPayload) -> Event:
        return Event(kind, self.clock.now_ns(), payload, self.name)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text[:120]}" if text else type(exc).__name__
