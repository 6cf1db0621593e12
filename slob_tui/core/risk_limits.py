"""Sizing and pre-trade risk limits: the `SLOB_<FIELD>` settings (e.g. SLOB_MAX_DAILY_LOSS=500).

In core rather than beside the checks (`execution/risk.py`) so that `slob_tui.config` can read
them from the environment without importing execution. A limit of 0 means "no limit".
"""

from __future__ import annotations

from dataclasses import dataclass

from slob_tui.errors import ConfigError

SIZING_MODES = ("fixed_qty", "fixed_risk")


@dataclass(frozen=True, slots=True)
class RiskLimits:
    sizing: str = "fixed_qty"
    qty: float = 1.0  # fixed_qty: the quantity per trade
    risk_per_trade: float = 0.0  # fixed_risk: money lost at the stop
    point_value: float = 1.0  # money per 1.0 of price per unit (NQ futures: 20)
    max_qty: float = 0.0
    max_open_positions: int = 0
    max_trades_per_day: int = 0
    max_daily_loss: float = 0.0
    whole_units: bool = True

    def __post_init__(self) -> None:
        if self.sizing not in SIZING_MODES:
            raise ConfigError(f"SLOB_SIZING must be one of {', '.join(SIZING_MODES)}")
        if self.sizing == "fixed_qty" and self.qty <= 0:
            raise ConfigError("SLOB_QTY must be > 0")
        if self.sizing == "fixed_risk" and self.risk_per_trade <= 0:
            raise ConfigError("SLOB_RISK_PER_TRADE must be > 0 with SLOB_SIZING=fixed_risk")
        if self.point_value <= 0:
            raise ConfigError("SLOB_POINT_VALUE must be > 0")
        for name in ("max_qty", "max_open_positions", "max_trades_per_day", "max_daily_loss"):
            if getattr(self, name) < 0:
                raise ConfigError(f"SLOB_{name.upper()} must be >= 0")
