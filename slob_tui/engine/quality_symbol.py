"""The data-quality validator's state of one symbol: its price reference and its trade ids.

Kept apart from `quality.py` (the hot loop and the rules) so that each stays readable. The
reference is the median of samples taken from the minute's journal only when it is refreshed,
so the clean branch of the hot loop neither counts nor samples.
"""

from __future__ import annotations

import math
from collections import deque
from itertools import repeat
from operator import sub
from typing import Any

from slob_tui.core.models import NS_PER_MINUTE
from slob_tui.core.quality_policy import QualityPolicy

INF = math.inf
SHUT = (INF, -INF)  # a band nothing is inside: sends every tick of the symbol to `_check`
INT_SIZES = (0, (1 << 30) - 1)  # compact ints: CPython's specialised int compare
FLOAT_SIZES = (0.0, INF)


class SymbolState:
    """Per-symbol state; the hot loop copies the fields it needs into locals."""

    __slots__ = (
        "symbol", "start", "end", "last", "lo", "hi", "rlo", "rhi", "median", "scale",
        "window", "sampled", "refreshes", "journal", "flagged", "index", "indexed", "rts",
        "rid", "more", "shift_side", "shift_prices", "sizes",
    )  # fmt: skip

    def __init__(self, symbol: str, policy: QualityPolicy) -> None:
        self.symbol = symbol
        self.start = self.end = self.last = -(1 << 62)  # no minute yet
        self.lo, self.hi, self.rlo, self.rhi = 0.0, INF, 0.0, INF
        self.median = self.scale = 0.0
        self.window: deque[float] = deque(maxlen=policy.price_window)
        self.refreshes = 0
        # `journal`: the ticks accepted inside the band in the current minute, `flagged` the
        # accepted outliers with an id. Every `sample_every`-th journal entry is a sample, taken
        # only when the reference is refreshed (`sampled`: the journal index of the next one).
        # Trade ids: a tick older than the current minute is stale before it could be a
        # duplicate; `index` holds the minute's (time, exchange, id) keys, built only when a
        # tick behind the newest needs it; `rid` and `more` the ids at the newest id'd time
        # `rts` (its first id, then a list of the others, if any), which is all the clean
        # branch has to compare.
        # A row a chunk of columns passed on its clean branch is journaled as its price alone
        # (`filter_columns`: such a row has no id, so `seen` has nothing to take from it).
        self.journal: list[tuple[Any, ...] | float] = []
        self.flagged: list[tuple[Any, ...]] = []
        self.sampled = policy.sample_every - 1
        self.index: set[Any] = set()
        self.indexed = 0
        self.rts = -(1 << 62)
        self.rid: Any = None
        self.more: list[Any] | None = None
        self.shift_side = 0
        self.shift_prices: list[float] = []
        # The clean branch's size bounds, typed like the last size `_check` passed: integer
        # sizes (shares) compare fastest against small int bounds, float sizes (crypto)
        # against float ones; a size outside them only takes `_check`, which decides.
        self.sizes = FLOAT_SIZES

    def band(self) -> tuple[float, float]:
        """The clean branch's band: shut while a level shift is pending, so that the next
        tick (in band or not) goes through `_check`, which decides whether the run goes on,
        and while there are too few samples for a reference (`_check` takes them as they
        come, so outlier checks start after `min_samples` x `sample_every` ticks)."""
        return SHUT if self.shift_side or self.hi == INF else (self.lo, self.hi)

    def new_minute(self, ts: int, policy: QualityPolicy) -> None:
        """The reference is refreshed with the ending minute's samples; its ids are let go."""
        self.refresh(policy)
        self.sampled -= len(self.journal)
        self.start = ts - ts % NS_PER_MINUTE
        self.end = self.start + NS_PER_MINUTE
        self.last = ts
        self.journal, self.flagged, self.index, self.indexed = [], [], set(), 0

    def take_samples(self, policy: QualityPolicy) -> None:
        """Every `sample_every`-th journal entry not taken yet into the window (only the last
        `price_window` of them matter: the window keeps no more)."""
        journal, k, every = self.journal, self.sampled, policy.sample_every
        n = len(journal)
        if k >= n:
            return
        count = (n - 1 - k) // every + 1
        first = k + every * max(0, count - policy.price_window)
        self.window.extend([u if isinstance(u, float) else u[2] for u in journal[first:n:every]])
        self.sampled = k + every * count

    def refresh(self, policy: QualityPolicy) -> None:
        """Median of the sampled prices; the MAD only every fourth time (it costs a sort)."""
        self.take_samples(policy)
        win = self.window
        if len(win) < policy.min_samples:
            self.lo, self.hi, self.rlo, self.rhi = 0.0, INF, 0.0, INF
            return
        ordered = sorted(win)
        k = len(ordered)
        med = ordered[k // 2] if k % 2 else (ordered[k // 2 - 1] + ordered[k // 2]) / 2
        if self.refreshes % 4 == 0 or self.scale == 0.0:
            devs = sorted(map(abs, map(sub, ordered, repeat(med, k))))
            mad = devs[k // 2] if k % 2 else (devs[k // 2 - 1] + devs[k // 2]) / 2
            self.scale = 1.4826 * mad
        self.refreshes += 1
        self.median = med
        scale = max(self.scale, med * policy.min_deviation_bps * 1e-4)
        s, r = policy.suspect_deviations * scale, policy.reject_deviations * scale
        self.lo, self.hi = max(med - s, 0.0), med + s
        self.rlo, self.rhi = max(med - r, 0.0), med + r

    def note_id(self, ts: int, tid: Any) -> None:
        """An accepted id at time `ts`: joins the ids at the newest id'd time, or starts them
        when `ts` is newer (the clean branch of `filter_ticks` keeps the same three fields)."""
        if ts == self.rts:
            if self.more is None:
                self.more = [tid]
            else:
                self.more.append(tid)
        elif ts >= self.last:
            self.rts, self.rid, self.more = ts, tid, None

    def seen(self, t: tuple[Any, ...]) -> bool:
        """Whether this trade (time, exchange, id) was accepted before in the current minute.

        The index catches up with the journal only here, for a tick that is not newer than the
        symbol's newest: a feed in time order never pays for it.
        """
        ts, x, tid = t[1], t[4], t[6]
        try:
            key = (ts, x, tid)
            hash(key)
        except TypeError:  # an unhashable id: compared, never indexed
            accepted = [u for u in (*self.journal, *self.flagged) if type(u) is tuple]
            return any(u[6] == tid and u[1] == ts and u[4] == x for u in accepted)
        index, journal = self.index, self.journal
        for u in (*journal[self.indexed :], *self.flagged):
            if type(u) is tuple and u[6] is not None:
                try:
                    index.add((u[1], u[4], u[6]))
                except TypeError:
                    pass
        self.indexed = len(journal)
        return key in index
