"""A pure backtest: the live tracker over a candle list, plus conservative paper fills.

Feed it the candles the engine would see: the `backtest` command passes a file through the
engine's aggregator first, so gap-filled minutes are the same as in a replay.

Fills: entry at the open of the candle after the trigger; stop and target by touch from the
entry candle on; both touched inside one candle counts as the stop; a candle that opens beyond
the stop exits at that open (worse than the stop); trades still open when the data ends are
marked `open`. An entry whose fill is at or beyond the stop, or at or beyond the target, is
`cancelled` (reward/risk recomputed at the fill is not positive).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from slob_tui.core.events import Event, EventType
from slob_tui.core.models import Candle, SetupUpdate
from slob_tui.strategy.params import DEFAULTS, SlobParams
from slob_tui.strategy.tracker import SetupTracker


def run_tracker(
    candles: list[Candle], symbol: str, params: SlobParams | None = None
) -> list[Event]:
    """Every event the tracker emits over `candles`, in order (what a replay must equal)."""
    tracker = SetupTracker(symbol, params)
    on_candle = tracker.on_candle
    events: list[Event] = []
    extend = events.extend
    for c in candles:
        extend(on_candle(c))
    return events


def strictly_increasing(candles: list[Candle]) -> list[Candle]:
    """Drop candles not newer than their predecessor, as the tracker does, so that the
    tracker's candle indexes are list indexes."""
    out: list[Candle] = []
    last = None
    for c in candles:
        if last is None or c.start > last:
            out.append(c)
            last = c.start
    return out


@dataclass(slots=True)
class SetupRecord:
    """One candidate from start to end, and its paper trade if it triggered."""

    id: str
    symbol: str
    direction: str
    state: str  # the latest state: TRIGGERED, INVALIDATED, or a live WATCHING_*/WAITING_*
    reason: str | None
    start_index: int
    start_time: int
    end_index: int
    liq1_index: int = -1
    liq1_time: int | None = None
    liq2_index: int = -1
    liq2_time: int | None = None
    trigger_index: int = -1
    trigger_time: int | None = None
    entry_index: int = -1
    entry_time: int | None = None
    planned_entry: float | None = None
    entry: float | None = None
    stop: float | None = None
    target: float | None = None
    rr: float | None = None
    quality: float | None = None
    outcome: str | None = None  # win | loss | open | cancelled | no_fill (None: no trigger)
    exit_time: int | None = None
    exit: float | None = None
    r_multiple: float | None = None
    points: float | None = None


def summarize(events: list[Event]) -> list[SetupRecord]:
    """Fold the tracker's events into one record per setup id, in start order."""
    recs: dict[str, SetupRecord] = {}
    for ev in events:
        u = ev.payload(SetupUpdate)
        lv = u.levels
        rec = recs.get(u.setup_id)
        if rec is None:
            rec = recs[u.setup_id] = SetupRecord(
                u.setup_id,
                u.symbol,
                u.direction.value,
                u.state.value,
                None,
                u.index,
                u.time,
                u.index,
            )
        rec.end_index = u.index
        rec.state = u.state.value
        rec.liq1_index = lv.get("liq1_index", rec.liq1_index)
        rec.liq1_time = lv.get("liq1_time", rec.liq1_time)
        rec.liq2_index = lv.get("liq2_index", rec.liq2_index)
        rec.liq2_time = lv.get("liq2_time", rec.liq2_time)
        if "quality" in lv:
            rec.quality = lv["quality"]
        if ev.type in (EventType.SETUP_TRIGGERED, EventType.SETUP_INVALIDATED):
            rec.reason = u.reason
            if "trigger_index" in lv:
                rec.trigger_index = lv["trigger_index"]
                rec.trigger_time = lv["trigger_time"]
                rec.entry_index = lv["entry_index"]
                rec.planned_entry = rec.entry = lv["entry"]
                rec.stop, rec.target, rec.rr = lv["stop"], lv["target"], lv["rr"]
    return list(recs.values())


