"""Alerts a trader wants on their phone, decided from bus events, each type on or off.

The router never blocks the engine: a bus handler formats the text and puts it in a bounded
outbox; one task sends it through a transport (Telegram in production, anything with an async
`send(text)` in tests). A transport that fails is retried a little, logged (redacted) and then
given up on: an alert must never stall trading.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from slob_tui.config import AlertConfig
from slob_tui.core.event_payloads import (
    ErrorReport,
    KillSwitchNotice,
    OrderFilled,
    SafeModeChange,
    TradeClosed,
)
from slob_tui.core.events import Event, EventType
from slob_tui.core.models import SetupUpdate

log = logging.getLogger(__name__)

NS_PER_SECOND = 1_000_000_000
Send = Callable[[str], Awaitable[None]]


def _plain(v: Any) -> str:
    return str(getattr(v, "value", v))


def _num(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.2f}" if abs(v) >= 1 else f"{v:.4g}"
    return str(v)


def _hhmm(ns: int, tz: ZoneInfo) -> str:
    return datetime.fromtimestamp(ns / NS_PER_SECOND, UTC).astimezone(tz).strftime("%H:%M")


def format_setup_triggered(update: SetupUpdate, tz: ZoneInfo) -> str:
    lv = update.levels
    return (
        f"SETUP TRIGGERED {update.symbol} {_plain(update.direction)} at "
        f"{_hhmm(update.time, tz)}: entry {_num(lv.get('entry'))} stop {_num(lv.get('stop'))} "
        f"target {_num(lv.get('target'))} rr {_num(lv.get('rr'))}"
    )


def format_fill(fill: OrderFilled) -> str:
    return (
        f"ORDER FILLED {fill.symbol} {_plain(fill.side)} "
        f"{_num(fill.qty)} @ {_num(fill.price)} ({fill.client_order_id})"
    )


def format_exit(trade: TradeClosed) -> str:
    """A trade closed by its stop or target leg, with the P&L the executor recorded."""
    what = "STOP HIT" if trade.exit_leg == "stop" else "TARGET HIT"
    return (
        f"{what} {trade.symbol} {_plain(trade.direction)} "
        f"{_num(trade.qty)}: entry {_num(trade.entry_price)} exit "
        f"{_num(trade.exit_price)}, P&L {trade.pnl:+.2f}"
    )


def format_kill_switch(notice: KillSwitchNotice) -> str:
    if not notice.active:
        return "KILL SWITCH reset: new orders allowed again"
    return (
        f"KILL SWITCH ({notice.reason or '?'}): {len(notice.cancelled)} orders cancelled, "
        f"positions closed: {', '.join(notice.flattened) or 'none'}"
    )


STORE_FAULT_TEXT = {
    "store_fault": "STORE FAULT: {error}. Trading halted, candles queued ({queued}); retrying",
    "store_recovered": "STORE RECOVERED: everything queued is written, trading resumes "
    "(was: {error})",
    "store_give_up": "STORE GAVE UP: {error}. The engine stops for its supervisor to restart it",
}


def format_store_fault(report: ErrorReport) -> str:
    """The text for a storage ERROR event (`node/guard.py`); empty for any other error."""
    if report.kind not in STORE_FAULT_TEXT:
        return ""
    return STORE_FAULT_TEXT[report.kind].format(error=report.error or "?", queued=report.queued)


@dataclass
class DayStats:
    """What happened on one local day, for the daily summary."""

    day: str
    candles: int = 0
    setups_started: int = 0
    triggered: int = 0
    invalidated: int = 0
    fills: int = 0
    trades: int = 0
    pnl: float = 0.0

    def text(self) -> str:
        return (
            f"DAILY SUMMARY {self.day}: {self.candles} candles, {self.setups_started} setups "
            f"({self.triggered} triggered, {self.invalidated} invalidated), {self.fills} fills, "
            f"{self.trades} trades closed, P&L {self.pnl:+.2f}"
        )


class AlertRouter:
    """Turns bus events into alert texts and sends them without blocking the engine."""

    def __init__(
        self,
        send: Send,
        config: AlertConfig | None = None,
        *,
        tz: str = "America/New_York",
        outbox_size: int = 200,
        retries: int = 2,
        retry_delay_s: float = 0.5,
    ) -> None:
        self.send_fn = send
        self.config = config or AlertConfig()
        self.tz = ZoneInfo(tz)
        self.outbox: asyncio.Queue[str] = asyncio.Queue()
        self.outbox_size = outbox_size
        self.retries = retries
        self.retry_delay_s = retry_delay_s
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self._disconnects: deque[int] = deque()
        self._storm_open = False
        self.day: DayStats | None = None
        self._task: asyncio.Task[None] | None = None

    def attach(self, bus: Any) -> None:
        bus.subscribe(None, self.on_event)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._sender(), name="alert-sender")

    async def stop(self, flush_timeout_s: float = 5.0) -> None:
        """Send what is queued (within the timeout), then end the sender."""
        if self._task is None:
            return
        try:
            await asyncio.wait_for(self.outbox.join(), flush_timeout_s)
        except TimeoutError:
            log.warning("alerts: %d messages not sent at stop", self.outbox.qsize())
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None

    def post(self, text: str) -> None:
        """Queue one alert; when the outbox is full the oldest is dropped and counted."""
        if self.outbox.qsize() >= self.outbox_size:
            try:
                self.outbox.get_nowait()
                self.outbox.task_done()
                self.dropped += 1
            except asyncio.QueueEmpty:
                pass
        self.outbox.put_nowait(text)

    async def _sender(self) -> None:
        while True:
            text = await self.outbox.get()
            try:
                await self._send_with_retries(text)
            finally:
                self.outbox.task_done()

    async def _send_with_retries(self, text: str) -> None:
        for attempt in range(self.retries + 1):
            try:
                await self.send_fn(text)
                self.sent += 1
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - alerts must not stop trading
                log.warning("alert send failed (attempt %d): %s", attempt + 1, exc)
                if attempt < self.retries:
                    await asyncio.sleep(self.retry_delay_s * (attempt + 1))
        self.failed += 1

    # ---- deciding ---------------------------------------------------------------------
    def on_event(self, event: Event) -> None:
        t = event.type
        cfg = self.config
        data = event.data
        if t is EventType.CANDLE_COMPLETED:
            self._day_for(event.ts).candles += 1
        elif t is EventType.SETUP_STARTED:
            self._day_for(event.ts).setups_started += 1
        elif t is EventType.SETUP_TRIGGERED:
            self._day_for(event.ts).triggered += 1
            if cfg.setup_triggered:
                self.post(format_setup_triggered(event.payload(SetupUpdate), self.tz))
        elif t is EventType.SETUP_INVALIDATED:
            self._day_for(event.ts).invalidated += 1
        elif isinstance(data, OrderFilled):
            self._on_fill(event.ts, data)
        elif isinstance(data, TradeClosed):
            day = self._day_for(event.ts)
            day.trades += 1
            day.pnl += data.pnl
            if cfg.exits and data.exit_leg in ("stop", "target"):
                self.post(format_exit(data))
        elif isinstance(data, SafeModeChange) and cfg.safe_mode:
            state = "ON: no new orders" if data.on else "OFF: trading resumes"
            self.post(f"SAFE MODE {state}{f' ({data.reason})' if data.reason else ''}")
        elif isinstance(data, KillSwitchNotice) and not data.request:
            self.post(format_kill_switch(data))
        elif t is EventType.FEED_DISCONNECTED:
            self._on_disconnect(event.ts)
        elif isinstance(data, ErrorReport) and cfg.store_fault:
            text = format_store_fault(data)
            if text:
                self.post(text)

    def post_summary(self, note: str = "engine stopping") -> None:
        """The current day's summary now (at stop: the day may not be over)."""
        if self.day is not None and self.config.daily_summary:
            self.post(f"{self.day.text()} ({note})")

    def _on_fill(self, ts: int, fill: OrderFilled) -> None:
        """Entry fills alert at once; a stop or target fill alerts as the trade it closes."""
        self._day_for(ts).fills += 1
        if fill.leg not in ("stop", "target") and self.config.order_filled:
            self.post(format_fill(fill))

    def _on_disconnect(self, ts: int) -> None:
        window = int(self.config.storm_window_s * NS_PER_SECOND)
        q = self._disconnects
        q.append(ts)
        while q and q[0] < ts - window:
            q.popleft()
        if len(q) < self.config.storm_count:
            self._storm_open = False
            return
        if not self._storm_open and self.config.reconnect_storm:
            self.post(
                f"RECONNECT STORM: {len(q)} feed disconnects within "
                f"{self.config.storm_window_s:.0f} s"
            )
        self._storm_open = True

    def _day_for(self, ts: int) -> DayStats:
        """The stats of `ts`'s local day; crossing into a new day sends the last one's summary."""
        day = datetime.fromtimestamp(ts / NS_PER_SECOND, UTC).astimezone(self.tz).date()
        label = day.isoformat()
        if self.day is None:
            self.day = DayStats(label)
        elif self.day.day != label and label > self.day.day:
            if self.config.daily_summary:
                self.post(self.day.text())
            self.day = DayStats(label)
        return self.day
