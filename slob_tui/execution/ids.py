"""Client order ids derived from the setup, so a restart that re-derives a setup reuses them.

Alpaca allows at most 48 characters and rejects a repeated id with 422 "must be unique"; that
rejection is how a second submission after a crash is recognised as "already placed".
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime

from slob_tui.core.models import SetupUpdate

MAX_LEN = 48
LEGS = {"entry": "E", "target": "T", "stop": "S", "close": "X"}
_SAFE = re.compile(r"[^A-Za-z0-9]")
_MAX_SYMBOL = 14


def _symbol_part(symbol: str) -> str:
    clean = _SAFE.sub("", symbol).upper() or "X"
    if len(clean) <= _MAX_SYMBOL and clean == symbol.upper():
        return clean
    # Cleaning or truncating could make two symbols collide (BTC/USD vs BTCUSD): add a hash.
    digest = hashlib.sha1(symbol.encode()).hexdigest()[:6]
    return f"{clean[: _MAX_SYMBOL - 7]}{digest}"


def client_order_id(symbol: str, direction: str, liq2_time_ns: int, leg: str = "entry") -> str:
    """`slob-<SYMBOL>-<L|S>-<LIQ#2 minute UTC>-<leg>`; the same inputs always give the same id."""
    if leg not in LEGS:
        raise ValueError(f"unknown leg {leg!r}: one of {', '.join(LEGS)}")
    d = direction.upper()[:1]
    if d not in ("L", "S"):
        raise ValueError(f"direction must be LONG or SHORT, got {direction!r}")
    t = datetime.fromtimestamp(liq2_time_ns // 1_000_000_000, UTC).strftime("%Y%m%d%H%M%S")
    out = f"slob-{_symbol_part(symbol)}-{d}-{t}-{LEGS[leg]}"
    return out


def kill_client_order_id(symbol: str, ts_ns: int) -> str:
    """The flatten order of a kill switch at engine time `ts_ns` (one per symbol and second)."""
    t = datetime.fromtimestamp(ts_ns // 1_000_000_000, UTC).strftime("%Y%m%d%H%M%S")
    return f"slob-{_symbol_part(symbol)}-K-{t}-{LEGS['close']}"


def setup_client_order_id(update: SetupUpdate, leg: str = "entry") -> str:
    """The id of one leg of a triggered setup: keyed by LIQ #2's time (the setup's start if the
    tracker gave none)."""
    liq2 = update.levels.get("liq2_time")
    t = int(liq2) if liq2 is not None else _start_from_setup_id(update)
    return client_order_id(update.symbol, update.direction.value, t, leg)


def _start_from_setup_id(update: SetupUpdate) -> int:
    stamp = update.setup_id.rsplit("-", 1)[-1]
    try:
        dt = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return update.time
    return int(dt.timestamp()) * 1_000_000_000
