"""Alpaca history into daily Parquet files: what `slob-tui download` does.

Requests go through alpaca-py's historical data clients (their auth, base URL and session), one
page at a time, so that each page is retried on its own under `core/retry.py` (429, 5xx and
network errors; alpaca-py's own fixed 3 s retry is switched off) and written before the next is
asked for. Layout: `OUT/SYMBOL/trades/YYYY-MM-DD.parquet` (or `bars/`), one file per market
day (New York days for stocks, UTC days for crypto), which `replay` and `backtest` read as a
folder.

Resumable with no duplicate rows: a day's pages go to `.YYYY-MM-DD.parts/` (page k as
`k.parquet`, then `state.json` with the token of page k + 1, each written under a temporary
name and renamed). After an interruption the day resumes at the page after the last one the
state names; a page written but not yet named there is fetched again with the same token and
overwrites itself. A finished day becomes one file (renamed into place) and is never fetched
again; finished days without a row are listed in `.empty-days`.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypedDict
from zoneinfo import ZoneInfo

from slob_tui.core.retry import RetryPolicy
from slob_tui.errors import SlobError

NEW_YORK = ZoneInfo("America/New_York")
PAGE_LIMIT = 10_000
DOWNLOAD_RETRY = RetryPolicy(base_s=1.0, cap_s=60.0, attempts=10)
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class DownloadError(SlobError):
    """Alpaca refused a request for good (bad keys, bad symbol) or kept failing."""


@dataclass(frozen=True)
class DownloadRequest:
    """What to fetch: symbols, an inclusive range of days, trades or 1-minute bars."""

    symbols: tuple[str, ...]
    start: date
    end: date
    kind: str  # "trades" | "bars"
    out: Path
    feed: str = "sip"  # stocks: sip or iex

    def days(self) -> Iterator[date]:
        day = self.start
        while day <= self.end:
            yield day
            day += timedelta(days=1)


@dataclass
class DownloadTally:
    """What one run did, for the summary line and the progress bar."""

    rows: int = 0
    pages: int = 0
    days_written: int = 0
    days_skipped: int = 0
    days_empty: int = 0
    retries: int = 0
    files: list[Path] = field(default_factory=list)


def is_crypto(symbol: str) -> bool:
    return "/" in symbol


def day_bounds(symbol: str, day: date) -> tuple[datetime, datetime]:
    """[start, end] of a market day in UTC: New York midnight to midnight for stocks (their
    whole extended session), UTC for crypto. `end` is inclusive at Alpaca: 1 us before."""
    zone = UTC if is_crypto(symbol) else NEW_YORK
    start = datetime(day.year, day.month, day.day, tzinfo=zone)
    end = start + timedelta(days=1) - timedelta(microseconds=1)
    return start.astimezone(UTC), end.astimezone(UTC)


def parse_time_ns(text: str) -> int:
    """Alpaca's RFC 3339 time (Z, up to nine fractional digits) -> int ns UTC."""
    main, _, frac = text.rstrip("Zz").partition(".")
    whole = datetime.fromisoformat(main).replace(tzinfo=UTC)
    return int(whole.timestamp()) * 1_000_000_000 + int((frac or "0")[:9].ljust(9, "0"))


