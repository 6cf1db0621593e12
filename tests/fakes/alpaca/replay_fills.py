"""Fills that follow the candles an engine replays: the local Alpaca as a deterministic venue.

A real venue fills an order at the market price of the moment it arrives. An engine replaying
a file at full speed runs far ahead of any wall clock, and its orders leave off the candle path,
so "the moment it arrives" would depend on the machine's load. With `ReplayFills` attached
(`TradingEngine.replay`), the fake instead fills every order against the replay's own minute
bars (the candles the engine makes and stores: the file's minutes, and flat candles for minutes
without a trade) at the engine time the order was decided. Alpaca's order API carries no
client time, so the caller supplies `order_time` (client order id -> ns UTC); the crash tests
read it from the engine's own order journal, where an order is written before it is sent.

The fill rules are the paper broker's (`slob_tui/brokers/paper.py`), so both venues agree:
- a market order fills at the open of the first bar that starts after its time;
- a stop fills when a bar at or after its time touches it, at the stop or at a worse open
  (a gap through it); a limit fills on touch at the limit or at a better open; a triggered
  stop-limit rests as a limit;
- bracket exits start when the entry fills and are checked on that same bar, the stop before
  the target (the pessimistic reading of one bar); one exit cancels the other.
An order is settled when it arrives: its trade updates then go out in time order, each stamped
with the start of the bar it happened on. An order whose time is unknown rests unfilled.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple


class Bar(NamedTuple):
    start: int  # ns UTC
    open: float
    high: float
    low: float
    close: float


class ReplayFills:
    """The bars per symbol and the engine time of each order (see the module doc)."""

    def __init__(self, bars: dict[str, list[Bar]], order_time: Callable[[str], int | None]) -> None:
        self.bars = {s: sorted(b) for s, b in bars.items()}
        self._starts = {s: [b.start for b in bars] for s, bars in self.bars.items()}
        self.order_time = order_time

    def bars_from(self, symbol: str, start_ns: int) -> Iterator[Bar]:
        """The bars of `symbol` that start at or after `start_ns`, in time order."""
        bars = self.bars.get(symbol, [])
        yield from bars[bisect.bisect_left(self._starts.get(symbol, []), start_ns) :]

    def price_at(self, symbol: str, ns: int) -> float | None:
        """The close of the last bar starting at or before `ns` (the market's price then)."""
        i = bisect.bisect_right(self._starts.get(symbol, []), ns)
        return self.bars[symbol][i - 1].close if i else None


def fill_price(o: dict[str, Any], bar: Bar, decided_ns: int) -> float | None:
    """The price at which the fake's order dict `o` fills on `bar`, or None (paper rules)."""
    buy = o["side"] == "buy"
    otype = o["type"]
    if otype == "market":
        return bar.open if decided_ns < bar.start else None
    if decided_ns > bar.start:
        return None
    limit = float(o["limit_price"]) if o["limit_price"] else None
    if otype in ("stop", "stop_limit") and not o.get("_triggered"):
        stop = float(o["stop_price"])
        if not (bar.high >= stop if buy else bar.low <= stop):
            return None
        px = max(bar.open, stop) if buy else min(bar.open, stop)
        if otype == "stop":
            return px
        o["_triggered"] = True  # from here on it rests as a limit order
        assert limit is not None
        if px <= limit if buy else px >= limit:
            return px
    if limit is None:
        return None
    if buy:
        return min(bar.open, limit) if bar.low <= limit else None
    return max(bar.open, limit) if bar.high >= limit else None
