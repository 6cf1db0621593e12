"""A seeded synthetic market that regularly draws the SLOB pattern, for the keyless default.

The market is a pure function of (seed, symbol, start): `demo_candles` and `demo_ticks` give
the same data every time without asyncio, so tests and snapshots can use it. `DemoFeed` plays
it on an accelerated clock (60x by default: a market minute per wall second), first handing the
engine the day's reference session (09:00 Stockholm up to the start) as candles so that the
tracker knows REF_H/REF_L, then ticks in batches from shortly before the trade window.

Each trade window is a chain of episodes: a SHORT setup (a sweep of the reference high first),
a LONG one (a sweep of the reference low first), then alternating. Every episode is the shape
of the author's worked example (rise, internal HIGH, consolidation to a LOW, a no-wick candle,
LIQ #2, a close through the no-wick low, a run to the swing-low target), with seeded lengths.
"""

from __future__ import annotations

import asyncio
import math
import random
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from slob_tui.core.clock import AcceleratedClock, Clock
from slob_tui.core.health import FeedHealth
from slob_tui.core.models import NS_PER_MINUTE, Candle
from slob_tui.core.sessions import DayBounds, SessionCalendar
from slob_tui.feeds.base import FeedSink

BASE_PRICES = {"NQ": 25500.0, "ES": 6800.0, "QQQ": 520.0, "SPY": 680.0, "BTC/USD": 95000.0}
SESSION_TZ = "Europe/Stockholm"
NS = 1_000_000_000
# One episode in NQ points relative to its start, SHORT orientation: (open, high, low, close).
Bar = tuple[float, float, float, float]


def _episode(rng: random.Random, x: float, sweep: float | None) -> list[Bar]:
    """A SHORT setup starting at close `x`; with `sweep`, first rise through that level."""
    bars: list[Bar] = []
    c = x

    def add(o: float, h: float, lo: float, cl: float) -> None:
        nonlocal c
        bars.append((o, max(h, o, cl), min(lo, o, cl), cl))
        c = cl

    if sweep is not None:
        while c <= sweep + 4:  # walk up to just beyond the level: the crossing bar is LIQ #1
            add(c, c + 6, c - 2, c + 4)
    rise = rng.randint(22, 30)
    dip_at = rise * 2 // 3
    for i in range(rise):
        if i == dip_at:  # a swing low: the target below the coming consolidation
            lows = (c - 5, c - 3, c - 5, c - 7)
            top = c + 3
            for j, lo in enumerate(lows):
                add(c, top - j, lo, lo + 3)
            add(c, c + 9, lows[-1] + 3, c + 7)
            add(c, c + 9, c - 1, c + 7)
        step = rng.uniform(1.0, 7.0)  # uneven legs, not a straight ramp
        add(c, c + step + rng.uniform(0.5, 3.0), c - rng.uniform(0.5, 4.0), c + step)
    hi = c + 12
    add(c, hi, c - 2, c + 8)  # the internal HIGH
    for i in range(9):  # drift down to the LOW
        lo = hi - 22 - 2 * i
        add(c, hi - 5 - 2 * i, lo, lo + 5)
    low = hi - 45
    add(c, hi - 27, low, hi - 32)  # the internal LOW
    for i in range(rng.randint(11, 14)):  # back up, under the HIGH
        lo = low + 6 + 2 * i
        add(c, min(lo + 12, hi - 3), lo, min(lo + 8, hi - 4))
    nw_low = hi - 10
    add(nw_low + 0.25, hi - 0.25, nw_low, hi - 0.25)  # the no-wick candle
    add(hi - 1, hi + 5, hi - 11, hi - 9)  # LIQ #2, bearish
    for _ in range(4):
        add(c, hi - 2, nw_low + 1, hi - 7)
    add(c, c + 2, nw_low - 8, nw_low - 5)  # trigger: close below the no-wick low
    for _ in range(rng.randint(22, 28)):  # the run towards the target, in uneven steps
        step = rng.uniform(-6.0, 0.5)
        add(c, c + rng.uniform(0.5, 2.5), c + min(step, 0.0) - rng.uniform(0.5, 2.0), c + step)
    return bars


