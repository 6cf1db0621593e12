"""Data quality: a validator between the feed and the strategy.

Real feeds send bad prints, and a strategy that trades on a 0.1% range must not be moved by one.
`DataQualityValidator.filter_ticks` runs before the aggregator on every tick batch: it drops
ticks that must never reach a candle (bad values, fat fingers, stale or far-future times,
redelivered trade ids) and flags plausible-but-odd ones (price outliers, out-of-order times).
A flagged price outlier passes with the aggregator's SUSPICIOUS marker added to its conditions,
so its size still counts in the volume but it cannot set the candle's open/high/low/close.
`check_candle` (see `quality_candles.py`) checks every closed candle.

Speed: one loop over the batch whose clean branch is a few chained compares on locals; the
reference price is a median of prices sampled every `sample_every` ticks, refreshed every
`refresh_every` samples (a sort of a few dozen floats), never a sort per tick. Findings are
counted per kind; events are built once per batch and kind (`drain_events`).
"""

from __future__ import annotations

import math
import os
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, fields
from operator import itemgetter
from typing import Any

from slob_tui.core.clock import Clock
from slob_tui.core.events import Event, EventType
from slob_tui.core.models import NS_PER_MINUTE, NS_PER_SECOND, Candle
from slob_tui.engine.aggregator import SUSPICIOUS
from slob_tui.engine.quality_candles import CandleChecks, Findings
from slob_tui.errors import SlobError

INF = math.inf
REJECT_KINDS = frozenset(
    {"malformed", "bad_price", "bad_size", "fat_finger", "future_ts", "stale_ts", "duplicate_id"}
)
FLAG_KINDS = frozenset({"price_outlier", "out_of_order"})


class QualitySettingsError(SlobError):
    """A SLOB_DQ_* setting is malformed; the message names it."""


@dataclass(frozen=True)
class QualityPolicy:
    """Thresholds of the validator; each is the `SLOB_DQ_<NAME>` setting (see .env.template).

    A robust deviation is max(1.4826 x MAD, `min_deviation_bps` of the median) of the recent
    sampled prices of the symbol, so a feed that prints one price all day still has a scale.
    """

    suspect_deviations: float = 8.0  # flag (and keep out of OHLC) beyond this many deviations
    reject_deviations: float = 75.0  # drop as a fat finger beyond this many
    min_deviation_bps: float = 2.0  # floor of one deviation, basis points of the median
    price_window: int = 16  # sampled prices the median and MAD are taken over
    sample_every: int = 8  # one price in this many clean ticks enters the window
    refresh_every: int = 8  # new samples between two median refreshes
    min_samples: int = 8  # no outlier check before this many samples
    level_shift_ticks: int = 3  # consecutive same-side outliers that re-anchor the median
    max_future_s: float = 30.0  # ahead of the engine clock (live only) means a bad timestamp
    duplicate_memory: int = 100_000  # trade ids remembered per symbol (two generations)
    recent_ticks: int = 20_000  # accepted ticks kept (all symbols) to apply trade corrections
    volume_spike_factor: float = 10.0  # candle volume above this x the recent median volume
    volume_window: int = 60  # closed candles that median is taken over
    volume_min_candles: int = 20  # no spike check before this many candles
    frozen_minutes: int = 15  # consecutive flat candles at one price while the market is open
    market_hours: str = "09:30-16:00"  # local open-close on weekdays, or "always" (crypto)
    market_tz: str = "America/New_York"
    max_examples: int = 5  # worst examples kept per kind for reports

    def __post_init__(self) -> None:
        checks = {
            "suspect_deviations": self.suspect_deviations > 0,
            "reject_deviations": self.reject_deviations >= self.suspect_deviations,
            "min_deviation_bps": self.min_deviation_bps > 0,
            "price_window": self.price_window >= 3,
            "sample_every": self.sample_every >= 1,
            "refresh_every": self.refresh_every >= 1,
            "min_samples": 1 <= self.min_samples <= self.price_window,
            "level_shift_ticks": self.level_shift_ticks >= 1,
            "max_future_s": self.max_future_s > 0,
            "duplicate_memory": self.duplicate_memory >= 2,
            "recent_ticks": self.recent_ticks >= 0,
            "volume_spike_factor": self.volume_spike_factor > 1,
            "volume_window": self.volume_window >= 3,
            "volume_min_candles": 1 <= self.volume_min_candles <= self.volume_window,
            "frozen_minutes": self.frozen_minutes >= 2,
            "max_examples": self.max_examples >= 0,
        }
        for name, ok in checks.items():
            if not ok:
                raise QualitySettingsError(
                    f"SLOB_DQ_{name.upper()}: {getattr(self, name)!r} is out of range"
                )
        from slob_tui.engine.quality_candles import parse_market_hours

        parse_market_hours(self.market_hours, self.market_tz)

    @classmethod
    def from_settings(cls, settings: Any = None) -> QualityPolicy:
        """Read `SLOB_DQ_*` from `settings.extra` (the .env plus environment) or os.environ."""
        env: Mapping[str, str] = getattr(settings, "extra", None) or (
            settings if isinstance(settings, Mapping) else os.environ
        )
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f"SLOB_DQ_{f.name.upper()}")
            if raw is None or not str(raw).strip():
                continue
            kind = type(getattr(cls, f.name))
            try:
                values[f.name] = kind(str(raw).strip())
            except ValueError as exc:
                raise QualitySettingsError(
                    f"SLOB_DQ_{f.name.upper()} must be {kind.__name__}, got {raw!r}"
                ) from exc
        return cls(**values)