class PageSource:
    """One page of Alpaca history through alpaca-py's clients (stocks or crypto)."""

    def __init__(
        self, api_key: str, api_secret: str, data_url: str | None = None,
        page_limit: int = PAGE_LIMIT,
    ) -> None:  # fmt: skip
        from alpaca.data.historical.crypto import CryptoHistoricalDataClient
        from alpaca.data.historical.stock import StockHistoricalDataClient

        self.page_limit = page_limit
        self.stocks = StockHistoricalDataClient(api_key, api_secret, url_override=data_url)
        self.crypto = CryptoHistoricalDataClient(api_key, api_secret, url_override=data_url)
        for client in (self.stocks, self.crypto):
            client._retry = 0  # every retry goes through core/retry.py (see the docstring)

    def page(
        self, kind: str, symbol: str, start: datetime, end: datetime, feed: str,
        token: str | None,
    ) -> tuple[list[dict[str, Any]], str | None]:  # fmt: skip
        """The rows of one page, oldest first, and the token of the next page (None: done)."""
        from alpaca.common.exceptions import APIError
        from alpaca.data.requests import (
            CryptoBarsRequest,
            CryptoTradesRequest,
            StockBarsRequest,
            StockTradesRequest,
        )
        from alpaca.data.timeframe import TimeFrame

        crypto = is_crypto(symbol)
        common: dict[str, Any] = {"symbol_or_symbols": [symbol], "start": start, "end": end}
        extra: dict[str, Any] = {} if crypto else {"feed": feed}
        if kind == "bars":
            request: Any = (CryptoBarsRequest if crypto else StockBarsRequest)(
                timeframe=TimeFrame.Minute, **common, **extra
            )
        else:
            request = (CryptoTradesRequest if crypto else StockTradesRequest)(**common, **extra)
        params = request.to_request_fields()
        params["limit"] = self.page_limit
        params["page_token"] = token
        if "timeframe" in params:
            params["timeframe"] = "1Min"
        if "feed" in params:
            params["feed"] = feed
        client = self.crypto if crypto else self.stocks
        path = f"/crypto/us/{kind}" if crypto else f"/stocks/{kind}"
        try:
            body = client.get(path=path, data=params)
        except APIError as exc:
            raise PageFailed(exc.status_code, str(exc)) from exc
        page = body or {}
        assert isinstance(page, dict), "a data page is a JSON object"
        rows = page.get(kind) or {}
        return list(rows.get(symbol) or []), page.get("next_page_token")


class PageFailed(Exception):
    """One page request failed with an HTTP status (None: no answer at all)."""

    def __init__(self, status: int | None, text: str) -> None:
        super().__init__(text)
        self.status = status


def trade_table(symbol: str, rows: list[dict[str, Any]]) -> Any:
    """Alpaca trade rows -> a pyarrow table in the columns the file readers know."""
    import pyarrow as pa

    crypto = is_crypto(symbol)
    return pa.table(
        {
            "timestamp": pa.array([parse_time_ns(r["t"]) for r in rows], pa.int64()).cast(
                pa.timestamp("ns", tz="UTC")
            ),
            "symbol": pa.array([symbol] * len(rows), pa.string()),
            "price": pa.array([float(r["p"]) for r in rows], pa.float64()),
            "size": pa.array([r["s"] for r in rows], pa.float64() if crypto else pa.int64()),
            "exchange": pa.array([r.get("x") or "" for r in rows], pa.string()),
            "conditions": pa.array([" ".join(r.get("c") or ()) for r in rows], pa.string()),
            "id": pa.array([r.get("i") for r in rows], pa.int64()),
        }
    )


def bar_table(symbol: str, rows: list[dict[str, Any]]) -> Any:
    """Alpaca bar rows -> a pyarrow table in the columns the candle readers know."""
    import pyarrow as pa

    return pa.table(
        {
            "timestamp": pa.array([parse_time_ns(r["t"]) for r in rows], pa.int64()).cast(
                pa.timestamp("ns", tz="UTC")
            ),
            "symbol": pa.array([symbol] * len(rows), pa.string()),
            "open": pa.array([float(r["o"]) for r in rows], pa.float64()),
            "high": pa.array([float(r["h"]) for r in rows], pa.float64()),
            "low": pa.array([float(r["l"]) for r in rows], pa.float64()),
            "close": pa.array([float(r["c"]) for r in rows], pa.float64()),
            "volume": pa.array([float(r["v"]) for r in rows], pa.float64()),
            "trade_count": pa.array([r.get("n") for r in rows], pa.int64()),
            "vwap": pa.array([r.get("vw") for r in rows], pa.float64()),
        }
    )


class _DayState(TypedDict):
    """A day's download progress, kept in its parts folder's state.json."""

    pages: int
    token: str | None
    done: bool


def _write_json(value: object, path: Path) -> None:
    path.write_text(json.dumps(value))


def _write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def symbol_folder(out: Path, symbol: str, kind: str) -> Path:
    return out / symbol.replace("/", "-") / kind


