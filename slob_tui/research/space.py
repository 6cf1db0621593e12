"""The search space: which `SlobParams` fields are searched, within which bounds.

Bounds are a table here because the defaults alone cannot say how far a knob may sensibly
move; each default of `SlobParams` lies inside its bounds (a test checks it). Buffers are in
price units, so their bounds are multiples of the instrument profile's value, not constants.
A TOML file can list the only knobs to search, replace a range, restrict the target modes,
or fix a parameter.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from slob_tui.errors import UsageError
from slob_tui.strategy.params import TP_MODES, SlobParams


@dataclass(frozen=True, slots=True)
class IntRange:
    """Whole numbers from `low` to `high`, both included."""

    low: int
    high: int


@dataclass(frozen=True, slots=True)
class FloatRange:
    """Real numbers from `low` to `high`."""

    low: float
    high: float


@dataclass(frozen=True, slots=True)
class Choice:
    """One of a few named values (the target mode)."""

    options: tuple[str, ...]


Dimension = IntRange | FloatRange | Choice

# Absolute bounds of the searched integer and fraction knobs (docs/STRATEGY.md's meanings).
_INT_BOUNDS: dict[str, tuple[int, int]] = {
    "high_confirm": (1, 10),
    "low_confirm": (1, 10),
    "consol_min": (5, 60),
    "consol_max": (60, 240),
    "liq2_min_wait": (0, 15),
    "liq2_timeout": (5, 60),
    "nowick_after_liq2": (0, 5),
    "entry_timeout": (5, 60),
    "swing_k": (1, 5),
}
_FLOAT_BOUNDS: dict[str, tuple[float, float]] = {
    "range_min_pct": (0.0, 0.3),
    "range_max_pct": (0.3, 1.0),
    "nowick_max_wick": (0.05, 0.5),
    "retrace_pct": (0.1, 0.8),
    "spike_ratio": (1.0, 4.0),
    "min_rr": (0.0, 3.0),
}
# Buffers: from zero to this many times the profile's value for the instrument.
_BUFFER_SCALE: dict[str, float] = {"spike_buffer": 3.0, "sl_buffer": 3.0, "tp_buffer": 3.0}

SEARCHED = (*_INT_BOUNDS, *_FLOAT_BOUNDS, *_BUFFER_SCALE, "tp_mode")
_FIELD_NAMES = frozenset(f.name for f in fields(SlobParams))


@dataclass(frozen=True, slots=True)
class SearchSpace:
    """The searched dimensions and the fixed base parameters every trial starts from."""

    base: SlobParams
    dimensions: dict[str, Dimension]

    def params_for(self, values: dict[str, Any]) -> SlobParams:
        """The base with one trial's values applied; invalid combinations raise UsageError."""
        return replace(self.base, **values)

    def describe(self) -> dict[str, Any]:
        """A plain description (for the study's fingerprint and docs)."""
        dims: dict[str, Any] = {}
        for name, dim in sorted(self.dimensions.items()):
            if isinstance(dim, Choice):
                dims[name] = list(dim.options)
            else:
                dims[name] = [type(dim).__name__, dim.low, dim.high]
        return {"base": self.base.to_dict(), "dimensions": dims}

    def fixed_overrides(self) -> dict[str, Any]:
        """Base values that differ from the plain defaults (printed with the best params)."""
        defaults = SlobParams().to_dict()
        return {
            k: v
            for k, v in self.base.to_dict().items()
            if v != defaults[k] and k not in self.dimensions
        }


def default_space(base: SlobParams) -> SearchSpace:
    """Every searched knob with its table bounds; buffers scaled to `base` (the profile)."""
    dims: dict[str, Dimension] = {}
    for name, (lo, hi) in _INT_BOUNDS.items():
        dims[name] = IntRange(lo, hi)
    for name, (flo, fhi) in _FLOAT_BOUNDS.items():
        dims[name] = FloatRange(flo, fhi)
    for name, scale in _BUFFER_SCALE.items():
        dims[name] = FloatRange(0.0, round(float(getattr(base, name)) * scale, 8))
    dims["tp_mode"] = Choice(TP_MODES)
    return SearchSpace(base, dims)


