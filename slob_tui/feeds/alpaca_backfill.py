"""Which minutes a (re)connected Alpaca feed missed, and the REST bars that fill them.

Kept apart from the stream client: it only needs the sink's last closed minute, the clock and
a bars client, so its rules (where a cold start begins, what counts as missed) read alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from slob_tui.core.models import NS_PER_MINUTE, NS_PER_SECOND, Candle
from slob_tui.feeds.alpaca_rest import AlpacaBarsClient
from slob_tui.feeds.base import FeedSink

_ET = ZoneInfo("America/New_York")
CRYPTO_COLD_START_MINUTES = 120


def us_session_open_ns(ns: int) -> int:
    """09:30 ET on the day of `ns`, as ns UTC: where a stock feed's cold start backfills from."""
    t = datetime.fromtimestamp(ns / NS_PER_SECOND, _ET)
    return int(t.replace(hour=9, minute=30, second=0, microsecond=0).timestamp()) * NS_PER_SECOND


def cold_start_ns(feed: str, now: int, lookback_s: float | None = None) -> int:
    """Where the history starts when the sink has none: a lookback if configured, else the
    session open for stocks and two hours back for crypto (it never closes)."""
    if lookback_s is not None:
        return now - int(lookback_s * NS_PER_SECOND)
    if feed in ("iex", "sip"):
        return us_session_open_ns(now)
    return now - CRYPTO_COLD_START_MINUTES * NS_PER_MINUTE


async def missed_candles(
    client: AlpacaBarsClient,
    sink: FeedSink,
    symbols: Sequence[str],
    now: int,
    cold_start: int,
) -> dict[str, list[Candle]]:
    """Closed minutes after each symbol's last candle and before the current minute, as
    backfilled candles (a symbol with nothing missed is left out)."""
    end = now - now % NS_PER_MINUTE
    starts: dict[str, int] = {}
    for sym in symbols:
        last = sink.last_candle_start(sym)
        starts[sym] = last + NS_PER_MINUTE if last is not None else cold_start
    if not starts or min(starts.values()) >= end:
        return {}
    by_symbol = await client.fetch_candles(list(symbols), min(starts.values()), end)
    out: dict[str, list[Candle]] = {}
    for sym, candles in by_symbol.items():
        fresh = [c for c in candles if c.start >= starts[sym]]
        if fresh:
            out[sym] = fresh
    return out