class Downloader:
    """Fetches every (symbol, day) of a request that is not on disk yet."""

    def __init__(
        self,
        source: PageSource,
        request: DownloadRequest,
        policy: RetryPolicy = DOWNLOAD_RETRY,
        sleep: Callable[[float], None] = time.sleep,
        on_rows: Callable[[int], None] | None = None,
    ) -> None:
        self.source = source
        self.request = request
        self.policy = policy
        self.sleep = sleep  # injectable: tests move a fake clock instead of waiting
        self.on_rows = on_rows
        self.tally = DownloadTally()

    def run(self) -> DownloadTally:
        for symbol in self.request.symbols:
            folder = symbol_folder(self.request.out, symbol, self.request.kind)
            folder.mkdir(parents=True, exist_ok=True)
            empty = self._empty_days(folder)
            for day in self.request.days():
                final = folder / f"{day.isoformat()}.parquet"
                if final.exists() or day.isoformat() in empty:
                    self.tally.days_skipped += 1
                    continue
                self._day(symbol, day, folder, final)
        return self.tally

    @staticmethod
    def _empty_days(folder: Path) -> set[str]:
        listing = folder / ".empty-days"
        return set(listing.read_text().split()) if listing.exists() else set()

    def _day(self, symbol: str, day: date, folder: Path, final: Path) -> None:
        import pyarrow.parquet as pq

        parts = folder / f".{day.isoformat()}.parts"
        parts.mkdir(exist_ok=True)
        state_path = parts / "state.json"
        state: _DayState = json.loads(state_path.read_text()) if state_path.exists() else {
            "pages": 0, "token": None, "done": False}  # fmt: skip
        start, end = day_bounds(symbol, day)
        make = bar_table if self.request.kind == "bars" else trade_table
        while not state["done"]:
            rows, token = self._page(symbol, start, end, state["token"])
            k = state["pages"]
            if rows:
                table = make(symbol, rows)
                _write_atomic(parts / f"{k:06d}.parquet", partial(pq.write_table, table))
                self.tally.rows += len(rows)
                if self.on_rows is not None:
                    self.on_rows(len(rows))
            state = {"pages": k + 1 if rows else k, "token": token, "done": token is None}
            _write_atomic(state_path, partial(_write_json, state))
            self.tally.pages += 1
        pages = sorted(parts.glob("[0-9]*.parquet"))
        if not pages:
            with (folder / ".empty-days").open("a") as fh:
                fh.write(day.isoformat() + "\n")
            self.tally.days_empty += 1
        else:
            _write_atomic(final, lambda p: _concat(pages, p))
            self.tally.days_written += 1
            self.tally.files.append(final)
        shutil.rmtree(parts)

    def _page(
        self, symbol: str, start: datetime, end: datetime, token: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        backoff = self.policy.start()
        while True:
            try:
                result = self.source.page(
                    self.request.kind, symbol, start, end, self.request.feed, token
                )
            except PageFailed as exc:
                if exc.status is not None and exc.status not in RETRY_STATUSES:
                    raise DownloadError(
                        f"Alpaca refused {self.request.kind} of {symbol} "
                        f"({exc.status}): {str(exc)[:200]}"
                    ) from exc
                self._wait(backoff, f"{exc.status}")
                continue
            except OSError as exc:  # requests' connection errors are OSErrors
                self._wait(backoff, type(exc).__name__)
                continue
            backoff.succeeded()
            return result

    def _wait(self, backoff: Any, why: str) -> None:
        backoff.failed()
        if backoff.exhausted:
            raise DownloadError(
                f"Alpaca kept failing ({why}) after {backoff.failures} tries; run the same "
                "command again to resume where it stopped"
            )
        self.tally.retries += 1
        self.sleep(backoff.next_delay())


def _concat(pages: list[Path], target: Path) -> None:
    """The day's pages, in order, as one Parquet file (one page in memory at a time)."""
    import pyarrow.parquet as pq

    writer = None
    try:
        for page in pages:
            table = pq.read_table(page)
            if writer is None:
                writer = pq.ParquetWriter(target, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
