"""A batch reference detector for the SLOB setup, written from the spec without the tracker.

It sees the whole series at once (as the first prototype's backtest did) and recomputes each
quantity from the arrays instead of carrying incremental state: the HIGH is an argmax over the
current structure, the LOW an argmin after it, the LOW's confirmation candle is the closed form
`max(HIGH + high_confirm, LOW + low_confirm)`, and sessions come from a per-candle local time.
The parity check (`slob-tui parity`, tests/replay) compares its setups with the tracker's.
The quality score is the one shared formula (`consolidation.quality_score`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from slob_tui.core.models import NS_PER_MINUTE, Candle
from slob_tui.strategy.consolidation import quality_score
from slob_tui.strategy.params import DEFAULTS, SlobParams, parse_hhmm, parse_window

CLOSED, REF, TRADE, LATE = 0, 1, 2, 3


@dataclass(frozen=True, slots=True)
class RefSetup:
    """One candidate as the reference sees it: where it started, how and where it ended."""

    direction: str
    start_index: int
    liq1_index: int
    state: str  # TRIGGERED | INVALIDATED | LIVE (data ended first)
    reason: str | None
    end_index: int
    liq2_index: int = -1
    trigger_index: int = -1
    entry_index: int = -1
    entry: float | None = None
    stop: float | None = None
    target: float | None = None
    quality: float | None = None


def _minutes(hm: tuple[int, int]) -> int:
    return hm[0] * 60 + hm[1]


def classify(candles: list[Candle], p: SlobParams) -> tuple[list[int], list[int], list[int]]:
    """Per candle: its phase, its local day (ordinal) and that day's trade start (ns)."""
    tz = ZoneInfo(p.session_tz)
    ny = ZoneInfo("America/New_York")
    (rs, re_), (ts_, te) = (
        parse_window("ref_window", p.ref_window),
        parse_window("trade_window", p.trade_window),
    )
    ref_a, ref_b = _minutes(rs), _minutes(re_)
    tr_a, tr_b = _minutes(ts_), _minutes(te)
    close = _minutes(parse_hhmm("close_time", p.close_time))
    phases, days, starts = [], [], []
    for c in candles:
        local = datetime.fromtimestamp(c.start / 1e9, tz)
        day = local.date()
        m = local.hour * 60 + local.minute
        if p.anchor_to_exchange:
            t0 = int(datetime(day.year, day.month, day.day, 9, 30, tzinfo=ny).timestamp()) * 10**9
            t1 = int(datetime(day.year, day.month, day.day, 16, 0, tzinfo=ny).timestamp()) * 10**9
            in_trade, in_late = t0 <= c.start < t1, False
            in_ref = ref_a <= m < ref_b and c.start < t0
        else:
            t0 = (
                int(datetime(day.year, day.month, day.day, ts_[0], ts_[1], tzinfo=tz).timestamp())
                * 10**9
            )
            in_trade = tr_a <= m < min(tr_b, close)
            in_late = min(tr_b, close) <= m < close
            in_ref = ref_a <= m < min(ref_b, tr_a)
        phase = CLOSED
        if day.weekday() < 5:
            phase = TRADE if in_trade else LATE if in_late else REF if in_ref else CLOSED
        phases.append(phase)
        days.append(day.toordinal())
        starts.append(t0)
    return phases, days, starts


def reference_setups(candles: list[Candle], params: SlobParams | None = None) -> list[RefSetup]:
    """Every candidate of both directions over the whole series, in start order."""
    p = params or DEFAULTS
    phases, days, trade_starts = classify(candles, p)
    n = len(candles)
    gap = [False] * n
    for i in range(1, n):
        a, b = candles[i - 1], candles[i]
        gap[i] = p.gap_check and (
            b.gap_filled
            or abs(b.open - a.close) > abs(a.close) * p.gap_pct / 100
            or (b.start - a.start > NS_PER_MINUTE and b.start - NS_PER_MINUTE >= trade_starts[i])
        )
    arrays = {sign: _arrays(candles, sign) for sign in (1, -1)}
    out: list[RefSetup] = []
    i = 0
    while i < n:
        if phases[i] not in (TRADE, LATE):
            i += 1
            continue
        day = days[i]
        j = i
        while j < n and days[j] == day and phases[j] in (TRADE, LATE):
            j += 1
        ref = [k for k in range(max(0, i - 2000), i) if days[k] == day and phases[k] == REF]
        if ref:
            ref_h = max(candles[k].high for k in ref)
            ref_l = min(candles[k].low for k in ref)
            for sign in (1, -1):
                out.extend(_day(candles, p, sign, i, j, ref_h, ref_l, phases, gap, arrays[sign]))
        i = j
    out.sort(key=lambda s: (s.start_index, s.direction != "SHORT"))
    return out


