"""`slob-tui download` against the local Alpaca's REST side: paging, 429 with backoff, an
interrupted download resumed without duplicate rows, and files that replay reads as a folder."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path

import pytest

from slob_tui.core.models import NS_PER_MINUTE
from slob_tui.core.retry import RetryPolicy
from slob_tui.engine.aggregator import CandleAggregator, SaleConditionPolicy
from slob_tui.feeds.files import ReadReport, iter_tick_chunks
from slob_tui.feeds.history import Downloader, DownloadError, DownloadRequest, PageSource
from tests.fakes.alpaca import LocalAlpaca, Trade, load_algoseek_trades
from tests.fakes.alpaca.history import served
from tests.fakes.alpaca.rest import RateLimiter
from tests.integration.alpaca.conftest import SLICE_START

KEY, SECRET = "PKTESTKEY0000001", "sEcReT-download"
DAY_NS = 1440 * NS_PER_MINUTE
SPY_FILE = "spy_trades_20131007_et.csv.gz"


@pytest.fixture(scope="module")
def tape(shared_data: Path) -> list[Trade]:
    """Twenty minutes of the real SPY tape on 2013-10-07 and the same prints a day later."""
    day = load_algoseek_trades(shared_data / SPY_FILE, "SPY", SLICE_START,
                               SLICE_START + 20 * NS_PER_MINUTE)  # fmt: skip
    later = [t._replace(ts=t.ts + DAY_NS, id=t.id + 10_000_000) for t in day]
    return day + later


def request(out: Path) -> DownloadRequest:
    return DownloadRequest(("SPY",), date(2013, 10, 6), date(2013, 10, 8), "trades", out)


def read_back(folder: Path) -> list[tuple]:
    report = ReadReport(str(folder))
    rows = [t for chunk in iter_tick_chunks(folder, "SPY", report=report) for t in chunk]
    assert report.bad_rows == 0
    return rows


def expected(tape: list[Trade]) -> list[tuple]:
    return [("SPY", t.ts, t.price, t.size, t.exchange,
             t.conditions[0] if len(t.conditions) == 1 else t.conditions, t.id)
            for t in tape]  # fmt: skip


async def test_download_pages_days_into_parquet_that_replays_as_the_tape(tape, tmp_path):
    async with LocalAlpaca(tape, KEY, SECRET) as srv:
        source = PageSource(KEY, SECRET, srv.rest_url, page_limit=1_000)
        tally = await asyncio.to_thread(Downloader(source, request(tmp_path)).run)
        requests = served(srv)
    folder = tmp_path / "SPY" / "trades"
    assert sorted(p.name for p in folder.glob("*.parquet")) == [
        "2013-10-07.parquet",
        "2013-10-08.parquet",
    ]
    assert tally.rows == len(tape) and tally.days_written == 2 and tally.days_empty == 1
    assert requests == tally.pages > 2 * (len(tape) // 2 // 1_000)  # several pages a day
    assert read_back(folder) == expected(tape)
    # the files go through the pipeline as the tape does
    policy = SaleConditionPolicy.alpaca_sip()
    direct = CandleAggregator(policy)
    want = direct.process(expected(tape)) + direct.flush()
    agg = CandleAggregator(policy)
    got = [c for chunk in iter_tick_chunks(folder, "SPY") for c in agg.process(chunk)]
    assert got + agg.flush() == want
    # a second run finds every day on disk and asks for nothing
    async with LocalAlpaca(tape, KEY, SECRET) as srv:
        again = await asyncio.to_thread(
            Downloader(PageSource(KEY, SECRET, srv.rest_url), request(tmp_path)).run
        )
        assert served(srv) == 0
    assert again.days_skipped == 3 and again.rows == 0


class StopsAfter(PageSource):
    """A real page source that is interrupted (as by Ctrl-C) before its n-th page request."""

    def __init__(self, *args: object, pages: int, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.left = pages

    def page(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        if self.left == 0:
            raise KeyboardInterrupt
        self.left -= 1
        return super().page(*args, **kwargs)


async def test_an_interrupted_download_resumes_without_duplicate_rows(tape, tmp_path):
    async with LocalAlpaca(tape, KEY, SECRET) as srv:
        first = StopsAfter(KEY, SECRET, srv.rest_url, page_limit=1_000, pages=9)
        with pytest.raises(KeyboardInterrupt):
            await asyncio.to_thread(Downloader(first, request(tmp_path)).run)
        folder = tmp_path / "SPY" / "trades"
        assert list(folder.glob(".*.parts/0*.parquet"))  # pages of an unfinished day kept
        before = served(srv)
        source = PageSource(KEY, SECRET, srv.rest_url, page_limit=1_000)
        resumed = await asyncio.to_thread(Downloader(source, request(tmp_path)).run)
        assert served(srv) - before == resumed.pages
    total_pages = -(-len(tape) // 2 // 1_000) * 2 + 1  # two days of pages and the empty Sunday
    assert resumed.pages + 9 - 1 <= total_pages  # pages already written are not asked again
    rows = read_back(folder)
    assert rows == expected(tape)
    assert len({(t[1], t[6]) for t in rows}) == len(rows)
    assert not list(folder.glob(".*.parts"))


async def test_429_is_retried_with_the_retry_policy_backoff(tape, tmp_path):
    now = [0.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:  # the fake minute passes when the downloader waits
        waits.append(seconds)
        now[0] += seconds

    policy = RetryPolicy(base_s=5.0, cap_s=80.0, attempts=6)
    async with LocalAlpaca(tape, KEY, SECRET) as srv:
        srv.rest.limiter = RateLimiter(4, now=lambda: now[0])
        source = PageSource(KEY, SECRET, srv.rest_url, page_limit=2_000)
        tally = await asyncio.to_thread(
            Downloader(source, request(tmp_path), policy=policy, sleep=sleep).run
        )
    assert tally.retries == len(waits) > 0
    assert all(policy.ceiling(1) / 2 <= w <= policy.cap_s for w in waits)
    assert read_back(tmp_path / "SPY" / "trades") == expected(tape)


async def test_a_server_that_keeps_failing_stops_with_a_resumable_error(tape, tmp_path):
    async with LocalAlpaca(tape, KEY, SECRET) as srv:
        srv.history_failures = 100
        source = PageSource(KEY, SECRET, srv.rest_url)
        policy = RetryPolicy(base_s=0.01, cap_s=0.01, attempts=3)
        with pytest.raises(DownloadError, match="run the same command again"):
            await asyncio.to_thread(
                Downloader(source, request(tmp_path), policy=policy, sleep=lambda s: None).run
            )


async def test_download_command_end_to_end_and_bad_flags(tape, tmp_path, monkeypatch, capsys):
    from slob_tui.cli import main

    async with LocalAlpaca(tape, KEY, SECRET) as srv:
        monkeypatch.setenv("ALPACA_API_KEY", KEY)
        monkeypatch.setenv("ALPACA_API_SECRET", SECRET)
        monkeypatch.setenv("ALPACA_DATA_URL", srv.rest_url)
        out = tmp_path / "hist"
        argv = ["download", "spy", "--start", "2013-10-07", "--end", "2013-10-08", "--out",
                str(out), "--quiet"]  # fmt: skip
        assert await asyncio.to_thread(main, argv) == 0
    text = capsys.readouterr().out
    assert f"downloaded {len(tape)} trades rows" in text and "2 day files written" in text
    assert len(read_back(out / "SPY" / "trades")) == len(tape)
    assert main(["download", "SPY", "--start", "2013-10-08", "--end", "2013-10-07",
                 "--out", str(out)]) == 2  # fmt: skip
    assert main(["download", "SPY", "--start", "yesterday", "--end", "2013-10-07",
                 "--out", str(out)]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "--end 2013-10-07 is before --start 2013-10-08" in err
    assert "--start must be a date like 2024-01-02, got 'yesterday'" in err


async def test_bars_download_is_read_back_as_the_served_candles(tape, tmp_path):
    from slob_tui.feeds.files import detect_kind, load_candles

    async with LocalAlpaca(tape, KEY, SECRET) as srv:
        srv.clock.ns = tape[-1].ts + 10 * NS_PER_MINUTE  # every minute of the tape has closed
        source = PageSource(KEY, SECRET, srv.rest_url, page_limit=7)
        req = DownloadRequest(("SPY",), date(2013, 10, 7), date(2013, 10, 8), "bars", tmp_path)
        tally = await asyncio.to_thread(Downloader(source, req).run)
        served = srv.bars["SPY"]
    folder = tmp_path / "SPY" / "bars"
    assert detect_kind(folder) == "candles" and tally.days_written == 2
    candles = load_candles(folder, "SPY", tz="UTC")
    assert tally.rows == len(served) == len(candles) > 2 * 7
    assert [(c.start, c.open, c.high, c.low, c.close, c.volume) for c in candles] == [
        (b["t"], b["o"], b["h"], b["l"], b["c"], b["v"]) for b in served
    ]
