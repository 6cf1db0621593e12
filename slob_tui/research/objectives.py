"""What a search maximizes, in R (risk units), from a backtest's closed trades.

A setting that trades fewer times than the minimum is *unusable*: its score is None, never 0,
so the search cannot prefer "never trade" over a small loss, nor mistake three lucky trades
for an edge.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from slob_tui.errors import UsageError


@dataclass(frozen=True, slots=True)
class Objective:
    """A named score of a list of trade results in R."""

    name: str
    summary: str
    score: Callable[[Sequence[float]], float | None]


def total_r(rs: Sequence[float]) -> float | None:
    return round(math.fsum(rs), 9)


def expectancy(rs: Sequence[float]) -> float | None:
    return round(math.fsum(rs) / len(rs), 9) if rs else None


def sqn(rs: Sequence[float]) -> float | None:
    """System quality number: mean R over its standard deviation, times sqrt(trades).

    Undefined for fewer than two trades or for trades that all return the same R.
    """
    n = len(rs)
    if n < 2:
        return None
    mean = math.fsum(rs) / n
    var = math.fsum((r - mean) ** 2 for r in rs) / (n - 1)
    if var <= 0:
        return None
    return round(mean / math.sqrt(var) * math.sqrt(n), 9)


OBJECTIVES: dict[str, Objective] = {
    o.name: o
    for o in (
        Objective("total_r", "total R of closed trades", total_r),
        Objective("expectancy", "mean R per closed trade", expectancy),
        Objective("sqn", "risk-adjusted R: mean / stdev * sqrt(trades)", sqn),
    )
}


def objective_named(name: str) -> Objective:
    try:
        return OBJECTIVES[name]
    except KeyError:
        raise UsageError(
            f"unknown objective {name!r} (choose from {', '.join(OBJECTIVES)})"
        ) from None


@dataclass(frozen=True, slots=True)
class Score:
    """One backtest judged by an objective: `value` None means unusable (see `reason`)."""

    value: float | None
    trades: int
    reason: str = ""


def judge(objective: Objective, rs: Sequence[float], min_trades: int) -> Score:
    """The objective's value, or unusable when too few trades or the value is undefined."""
    if len(rs) < min_trades:
        return Score(None, len(rs), f"{len(rs)} trades < minimum {min_trades}")
    value = objective.score(rs)
    if value is None:
        return Score(None, len(rs), f"{objective.name} undefined for these trades")
    return Score(value, len(rs))
