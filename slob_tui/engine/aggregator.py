"""Ticks to 1-minute candles, per symbol, in one tight loop over plain tuples.

A candle covers [start, start + 60 s); a tick exactly on a boundary belongs to the later one.
A candle closes on the first tick of a later minute, when the clock passes its end plus a grace
period (quiet markets still close), on `flush`, or when an externally built candle for a later
minute is ingested. Gaps of up to `max_fill_minutes` missing minutes are filled with flat candles
marked `gap_filled`; longer gaps are reported. Ticks for an already-closed minute are counted as
late and dropped, never merged into a published candle.

Decisions (checked against the SPY vendor bars of 2013-10-07, see tests/replay):
- A trade the policy excludes still adds its size to the volume and counts in `tick_count`.
- The open is the first *eligible* trade of the minute, even when an excluded trade came first:
  on the SPY day 104 minutes start with an excluded print and the vendor's open equals the first
  eligible trade in all 104 (the first print of any kind only in 72).
- A minute with only excluded trades still yields a candle (its volume is real), flat at the
  previous close, since none of its prints may move the price; with no previous close the last
  excluded price is used. The SPY day has no such minute, so the vendor file cannot decide this.
- A gap is filled when the next data of the symbol arrives (a tick of a later minute or an
  ingested candle): only then is it known that the minutes were empty.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from slob_tui.core.event_payloads import CandleGap, CandleGapReport, LateTicks
from slob_tui.core.events import EventType
from slob_tui.core.models import NS_PER_MINUTE, Candle
from slob_tui.core.tick_chunk import TickChunk, minute_runs

# Pseudo-condition the file readers add to a print the vendor flagged as suspicious.
SUSPICIOUS = "SUSPICIOUS"

# AlgoSeek TAQ codes that must not set OHLC (odd-lot and out-of-sequence prints), measured
# against the vendor's own bars; see ../shared/data/README.md.
SPY_ALGOSEEK_EXCLUDED = ("20", "20000020", "20100000", "20100200")

# CTA/UTP sale conditions (Alpaca's `c` list) whose prints do not update the consolidated last
# sale: a candle's close is a last sale, and one flag per trade keeps the hot loop simple, so
# they are kept out of high/low too. C cash, G bunched sold (late), H price variation, I odd lot,
# M official close, N next day, P prior reference price, Q official open, R seller, U extended
# hours sold out of sequence, V contingent, W average price, Z sold out of sequence,
# 4 derivatively priced, 7 qualified contingent. Form T (T) stays in: every pre- and post-market
# print carries it and extended-hours bars are built from them.
ALPACA_SIP_EXCLUDED = (
    "C", "G", "H", "I", "M", "N", "P", "Q", "R", "U", "V", "W", "Z", "4", "7",
)  # fmt: skip

_NO_CANDLE = -(1 << 62)  # sentinel start/end: every tick takes the slow path


class SaleConditionPolicy:
    """Decides whether a trade may set open/high/low/close; volume always counts.

    `conditions` is None, a str (matched as a whole code) or a tuple of codes (excluded if any
    code is excluded). Decisions are cached per distinct value, so the hot loop pays one dict
    lookup per tick.
    """

    __slots__ = ("excluded", "exclude_suspicious", "cache")

    def __init__(self, excluded: Iterable[str] = (), exclude_suspicious: bool = True) -> None:
        self.excluded = frozenset(str(c).strip() for c in excluded if str(c).strip())
        self.exclude_suspicious = exclude_suspicious
        self.cache: dict[Any, bool] = {None: True}

    @classmethod
    def none(cls) -> SaleConditionPolicy:
        """Every trade sets OHLC (crypto venues, demo data)."""
        return cls((), exclude_suspicious=False)

    @classmethod
    def spy_algoseek(cls) -> SaleConditionPolicy:
        return cls(SPY_ALGOSEEK_EXCLUDED)

    @classmethod
    def alpaca_sip(cls) -> SaleConditionPolicy:
        return cls(ALPACA_SIP_EXCLUDED)

    def decide(self, conditions: Any) -> bool:
        """True when a trade with these conditions may set OHLC; caches the answer."""
        try:
            return self.cache[conditions]
        except KeyError:
            pass
        codes = (conditions,) if isinstance(conditions, str) else conditions
        ok = True
        for code in codes:
            if code == SUSPICIOUS:
                if self.exclude_suspicious:
                    ok = False
                    break
            elif code in self.excluded:
                ok = False
                break
        self.cache[conditions] = ok
        return ok

    def __repr__(self) -> str:
        return (
            f"SaleConditionPolicy(excluded={sorted(self.excluded)}, "
            f"exclude_suspicious={self.exclude_suspicious})"
        )


class _SymbolState:
    """Per-symbol state; the hot loop copies it into locals and back on a symbol switch."""

    __slots__ = (
        "symbol", "start", "end", "o", "h", "l", "c", "v", "n", "has", "xp",
        "last_closed", "last_close", "ticks", "candles", "gap_filled", "gaps", "late",
        "excluded", "duplicates", "ingested",
    )  # fmt: skip

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.start = _NO_CANDLE  # start of the forming candle, or the sentinel
        self.end = _NO_CANDLE
        self.o = self.h = self.l = self.c = 0.0
        self.v: float = 0
        self.n = 0  # ticks in the forming candle
        self.has = False  # an eligible trade set its prices
        self.xp: float | None = None  # last excluded price in the forming candle
        self.last_closed: int | None = None
        self.last_close: float | None = None
        self.ticks = 0  # ticks in closed candles
        self.candles = 0
        self.gap_filled = 0
        self.gaps = 0
        self.late = 0
        self.excluded = 0
        self.duplicates = 0
        self.ingested = 0

    @property
    def forming(self) -> bool:
        return self.start != _NO_CANDLE


class CandleAggregator:
    """Builds 1-minute candles for any number of symbols from batches of tick tuples."""

    def __init__(
        self,
        policy: SaleConditionPolicy | None = None,
        grace_ns: int = 2_000_000_000,
        max_fill_minutes: int = 2,
    ) -> None:
        self.policy = policy or SaleConditionPolicy.none()
        self.grace_ns = grace_ns
        self.max_fill_minutes = max_fill_minutes
        self._states: dict[str, _SymbolState] = {}
        self._gaps: list[CandleGap] = []
        self._late: dict[str, int] = {}
        self.late_total = 0  # every late tick so far (the engine's health reads the change)

    # ------------------------------------------------------------------ hot path
    def process(self, ticks: list[tuple[Any, ...]]) -> list[Candle]:
        """Aggregate a batch; return the candles it completed, in time order per symbol."""
        out: list[Candle] = []
        if not ticks:
            return out
        states = self._states
        allow = self.policy.cache
        decide = self.policy.decide
        sym: Any = ticks[0][0]
        st = states.get(sym)
        if st is None:
            st = states[sym] = _SymbolState(sym)
        start, end, o, h, lo, c = st.start, st.end, st.o, st.h, st.l, st.c
        v, n, has, xp = st.v, st.n, st.has, st.xp
        excl = 0
        for t in ticks:
            if t[0] != sym:
                st.start, st.end, st.o, st.h, st.l, st.c = start, end, o, h, lo, c
                st.v, st.n, st.has, st.xp = v, n, has, xp
                st.excluded += excl
                sym = t[0]
                st = states.get(sym)
                if st is None:
                    st = states[sym] = _SymbolState(sym)
                start, end, o, h, lo, c = st.start, st.end, st.o, st.h, st.l, st.c
                v, n, has, xp = st.v, st.n, st.has, st.xp
                excl = 0
            ts = t[1]
            if ts >= end or ts < start:
                st.start, st.end, st.o, st.h, st.l, st.c = start, end, o, h, lo, c
                st.v, st.n, st.has, st.xp = v, n, has, xp
                if not self._open_minute(st, ts, t[2], out):
                    continue  # late tick: counted in _open_minute, dropped
                start, end = st.start, st.end
                v = n = 0
                has = False
                xp = None
            v += t[3]
            n += 1
            cond = t[5]
            try:
                ok = allow[cond]
            except KeyError:
                ok = decide(cond)
            if ok:
                p = t[2]
                if has:
                    if p > h:
                        h = p
                    elif p < lo:
                        lo = p
                    c = p
                else:
                    o = h = lo = c = p
                    has = True
            else:
                excl += 1
                if not has:
                    xp = t[2]
        st.start, st.end, st.o, st.h, st.l, st.c = start, end, o, h, lo, c
        st.v, st.n, st.has, st.xp = v, n, has, xp
        st.excluded += excl
        return out

    def process_columns(self, chunk: TickChunk) -> list[Candle]:
        """`process` for a chunk of columns: the same candles, state and counts as for its
        `tuples()`, a run of one minute's rows at a time.

        The rows of a run share the decision of its first (it opens its minute or continues
        the forming candle, or all of them are late), so each run is folded in whole: volume
        and count, the eligible rows (the sale-condition policy decided once per distinct
        condition) set open, high, low and close, the excluded ones count, and the last
        excluded price before the first eligible one is kept as `process` keeps it. What each
        run contributes is computed for all the chunk's runs at once with numpy (`_RunFolds`),
        so a run costs a few Python steps, not a dozen numpy calls. Float volumes are added in
        row order (`np.add.accumulate`), as `process` adds them. A chunk with a price that is
        not positive (NaN among them) takes `process`."""
        import numpy as np

        out: list[Candle] = []
        n = len(chunk)
        if not n:
            return out
        ts, price, size = chunk.ts, chunk.price, chunk.size
        if not bool((price > 0).all()):
            return self.process(chunk.tuples())
        decide = self.policy.decide
        allowed = np.array([decide(c) for c in chunk.conditions], dtype=bool)
        runs = _RunFolds(ts, price, size, allowed[chunk.condition_codes])
        int_sizes = size.dtype.kind in "iu"
        st = self._state(chunk.symbol)
        for k, (a, b) in enumerate(zip(runs.starts, runs.ends, strict=True)):
            if not st.forming or st.start != runs.minute[k]:
                if not self._open_minute(st, runs.first_ts[k], runs.first_price[k], out):
                    if b - a > 1:  # the first is counted: the run's others are late as well
                        self._count_late(st, b - a - 1)
                    continue
                st.v = st.n = 0
                st.has = False
                st.xp = None
            if int_sizes and type(st.v) is int:
                st.v += runs.volume[k]
            else:
                sums = np.empty(b - a + 1, dtype=np.float64)
                sums[0] = st.v
                sums[1:] = size[a:b]
                st.v = float(np.add.accumulate(sums)[-1])
            st.n += b - a
            eligible = runs.eligible[k]
            st.excluded += b - a - eligible
            if not eligible:
                if not st.has:
                    st.xp = runs.last_price[k]
                continue
            high, low = runs.high[k], runs.low[k]
            if st.has:
                if high > st.h:
                    st.h = high
                if low < st.l:
                    st.l = low
            else:
                if runs.first_eligible[k] > a:
                    st.xp = runs.before_open[k]
                st.o, st.h, st.l = runs.open[k], high, low
                st.has = True
            st.c = runs.close[k]
        return out

    def _open_minute(self, st: _SymbolState, ts: int, price: float, out: list[Candle]) -> bool:
        """A tick outside the forming candle: close it and open the tick's minute, or count
        the tick as late. Returns False for a late tick."""
        minute = ts - ts % NS_PER_MINUTE
        if st.forming:
            if ts < st.start:
                self._count_late(st)
                return False
            self._close(st, out)
        elif st.last_closed is not None and minute <= st.last_closed:
            self._count_late(st)
            return False
        self._fill_gap(st, minute, out, price)
        st.start = minute
        st.end = minute + NS_PER_MINUTE
        return True

    def _count_late(self, st: _SymbolState, ticks: int = 1) -> None:
        st.late += ticks
        self.late_total += ticks
        late = self._late
        late[st.symbol] = late.get(st.symbol, 0) + ticks

    def _close(self, st: _SymbolState, out: list[Candle]) -> None:
        """Publish the forming candle and reset the symbol to 'no forming candle'."""
        if st.has:
            o, h, lo, c = st.o, st.h, st.l, st.c
        else:
            p = st.last_close if st.last_close is not None else st.xp
            o = h = lo = c = p if p is not None else 0.0
        out.append(Candle(st.symbol, st.start, o, h, lo, c, st.v, st.n))
        st.ticks += st.n
        st.candles += 1
        st.last_closed = st.start
        st.last_close = c
        st.start = st.end = _NO_CANDLE
        st.v = st.n = 0
        st.has = False
        st.xp = None

    def _fill_gap(
        self, st: _SymbolState, minute: int, out: list[Candle], next_open: float | None
    ) -> None:
        """Between the last closed minute and `minute`: fill short gaps, report long ones."""
        last = st.last_closed
        if last is None:
            return
        missing = (minute - last) // NS_PER_MINUTE - 1
        if missing <= 0:
            return
        if missing > self.max_fill_minutes:
            st.gaps += 1
            self._gaps.append(CandleGap(st.symbol, last + NS_PER_MINUTE, minute, missing))
            return
        price = st.last_close if st.last_close is not None else next_open
        if price is None:
            return  # seeded without a price and nothing to take one from: leave it empty
        for k in range(1, missing + 1):
            out.append(
                Candle(st.symbol, last + k * NS_PER_MINUTE, price, price, price, price, 0, 0,
                       gap_filled=True)
            )  # fmt: skip
        st.gap_filled += missing
        st.candles += missing
        st.last_closed = last + missing * NS_PER_MINUTE
        st.last_close = price

    def _state(self, symbol: str) -> _SymbolState:
        st = self._states.get(symbol)
        if st is None:
            st = self._states[symbol] = _SymbolState(symbol)
        return st

    # ------------------------------------------------------------------ slow paths
    def on_clock(self, now_ns: int) -> list[Candle]:
        """Close every forming candle whose end plus the grace period has passed."""
        out: list[Candle] = []
        limit = now_ns - self.grace_ns
        for st in self._states.values():
            if st.forming and st.end <= limit:
                self._close(st, out)
        return out

    def flush(self) -> list[Candle]:
        """Close every forming candle (shutdown, end of a replay)."""
        out: list[Candle] = []
        for st in self._states.values():
            if st.forming:
                self._close(st, out)
        return out

    def ingest_candle(self, candle: Candle) -> list[Candle]:
        """Take a complete candle built elsewhere (candle file, REST backfill) as the closed
        candle of its minute; returns the candles completed, in order, ending with it."""
        st = self._state(candle.symbol)
        out: list[Candle] = []
        if st.last_closed is not None and candle.start <= st.last_closed:
            st.duplicates += 1
            return out
        keep_forming = False
        if st.forming:
            if st.start < candle.start:
                self._close(st, out)
            elif st.start == candle.start:
                st.ticks += st.n  # its ticks were seen, but the complete candle replaces it
                st.start = st.end = _NO_CANDLE
                st.v = st.n = 0
                st.has = False
                st.xp = None
            else:
                keep_forming = True  # the candle sits between history and the forming one
        self._fill_gap(st, candle.start, out, candle.open)
        out.append(candle)
        st.ingested += 1
        st.candles += 1
        st.last_closed = candle.start
        st.last_close = candle.close
        if not keep_forming:
            st.start = st.end = _NO_CANDLE
        return out

    def seed(self, symbol: str, last_closed_start_ns: int, last_close: float | None = None) -> None:
        """Continue after stored history (restart): later ticks for that minute or before are
        late, and a short gap is filled at `last_close` (or the next candle's open)."""
        st = self._state(symbol)
        st.last_closed = last_closed_start_ns
        st.last_close = last_close

    # ------------------------------------------------------------------ queries
    def forming(self, symbol: str) -> Candle | None:
        """A copy of the candle being built for `symbol`, or None."""
        st = self._states.get(symbol)
        if st is None or not st.forming:
            return None
        if st.has:
            o, h, lo, c = st.o, st.h, st.l, st.c
        else:
            p = st.last_close if st.last_close is not None else st.xp
            o = h = lo = c = p if p is not None else 0.0
        return Candle(symbol, st.start, o, h, lo, c, st.v, st.n)

    def last_closed_start(self, symbol: str) -> int | None:
        st = self._states.get(symbol)
        return None if st is None else st.last_closed

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self._states)

    def drain_notices(self) -> list[tuple[EventType, CandleGapReport | LateTicks]]:
        """Gap and late-tick reports since the last call: at most one notice per kind
        (CANDLE_GAP: every gap, the first one's fields up front; LATE_TICK: counts)."""
        notices: list[tuple[EventType, CandleGapReport | LateTicks]] = []
        if self._gaps:
            gaps, self._gaps = self._gaps, []
            notices.append((EventType.CANDLE_GAP, CandleGapReport.of(tuple(gaps))))
        if self._late:
            late, self._late = self._late, {}
            notices.append((EventType.LATE_TICK, LateTicks(sum(late.values()), late)))
        return notices

    def stats(self) -> dict[str, Any]:
        per: dict[str, dict[str, int]] = {}
        for sym, st in self._states.items():
            per[sym] = {
                "ticks": st.ticks + st.n + st.late,
                "candles": st.candles,
                "gap_filled": st.gap_filled,
                "gaps_reported": st.gaps,
                "late_ticks": st.late,
                "excluded_from_ohlc": st.excluded,
                "duplicates": st.duplicates,
                "ingested": st.ingested,
            }
        keys = ("ticks", "candles", "gap_filled", "gaps_reported", "late_ticks",
                "excluded_from_ohlc", "duplicates", "ingested")  # fmt: skip
        total: dict[str, Any] = {k: sum(p[k] for p in per.values()) for k in keys}
        total["symbols"] = per
        return total


