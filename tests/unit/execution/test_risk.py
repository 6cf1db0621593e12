from __future__ import annotations

import pytest

from slob_tui.config import ConfigError, load_settings
from slob_tui.execution.risk import RiskBlocked, RiskContext, RiskLimits, check, size


def test_fixed_qty_ignores_the_stop_distance() -> None:
    assert size(100, 90, RiskLimits(qty=3)) == 3
    assert size(100, 99.5, RiskLimits(qty=3)) == 3


def test_fixed_risk_loses_the_budget_at_the_stop() -> None:
    lim = RiskLimits(sizing="fixed_risk", risk_per_trade=500, point_value=20)
    assert size(16000, 16010, lim) == 2  # 10 pts * 20 = 200 per contract -> 2.5 -> 2
    frac = RiskLimits(sizing="fixed_risk", risk_per_trade=100, whole_units=False)
    assert size(50, 48, frac) == pytest.approx(50)
    with pytest.raises(RiskBlocked, match="less than one unit"):
        size(16000, 16100, lim)
    with pytest.raises(RiskBlocked, match="no risk distance"):
        size(100, 100, lim)


@pytest.mark.parametrize(
    ("limits", "ctx", "qty", "needle"),
    [
        (RiskLimits(max_qty=2), RiskContext(), 3, "max_qty"),
        (RiskLimits(max_open_positions=1), RiskContext(open_positions=1), 1, "max_open_positions"),
        (RiskLimits(max_trades_per_day=2), RiskContext(trades_today=2), 1, "max_trades_per_day"),
        (RiskLimits(max_daily_loss=100), RiskContext(realized_pnl_today=-100), 1, "max_daily_loss"),
        (RiskLimits(), RiskContext(kill_switch=True), 1, "kill switch"),
        (RiskLimits(), RiskContext(safe_mode=True), 1, "SAFE MODE"),
        (RiskLimits(), RiskContext(halted="broker position"), 1, "halted"),
    ],
)
def test_each_limit_blocks_at_its_edge(limits, ctx, qty, needle) -> None:
    with pytest.raises(RiskBlocked, match=needle):
        check(qty, ctx, limits)


def test_just_inside_every_limit_passes() -> None:
    lim = RiskLimits(max_qty=2, max_open_positions=2, max_trades_per_day=3, max_daily_loss=100)
    check(2, RiskContext(open_positions=1, trades_today=2, realized_pnl_today=-99.99), lim)
    check(1, RiskContext(realized_pnl_today=5000), lim)  # profit never blocks


def limits(env: dict[str, str]) -> RiskLimits:
    return load_settings(env, dotenv=None).risk


def test_limits_from_settings_and_bad_values_name_the_key() -> None:
    lim = limits(
        {
            "SLOB_SIZING": "Fixed_Risk",
            "SLOB_RISK_PER_TRADE": "250",
            "SLOB_MAX_TRADES_PER_DAY": "4",
            "SLOB_MAX_DAILY_LOSS": "600",
        }
    )
    assert (lim.sizing, lim.risk_per_trade, lim.max_trades_per_day, lim.max_daily_loss) == (
        "fixed_risk",
        250.0,
        4,
        600.0,
    )
    with pytest.raises(ConfigError, match="SLOB_MAX_QTY"):
        limits({"SLOB_MAX_QTY": "lots"})
    with pytest.raises(ConfigError, match="SLOB_RISK_PER_TRADE"):
        limits({"SLOB_SIZING": "fixed_risk"})
    with pytest.raises(ConfigError, match="SLOB_SIZING"):
        limits({"SLOB_SIZING": "martingale"})


def test_env_template_documents_every_limit_with_its_default() -> None:
    from dataclasses import fields
    from pathlib import Path

    from dotenv import dotenv_values

    template = Path(__file__).resolve().parents[3] / ".env.template"
    env = {k: v or "" for k, v in dotenv_values(template).items()}
    assert {f"SLOB_{f.name.upper()}" for f in fields(RiskLimits)} <= set(env)
    assert limits(env) == RiskLimits()
    assert (env["SLOB_BROKER"], env["SLOB_PAPER_BALANCE"]) == ("paper", "100000")