def _plan(rng: random.Random, n: int, c: float, ref_hi: float, ref_lo: float) -> list[Bar]:
    """Episode `n` of the day: even ones SHORT, odd ones LONG (the mirror); the first of
    each direction sweeps the reference range first."""
    if n % 2 == 0:
        return _episode(rng, c, ref_hi if n == 0 else None)
    mirrored = _episode(rng, -c, -ref_lo if n == 1 else None)
    return [(-o, -lo, -h, -cl) for o, h, lo, cl in mirrored]


def _volume(rng: random.Random, ts: int, b: DayBounds, bar_range: float, weekday: bool) -> float:
    """Contracts in a minute: a U over the US session (busy open and close, quiet lunch), a
    European morning building towards the US open, a thin night; more on wide bars; log-normal
    noise. The steps stay within what the data-quality validator calls normal (its volume
    spike is 10x the last hour's median), as a real session's open does."""
    if weekday and b.trade_start <= ts < b.close:
        x = (ts - b.trade_start) / (b.close - b.trade_start)
        base = 40.0 * (1.0 + 2.0 * (2.0 * x - 1.0) ** 2)
    elif weekday and b.ref_start <= ts < b.trade_start:
        x = (ts - b.ref_start) / (b.trade_start - b.ref_start)
        base = 25.0 + 30.0 * x**3
    else:
        base = 14.0
    wide = min(bar_range / 16.0, 0.6)
    v = base * (1.0 + wide) * math.exp(min(max(rng.gauss(0.0, 0.3), -0.6), 0.6))
    return float(max(12, round(v)))  # at least one contract per print of `ticks_for`


