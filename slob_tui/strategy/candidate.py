"""One direction's state for one day: LIQ #1 and its current candidate, in SHORT space.

Kept apart from the tracker so that what is persisted (`state`/`load`) sits next to the fields.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from slob_tui.core.models import Direction, SetupUpdate
from slob_tui.strategy.consolidation import INF, IncrementalConsolidationDetector
from slob_tui.strategy.params import SlobParams

IDLE, CONSOL, LIQ2, ENTRY = 0, 1, 2, 3


def setup_id_for(symbol: str, direction: Direction, start_ns: int) -> str:
    """Deterministic: the same candidate re-derived after a restart gets the same id."""
    t = datetime.fromtimestamp(start_ns // 1_000_000_000, UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{symbol}-{direction.value}-{t}"


def encode_inf(x: float) -> float | None:
    """Infinity as None, so that states stay strict JSON."""
    return None if x in (INF, -INF) else x


def decode_inf(x: float | None, default: float) -> float:
    return default if x is None else float(x)


class Side:
    """One direction's day: LIQ #1 and its current candidate, all in SHORT space."""

    __slots__ = (
        "direction",
        "sign",
        "det",
        "liq1_idx",
        "liq1_time",
        "liq1_price",
        "stage",
        "pending",
        "setup_id",
        "start_idx",
        "arm_idx",
        "liq2_idx",
        "liq2_time",
        "liq2_price",
        "liq2_o",
        "liq2_c",
        "quality",
        "nw_idx",
        "nw_high",
        "nw_low",
        "nw_deadline",
        "spike",
        "retrace_thr",
        "last",
    )

    def __init__(self, direction: Direction, p: SlobParams) -> None:
        self.direction = direction
        self.sign = 1 if direction is Direction.SHORT else -1
        self.det = IncrementalConsolidationDetector(
            p.high_confirm, p.low_confirm, p.range_min_pct, p.range_max_pct
        )
        self.new_day()

    def new_day(self) -> None:
        self.liq1_idx = -1
        self.liq1_time = 0
        self.liq1_price = 0.0
        self.pending = False
        self.last: SetupUpdate | None = None
        self.reset_candidate()

    def reset_candidate(self) -> None:
        self.stage = IDLE
        self.setup_id = ""
        self.start_idx = -1
        self.arm_idx = -1
        self.liq2_idx = -1
        self.liq2_time = 0
        self.liq2_price = self.liq2_o = self.liq2_c = 0.0
        self.quality = -1.0
        self.nw_idx = -1
        self.nw_high = self.nw_low = 0.0
        self.nw_deadline = -1
        self.spike = -INF
        self.retrace_thr = INF
        self.det.clear()

    _SCALARS = (
        "liq1_idx",
        "liq1_time",
        "liq1_price",
        "stage",
        "pending",
        "setup_id",
        "start_idx",
        "arm_idx",
        "liq2_idx",
        "liq2_time",
        "liq2_price",
        "liq2_o",
        "liq2_c",
        "quality",
        "nw_idx",
        "nw_high",
        "nw_low",
        "nw_deadline",
    )

    def state(self) -> dict[str, Any]:
        d = {name: getattr(self, name) for name in self._SCALARS}
        d["spike"] = encode_inf(self.spike)
        d["retrace_thr"] = encode_inf(self.retrace_thr)
        d["det"] = [encode_inf(v) if isinstance(v, float) else v for v in self.det.state()]
        d["last"] = self.last.to_dict() if self.last else None
        return d

    def load(self, d: dict[str, Any]) -> None:
        for name in self._SCALARS:
            setattr(self, name, d[name])
        self.spike = decode_inf(d["spike"], -INF)
        self.retrace_thr = decode_inf(d["retrace_thr"], INF)
        s = list(d["det"])
        s[0] = decode_inf(s[0], -INF)
        s[3] = decode_inf(s[3], INF)
        self.det.load(s)
        self.last = SetupUpdate.from_dict(d["last"]) if d["last"] else None