def narrow(space: SearchSpace, overrides: dict[str, Any], origin: str) -> SearchSpace:
    """Apply a narrowing table: `[low, high]` replaces a range, a list of names restricts a
    choice, a single value fixes the parameter (searched or not)."""
    dims = dict(space.dimensions)
    fixed: dict[str, Any] = {}
    for name, value in overrides.items():
        if name not in _FIELD_NAMES:
            raise UsageError(f"{origin}: unknown parameter {name!r}")
        current = dims.get(name)
        if isinstance(value, list):
            if current is None:
                raise UsageError(f"{origin}: {name} is not searched; give one value to fix it")
            dims[name] = _dimension(name, current, value, origin)
        else:
            dims.pop(name, None)
            fixed[name] = value
    _check_fixed_types(fixed, origin)
    base = replace(space.base, **fixed)
    return SearchSpace(base, dims)


def _check_fixed_types(fixed: dict[str, Any], origin: str) -> None:
    defaults = SlobParams()
    for name, value in fixed.items():
        kind = type(getattr(defaults, name))
        ok = isinstance(value, kind) or (kind is float and isinstance(value, int))
        if not ok or (kind is int and isinstance(value, bool)):
            raise UsageError(f"{origin}: {name} expects {kind.__name__}, got {value!r}")


def _dimension(name: str, current: Dimension, value: list[Any], origin: str) -> Dimension:
    if isinstance(current, Choice):
        options = tuple(str(v) for v in value)
        unknown = [o for o in options if o not in current.options]
        if unknown:
            raise UsageError(
                f"{origin}: {name} has no option {unknown[0]!r} "
                f"(options: {', '.join(current.options)})"
            )
        if not options:
            raise UsageError(f"{origin}: {name}: empty list of options")
        return Choice(tuple(dict.fromkeys(options)))
    if len(value) != 2 or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value
    ):
        raise UsageError(f"{origin}: {name} expects [low, high], got {value!r}")
    low, high = value
    if low > high:
        raise UsageError(f"{origin}: {name}: empty range [{low}, {high}] (low > high)")
    if isinstance(current, IntRange):
        if not (isinstance(low, int) and isinstance(high, int)):
            raise UsageError(f"{origin}: {name} is an integer, got [{low}, {high}]")
        return IntRange(low, high)
    return FloatRange(float(low), float(high))


def load_space_file(space: SearchSpace, path: str) -> SearchSpace:
    """Narrow `space` with a TOML file whose `[params]` table maps names to ranges or values."""
    try:
        doc = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML: {exc}") from None
    extra = sorted(set(doc) - {"params", "search"})
    if extra:
        raise UsageError(f"{path}: unknown key {extra[0]!r} (expected search = [...], [params])")
    if "search" in doc:
        space = only(space, doc["search"], path)
    table = doc.get("params", {})
    if not isinstance(table, dict):
        raise UsageError(f"{path}: [params] must be a table")
    return narrow(space, table, path)


def only(space: SearchSpace, names: Any, origin: str) -> SearchSpace:
    """Search just `names`; every other knob stays at its base value."""
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise UsageError(f"{origin}: search must be a list of parameter names")
    for name in names:
        if name not in _FIELD_NAMES:
            raise UsageError(f"{origin}: unknown parameter {name!r}")
        if name not in space.dimensions:
            raise UsageError(
                f"{origin}: {name} is not searchable (searchable: "
                f"{', '.join(sorted(space.dimensions))})"
            )
    if not names:
        raise UsageError(f"{origin}: search lists no parameter")
    return SearchSpace(space.base, {n: space.dimensions[n] for n in names})