class _RunFolds:
    """What each run of one minute's rows in a chunk (in file order) contributes to its
    candle, for all runs at once, as Python lists indexed by run: bounds, the first row's time
    and price, volume (integer sizes), the number of eligible rows, the high and low among
    them, the first one's position and price (open), the price before it, the last one's price
    (close) and the run's last price."""

    __slots__ = (
        "starts", "ends", "minute", "first_ts", "first_price", "volume", "eligible", "high",
        "low", "first_eligible", "open", "before_open", "close", "last_price",
    )  # fmt: skip

    def __init__(self, ts: Any, price: Any, size: Any, eligible: Any) -> None:
        import numpy as np

        minute, starts, ends = minute_runs(ts)
        where = np.flatnonzero(eligible)  # the eligible rows
        first_at = np.searchsorted(where, starts)  # into `where`: each run's first eligible
        last_at = np.searchsorted(where, ends) - 1
        count = last_at + 1 - first_at
        if len(where):
            first = where[np.minimum(first_at, len(where) - 1)]
            last = where[np.maximum(last_at, 0)]
        else:
            first = last = starts
        self.starts, self.ends = starts.tolist(), ends.tolist()
        self.minute = minute[starts].tolist()
        self.first_ts = ts[starts].tolist()
        self.first_price = price[starts].tolist()
        self.volume = np.add.reduceat(size, starts).tolist() if size.dtype.kind in "iu" else []
        self.eligible = count.tolist()
        self.high = np.maximum.reduceat(np.where(eligible, price, -np.inf), starts).tolist()
        self.low = np.minimum.reduceat(np.where(eligible, price, np.inf), starts).tolist()
        self.first_eligible = first.tolist()
        self.open = price[first].tolist()
        self.before_open = price[np.maximum(first - 1, 0)].tolist()
        self.close = price[last].tolist()
        self.last_price = price[ends - 1].tolist()
