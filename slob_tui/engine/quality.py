"""Data quality: a validator between the feed and the strategy.

`DataQualityValidator.filter_ticks` runs before the aggregator on every tick batch. It drops the
ticks that must never reach a candle (bad values, fat fingers beyond `reject_deviations`, stale
or far-future times, redelivered trade ids) and flags odd-but-plausible ones (price outliers
beyond `suspect_deviations`, out-of-order times): a flagged tick is counted and reported in a
DATA_QUALITY event but passes unchanged, so it still sets the candle's open/high/low/close. A
print beyond the recent range is exactly the liquidity sweep the strategy trades; hiding it from
the high/low would blind the strategy. `check_candle` (`quality_candles.py`) checks candles.

Determinism: a per-tick state machine. Each tick is judged against the state its symbol's
earlier ticks left (median band, sampled ticks, minute, last time, trade ids), never against
a batch boundary, so for one clock reading the ticks passed and the counts and examples by kind
are the same for any split of a tick sequence into batches. Only the grouping of findings into
events (one per batch, kind and symbol) and the ticks kept for corrections follow the batches.
A live clock read once per batch moves the future limit between batches; the claim is for equal
readings (replay has no clock here, hence no future judgement at all).

Redeliveries: Alpaca can send a trade again after a reconnect (the gap backfill overlaps the
stream). A redelivery is the same trade: same time, exchange and id, so a duplicate is a tick
whose (time, exchange, id) was accepted before. Anything older than the current minute is
stale first, so only the current minute's ids are remembered; a tick newer than the symbol's
newest cannot be one, and one at the newest time is compared with the few trades at that time.
Only a tick behind the newest is looked up in the minute's index, built then (ids are not
unique across days or venues, so an id alone would drop real trades).

Speed: the clean branch unpacks the tick and makes a few compares on locals; its
ticks reach the minute's journal as one slice per run of clean ticks (before `_check` or a
symbol change reads the journal, and at the end of the batch). Any other tick takes `_check`,
which applies every rule. The reference is the median of every `sample_every`-th tick inside
the band (the last `price_window` of them), refreshed at each new minute and whenever a tick
falls outside the band: samples are taken from the journal then, so the clean branch neither
counts nor samples. A tick that is not seven fields long fails the unpacking: malformed.
On CPython 3.11 this loop beats column extraction: `map(itemgetter)` per column costs more
than the compares it feeds. Columns that arrive as columns (a file replay's `TickChunk`) take
`filter_columns`: the same clean branch in numpy, `_check` for every other row; a row it
passes on the clean branch is journaled as its price (it has no id).
"""

from __future__ import annotations

import math
from collections import deque
from datetime import date
from operator import length_hint
from typing import Any

from slob_tui.core.clock import Clock
from slob_tui.core.events import Event
from slob_tui.core.models import NS_PER_MINUTE, NS_PER_SECOND, Candle
from slob_tui.core.quality_policy import QualityPolicy, QualitySettingsError
from slob_tui.core.tick_chunk import TickChunk, minute_runs
from slob_tui.engine.quality_candles import (
    FLAG_KINDS,
    REJECT_KINDS,
    CandleChecks,
    Findings,
    TickFindings,
    market_calendar,
)
from slob_tui.engine.quality_symbol import FLOAT_SIZES, INF, INT_SIZES, SymbolState

__all__ = ["DataQualityValidator", "QualityPolicy", "QualitySettingsError"]


