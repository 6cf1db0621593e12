"""The incremental SLOB tracker: one closed candle in, the setup events it decides out.

`on_candle(k)` only ever emits events stamped with candle `k` (its index and start time), so a
run over `candles[:t+1]` and a run over everything agree on every event up to `t`. Both
directions share one implementation: LONG runs the SHORT rules on negated prices (see
`consolidation.py`). The per-candle path is integer compares and a tuple append; sessions are
resolved once per span (see `core/sessions.py`), levels and quality are built only on events.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from slob_tui.core.events import Event, EventType
from slob_tui.core.models import NS_PER_MINUTE, Candle, Direction, SetupState, SetupUpdate
from slob_tui.core.sessions import Phase, SessionCalendar, Span
from slob_tui.errors import UsageError
from slob_tui.strategy.candidate import (
    CONSOL,
    ENTRY,
    IDLE,
    LIQ2,
    Side,
    decode_inf,
    encode_inf,
    setup_id_for,
)
from slob_tui.strategy.consolidation import INF, quality_score
from slob_tui.strategy.params import DEFAULTS, SlobParams, profile_for

STATE_VERSION = 1
_STAGE_STATE = {
    CONSOL: SetupState.WATCHING_CONSOL,
    LIQ2: SetupState.WATCHING_LIQ2,
    ENTRY: SetupState.WAITING_ENTRY,
}
_TRADE = Phase.TRADE
_REF = Phase.REF
# History rows: (start, open, high, low, close, volume).
H_TS, H_O, H_H, H_L, H_C, H_V = range(6)

_calendars: dict[SlobParams, SessionCalendar] = {}


def calendar_for(params: SlobParams) -> SessionCalendar:
    """One calendar (and its per-day cache) per distinct parameter set."""
    cal = _calendars.get(params)
    if cal is None:
        cal = _calendars[params] = SessionCalendar.from_params(params)
    return cal


_PARAM_FIELDS = tuple(f.name for f in fields(SlobParams))  # saved with the state


class SetupTracker:
    """Both directions of the SLOB setup for one symbol, fed closed 1-minute candles."""

    __slots__ = (
        "symbol",
        "params",
        "calendar",
        "index",
        "skipped",
        "_short",
        "_long",
        "_hist",
        "_base",
        "_prev_ts",
        "_prev_close",
        "_span",
        "_span_end",
        "_phase",
        "_trade_start",
        "_ref_day",
        "_ref_hi",
        "_ref_lo",
        "_ref_known",
        "_out",
        "_ts",
    )

    def __init__(self, symbol: str, params: SlobParams | None = None) -> None:
        self.symbol = symbol
        self.params = params or DEFAULTS
        self.calendar = calendar_for(self.params)
        self.index = 0  # candles fed so far; the next candle gets this index
        self.skipped = 0  # candles not newer than the previous one (ignored, no index)
        self._short = Side(Direction.SHORT, self.params)
        self._long = Side(Direction.LONG, self.params)
        self._hist: list[tuple[int, float, float, float, float, float]] = []
        self._base = 0  # index of _hist[0]
        self._prev_ts = -1
        self._prev_close = 0.0
        self._span: Span | None = None
        self._span_end = -1
        self._phase = Phase.CLOSED
        self._trade_start = 0
        self._ref_day = -1
        self._ref_hi = -INF
        self._ref_lo = INF
        self._ref_known = False
        self._out: list[Event] | None = None
        self._ts = 0

    # ---- the per-candle path -------------------------------------------------------------

    def on_candle(self, candle: Candle) -> list[Event]:
        """Decide on candle `index` using candles `0..index` only; return its events."""
        ts = candle.start
        if ts <= self._prev_ts:
            self.skipped += 1
            return []
        k = self.index
        self.index = k + 1
        o, h, lo, c = candle.open, candle.high, candle.low, candle.close
        self._hist.append((ts, o, h, lo, c, candle.volume))
        self._out = None
        self._ts = ts
        if ts >= self._span_end:
            self._enter_span(ts, k)
        phase = self._phase
        if phase is _REF:
            if h > self._ref_hi:
                self._ref_hi = h
            if lo < self._ref_lo:
                self._ref_lo = lo
        elif phase >= _TRADE and self._ref_known:
            gap = False
            if self.params.gap_check and self._prev_ts >= 0:
                pc = self._prev_close
                gap = (
                    candle.gap_filled
                    or abs(o - pc) > abs(pc) * self.params.gap_pct / 100
                    or (
                        ts - self._prev_ts > NS_PER_MINUTE
                        and ts - NS_PER_MINUTE >= self._trade_start
                    )
                )
            can_start = phase is _TRADE
            self._step(self._short, k, ts, o, h, lo, c, gap, can_start)
            self._step(self._long, k, ts, -o, -lo, -h, -c, gap, can_start)
        self._prev_ts = ts
        self._prev_close = c
        out = self._out
        return out if out is not None else []

    def _enter_span(self, ts: int, k: int) -> None:
        old = self._span
        span = self.calendar.span_at(ts)
        self._span = span
        self._span_end = span.end
        same_day = old is not None and old.day == span.day
        if self._phase >= _TRADE and (span.phase < _TRADE or not same_day):
            for side in (self._short, self._long):
                if side.stage:
                    self._invalidate(side, k, ts, "MARKET_CLOSED", restart=False)
                side.new_day()
            self._ref_known = False
        if span.phase is _REF and span.day != self._ref_day:
            self._ref_day = span.day
            self._ref_hi = -INF
            self._ref_lo = INF
        if span.phase >= _TRADE and (self._phase < _TRADE or not same_day):
            self._short.new_day()
            self._long.new_day()
            self._trade_start = self.calendar.bounds(self.calendar.local_date(ts)).trade_start
            self._ref_known = self._ref_day == span.day and self._ref_hi > -INF
        self._phase = span.phase
        self._trim()

    def _step(
        self,
        s: Side,
        k: int,
        ts: int,
        o: float,
        h: float,
        lo: float,
        c: float,
        gap: bool,
        can_start: bool,
    ) -> None:
        st = s.stage
        if not st:
            if s.pending:
                if gap or not can_start:
                    return
                self._start(s, k, ts, None)
            elif s.liq1_idx < 0:
                ref = self._ref_hi if s.sign > 0 else -self._ref_lo
                if can_start and h > ref:
                    s.liq1_idx = k
                    s.liq1_time = ts
                    s.liq1_price = h
                    self._start(s, k, ts, prev=SetupState.WATCHING_LIQ1)
                return
            else:
                return
            st = CONSOL
        if gap:
            self._invalidate(s, k, ts, "DATA_GAP")
            return
        p = self.params
        det = s.det
        if st == CONSOL:
            det.update(k, h, lo)
            self._consol_checks(s, k, ts)
        elif st == LIQ2:
            if h > det.hi:
                if k - det.lo_conf_idx >= p.liq2_min_wait:
                    self._at_liq2(s, k, ts, o, h, c)
                    return
                det.update(k, h, lo)
                self._transition(s, k, ts, CONSOL, "HIGH_REPLACED")
            elif lo < det.lo:
                note = "LOW_REPLACED" if det.update(k, h, lo) == 2 else "RANGE_BROKEN"
                self._transition(s, k, ts, CONSOL, note)
                self._consol_checks(s, k, ts)
            elif k - s.arm_idx >= p.liq2_timeout:
                self._invalidate(s, k, ts, "LIQ2_TIMEOUT")
        else:
            if h > s.spike:
                s.spike = h
            if s.nw_idx < 0:
                if c > o and o - lo <= p.nowick_max_wick * (c - o):
                    self._set_nw(s, k, h, lo)
                elif k >= s.nw_deadline:
                    self._invalidate(s, k, ts, "NO_WICK_NOT_FOUND")
                elif k - s.liq2_idx >= p.entry_timeout:
                    self._invalidate(s, k, ts, "ENTRY_TIMEOUT")
            elif h > s.retrace_thr:
                self._invalidate(s, k, ts, "RETRACE")
            elif c < s.nw_low:
                self._trigger(s, k, ts, c)
            elif k - s.liq2_idx >= p.entry_timeout:
                self._invalidate(s, k, ts, "ENTRY_TIMEOUT")

    def _consol_checks(self, s: Side, k: int, ts: int) -> None:
        det = s.det
        p = self.params
        if k - det.hi_idx + 1 > p.consol_max:
            self._invalidate(s, k, ts, "CONSOL_TIMEOUT")
        elif det.hi_conf and det.lo_conf and det.ready(k, p.consol_min):
            s.arm_idx = k
            self._transition(s, k, ts, LIQ2, None)

    # ---- the rare transitions ------------------------------------------------------------

    def _start(self, s: Side, k: int, ts: int, prev: SetupState | None) -> None:
        s.reset_candidate()
        s.pending = False
        s.stage = CONSOL
        s.start_idx = k
        s.setup_id = setup_id_for(self.symbol, s.direction, ts)
        self._emit(s, EventType.SETUP_STARTED, k, ts, SetupState.WATCHING_CONSOL, prev, None)

    def _transition(self, s: Side, k: int, ts: int, stage: int, note: str | None) -> None:
        prev = _STAGE_STATE[s.stage]
        s.stage = stage
        self._emit(s, EventType.SETUP_TRANSITION, k, ts, _STAGE_STATE[stage], prev, note)

    def _invalidate(self, s: Side, k: int, ts: int, reason: str, restart: bool = True) -> None:
        prev = _STAGE_STATE[s.stage]
        s.stage = IDLE
        s.pending = restart
        self._emit(s, EventType.SETUP_INVALIDATED, k, ts, SetupState.INVALIDATED, prev, reason)

    def _at_liq2(self, s: Side, k: int, ts: int, o: float, h: float, c: float) -> None:
        p = self.params
        s.liq2_idx, s.liq2_time, s.liq2_price, s.liq2_o, s.liq2_c = k, ts, h, o, c
        s.spike = h
        s.quality = self._quality(s, k)
        if p.min_quality > 0 and s.quality < p.min_quality:
            self._invalidate(s, k, ts, "LOW_QUALITY")
            return
        if p.nowick_after_liq2 > 0:
            s.nw_deadline = k + p.nowick_after_liq2
            self._transition(s, k, ts, ENTRY, None)
            return
        hist, base, sg, w = self._hist, self._base, s.sign, p.nowick_max_wick
        for j in range(k, s.det.hi_idx - 1, -1):
            row = hist[j - base]
            if sg > 0:
                jo, jh, jl, jc = row[H_O], row[H_H], row[H_L], row[H_C]
            else:
                jo, jh, jl, jc = -row[H_O], -row[H_L], -row[H_H], -row[H_C]
            if jc > jo and jo - jl <= w * (jc - jo):
                self._set_nw(s, j, jh, jl)
                self._transition(s, k, ts, ENTRY, None)
                return
        self._invalidate(s, k, ts, "NO_WICK_NOT_FOUND")

    def _set_nw(self, s: Side, j: int, jh: float, jl: float) -> None:
        s.nw_idx, s.nw_high, s.nw_low = j, jh, jl
        s.retrace_thr = jh * (1 + s.sign * self.params.retrace_pct / 100)

    def _trigger(self, s: Side, k: int, ts: int, c: float) -> None:
        p = self.params
        body = abs(s.liq2_c - s.liq2_o)
        top = max(s.liq2_o, s.liq2_c)
        if body > 0 and s.liq2_price - top > p.spike_ratio * body:
            stop = top + p.spike_buffer
            stop_kind = "spike"
        else:
            stop = s.spike + p.sl_buffer
            stop_kind = "spike_high"
        target, target_kind = self._target(s)
        risk = stop - c
        rr = (c - target) / risk if risk > 0 else -INF
        sg = s.sign
        extra = {
            "trigger_index": k,
            "trigger_time": ts,
            "entry_index": k + 1,
            "entry": sg * c,
            "stop": sg * stop,
            "target": sg * target,
            "rr": round(rr, 6) if rr > -INF else None,
            "stop_kind": stop_kind,
            "target_kind": target_kind,
        }
        if rr <= p.min_rr:
            prev = _STAGE_STATE[s.stage]
            s.stage, s.pending = IDLE, True
            self._emit(
                s, EventType.SETUP_INVALIDATED, k, ts, SetupState.INVALIDATED, prev, "BAD_RR", extra
            )
            return
        s.stage, s.pending = IDLE, True
        self._emit(
            s,
            EventType.SETUP_TRIGGERED,
            k,
            ts,
            SetupState.TRIGGERED,
            SetupState.WAITING_ENTRY,
            None,
            extra,
        )

    def _target(self, s: Side) -> tuple[float, str]:
        """tp1: the latest swing low after LIQ #1, before the HIGH, below the LOW."""
        p = self.params
        if p.tp_mode == "tp1":
            hist, base, K, sg = self._hist, self._base, p.swing_k, s.sign
            col = H_L if sg > 0 else H_H
            low = s.det.lo
            last = base + len(hist) - 1
            for j in range(s.det.hi_idx - 1, s.liq1_idx, -1):
                lj = sg * hist[j - base][col]
                if lj >= low or j - K < base or j + K > last:
                    continue
                if all(sg * hist[i - base][col] > lj for i in range(j - K, j + K + 1) if i != j):
                    return lj - p.tp_buffer, "swing"
        ref = self._ref_lo if s.sign > 0 else -self._ref_hi
        return ref - p.tp_buffer, "ref"

    def _quality(self, s: Side, end: int) -> float:
        """Quality over the HIGH's candle up to (not including) `end` (lazy, on events)."""
        det = s.det
        rows = self._hist[det.hi_idx - self._base : end - self._base]
        if s.sign > 0:
            highs = [r[H_H] for r in rows]
            lows = [r[H_L] for r in rows]
            closes = [r[H_C] for r in rows]
        else:
            highs = [-r[H_L] for r in rows]
            lows = [-r[H_H] for r in rows]
            closes = [-r[H_C] for r in rows]
        return quality_score(
            highs, lows, closes, [r[H_V] for r in rows], det.hi, det.lo if det.lo_idx >= 0 else None
        )

    def _emit(
        self,
        s: Side,
        etype: EventType,
        k: int,
        ts: int,
        state: SetupState,
        prev: SetupState | None,
        reason: str | None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        levels = self._levels(s, k)
        if extra:
            levels.update(extra)
        upd = SetupUpdate(s.setup_id, self.symbol, s.direction, state, prev, reason, k, ts, levels)
        s.last = upd
        ev = Event(type=etype, ts=ts, data=upd, source="tracker")
        if self._out is None:
            self._out = [ev]
        else:
            self._out.append(ev)

    def _levels(self, s: Side, k: int) -> dict[str, Any]:
        sg = s.sign
        d: dict[str, Any] = {
            "ref_high": self._ref_hi,
            "ref_low": self._ref_lo,
            "liq1_price": sg * s.liq1_price,
            "liq1_index": s.liq1_idx,
            "liq1_time": s.liq1_time,
        }
        det = s.det
        if det.hi_idx >= 0:
            far, near = ("high", "low") if sg > 0 else ("low", "high")
            d[far] = sg * det.hi
            d[far + "_index"] = det.hi_idx
            if det.lo_idx >= 0:
                d[near] = sg * det.lo
                d[near + "_index"] = det.lo_idx
                d["range_pct"] = round(det.range_pct() or 0.0, 6)
            d["quality"] = s.quality if s.liq2_idx >= 0 else self._quality(s, k + 1)
        if s.liq2_idx >= 0:
            d.update(liq2_index=s.liq2_idx, liq2_time=s.liq2_time, liq2_price=sg * s.liq2_price)
            d["spike_high" if sg > 0 else "spike_low"] = sg * s.spike
            if s.nw_idx >= 0:
                d["nw_index"] = s.nw_idx
                d["nw_high" if sg > 0 else "nw_low"] = sg * s.nw_high
                d["nw_low" if sg > 0 else "nw_high"] = sg * s.nw_low
        return d

    def _trim(self) -> None:
        keep = self._keep_from()
        if keep > self._base:
            del self._hist[: keep - self._base]
            self._base = keep

    def _keep_from(self) -> int:
        keep = self.index - self.params.swing_k - 1
        for s in (self._short, self._long):
            if s.liq1_idx >= 0:
                keep = min(keep, s.liq1_idx + 1 - self.params.swing_k)
        return max(keep, self._base)

    # ---- what others read ----------------------------------------------------------------

    def live_setups(self) -> list[SetupUpdate]:
        """The latest update of each live candidate (at most one per direction)."""
        return [s.last for s in (self._short, self._long) if s.stage and s.last is not None]

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly here; JSON-serialisable."""
        keep = self._keep_from()
        span = self._span
        return {
            "version": STATE_VERSION,
            "symbol": self.symbol,
            "index": self.index,
            "skipped": self.skipped,
            "prev_ts": self._prev_ts,
            "prev_close": self._prev_close,
            "span": [int(span.phase), span.day, span.start, span.end] if span else None,
            "phase": int(self._phase),
            "trade_start": self._trade_start,
            "ref_day": self._ref_day,
            "ref_hi": encode_inf(self._ref_hi),
            "ref_lo": encode_inf(self._ref_lo),
            "ref_known": self._ref_known,
            "sides": [self._short.state(), self._long.state()],
            "hist_base": keep,
            "hist": self._hist[keep - self._base :],  # the row tuples (see TrackerStateText)
            "params": {name: getattr(self.params, name) for name in _PARAM_FIELDS},
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], params: SlobParams | None = None) -> SetupTracker:
        """A tracker that continues exactly where `state_dict()` was taken.

        Without explicit `params`, the saved ones: a restart keeps the instrument profile the
        tracker was built with (a price-fraction symbol must not fall back to NQ's points).
        A state saved before parameters were kept gets the symbol's profile at its last close.
        """
        if state.get("version") != STATE_VERSION:
            raise ValueError(
                f"tracker state version {state.get('version')!r} is not {STATE_VERSION}"
            )
        if params is None:
            saved = state.get("params")
            if saved is not None:
                params = SlobParams(**saved)
            else:
                price = float(state["prev_close"])
                try:
                    params = profile_for(state["symbol"], price if price > 0 else None)
                except UsageError as exc:
                    raise ValueError(str(exc)) from None
        t = cls(state["symbol"], params)
        t.index = int(state["index"])
        t.skipped = int(state["skipped"])
        t._prev_ts = int(state["prev_ts"])
        t._prev_close = float(state["prev_close"])
        if state["span"] is not None:
            ph, day, start, end = state["span"]
            t._span = Span(Phase(ph), day, start, end)
            t._span_end = end
        t._phase = Phase(state["phase"])
        t._trade_start = int(state["trade_start"])
        t._ref_day = int(state["ref_day"])
        t._ref_hi = decode_inf(state["ref_hi"], -INF)
        t._ref_lo = decode_inf(state["ref_lo"], INF)
        t._ref_known = bool(state["ref_known"])
        t._short.load(state["sides"][0])
        t._long.load(state["sides"][1])
        t._base = int(state["hist_base"])
        t._hist = [(int(r[0]), r[1], r[2], r[3], r[4], r[5]) for r in state["hist"]]
        return t
