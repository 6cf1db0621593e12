"""Which minutes a (re)connected Alpaca feed missed, and the REST bars that fill them.

Kept apart from the stream client: it only needs the sink's last closed minute, the clock and
a bars client, so its rules (where a cold start begins, what counts as missed) read alone.

Two kinds of minute are missed. Whole minutes between the last candle and the reconnect are
backfilled at once (`missed_candles`). The two *edge* minutes of a gap, the one forming when
the feed dropped (the minute of the newest tick received, or of the last stored candle after
a restart) and the one forming when it came back (the clock's minute at the subscription),
got only part of their trades over the stream; `GapEdges` keeps them until the sink has
closed them and their REST bar exists, and `edge_bars` fetches those bars so the sink can
compare and replace what it aggregated.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
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


EdgeSide = Literal["dropped", "returned"]


@dataclass(frozen=True, slots=True)
class EdgeMinute:
    """A minute on the edge of a feed gap: only part of its trades came over the stream.
    `side` is "dropped" (forming when the feed dropped) or "returned" (when it came back)."""

    symbol: str
    start: int
    side: EdgeSide


class GapEdges:
    """The edge minutes of every gap not yet compared with their REST bar."""

    def __init__(self) -> None:
        self.pending: list[EdgeMinute] = []

    def add(
        self, symbols: Iterable[str], last_fed: Mapping[str, int], now: int
    ) -> list[EdgeMinute]:
        """Note one time without the stream: per symbol the minute it was last fed in (if
        any) and the minute `now`. Returns the edges added (one waiting already is not)."""
        returned = now - now % NS_PER_MINUTE
        waiting = {(e.symbol, e.start) for e in self.pending}
        added: list[EdgeMinute] = []
        for sym in symbols:
            sides: list[tuple[int, EdgeSide]] = [(returned, "returned")]
            if sym in last_fed:
                fed = last_fed[sym]
                sides.insert(0, (fed - fed % NS_PER_MINUTE, "dropped"))
            for start, side in sides:
                if (sym, start) not in waiting:
                    waiting.add((sym, start))
                    added.append(EdgeMinute(sym, start, side))
        self.pending.extend(added)
        return added

    def due(self, sink: FeedSink, now: int, settle_ns: int) -> list[EdgeMinute]:
        """Edges the sink has closed (comparing a forming candle would be premature) whose
        REST bar exists by `now`: the minute ended at least `settle_ns` ago."""
        out: list[EdgeMinute] = []
        for edge in self.pending:
            last = sink.last_candle_start(edge.symbol)
            if last is not None and last >= edge.start:
                if now >= edge.start + NS_PER_MINUTE + settle_ns:
                    out.append(edge)
        return out

    def done(self, edges: Iterable[EdgeMinute]) -> None:
        finished = set(edges)
        self.pending = [e for e in self.pending if e not in finished]


async def edge_bars(
    client: AlpacaBarsClient, edges: Sequence[EdgeMinute]
) -> dict[EdgeMinute, Candle]:
    """The REST bar of each edge minute that has one: one request per distinct minute (the
    two edges of a long gap may be hours apart, and nothing between them is wanted)."""
    out: dict[EdgeMinute, Candle] = {}
    for start in sorted({e.start for e in edges}):
        at = [e for e in edges if e.start == start]
        symbols = sorted({e.symbol for e in at})
        by_symbol = await client.fetch_candles(symbols, start, start + NS_PER_MINUTE)
        for edge in at:
            for candle in by_symbol.get(edge.symbol, ()):
                if candle.start == start:
                    out[edge] = candle
    return out