class DataQualityValidator:
    """Checks ticks before the aggregator and candles after it; counts findings by kind."""

    def __init__(
        self,
        policy: QualityPolicy | None = None,
        clock: Clock | None = None,
        sale_policy: Any = None,
        extra_holidays: frozenset[date] = frozenset(),
    ) -> None:
        self.policy = p = policy or QualityPolicy()
        self.clock = clock  # only a clock that is ahead of the data (live) may judge "future"
        self.findings = Findings(p.max_examples)
        hours = market_calendar(p, extra_holidays)
        self.candles = CandleChecks(p, self.findings, sale_policy, hours)
        self._syms: dict[Any, SymbolState] = {}
        self._tick_findings = TickFindings(self.findings)
        self._note = self._tick_findings.note
        self._events: list[Event] = []
        self.ticks_in = self.ticks_passed = 0
        self._future_ns = int(p.max_future_s * NS_PER_SECOND)
        self._keep_ns = p.recent_minutes * NS_PER_MINUTE
        self._recent: deque[tuple[int, list[tuple[Any, ...]] | TickChunk]] = (
            deque()
        )  # (newest time, accepted ticks)
        self._newest = self._forgotten = -(1 << 62)  # newest tick seen; newest one let go

    # ------------------------------------------------------------------ hot path
    def filter_ticks(self, batch: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """The ticks that may reach a candle, in order and unchanged; the batch itself when
        none is rejected."""
        if not batch:
            return batch
        tmax = INF if self.clock is None else self.clock.now_ns() + self._future_ns
        cap = tmax + 1  # the clean branch passes no tick after the future limit
        syms, check = self._syms, self._slow
        dropped: list[int] = []
        csym: Any = _NOTHING
        st: SymbolState | None = None
        last = rts = 0
        rid: Any = None
        more: list[Any] | None = None
        end: float = 0
        zlo: float = 0
        newest = self._newest
        lo = hi = zhi = 0.0
        journal: list[Any] = []
        n = len(batch)
        start = 0  # the first clean tick of the current run, not yet in `journal`
        it = iter(batch)
        for t in it:
            try:
                sym, ts, price, amount, _, _, tid = t
                if sym is not csym and sym != csym:
                    i = n - length_hint(it) - 1
                    if st is not None:
                        st.last, st.rts, st.rid, st.more = last, rts, rid, more
                        newest = max(newest, last)
                        journal += batch[start:i]
                    start = i
                    st = syms.get(sym) or self._new_symbol(sym)
                    csym = sym
                    last, end = st.last, min(st.end, cap)
                    lo, hi = st.band()
                    zlo, zhi = st.sizes
                    rts, rid, more, journal = st.rts, st.rid, st.more, st.journal
                # unchained: a chained compare costs a SWAP, a COPY and a cleanup each
                if (
                    last <= ts
                    and ts < end
                    and lo < price
                    and price < hi
                    and zlo < amount
                    and amount < zhi
                ):
                    if tid is not None:
                        # ts >= last: only a trade at this very time can be this one again;
                        # the same id there (at any venue) goes to `_check`, which decides.
                        # A time's first id is kept alone (no list for a time of one trade)
                        if ts != rts:
                            rts, rid, more = ts, tid, None
                        elif tid is rid or tid == rid:
                            raise _Slow
                        elif more is None:
                            more = [tid]
                        elif tid in more:
                            raise _Slow
                        else:
                            more.append(tid)
                    last = ts
                    continue
                raise _Slow
            except _Slow:
                assert st is not None  # _Slow is raised only once a symbol's state is loaded
                st.last, st.rts, st.rid, st.more = last, rts, rid, more
                i = n - length_hint(it) - 1
                journal += batch[start:i]  # `_check` reads the journal: it must be whole
                start = i + 1
                ok = check(st, t, tmax)
                last, end = st.last, min(st.end, cap)
                lo, hi = st.band()
                zlo, zhi = st.sizes
                rts, rid, more, journal = st.rts, st.rid, st.more, st.journal
                if ok:
                    continue
            except Exception as exc:  # noqa: BLE001 - arbitrary input must never stop the feed
                i = n - length_hint(it) - 1
                journal += batch[start:i]
                start = i + 1
                # the tick's own symbol when it has one: never the previous tick's
                sym = t[0] if type(t) is tuple and t and type(t[0]) is str and t[0] else "?"
                self._note("malformed", sym, 0, {"error": type(exc).__name__,
                           "tick": repr(t)[:120]})  # fmt: skip
            dropped.append(i)  # index of t (only when dropped)
        if st is not None:
            st.last, st.rts, st.rid, st.more = last, rts, rid, more
            newest = max(newest, last)
            journal += batch[start:]
        out = batch
        if dropped:
            skip = set(dropped)
            out = [t for i, t in enumerate(batch) if i not in skip]
        if self._tick_findings.batch:
            self._events += self._tick_findings.flush()
        self.ticks_in += len(batch)
        self.ticks_passed += len(out)
        self._newest = newest
        if not self._keep_ns:
            self._forgotten = newest  # nothing is kept: no correction can be applied
        elif out:
            self._keep(out, newest)
        return out

    def filter_columns(self, chunk: TickChunk) -> TickChunk:
        """`filter_ticks` for a chunk of columns: the same rules, verdicts, counts, findings
        and state as its `tuples()` would get, and the rows that passed (the chunk itself when
        none is rejected).

        A window of rows at a time, numpy checks the clean branch's conditions (time not
        behind the previous tick's nor past the minute's end, price inside the band, size
        inside its bounds; a chunk has no trade ids); the clean rows before the first row that
        fails them are accepted at once (their prices join the journal) and that row, built as
        a tuple, takes `_check`, which may move the minute and the band for the next window.
        In a chunk in time order the window is the rest of the minute, judged first from that
        rest's lowest and highest price and size, computed for every minute of the chunk at
        once (`_MinuteRuns`), and row by row only when those do not pass it whole; otherwise it
        doubles while rows stay clean, so the numpy work follows the clean run's length, not
        the chunk's."""
        import numpy as np

        n = len(chunk)
        if not n:
            return chunk
        tmax = INF if self.clock is None else self.clock.now_ns() + self._future_ns
        cap = tmax + 1
        st = self._syms.get(chunk.symbol) or self._new_symbol(chunk.symbol)
        ts, price, size = chunk.ts, chunk.price, chunk.size
        rising = np.empty(n, dtype=bool)  # row k's time is not behind row k - 1's
        rising[0] = True
        np.greater_equal(ts[1:], ts[:-1], out=rising[1:])
        in_order = bool(rising.all())
        runs = _MinuteRuns(ts, price, size) if in_order else None
        sizes_ok: Any = None  # size inside the clean bounds: changes only with them
        bounds: Any = None
        dropped: list[int] = []
        i, width = 0, _FIRST_WINDOW
        while i < n:
            end = min(st.end, cap)
            lo, hi = st.band()
            if runs is not None:  # a minute's first row, or the rest of one, without numpy
                first = runs.first_ts.get(i)
                if first is not None and first >= end:  # no row before the end: `_check`
                    if not self._slow(st, chunk.tick(i), tmax):
                        dropped.append(i)
                    i += 1
                    continue
                m = runs.rest_of.get(i)
                if m is not None and runs.clean(m, end, lo, hi, st.sizes, st.last):
                    b = runs.ends[m]
                    st.last = runs.last_ts[m]
                    st.journal += price[i:b].tolist()
                    i = b
                    continue
            if st.sizes is not bounds:
                bounds = st.sizes
                sizes_ok = (size > bounds[0]) & (size < bounds[1])
            if in_order:  # the rows before the minute's end (or the future limit): up to b
                b = n if end == INF else int(ts.searchsorted(end))
                p = price[i:b]
                ok = sizes_ok[i:b] & (p > lo) & (p < hi)
            else:
                b = min(i + width, n)
                p = price[i:b]
                ok = sizes_ok[i:b] & (p > lo) & (p < hi) & (ts[i:b] < end)
            k = 0
            if b > i:
                ok[1:] &= rising[i + 1 : b]
                ok[0] &= bool(ts[i] >= st.last)
                k = int(ok.argmin()) if not ok.all() else b - i
            if k:
                st.last = int(ts[i + k - 1])
                st.journal += p[:k].tolist()
            i += k
            if i == b and b > i - k:
                width = min(width * 2, _LAST_WINDOW)
                continue
            if not self._slow(st, chunk.tick(i), tmax):
                dropped.append(i)
            i, width = i + 1, _FIRST_WINDOW
        self._newest = newest = max(self._newest, st.last)
        out = chunk
        if dropped:
            keep = np.ones(n, dtype=bool)
            keep[dropped] = False
            out = chunk.rows(keep)
        if self._tick_findings.batch:
            self._events += self._tick_findings.flush()
        self.ticks_in += n
        self.ticks_passed += len(out)
        if not self._keep_ns:
            self._forgotten = newest
        elif len(out):
            self._keep(out, newest)
        return out

    def _keep(self, out: list[tuple[Any, ...]] | TickChunk, newest: int) -> None:
        """Accepted ticks for trade corrections: one reference per batch, no copy, for the
        current minute and `recent_minutes` before it. A batch is let go whole once its newest
        tick is older than that; `_forgotten` then bounds every tick no longer kept."""
        recent = self._recent
        recent.append((newest, out))
        cutoff = newest - newest % NS_PER_MINUTE - self._keep_ns
        while recent[0][0] < cutoff:
            self._forgotten = max(self._forgotten, recent.popleft()[0])

    def _recent_ticks(self, symbol: str) -> list[tuple[Any, ...]]:
        return [
            t
            for _, b in self._recent
            for t in (b.tuples() if isinstance(b, TickChunk) else b)
            if t[0] == symbol
        ]

    # ------------------------------------------------------------------ slow paths
    def _new_symbol(self, sym: Any) -> SymbolState:
        if not isinstance(sym, str) or not sym:
            raise TypeError("symbol must be a non-empty str")
        st = self._syms[sym] = SymbolState(sym, self.policy)
        return st

    def _slow(self, st: SymbolState, t: tuple[Any, ...], tmax: float) -> bool:
        try:
            return self._check(st, t, tmax)
        except Exception as exc:  # noqa: BLE001 - e.g. an unhashable trade id
            self._note("malformed", st.symbol, 0, {"error": type(exc).__name__,
                       "tick": repr(t)[:120]})  # fmt: skip
            return False

    def _check(self, st: SymbolState, t: tuple[Any, ...], tmax: float) -> bool:
        """Every rule, in order, for a tick off the clean branch: True if it passes."""
        sym, ts, p, z = st.symbol, t[1], t[2], t[3]
        if len(t) != 7 or type(ts) is not int:
            self._note("malformed", sym, ts if type(ts) is int else 0, {"tick": repr(t)[:120]})
            return False
        if not _is_num(p) or not (0.0 < p < INF):
            self._note("bad_price", sym, ts, {"price": _jsonable(p)})
            return False
        if not _is_num(z) or not (0.0 < z < INF):
            self._note("bad_size", sym, ts, {"price": p, "size": _jsonable(z)})
            return False
        if ts > tmax:
            ahead = (ts - tmax) / NS_PER_SECOND
            self._note("future_ts", sym, ts, {"price": p, "ahead_s": ahead
                       + self.policy.max_future_s}, ahead)  # fmt: skip
            return False
        if ts < st.start:
            self._note("stale_ts", sym, ts, {"price": p, "candle_start": st.start},
                       (st.start - ts) / NS_PER_SECOND)  # fmt: skip
            return False
        tid = t[6]
        if tid is not None and ts <= st.last and st.seen(t):
            self._note("duplicate_id", sym, ts, {"price": p, "id": _jsonable(tid)})
            return False
        in_band = st.lo < p < st.hi
        if not in_band:
            verdict = self._outlier(st, t)
            if verdict is None:
                return False  # a rejected tick changes no time or id state
            in_band = verdict
        elif st.shift_side:
            st.shift_side, st.shift_prices = 0, []
        if ts >= st.end:
            st.new_minute(ts, self.policy)
        if in_band:
            st.journal.append(t)
        elif tid is not None:
            st.flagged.append(t)
        if tid is not None:
            st.note_id(ts, tid)
        if ts < st.last:
            self._note("out_of_order", sym, ts, {"price": p, "behind_ms": (st.last - ts) / 1e6},
                       (st.last - ts) / NS_PER_SECOND)  # fmt: skip
        else:
            st.last = ts
        if st.hi == INF and len(st.journal) > st.sampled:
            st.refresh(self.policy)  # no reference yet: one as soon as there are enough samples
        st.sizes = INT_SIZES if type(z) is int else FLOAT_SIZES
        return True

    def _outlier(self, st: SymbolState, t: tuple[Any, ...]) -> bool | None:
        """A price outside the suspect band: refresh the reference, then pass it as in band
        (True), flag it (False: it passes, counted) or drop it as a fat finger (None). A run
        of same-side outliers is the market moving, not a bad print: the median re-anchors."""
        p = t[2]
        st.refresh(self.policy)
        if st.lo < p < st.hi:
            if st.shift_side:
                st.shift_side, st.shift_prices = 0, []
            return True
        side = 1 if p > st.median else -1
        if side != st.shift_side:
            st.shift_side, st.shift_prices = side, []
        st.shift_prices.append(p)
        unit = max(st.scale, st.median * self.policy.min_deviation_bps * 1e-4)
        devs = abs(p - st.median) / unit if unit else 0.0
        if len(st.shift_prices) >= self.policy.level_shift_ticks:
            self._note("level_shift", st.symbol, t[1], {"price": p, "from_median": st.median,
                       "ticks": len(st.shift_prices)}, devs)  # fmt: skip
            st.window.clear()
            st.window.extend(st.shift_prices)
            st.shift_side, st.shift_prices = 0, []
            st.refresh(self.policy)
            return False
        info = {"price": p, "median": st.median, "deviations": round(devs, 1),
                "conditions": t[5]}  # fmt: skip
        if not (st.rlo < p < st.rhi):
            self._note("fat_finger", st.symbol, t[1], info, devs)
            return None
        self._note("price_outlier", st.symbol, t[1], info, devs)
        return False

    # ------------------------------------------------------------------ interface
    def drain_events(self) -> list[Event]:
        """DATA_QUALITY events for the tick findings since the last call (one per batch and
        kind and symbol, with the count and up to three offending ticks)."""
        events, self._events = self._events, []
        return events

    def check_candle(self, candle: Candle) -> list[Event]:
        """Findings on one closed candle (OHLC sanity, volume spike, frozen feed, missing
        minutes), plus adjusted candles of trade corrections that were waiting for it."""
        events = self.candles.check(candle)
        if self.candles.pending:
            events.extend(self.candles.settle(candle, self._recent_ticks(candle.symbol),
                                              self._forgotten))  # fmt: skip
        return events

    def apply_correction(
        self, symbol: str, ts: int, trade_id: Any, exchange: str = "",
        corrected: tuple[float, float, Any] | None = None,
    ) -> Event | None:  # fmt: skip
        """A trade cancel (`corrected` None; Alpaca's `x`) or correction ((price, size,
        conditions); Alpaca's `c`) of a trade already passed on. The candle of its minute is
        recomputed from the remembered ticks with the sale-condition policy; the event carries
        the candle before and after. A minute still forming is settled when it closes; one
        whose ticks are no longer all kept (`recent_minutes`) is reported, not recomputed."""
        st = self._syms.get(symbol)
        return self.candles.correction(
            symbol,
            ts,
            trade_id,
            exchange,
            corrected,
            self._recent_ticks(symbol),
            closed=st is None or ts < st.start,
            forgotten=self._forgotten,
        )

    def drain_adjusted(self) -> list[Candle]:
        """Closed candles recomputed after a trade cancel or correction, since the last call."""
        adjusted, self.candles.adjusted = self.candles.adjusted, []
        return adjusted

    def stats(self) -> dict[str, Any]:
        """Counts by kind, for the health panel and the metrics exporter."""
        counts = dict(self.findings.counts)
        return {
            "ticks": self.ticks_in,
            "passed": self.ticks_passed,
            "rejected": sum(v for k, v in counts.items() if k in REJECT_KINDS),
            "flagged": sum(v for k, v in counts.items() if k in FLAG_KINDS),
            "candles": self.candles.checked,
            "by_kind": counts,
        }

    def examples(self) -> dict[str, list[dict[str, Any]]]:
        """The worst examples kept per kind (largest severity first)."""
        return self.findings.worst()


_NOTHING = object()


class _MinuteRuns:
    """For a chunk in time order: where each minute's rows start, and for the rest of each
    minute after its first row (the window `filter_columns` checks once `_check` has taken
    that row) its bounds, first and last time, the next minute's first time, and the lowest
    and highest price and size, all computed at once with numpy. `clean` then tells from
    these alone whether the whole rest passes the clean branch: the same verdict as checking
    its rows one by one, since in a chunk in time order each row's time is at or after the
    one before."""

    __slots__ = ("first_ts", "rest_of", "ends", "last_ts", "next_ts", "start_ts", "low",
                 "high", "small", "large")  # fmt: skip

    def __init__(self, ts: Any, price: Any, size: Any) -> None:
        import numpy as np

        n = len(ts)
        _, starts, ends = minute_runs(ts)
        self.first_ts = dict(zip(starts.tolist(), ts[starts].tolist(), strict=True))
        rest = ends - starts >= 2  # minutes with rows after the first
        begin, stop = starts[rest] + 1, ends[rest]
        self.rest_of = dict(zip(begin.tolist(), range(len(begin)), strict=True))
        self.ends = stop.tolist()
        self.start_ts = ts[begin].tolist()
        self.last_ts = ts[stop - 1].tolist()
        self.next_ts: list[float] = ts[np.minimum(stop, n - 1)].tolist()
        if len(stop) and stop[-1] == n:
            self.next_ts[-1] = INF  # the chunk's last minute: no row after it here
        bounds = np.empty(2 * len(begin), dtype=np.int64)  # [begin, stop) pairs for reduceat
        bounds[0::2], bounds[1::2] = begin, stop
        if len(bounds) and bounds[-1] == n:
            bounds = bounds[:-1]
        if len(begin):
            self.low = np.minimum.reduceat(price, bounds)[0::2].tolist()
            self.high = np.maximum.reduceat(price, bounds)[0::2].tolist()
            self.small = np.minimum.reduceat(size, bounds)[0::2].tolist()
            self.large = np.maximum.reduceat(size, bounds)[0::2].tolist()

    def clean(
        self, m: int, end: float, lo: float, hi: float, sizes: tuple[Any, Any], last: int
    ) -> bool:
        """Whether rest `m` is exactly the window the clean branch would check (its rows
        before `end`, and no row after them) and every row in it passes: prices inside the
        band, sizes inside their bounds, the first not behind `last`."""
        return bool(
            self.last_ts[m] < end <= self.next_ts[m]
            and self.start_ts[m] >= last
            and lo < self.low[m]
            and self.high[m] < hi
            and sizes[0] < self.small[m]
            and self.large[m] < sizes[1]
        )


_FIRST_WINDOW = 64  # rows `filter_columns` checks after a row that took `_check`
_LAST_WINDOW = 8_192


class _Slow(Exception):
    """Leaves the clean branch for `_check` (zero cost until raised, Python 3.11)."""


def _is_num(x: Any) -> bool:
    return type(x) is float or type(x) is int


def _jsonable(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    return x if isinstance(x, int | float | str) or x is None else repr(x)[:40]
