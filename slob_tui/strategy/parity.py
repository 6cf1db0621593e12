"""Proof of no look-ahead on a candle series: prefix invariance and reference parity.

Prefix invariance over every candle `t` is checked through state snapshots: a tracker rebuilt
from the uninterrupted run's state after `t-1` is fed candle `t` and must emit exactly what the
uninterrupted tracker emits there, all stamped with index `t`. Since a run over `candles[:t+1]`
performs the same calls as the first `t+1` calls of the full run, this (with the restore being
exact) is the invariance at every `t` in O(n). A stride of snapshots also goes through JSON,
and a stride of literal prefix runs is compared directly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from slob_tui.core.models import Candle, SetupUpdate
from slob_tui.strategy.backtest import SetupRecord, strictly_increasing, summarize
from slob_tui.strategy.params import DEFAULTS, SlobParams
from slob_tui.strategy.reference import RefSetup, reference_setups
from slob_tui.strategy.tracker import SetupTracker


@dataclass
class ParityReport:
    candles: int
    tracker: list[SetupRecord]
    reference: list[RefSetup]
    prefix_checked: int = 0
    json_checked: int = 0
    literal_prefixes: int = 0
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations


def check_prefix_invariance(
    candles: list[Candle],
    symbol: str,
    params: SlobParams,
    json_every: int = 97,
    literal_every: int = 0,
    report: ParityReport | None = None,
) -> ParityReport:
    """Every candle: restore-at-(t-1)-then-feed-t equals the uninterrupted run."""
    rep = report or ParityReport(len(candles), [], [])
    full = SetupTracker(symbol, params)
    all_events = []
    for t, c in enumerate(candles):
        snap = full.state_dict()
        if json_every and t % json_every == 0:
            snap = json.loads(json.dumps(snap, allow_nan=False))
            rep.json_checked += 1
        restored = SetupTracker.from_state(snap, params)
        got = restored.on_candle(c)
        want = full.on_candle(c)
        all_events.extend(want)
        rep.prefix_checked += 1
        if [e.data for e in got] != [e.data for e in want]:
            rep.violations.append(
                f"candle {t}: restored tracker emitted {len(got)} events, "
                f"uninterrupted {len(want)} (or they differ)"
            )
        bad = [
            e
            for e in want
            if (u := e.payload(SetupUpdate)).index != t or e.ts != c.start or u.time != c.start
        ]
        if bad:
            rep.violations.append(f"candle {t}: {len(bad)} events stamped with another candle")
        if json_every and t % json_every == 0 and restored.state_dict() != full.state_dict():
            rep.violations.append(f"candle {t}: state after restore differs")
        if len(rep.violations) > 20:
            break
    if literal_every:
        for t in range(0, len(candles), literal_every):
            prefix = SetupTracker(symbol, params)
            got_all = []
            for c in candles[: t + 1]:
                got_all.extend(prefix.on_candle(c))
            want_all = [e for e in all_events if e.payload(SetupUpdate).index <= t]
            rep.literal_prefixes += 1
            if [e.data for e in got_all] != [e.data for e in want_all]:
                rep.violations.append(f"prefix 0..{t}: events differ from the full run")
    return rep


def compare_with_reference(tracker: list[SetupRecord], reference: list[RefSetup]) -> list[str]:
    """Same setups; tracker indices never earlier than the reference's; entry = trigger + 1."""
    out: list[str] = []
    ref_by_key = {(r.direction, r.start_index): r for r in reference}
    trk_by_key = {(s.direction, s.start_index): s for s in tracker}
    for key in sorted(set(ref_by_key) - set(trk_by_key)):
        out.append(f"reference setup {key[0]} starting at candle {key[1]} missing in tracker")
    for key in sorted(set(trk_by_key) - set(ref_by_key)):
        out.append(f"tracker setup {key[0]} starting at candle {key[1]} missing in reference")
    for key in sorted(set(ref_by_key) & set(trk_by_key)):
        r, s = ref_by_key[key], trk_by_key[key]
        where = f"{key[0]} setup starting at candle {key[1]}"
        state = s.state if s.state in ("TRIGGERED", "INVALIDATED") else "LIVE"
        if (state, s.reason) != (r.state, r.reason):
            out.append(f"{where}: tracker {state}/{s.reason}, reference {r.state}/{r.reason}")
        for name, a, b in (
            ("LIQ #1", s.liq1_index, r.liq1_index),
            ("LIQ #2", s.liq2_index, r.liq2_index),
            ("trigger", s.trigger_index, r.trigger_index),
        ):
            if a < b:
                out.append(f"{where}: tracker {name} at {a} is earlier than the reference's {b}")
        if s.trigger_index >= 0 and s.entry_index != s.trigger_index + 1:
            out.append(f"{where}: entry at {s.entry_index}, not trigger + 1")
        if r.trigger_index >= 0 and r.entry_index != r.trigger_index + 1:
            out.append(f"{where}: reference entry at {r.entry_index}, not trigger + 1")
        if s.state == "TRIGGERED" and (s.stop, s.target) != (r.stop, r.target):
            out.append(f"{where}: stop/target {s.stop}/{s.target} vs {r.stop}/{r.target}")
    return out


def check_parity(
    candles: list[Candle],
    symbol: str,
    params: SlobParams | None = None,
    json_every: int = 97,
    literal_every: int = 0,
) -> ParityReport:
    """Tracker vs reference and prefix invariance over one series; see `ParityReport.ok`."""
    p = params or DEFAULTS
    candles = strictly_increasing(candles)
    rep = ParityReport(len(candles), [], [])
    check_prefix_invariance(candles, symbol, p, json_every, literal_every, rep)
    tracker = SetupTracker(symbol, p)
    events = []
    for c in candles:
        events.extend(tracker.on_candle(c))
    rep.tracker = summarize(events)
    rep.reference = reference_setups(candles, p)
    rep.violations.extend(compare_with_reference(rep.tracker, rep.reference))
    return rep