def simulate(rec: SetupRecord, candles: list[Candle]) -> None:
    """Paper-fill one triggered setup in place (see the module docstring for the rules)."""
    e = rec.entry_index
    if e >= len(candles):
        rec.outcome = "no_fill"
        return
    short = rec.direction == "SHORT"
    stop, target = rec.stop, rec.target
    assert stop is not None and target is not None
    fill = candles[e].open
    rec.entry, rec.entry_time = fill, candles[e].start
    if (fill >= stop or fill <= target) if short else (fill <= stop or fill >= target):
        rec.outcome = "cancelled"
        return
    risk = stop - fill if short else fill - stop
    for c in candles[e:]:
        if short:
            hit_stop, hit_target = c.high >= stop, c.low <= target
        else:
            hit_stop, hit_target = c.low <= stop, c.high >= target
        if hit_stop:
            beyond = (c.open > stop) if short else (c.open < stop)
            exit_px = c.open if beyond else stop
            rec.outcome = "loss"
        elif hit_target:
            exit_px = target
            rec.outcome = "win"
        else:
            continue
        rec.exit, rec.exit_time = exit_px, c.start
        rec.points = (fill - exit_px) if short else (exit_px - fill)
        rec.r_multiple = round(rec.points / risk, 6)
        return
    rec.outcome = "open"


@dataclass
class BacktestResult:
    params: dict[str, Any]
    setups: list[SetupRecord]
    stats: dict[str, Any]
    events: list[Event] = field(repr=False)
    equity: list[tuple[int, float]]  # (exit time ns, cumulative R) per closed trade

    def setups_json(self) -> list[dict[str, Any]]:
        return [asdict(s) for s in self.setups]


def compute_stats(
    setups: list[SetupRecord], candles_count: int
) -> tuple[dict[str, Any], list[tuple[int, float]]]:
    """Counts by state, reason and outcome; win rate, R, points, max drawdown, equity curve."""
    by_state: dict[str, int] = {}
    by_reason: dict[str, int] = {}
    by_dir_outcome: dict[str, dict[str, int]] = {}
    for s in setups:
        by_state[s.state] = by_state.get(s.state, 0) + 1
        if s.reason:
            by_reason[s.reason] = by_reason.get(s.reason, 0) + 1
        key = s.outcome or s.reason or s.state
        d = by_dir_outcome.setdefault(s.direction, {})
        d[key] = d.get(key, 0) + 1
    closed = sorted(
        (s for s in setups if s.outcome in ("win", "loss")), key=lambda s: (s.exit_time, s.id)
    )
    equity: list[tuple[int, float]] = []
    cum = peak = max_dd = 0.0
    for s in closed:
        cum += s.r_multiple or 0.0
        peak = max(peak, cum)
        max_dd = max(max_dd, peak - cum)
        equity.append((s.exit_time or 0, round(cum, 6)))
    wins = sum(1 for s in closed if s.outcome == "win")
    rs = [s.r_multiple or 0.0 for s in closed]
    stats = {
        "candles": candles_count,
        "setups": len(setups),
        "by_state": by_state,
        "by_reason": by_reason,
        "by_direction": by_dir_outcome,
        "trades": sum(1 for s in setups if s.outcome in ("win", "loss", "open")),
        "wins": wins,
        "losses": len(closed) - wins,
        "open": sum(1 for s in setups if s.outcome == "open"),
        "cancelled": sum(1 for s in setups if s.outcome == "cancelled"),
        "win_rate": round(wins / len(closed), 6) if closed else None,
        "avg_r": round(sum(rs) / len(rs), 6) if rs else None,
        "total_r": round(sum(rs), 6),
        "points": round(sum(s.points or 0.0 for s in closed), 6),
        "max_drawdown_r": round(max_dd, 6),
    }
    return stats, equity


def backtest(
    candles: list[Candle], symbol: str, params: SlobParams | None = None
) -> BacktestResult:
    """Tracker plus paper fills over `candles` (sorted by time, one symbol)."""
    p = params or DEFAULTS
    candles = strictly_increasing(candles)
    events = run_tracker(candles, symbol, p)
    setups = summarize(events)
    for rec in setups:
        if rec.state == "TRIGGERED":
            simulate(rec, candles)
    stats, equity = compute_stats(setups, len(candles))
    return BacktestResult(p.to_dict(), setups, stats, events, equity)


def run_backtest(
    candles: list[Candle], symbol: str = "NQ", params: SlobParams | None = None
) -> BacktestResult:
    """The name the benchmark suite calls; the same as `backtest`."""
    return backtest(candles, symbol, params)
