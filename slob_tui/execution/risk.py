"""Sizing and pre-trade risk limits: every order passes here before it reaches a broker.

Limits are checked against persisted state (trades today, realised loss, open positions), not
process memory, so a restart cannot reset them. A limit of 0 means "no limit".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from slob_tui.core.risk_limits import RiskLimits

__all__ = ["RiskBlocked", "RiskContext", "RiskLimits", "check", "size"]


class RiskBlocked(Exception):
    """An order was refused by a limit; the message says which and why."""


@dataclass(frozen=True, slots=True)
class RiskContext:
    """What the limits are checked against, read from the state store and the engine."""

    open_positions: int = 0
    trades_today: int = 0
    realized_pnl_today: float = 0.0
    kill_switch: bool = False
    safe_mode: bool = False
    halted: str = ""


def size(entry: float, stop: float, limits: RiskLimits) -> float:
    """The quantity for one trade: fixed, or what loses `risk_per_trade` at the stop."""
    if limits.sizing == "fixed_qty":
        return limits.qty
    per_unit = abs(entry - stop) * limits.point_value
    if per_unit <= 0 or not math.isfinite(per_unit):
        raise RiskBlocked(f"no risk distance between entry {entry:g} and stop {stop:g}")
    qty = limits.risk_per_trade / per_unit
    if limits.whole_units:
        qty = math.floor(qty)
    if qty <= 0:
        raise RiskBlocked(
            f"risk per trade {limits.risk_per_trade:g} buys less than one unit at "
            f"{per_unit:g} per unit"
        )
    return qty


def check(qty: float, ctx: RiskContext, limits: RiskLimits) -> None:
    """Raise RiskBlocked naming the first limit an order of `qty` would break."""
    if ctx.kill_switch:
        raise RiskBlocked("kill switch is on: no new orders until it is reset")
    if ctx.halted:
        raise RiskBlocked(f"trading halted: {ctx.halted}")
    if ctx.safe_mode:
        raise RiskBlocked("feed in SAFE MODE: no new orders on doubtful data")
    if limits.max_qty and qty > limits.max_qty:
        raise RiskBlocked(f"quantity {qty:g} above max_qty {limits.max_qty:g}")
    if limits.max_open_positions and ctx.open_positions >= limits.max_open_positions:
        raise RiskBlocked(
            f"{ctx.open_positions} open positions: max_open_positions is "
            f"{limits.max_open_positions}"
        )
    if limits.max_trades_per_day and ctx.trades_today >= limits.max_trades_per_day:
        raise RiskBlocked(
            f"{ctx.trades_today} trades today: max_trades_per_day is {limits.max_trades_per_day}"
        )
    if limits.max_daily_loss and -ctx.realized_pnl_today >= limits.max_daily_loss:
        raise RiskBlocked(
            f"daily loss {-ctx.realized_pnl_today:g} reached max_daily_loss "
            f"{limits.max_daily_loss:g}"
        )