def _arrays(candles: list[Candle], sg: int) -> tuple[list[float], ...]:
    """Open, high, low, close, volume in SHORT space (LONG: negated, high and low swapped)."""
    if sg > 0:
        return (
            [c.open for c in candles],
            [c.high for c in candles],
            [c.low for c in candles],
            [c.close for c in candles],
            [c.volume for c in candles],
        )
    return (
        [-c.open for c in candles],
        [-c.low for c in candles],
        [-c.high for c in candles],
        [-c.close for c in candles],
        [c.volume for c in candles],
    )


def _day(
    candles: list[Candle],
    p: SlobParams,
    sg: int,
    a: int,
    b: int,
    ref_h: float,
    ref_l: float,
    phases: list[int],
    gap: list[bool],
    arrays: tuple[list[float], ...],
) -> list[RefSetup]:
    """Candles a..b-1 are one day's trade window (then LATE); `sg` 1 SHORT, -1 LONG."""
    Op, Hi, Lo, Cl, Vol = arrays
    sweep, far = (ref_h, ref_l) if sg > 0 else (-ref_l, -ref_h)
    direction = "SHORT" if sg > 0 else "LONG"
    liq1 = next((k for k in range(a, b) if phases[k] == TRADE and Hi[k] > sweep), None)
    if liq1 is None:
        return []
    found: list[RefSetup] = []
    start, first = liq1, liq1 + 1
    while True:
        res = _candidate(
            p, sg, direction, start, first, liq1, a, b, len(candles), far, Op, Hi, Lo, Cl, Vol, gap
        )
        found.append(res)
        if res.state == "LIVE" or res.reason == "MARKET_CLOSED":
            return found
        nxt = res.end_index + 1
        while nxt < b and phases[nxt] == TRADE and gap[nxt]:
            nxt += 1
        if nxt >= b or phases[nxt] != TRADE:
            return found
        start, first = nxt, nxt


