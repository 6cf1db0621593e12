"""Every parameter of the SLOB specification (docs/STRATEGY.md), with its default.

The names are the spec's names, so a `--param name=value` on the command line, a row of the
spec's tables and a field here are the same thing.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields, replace
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slob_tui.errors import UsageError

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
TP_MODES = ("tp1", "tp2")


@dataclass(frozen=True, slots=True)
class SlobParams:
    """The strategy's knobs. Prices (buffers) are in the instrument's price units."""

    # sessions
    session_tz: str = "Europe/Stockholm"
    ref_window: str = "09:00-15:30"
    trade_window: str = "15:30-22:00"
    close_time: str = "22:00"
    anchor_to_exchange: bool = False
    # consolidation
    high_confirm: int = 5
    low_confirm: int = 3
    range_min_pct: float = 0.10
    range_max_pct: float = 0.50
    consol_min: int = 15
    consol_max: int = 120
    # LIQ #2
    liq2_min_wait: int = 5
    liq2_timeout: int = 20
    # no-wick candle and entry
    nowick_max_wick: float = 0.20
    nowick_after_liq2: int = 0
    retrace_pct: float = 0.40
    entry_timeout: int = 20
    # stop and target
    spike_ratio: float = 2.0
    spike_buffer: float = 2.0
    sl_buffer: float = 1.0
    tp_buffer: float = 1.0
    tp_mode: str = "tp1"
    swing_k: int = 2
    min_rr: float = 0.0
    # data quality and gating
    gap_pct: float = 0.04
    gap_check: bool = True
    min_quality: float = 0.0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Reject values the tracker cannot work with, naming the parameter."""
        try:
            ZoneInfo(self.session_tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise UsageError(f"session_tz: unknown time zone {self.session_tz!r}") from exc
        for name in ("ref_window", "trade_window"):
            start, end = parse_window(name, getattr(self, name))
            if end <= start:
                raise UsageError(f"{name}: end must be after start, got {getattr(self, name)!r}")
        parse_hhmm("close_time", self.close_time)
        for name in ("liq2_min_wait", "swing_k"):
            if getattr(self, name) < 0:
                raise UsageError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in (
            "high_confirm",
            "low_confirm",
            "consol_min",
            "consol_max",
            "liq2_timeout",
            "entry_timeout",
        ):
            if getattr(self, name) < 1:
                raise UsageError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.nowick_after_liq2 < 0:
            raise UsageError(f"nowick_after_liq2 must be >= 0, got {self.nowick_after_liq2}")
        if not 0 <= self.range_min_pct <= self.range_max_pct:
            raise UsageError("range_min_pct must be >= 0 and <= range_max_pct")
        if self.consol_min > self.consol_max:
            raise UsageError("consol_min must be <= consol_max")
        for name in ("nowick_max_wick", "retrace_pct", "spike_ratio", "gap_pct"):
            if getattr(self, name) < 0:
                raise UsageError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("spike_buffer", "sl_buffer", "tp_buffer"):
            if getattr(self, name) < 0:
                raise UsageError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.tp_mode not in TP_MODES:
            raise UsageError(f"tp_mode must be one of {', '.join(TP_MODES)}, got {self.tp_mode!r}")
        if not 0.0 <= self.min_quality <= 1.0:
            raise UsageError(f"min_quality must be in [0, 1], got {self.min_quality}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def with_overrides(self, overrides: dict[str, str]) -> SlobParams:
        """A copy with `name=value` strings applied (the `--param` flag)."""
        return replace(self, **_coerce_all(overrides))

    @classmethod
    def from_overrides(cls, overrides: dict[str, str]) -> SlobParams:
        """Defaults with `name=value` strings applied; unknown names and bad values raise."""
        return cls(**_coerce_all(overrides))


_FIELDS = {f.name: f for f in fields(SlobParams)}


def _coerce(name: str, raw: str) -> Any:
    f = _FIELDS.get(name)
    if f is None:
        raise UsageError(f"unknown parameter {name!r} (known: {', '.join(sorted(_FIELDS))})")
    kind = type(getattr(DEFAULTS, name))
    text = raw.strip()
    try:
        if kind is bool:
            low = text.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if kind is int:
            return int(text)
        if kind is float:
            value = float(text)
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError(text)
            return value
    except ValueError:
        raise UsageError(f"parameter {name}: expected {kind.__name__}, got {raw!r}") from None
    return text


def _coerce_all(overrides: dict[str, str]) -> dict[str, Any]:
    return {name: _coerce(name, raw) for name, raw in overrides.items()}


def parse_param_args(items: list[str] | None) -> dict[str, str]:
    """`["a=1", "b=2"]` from repeated `--param` flags into a dict, with one-line errors."""
    out: dict[str, str] = {}
    for item in items or ():
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--param expects name=value, got {item!r}")
        out[name.strip()] = value
    return out


def parse_hhmm(name: str, text: str) -> tuple[int, int]:
    m = _HHMM.match(text.strip())
    if not m:
        raise UsageError(f"{name}: expected HH:MM, got {text!r}")
    return int(m.group(1)), int(m.group(2))


def parse_window(name: str, text: str) -> tuple[tuple[int, int], tuple[int, int]]:
    start, sep, end = text.partition("-")
    if not sep:
        raise UsageError(f"{name}: expected HH:MM-HH:MM, got {text!r}")
    return parse_hhmm(name, start), parse_hhmm(name, end)


DEFAULTS = SlobParams()

# Instrument profiles. NQ's point buffers (1, 2, 1) are about 0.004%, 0.008%, 0.004% of its
# price; ETFs and crypto get the same fractions of their own price.
_POINT_SYMBOLS = {"NQ", "MNQ", "ES", "MES"}
_FRACTION_SL = 0.004 / 100
_FRACTION_SPIKE = 0.008 / 100
_FRACTION_TP = 0.004 / 100


def profile_for(
    symbol: str, price: float | None = None, base: SlobParams | None = None
) -> SlobParams:
    """Parameters scaled for `symbol`: NQ-like futures in points, others as a price fraction.

    `price` is a typical price of the instrument (for example the first close of the data); it
    is needed for symbols that are not point-based futures.
    """
    params = base or DEFAULTS
    root = symbol.upper().split("/")[0].rstrip("0123456789")
    if root in _POINT_SYMBOLS or symbol.upper() in _POINT_SYMBOLS:
        return params
    if price is None or not price > 0:
        raise UsageError(f"profile for {symbol!r} needs a positive typical price")
    return replace(
        params,
        sl_buffer=round(price * _FRACTION_SL, 8),
        spike_buffer=round(price * _FRACTION_SPIKE, 8),
        tp_buffer=round(price * _FRACTION_TP, 8),
    )