class DemoMarket:
    """Deterministic minute bars for one symbol, day after day, from a start date."""

    def __init__(
        self,
        seed: int,
        symbol: str = "NQ",
        start_day: date | None = None,
        base_price: float | None = None,
    ) -> None:
        self.seed = seed
        self.symbol = symbol
        self.base = base_price or BASE_PRICES.get(symbol.upper(), 100.0)
        self.scale = self.base / 25500.0
        self.tick = 0.25 if symbol.upper() in ("NQ", "ES") else 0.0
        self.calendar = SessionCalendar(SESSION_TZ)
        self._first = start_day
        self._days: dict[int, list[Candle]] = {}
        self._last_close: dict[int, float] = {}

    def _px(self, points: float) -> float:
        v = points * self.scale
        return round(round(v / self.tick) * self.tick, 6) if self.tick else round(v, 6)

    def day(self, d: date) -> list[Candle]:
        """Every minute of local day `d` as candles (days are generated in order, cached)."""
        if self._first is None or d < self._first:
            self._first = d
            self._days.clear()
            self._last_close.clear()
        key = d.toordinal()
        if key not in self._days:
            prev = self._first.toordinal()
            price = 25500.0
            if key > prev:
                if key - 1 not in self._days:
                    self.day(d - timedelta(days=1))
                price = self._last_close[key - 1]
            self._days[key] = self._build(d, price)
        return self._days[key]

    def _build(self, d: date, price: float) -> list[Candle]:
        rng = random.Random(f"{self.seed}:{self.symbol}:{d.isoformat()}")
        b = self.calendar.bounds(d)
        weekday = d.weekday() < 5
        bars: list[Bar] = []
        c = price
        ts = b.day_start
        n_total = (b.day_end - b.day_start) // NS_PER_MINUTE
        ref_hi = ref_lo = price
        plan: list[Bar] = []
        episode = 0
        sigma = 1.0  # GARCH(1,1)-like: big moves come in clusters, then calm returns
        for m in range(n_total):
            ts = b.day_start + m * NS_PER_MINUTE
            shock = rng.gauss(0.0, sigma)
            sigma = math.sqrt(0.05 + 0.85 * sigma * sigma + 0.1 * shock * shock)
            if weekday and b.ref_start <= ts < b.trade_start:
                o, c = c, c + 1.6 * shock + (price - c) * 0.04
                wick = abs(rng.gauss(0.0, sigma)), abs(rng.gauss(0.0, sigma))
                bar = (o, max(o, c) + wick[0], min(o, c) - wick[1], c)
                ref_hi, ref_lo = max(ref_hi, bar[1]), min(ref_lo, bar[2])
            elif weekday and b.trade_start <= ts < b.close:
                if not plan:
                    plan = _plan(rng, episode, c, ref_hi, ref_lo)
                    episode += 1
                bar = plan.pop(0)
                c = bar[3]
            else:
                o, c = c, c + 0.5 * shock
                wick = abs(rng.gauss(0.0, 0.5)), abs(rng.gauss(0.0, 0.5))
                bar = (o, max(o, c) + wick[0], min(o, c) - wick[1], c)
            bars.append(bar)
        self._last_close[d.toordinal()] = c
        out = []
        for i, (o, h, lo, cl) in enumerate(bars):
            ts = b.day_start + i * NS_PER_MINUTE
            o, h, lo, cl = self._px(o), self._px(h), self._px(lo), self._px(cl)
            volume = _volume(rng, ts, b, h - lo, weekday)
            out.append(Candle(self.symbol, ts, o, h, lo, cl, volume))
        return out

    def candles(self, start_ns: int, minutes: int) -> list[Candle]:
        """`minutes` candles from the minute holding `start_ns`."""
        tz = self.calendar.tz
        out: list[Candle] = []
        start = start_ns - start_ns % NS_PER_MINUTE
        end = start + minutes * NS_PER_MINUTE
        d = datetime.fromtimestamp(start // NS, tz).date()
        while True:
            day = self.day(d)
            out.extend(c for c in day if start <= c.start < end)
            if not day or day[-1].start + NS_PER_MINUTE >= end:
                return out
            d += timedelta(days=1)


def ticks_for(candle: Candle, seed: int) -> list[tuple[Any, ...]]:
    """Trade prints whose 1-minute aggregation is exactly `candle` (volume included)."""
    rng = random.Random(f"{seed}:{candle.symbol}:{candle.start}")
    n = rng.randint(4, 10)
    offsets = sorted(rng.sample(range(1, 59_000), n - 1))
    prices = [candle.open]
    tick = 0.25  # NQ's tick size: prints land on the price grid like real ones
    lo_steps = math.ceil(candle.low / tick - 1e-9)
    hi_steps = math.floor(candle.high / tick + 1e-9)
    mids = [
        rng.randint(lo_steps, hi_steps) * tick if hi_steps >= lo_steps else candle.close
        for _ in range(n - 4)
    ]
    extremes = [candle.high, candle.low] if rng.random() < 0.5 else [candle.low, candle.high]
    prices += extremes + mids + [candle.close]
    sizes = [1.0] * n
    sizes[0] = candle.volume - (n - 1)
    base_id = candle.start // NS_PER_MINUTE * 100
    times = [candle.start] + [candle.start + ms * 1_000_000 for ms in offsets]
    return [
        (candle.symbol, t, p, s, "DEMO", None, base_id + i)
        for i, (t, p, s) in enumerate(zip(times, prices, sizes, strict=True))
    ]


def _market(seed: int, symbol: str, start_ns: int) -> DemoMarket:
    d = datetime.fromtimestamp(start_ns // NS, ZoneInfo(SESSION_TZ)).date()
    return DemoMarket(seed, symbol, start_day=d)


def demo_candles(seed: int, start_ns: int, minutes: int, symbol: str = "NQ") -> list[Candle]:
    """The demo market's candles, deterministic in (seed, symbol, start's day)."""
    return _market(seed, symbol, start_ns).candles(start_ns, minutes)


def demo_ticks(seed: int, start_ns: int, minutes: int, symbol: str = "NQ") -> list[tuple[Any, ...]]:
    """The same market as trade prints; aggregating them gives `demo_candles` back."""
    out: list[tuple[Any, ...]] = []
    for c in demo_candles(seed, start_ns, minutes, symbol):
        out.extend(ticks_for(c, seed))
    return out


def default_start(now_ns: int | None = None) -> int:
    """15:20 Stockholm on the latest weekday: ten market minutes before the trade window."""
    tz = ZoneInfo(SESSION_TZ)
    now = datetime.fromtimestamp(now_ns // NS, tz) if now_ns else datetime.now(tz)
    d = now.date()
    while d.weekday() >= 5:
        d -= timedelta(days=1)
    return int(datetime.combine(d, time(15, 20), tz).timestamp()) * NS


class DemoClock:
    """The demo market's clock: accelerated wall time that stands still while paused.

    The engine takes it as its own clock (`feed.clock`). What the engine reads (`now_ns`) is
    the market time up to which the feed has delivered every tick, so a busy machine that
    delays the feed delays candle closing with it instead of turning ticks into late ones.
    """

    def __init__(self, start_ns: int, speed: float, wall: Clock | None = None) -> None:
        self.speed = speed
        self._wall = wall
        self._inner = AcceleratedClock(start_ns, speed, wall)
        self._frozen: int | None = None
        self._shown: int | None = None

    def market_ns(self) -> int:
        """Where the market is now (what the feed delivers up to)."""
        return self._frozen if self._frozen is not None else self._inner.now_ns()

    def now_ns(self) -> int:
        market = self.market_ns()
        return market if self._shown is None else min(market, self._shown)

    def show(self, ns: int) -> None:
        """Every tick up to `ns` has been handed to the engine."""
        self._shown = ns

    def restart(self, start_ns: int) -> None:
        self._inner = AcceleratedClock(start_ns, self.speed, self._wall)
        self._shown = start_ns
        if self._frozen is not None:
            self._frozen = start_ns

    def pause(self) -> None:
        if self._frozen is None:
            self._frozen = self._inner.now_ns()

    def resume(self) -> None:
        if self._frozen is not None:
            self._inner = AcceleratedClock(self._frozen, self.speed, self._wall)
            self._frozen = None


class DemoFeed:
    """Plays the demo market to the engine on an accelerated clock (the default feed)."""

    name = "demo"
    mode = "DEMO"

    def __init__(
        self,
        symbols: tuple[str, ...] = ("NQ",),
        seed: int = 7,
        speed: float = 60.0,
        start: int | None = None,
        clock: Clock | None = None,
        interval: float = 0.05,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.symbols = tuple(symbols) or ("NQ",)
        self.seed = seed
        self.speed = speed
        self.start = default_start() if start is None else start - start % NS_PER_MINUTE
        self.interval = interval
        self.clock: Clock = clock or DemoClock(self.start, speed)
        self._markets = {s: _market(seed, s, self.start) for s in self.symbols}
        self._cursor = self.start  # every tick with ts < cursor has been sent
        self._pending: dict[int, list[tuple[Any, ...]]] = {}
        self._stopped = asyncio.Event()
        self._running = asyncio.Event()
        self._running.set()
        self.state = "idle"
        self.ticks = 0
        self.batches = 0
        self.history_candles = 0
        self.resumed_after: int | None = None

    def history(self) -> list[Candle]:
        """The start day's candles from 09:00 Stockholm up to the start, every symbol."""
        tz = ZoneInfo(SESSION_TZ)
        d = datetime.fromtimestamp(self.start // NS, tz).date()
        ref_start = int(datetime.combine(d, time(9, 0), tz).timestamp()) * NS
        out: list[Candle] = []
        for m in self._markets.values():
            out.extend(
                c
                for c in m.candles(ref_start, (self.start - ref_start) // NS_PER_MINUTE)
                if c.start < self.start
            )
        out.sort(key=lambda c: (c.start, c.symbol))
        for c in out:
            c.backfilled = True  # history handed over whole, as a REST backfill would be
        return out

    def _continue_after(self, sink: FeedSink) -> None:
        """Start after the candles the engine already holds (a second run on one database):
        replaying minutes the store has would make every tick a late one."""
        held = [sink.last_candle_start(s) for s in self.symbols]
        last = max((ns for ns in held if ns is not None), default=None)
        if last is None or last + NS_PER_MINUTE <= self.start:
            return
        self.start = self._cursor = last + NS_PER_MINUTE
        self.resumed_after = last
        self._pending.clear()

    def _ticks_until(self, now: int) -> list[tuple[Any, ...]]:
        """Ticks with cursor <= ts <= now, generated a minute at a time."""
        out: list[tuple[Any, ...]] = []
        minute = self._cursor - self._cursor % NS_PER_MINUTE
        while minute <= now:
            ticks = self._pending.get(minute)
            if ticks is None:
                ticks = []
                for m in self._markets.values():
                    for c in m.candles(minute, 1):
                        ticks.extend(ticks_for(c, self.seed))
                ticks.sort(key=lambda t: t[1])
                self._pending[minute] = ticks
            out.extend(t for t in ticks if self._cursor <= t[1] <= now)
            if minute + NS_PER_MINUTE <= now:
                self._pending.pop(minute, None)
            minute += NS_PER_MINUTE
        self._cursor = now + 1
        return out

    async def run(self, sink: FeedSink) -> None:
        """Hand over the reference session, then ticks as the accelerated clock passes them."""
        self.state = "running"
        self._continue_after(sink)
        history = self.history()
        self.history_candles = len(history)
        if history:
            await sink.put_candles(history)
        clock = self.clock
        if isinstance(clock, DemoClock):
            clock.restart(self.start)  # market time starts now, not when the feed was built
        try:
            while not self._stopped.is_set():
                if not self._running.is_set():
                    self.state = "paused"
                    await self._wait_resumed()
                    self.state = "running"
                    continue
                now = clock.market_ns() if isinstance(clock, DemoClock) else clock.now_ns()
                if now >= self._cursor:
                    batch = self._ticks_until(now)
                    if batch:
                        sink.put_ticks(batch)
                        self.ticks += len(batch)
                        self.batches += 1
                    if isinstance(clock, DemoClock):
                        clock.show(now)
                    sink.set_time(now)
                await asyncio.sleep(self.interval)
        finally:
            self.state = "stopped"

    async def _wait_resumed(self) -> None:
        stop = asyncio.ensure_future(self._stopped.wait())
        go = asyncio.ensure_future(self._running.wait())
        await asyncio.wait({stop, go}, return_when=asyncio.FIRST_COMPLETED)
        for f in (stop, go):
            f.cancel()

    async def stop(self) -> None:
        self._stopped.set()

    def pause(self) -> None:
        """Stop sending; market time stands still until `resume`."""
        self._running.clear()
        if isinstance(self.clock, DemoClock):
            self.clock.pause()

    def resume(self) -> None:
        if isinstance(self.clock, DemoClock):
            self.clock.resume()
        self._running.set()

    def health(self) -> FeedHealth:
        return FeedHealth(name=self.name, state=self.state, counters=self._counters())

    def _counters(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "speed": self.speed,
            "ticks": self.ticks,
            "batches": self.batches,
            "history_candles": self.history_candles,
            "resumed_after": self.resumed_after,
            "market_time": self._cursor - 1 if self._cursor > self.start else self.start,
        }