def _candidate(
    p: SlobParams,
    sg: int,
    direction: str,
    start: int,
    first: int,
    liq1: int,
    a: int,
    b: int,
    n: int,
    far: float,
    Op: list[float],
    Hi: list[float],
    Lo: list[float],
    Cl: list[float],
    Vol: list[float],
    gap: list[bool],
) -> RefSetup:
    def done(state: str, reason: str | None, i: int, **kw: object) -> RefSetup:
        return RefSetup(direction, start, liq1, state, reason, i, **kw)  # type: ignore[arg-type]

    seg = first  # where the current structure began
    stage = "CONSOL"
    arm = q = nw = -1
    hi = lo = lo_conf = -1
    quality = None
    i = first
    while True:
        if i >= b:
            return done(
                "INVALIDATED" if i < n else "LIVE",
                "MARKET_CLOSED" if i < n else None,
                i if i < n else n - 1,
                liq2_index=q,
            )
        if i > start and gap[i]:
            return done("INVALIDATED", "DATA_GAP", i, liq2_index=q)
        if stage in ("CONSOL", "LIQ2"):
            window = range(seg, i)
            prev_hi = max(window, key=lambda k: (Hi[k], -k)) if window else -1
            if stage == "LIQ2" and Hi[i] > Hi[prev_hi] and i - lo_conf >= p.liq2_min_wait:
                q = i
                stage = "ENTRY"
                quality = quality_score(Hi[hi:q], Lo[hi:q], Cl[hi:q], Vol[hi:q], Hi[hi], Lo[lo])
                if p.min_quality > 0 and quality < p.min_quality:
                    return done("INVALIDATED", "LOW_QUALITY", i, liq2_index=q, quality=quality)
                if p.nowick_after_liq2 == 0:
                    nw = next(
                        (
                            j
                            for j in range(q, hi - 1, -1)
                            if Cl[j] > Op[j]
                            and Op[j] - Lo[j] <= p.nowick_max_wick * (Cl[j] - Op[j])
                        ),
                        -1,
                    )
                    if nw < 0:
                        return done(
                            "INVALIDATED", "NO_WICK_NOT_FOUND", i, liq2_index=q, quality=quality
                        )
                i += 1
                continue
            hi = max(range(seg, i + 1), key=lambda k: (Hi[k], -k))
            after = range(hi + 1, i + 1)
            lo = min(after, key=lambda k: (Lo[k], k)) if after else -1
            if lo == i and i > hi and (Hi[hi] - Lo[i]) / abs(Hi[hi]) * 100 > p.range_max_pct:
                seg = i  # the range broke: restart the structure at this candle
                hi, lo = i, -1
            lo_conf = max(hi + p.high_confirm, lo + p.low_confirm) if lo >= 0 else -1
            if stage == "LIQ2" and (hi != prev_hi or lo == i or seg == i):
                stage = "CONSOL"
            if stage == "CONSOL":
                if i - hi + 1 > p.consol_max:
                    return done("INVALIDATED", "CONSOL_TIMEOUT", i)
                r = (Hi[hi] - Lo[lo]) / abs(Hi[hi]) * 100 if lo >= 0 else None
                if (
                    lo >= 0
                    and i >= lo_conf
                    and i - hi + 1 >= p.consol_min
                    and r is not None
                    and p.range_min_pct <= r <= p.range_max_pct
                ):
                    stage, arm = "LIQ2", i
            elif i - arm >= p.liq2_timeout:
                return done("INVALIDATED", "LIQ2_TIMEOUT", i)
            i += 1
            continue
        # WAITING_ENTRY
        if nw < 0:
            if Cl[i] > Op[i] and Op[i] - Lo[i] <= p.nowick_max_wick * (Cl[i] - Op[i]):
                nw = i
            elif i >= q + p.nowick_after_liq2:
                return done("INVALIDATED", "NO_WICK_NOT_FOUND", i, liq2_index=q, quality=quality)
            elif i - q >= p.entry_timeout:
                return done("INVALIDATED", "ENTRY_TIMEOUT", i, liq2_index=q, quality=quality)
            i += 1
            continue
        if Hi[i] > Hi[nw] * (1 + sg * p.retrace_pct / 100):
            return done("INVALIDATED", "RETRACE", i, liq2_index=q, quality=quality)
        if Cl[i] < Lo[nw]:
            spike = max(Hi[q : i + 1])
            body, top = abs(Cl[q] - Op[q]), max(Op[q], Cl[q])
            stop = (
                top + p.spike_buffer
                if body > 0 and Hi[q] - top > p.spike_ratio * body
                else spike + p.sl_buffer
            )
            target = far - p.tp_buffer
            if p.tp_mode == "tp1":
                K = p.swing_k
                for j in range(hi - 1, liq1, -1):
                    if (
                        j - K >= 0
                        and j + K <= i
                        and Lo[j] < Lo[lo]
                        and all(Lo[m] > Lo[j] for m in range(j - K, j + K + 1) if m != j)
                    ):
                        target = Lo[j] - p.tp_buffer
                        break
            risk = stop - Cl[i]
            rr = (Cl[i] - target) / risk if risk > 0 else float("-inf")
            state, reason = ("TRIGGERED", None) if rr > p.min_rr else ("INVALIDATED", "BAD_RR")
            return done(
                state,
                reason,
                i,
                liq2_index=q,
                trigger_index=i,
                entry_index=i + 1,
                entry=sg * Cl[i],
                stop=sg * stop,
                target=sg * target,
                quality=quality,
            )
        if i - q >= p.entry_timeout:
            return done("INVALIDATED", "ENTRY_TIMEOUT", i, liq2_index=q, quality=quality)
        i += 1