class _Sym:
    """Per-symbol state; the hot loop copies the fields it needs into locals."""

    __slots__ = (
        "symbol", "start", "end", "last", "lo", "hi", "rlo", "rhi", "median", "scale",
        "window", "fresh", "refreshes", "countdown", "seen_new", "seen_old", "shift_side",
        "shift_prices",
    )  # fmt: skip

    def __init__(self, symbol: str, policy: QualityPolicy) -> None:
        self.symbol = symbol
        self.start = self.end = self.last = -(1 << 62)  # no minute yet
        self.lo, self.hi, self.rlo, self.rhi = 0.0, INF, 0.0, INF
        self.median = self.scale = 0.0
        self.window: deque[float] = deque(maxlen=policy.price_window)
        self.fresh = self.refreshes = 0
        self.countdown = policy.sample_every
        self.seen_new: set[Any] = set()
        self.seen_old: set[Any] = set()
        self.shift_side = 0
        self.shift_prices: list[float] = []


class DataQualityValidator:
    """Checks ticks before the aggregator and candles after it; counts findings by kind."""

    def __init__(
        self,
        policy: QualityPolicy | None = None,
        clock: Clock | None = None,
        sale_policy: Any = None,
    ) -> None:
        self.policy = policy or QualityPolicy()
        self.clock = clock  # only a clock that is ahead of the data (live) may judge "future"
        self.findings = Findings(self.policy.max_examples)
        self.candles = CandleChecks(self.policy, self.findings, sale_policy)
        self._syms: dict[Any, _Sym] = {}
        self._batch: dict[tuple[str, Any], list[dict[str, Any]]] = {}
        self._events: list[Event] = []
        self.ticks_in = self.ticks_passed = 0
        self._keep_recent = self.policy.recent_ticks
        self._recent: deque[list[tuple]] = deque()
        self._recent_n = 0

    # ------------------------------------------------------------------ hot path
    def filter_ticks(self, batch: list[tuple]) -> list[tuple]:
        """The ticks that may reach a candle, in order; the batch itself when all are clean."""
        n = len(batch)
        if not n:
            return batch
        self.ticks_in += n
        tmax = INF if self.clock is None else (
            self.clock.now_ns() + int(self.policy.max_future_s * NS_PER_SECOND))  # fmt: skip
        if n <= BLOCK:
            out = self._block(batch, n, tmax)
        else:
            parts = [self._block(batch[i : i + BLOCK], min(BLOCK, n - i), tmax)
                     for i in range(0, n, BLOCK)]  # fmt: skip
            same = sum(map(len, parts)) == n and all(
                p[0] is batch[i * BLOCK] for i, p in enumerate(parts))
            out = batch if same else [t for part in parts for t in part]
        if self._keep_recent and out:
            self._recent.append(out)  # one reference per batch: O(1), no copy
            self._recent_n += len(out)
            while self._recent_n - len(self._recent[0]) >= self._keep_recent:
                self._recent_n -= len(self._recent.popleft())
        return out

    def _recent_ticks(self, symbol: str) -> list[tuple]:
        return [t for b in self._recent for t in b if t[0] == symbol]

    def _block(self, batch: list[tuple], n: int, tmax: float) -> list[tuple]:
        """A clean one-symbol block passes on a few C-level passes over its columns (no
        Python code per tick); any doubt sends it through the tick-by-tick loop."""
        if n >= MIN_COLUMNAR:
            try:
                if self._clean_block(batch, n, tmax):
                    self.ticks_passed += n
                    return batch
            except Exception:  # noqa: BLE001, S110 - odd values: the loop below judges them
                pass
        return self._loop(batch, n, tmax)

    def _clean_block(self, batch: list[tuple], n: int, tmax: float) -> bool:
        sym = batch[0][0]
        st = self._syms.get(sym)
        if st is None or list(map(_G0, batch)).count(sym) != n:
            return False
        ts = list(map(_G1, batch))
        first, last = ts[0], ts[-1]
        if not (st.start <= first and st.last <= first and last <= tmax) or sorted(ts) != ts:
            return False
        prices = list(map(_G2, batch))
        if not (st.lo < min(prices) and max(prices) < st.hi and sum(prices) < INF):
            return False
        sizes = list(map(_G3, batch))
        if not (0.0 < min(sizes) and sum(sizes) < INF):
            return False
        ids = list(map(_G6, batch))
        if ids.count(None) != n:
            exch = list(map(_G4, batch))
            keys = set(ids) if exch.count("") == n else set(zip(exch, ids, strict=True))
            if len(keys) != n or None in ids or not (
                    st.seen_new.isdisjoint(keys) and st.seen_old.isdisjoint(keys)):
                return False
            st.seen_new |= keys
            if len(st.seen_new) >= self.policy.duplicate_memory // 2:
                st.seen_old, st.seen_new = st.seen_new, set()
        st.last = last
        if last >= st.end:
            st.start = last - last % NS_PER_MINUTE
            st.end = st.start + NS_PER_MINUTE
        every = self.policy.sample_every
        st.window.extend(prices[st.countdown - 1 :: every] if st.countdown <= n else ())
        st.countdown = every - (n - st.countdown) % every if st.countdown <= n else (
            st.countdown - n)  # fmt: skip
        st.fresh += n
        if st.fresh >= self.policy.refresh_every * every:
            self._refresh(st)
        return True

    def _loop(self, batch: list[tuple], n: int, tmax: float) -> list[tuple]:
        """Tick by tick: mixed symbols, small batches, and blocks with a finding."""
        syms = self._syms
        every = self.policy.sample_every
        refresh = self.policy.refresh_every * every
        half = self.policy.duplicate_memory // 2
        tcap = tmax + 1  # the clean branch never passes a tick after the future limit
        changed: dict[int, tuple | None] = {}
        csym: Any = _NOTHING
        st: _Sym | None = None
        last = end = 0
        lo = hi = 0.0
        countdown = 0
        win: deque[float] = deque()
        for i, t in enumerate(batch):
            try:
                sym = t[0]
                if sym is not csym and sym != csym:
                    if st is not None:
                        st.last, st.countdown = last, countdown
                    found = syms.get(sym)
                    st = found if found is not None else self._new_symbol(sym)
                    csym = sym
                    last, end, lo, hi = st.last, min(st.end, tcap), st.lo, st.hi
                    countdown, win = st.countdown, st.window
                ts = t[1]
                p = t[2]
                if last <= ts < end and lo < p < hi and 0.0 < t[3] < INF:
                    tid = t[6]
                    if tid is not None:
                        key = (t[4], tid) if t[4] else tid
                        if key in st.seen_new or key in st.seen_old:
                            raise _Slow
                        st.seen_new.add(key)
                        if len(st.seen_new) >= half:
                            st.seen_old, st.seen_new = st.seen_new, set()
                    last = ts
                    countdown -= 1
                    if not countdown:
                        countdown = every
                        win.append(p)
                        st.fresh += every
                        if st.fresh >= refresh:
                            self._refresh(st)
                            lo, hi = st.lo, st.hi
                    continue
                raise _Slow
            except _Slow:
                st.last, st.countdown = last, countdown
                verdict = self._check(st, t, tmax)
                last, end, lo, hi = st.last, min(st.end, tcap), st.lo, st.hi
                countdown = st.countdown
            except Exception as exc:  # noqa: BLE001 - arbitrary input must never stop the feed
                verdict = None
                self._note("malformed", csym if isinstance(csym, str) else "?", 0,
                           {"error": type(exc).__name__, "tick": repr(t)[:120]}, 0.0)  # fmt: skip
            if verdict is not t:
                changed[i] = verdict
        if st is not None:
            st.last, st.countdown = last, countdown
        self._flush_batch()
        out = batch
        if changed:
            out = [t if i not in changed else changed[i] for i, t in enumerate(batch)]
            out = [t for t in out if t is not None]
        self.ticks_passed += len(out)
        return out

    # ------------------------------------------------------------------ slow paths
    def _new_symbol(self, sym: Any) -> _Sym:
        if not isinstance(sym, str) or not sym:
            raise TypeError("symbol must be a non-empty str")
        st = self._syms[sym] = _Sym(sym, self.policy)
        return st

    def _check(self, st: _Sym, t: tuple, tmax: float) -> tuple | None:
        """One tick off the clean branch: the tick, a flagged copy, or None (rejected)."""
        sym, ts, p, z = st.symbol, t[1], t[2], t[3]
        tid = t[6] if len(t) > 6 else None
        if len(t) != 7 or type(ts) is not int:
            self._note("malformed", sym, ts if type(ts) is int else 0, {"tick": repr(t)[:120]})
            return None
        if not _is_num(p) or not (0.0 < p < INF):
            self._note("bad_price", sym, ts, {"price": _jsonable(p)})
            return None
        if not _is_num(z) or not (0.0 < z < INF):
            self._note("bad_size", sym, ts, {"price": p, "size": _jsonable(z)})
            return None
        if ts > tmax:
            self._note("future_ts", sym, ts, {"price": p, "ahead_s": (ts - tmax) / 1e9
                       + self.policy.max_future_s}, (ts - tmax) / NS_PER_SECOND)  # fmt: skip
            return None
        if ts < st.start:
            self._note("stale_ts", sym, ts, {"price": p, "candle_start": st.start},
                       (st.start - ts) / NS_PER_SECOND)  # fmt: skip
            return None
        if ts >= st.end:
            st.start = ts - ts % NS_PER_MINUTE
            st.end = st.start + NS_PER_MINUTE
            st.last = ts
        if tid is not None:
            key = tid if not t[4] else (t[4], tid)
            if key in st.seen_new or key in st.seen_old:
                self._note("duplicate_id", sym, ts, {"price": p, "id": _jsonable(tid)})
                return None
            st.seen_new.add(key)
            if len(st.seen_new) >= self.policy.duplicate_memory // 2:
                st.seen_old, st.seen_new = st.seen_new, set()
        out: tuple | None = t
        if not (st.lo < p < st.hi):
            out = self._outlier(st, t)
            if out is None:
                return None
        elif st.shift_side:
            st.shift_side, st.shift_prices = 0, []
        if ts < st.last:
            self._note("out_of_order", sym, ts, {"price": p, "behind_ms": (st.last - ts) / 1e6},
                       (st.last - ts) / NS_PER_SECOND)  # fmt: skip
        else:
            st.last = ts
        return out

    def _outlier(self, st: _Sym, t: tuple) -> tuple | None:
        """A price outside the suspect band: refresh the reference, then flag, drop or
        re-anchor (a run of same-side outliers is the market moving, not a bad print)."""
        p = t[2]
        self._refresh(st)
        if st.lo < p < st.hi:
            return t
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
            self._refresh(st)
            return t
        info = {"price": p, "median": st.median, "deviations": round(devs, 1),
                "conditions": t[5]}
        if not (st.rlo < p < st.rhi):
            self._note("fat_finger", st.symbol, t[1], info, devs)
            return None
        self._note("price_outlier", st.symbol, t[1], info, devs)
        cond = t[5]
        marked = (SUSPICIOUS,) if not cond else (
            (cond, SUSPICIOUS) if isinstance(cond, str) else (*cond, SUSPICIOUS))  # fmt: skip
        return (t[0], t[1], p, t[3], t[4], marked, t[6])

    def _refresh(self, st: _Sym) -> None:
        """Median of the sampled prices; the MAD only every fourth time (it costs a sort)."""
        st.fresh = 0
        win = st.window
        if len(win) < self.policy.min_samples:
            st.lo, st.hi, st.rlo, st.rhi = 0.0, INF, 0.0, INF
            return
        ordered = sorted(win)
        k = len(ordered)
        med = ordered[k // 2] if k % 2 else (ordered[k // 2 - 1] + ordered[k // 2]) / 2
        if st.refreshes % 4 == 0 or st.scale == 0.0:
            devs = sorted(abs(x - med) for x in ordered)
            mad = devs[k // 2] if k % 2 else (devs[k // 2 - 1] + devs[k // 2]) / 2
            st.scale = 1.4826 * mad
        st.refreshes += 1
        st.median = med
        scale = max(st.scale, med * self.policy.min_deviation_bps * 1e-4)
        s, r = self.policy.suspect_deviations * scale, self.policy.reject_deviations * scale
        st.lo, st.hi = max(med - s, 0.0), med + s
        st.rlo, st.rhi = max(med - r, 0.0), med + r

    def _note(
        self, kind: str, symbol: str, ts: int, values: dict[str, Any], severity: float = 0.0
    ) -> None:
        """Count a tick-level finding; its event is built once per batch and kind."""
        self.findings.add(kind, symbol, ts, values, severity)
        items = self._batch.setdefault((kind, symbol), [])
        if len(items) < 3:
            items.append({"ts": ts, **values})
        else:
            items.append({})  # counted, not detailed

    def _flush_batch(self) -> None:
        if not self._batch:
            return
        for (kind, symbol), items in self._batch.items():
            examples = [x for x in items if x]
            data = {"kind": kind, "symbol": symbol, "count": len(items), **examples[0],
                    "examples": examples,
                    "action": "rejected" if kind in REJECT_KINDS else "flagged"}  # fmt: skip
            self._events.append(Event(EventType.DATA_QUALITY, examples[0]["ts"], data,
                                      "validator"))  # fmt: skip
        self._batch = {}

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
            events.extend(self.candles.settle(candle, self._recent_ticks(candle.symbol)))
        return events

    def apply_correction(
        self,
        symbol: str,
        ts: int,
        trade_id: Any,
        exchange: str = "",
        corrected: tuple[float, float, Any] | None = None,
    ) -> Event | None:
        """A trade cancel (`corrected` None; Alpaca's `x`) or correction ((price, size,
        conditions); Alpaca's `c`) of a trade already passed on. The candle of its minute is
        recomputed from the remembered ticks with the sale-condition policy; the event carries
        the candle before and after. A minute still forming is settled when it closes."""
        st = self._syms.get(symbol)
        return self.candles.correction(
            symbol, ts, trade_id, exchange, corrected, self._recent_ticks(symbol),
            closed=st is None or ts < st.start,
        )

    def stats(self) -> dict[str, Any]:
        """Counts by kind, for the health panel and the metrics exporter."""
        counts = dict(self.findings.counts)
        rejected = sum(v for k, v in counts.items() if k in REJECT_KINDS)
        flagged = sum(v for k, v in counts.items() if k in FLAG_KINDS)
        return {
            "ticks": self.ticks_in,
            "passed": self.ticks_passed,
            "rejected": rejected,
            "flagged": flagged,
            "candles": self.candles.checked,
            "by_kind": counts,
        }

    def examples(self) -> dict[str, list[dict[str, Any]]]:
        """The worst examples kept per kind (largest severity first)."""
        return self.findings.worst()


_NOTHING = object()
_G0, _G1, _G2, _G3, _G4, _G6 = (itemgetter(i) for i in (0, 1, 2, 3, 4, 6))
BLOCK = 1024  # ticks judged against one reference band; larger batches are split
MIN_COLUMNAR = 16  # below this the per-tick loop is cheaper than building columns


class _Slow(Exception):
    """Leaves the clean branch for `_check` (zero cost until raised, Python 3.11)."""


def _is_num(x: Any) -> bool:
    return type(x) is float or (type(x) is int)


def _jsonable(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    return x if isinstance(x, int | float | str) or x is None else repr(x)[:40]


def attach_validator(engine: Any, opts: Any = None, settings: Any = None) -> DataQualityValidator:
    """Put a validator between the engine's feed and its aggregator.

    The engine clock judges "far in the future" only when it runs ahead of the data (live,
    demo); a clock driven by the data itself (replay) cannot.
    """
    validator = DataQualityValidator(
        QualityPolicy.from_settings(settings if settings is not None else engine.settings),
        clock=None if engine.data_driven_clock else engine.clock,
        sale_policy=engine.aggregator.policy,
    )
    engine.validator = validator
    engine.add_health_source("data_quality", validator.stats)
    return validator
