"""Alpaca historical minute bars over REST, for the feed's gap backfill.

httpx's AsyncClient rather than alpaca-py's `StockHistoricalDataClient`: it runs on the event
loop (alpaca-py's client is synchronous `requests` and would need a thread), it handles stocks
and crypto with one code path, and it hands back plain JSON that goes straight into `Candle`s
without a pydantic model per bar.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

import httpx

from slob_tui.core.models import NS_PER_MINUTE, Candle
from slob_tui.feeds.alpaca_frames import format_rfc3339_ns, parse_rfc3339_ns
from slob_tui.feeds.base import FeedError

log = logging.getLogger(__name__)


class BackfillError(Exception):
    """A bars request failed in a way worth retrying later (network, 5xx, 429, bad body)."""


def _is_loopback(url: str) -> bool:
    return (urlsplit(url).hostname or "") in ("127.0.0.1", "localhost", "::1")


class AlpacaBarsClient:
    """Fetches 1-minute bars for a time range, following `next_page_token` to the end."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        api_secret: str,
        feed: str = "iex",
        timeout_s: float = 10.0,
        page_limit: int = 10_000,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.feed = feed
        self.page_limit = page_limit
        self._headers = {"APCA-API-KEY-ID": api_key, "APCA-API-SECRET-KEY": api_secret}
        self._timeout = timeout_s
        self.requests = 0

    @property
    def path(self) -> str:
        return "/v1beta3/crypto/us/bars" if self.feed == "crypto" else "/v2/stocks/bars"

    async def fetch_candles(
        self, symbols: list[str], start_ns: int, end_ns: int
    ) -> dict[str, list[Candle]]:
        """Bars with `start_ns <= start < end_ns` per symbol, oldest first, `backfilled=True`."""
        out: dict[str, list[Candle]] = {s: [] for s in symbols}
        if not symbols or end_ns <= start_ns:
            return out
        params: dict[str, Any] = {
            "symbols": ",".join(symbols),
            "timeframe": "1Min",
            "start": format_rfc3339_ns(start_ns),
            # `end` is inclusive at Alpaca: stop one nanosecond before the current minute
            "end": format_rfc3339_ns(end_ns - 1),
            "limit": self.page_limit,
            "sort": "asc",
        }
        if self.feed in ("iex", "sip"):
            params["feed"] = self.feed
        async with httpx.AsyncClient(
            base_url=self.base_url,
            headers=self._headers,
            timeout=self._timeout,
            trust_env=not _is_loopback(self.base_url),
        ) as client:
            token: str | None = None
            while True:
                if token:
                    params["page_token"] = token
                body = await self._get(client, params)
                bars = body.get("bars") or {}
                if not isinstance(bars, dict):
                    raise BackfillError("bars response has no 'bars' object")
                for sym, rows in bars.items():
                    if sym in out and isinstance(rows, list):
                        out[sym].extend(_candles(sym, rows, start_ns, end_ns))
                token = body.get("next_page_token")
                if not token:
                    break
        for sym in out:
            out[sym].sort(key=lambda c: c.start)
        return out

    async def _get(self, client: httpx.AsyncClient, params: dict[str, Any]) -> dict[str, Any]:
        self.requests += 1
        try:
            resp = await client.get(self.path, params=params)
        except httpx.HTTPError as exc:
            raise BackfillError(f"bars request failed: {type(exc).__name__}") from None
        if resp.status_code in (401, 403):
            raise FeedError(
                f"Alpaca refused the historical bars request ({resp.status_code}): check "
                "ALPACA_API_KEY and ALPACA_API_SECRET (and ALPACA_DATA_URL)"
            )
        if resp.status_code != 200:
            raise BackfillError(f"bars request returned HTTP {resp.status_code}")
        try:
            body = resp.json()
        except ValueError:
            raise BackfillError("bars response is not JSON") from None
        if not isinstance(body, dict):
            raise BackfillError("bars response is not an object")
        return body


def _candles(symbol: str, rows: list[Any], start_ns: int, end_ns: int) -> list[Candle]:
    """REST bar rows -> candles inside [start_ns, end_ns); malformed rows are skipped."""
    out: list[Candle] = []
    for row in rows:
        try:
            t = parse_rfc3339_ns(row["t"])
            candle = Candle(
                symbol=symbol,
                start=t - t % NS_PER_MINUTE,
                open=float(row["o"]),
                high=float(row["h"]),
                low=float(row["l"]),
                close=float(row["c"]),
                volume=float(row["v"]),
                tick_count=int(row.get("n") or 0),
                backfilled=True,
            )
        except (KeyError, TypeError, ValueError):
            log.warning("skipped a malformed bar for %s", symbol)
            continue
        if start_ns <= candle.start < end_ns:
            out.append(candle)
    return out
