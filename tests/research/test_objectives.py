"""Objectives in R; too few trades is unusable (None), never a score of zero."""

from __future__ import annotations

import math

import pytest

from slob_tui.errors import UsageError
from slob_tui.research.objectives import OBJECTIVES, judge, objective_named


def test_values() -> None:
    rs = [2.0, -1.0, -1.0, 3.0]
    assert judge(objective_named("total_r"), rs, 1).value == 3.0
    assert judge(objective_named("expectancy"), rs, 1).value == 0.75
    std = math.sqrt(sum((r - 0.75) ** 2 for r in rs) / 3)
    assert judge(objective_named("sqn"), rs, 1).value == pytest.approx(0.75 / std * 2)


def test_too_few_trades_is_unusable_not_zero() -> None:
    for obj in OBJECTIVES.values():
        score = judge(obj, [1.0, 1.0], 3)
        assert score.value is None and score.trades == 2 and "minimum 3" in score.reason
    # zero is a real score: break-even trades are usable
    assert judge(objective_named("total_r"), [1.0, -1.0, 0.0], 3).value == 0.0
    assert judge(objective_named("sqn"), [1.0, 1.0, 1.0], 3).value is None  # no spread


def test_unknown_objective() -> None:
    with pytest.raises(UsageError, match="unknown objective 'sharpe'"):
        objective_named("sharpe")
