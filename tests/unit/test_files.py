"""Tick and candle file readers: formats, time zones, chunking, bad input."""

from __future__ import annotations

import gzip
from datetime import datetime
from pathlib import Path

import pytest

from slob_tui.engine.aggregator import SUSPICIOUS, CandleAggregator, SaleConditionPolicy
from slob_tui.errors import UsageError
from slob_tui.feeds.files import (
    ReadReport,
    detect_kind,
    iter_candle_chunks,
    iter_tick_chunks,
    load_candles,
)


def ns(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp()) * 1_000_000_000


def write(path: Path, text: str) -> Path:
    if path.suffix == ".gz":
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return path


def ticks_of(path: Path, symbol: str = "X", **kw) -> list[tuple]:
    return [t for chunk in iter_tick_chunks(path, symbol, **kw) for t in chunk]


def test_detect_kind_on_every_shared_file(shared_data: Path):
    kinds = {p.name: detect_kind(p) for p in sorted(shared_data.glob("*.csv*"))}
    assert kinds == {
        "btcperp_1min_20211231_20220201_utc.csv.gz": "candles",
        "nq_1min_20231119_20231204_et.csv": "candles",
        "spy_1min_20131007_et.csv": "candles",
        "spy_trades_20131007_et.csv.gz": "ticks",
        "xrpeth_1min_20191011_20191013_utc.csv": "candles",
        "xrpeth_trades_20191011_20191013_utc.csv": "ticks",
    }


def test_spy_ticks_with_offsets_become_utc_ns(shared_data: Path):
    report = ReadReport("spy")
    chunks = iter_tick_chunks(shared_data / "spy_trades_20131007_et.csv.gz", "SPY",
                              chunk_rows=100_000, report=report)  # fmt: skip
    first = next(chunks)
    assert len(first) == 100_000
    assert first[0] == ("SPY", ns("2013-10-07T08:00:00+00:00") + 464_000_000, 167.41, 100, "P",
                        "20002000", None)  # fmt: skip
    rest = sum(len(c) for c in chunks)
    assert 100_000 + rest == 250_601 == report.rows and report.bad_rows == 0
    assert report.last_ts == ns("2013-10-07T23:59:59+00:00") + 536_000_000


def test_xrp_uses_the_exact_ms_timestamp_and_ids(shared_data: Path):
    ticks = ticks_of(shared_data / "xrpeth_trades_20191011_20191013_utc.csv", "XRPETH", tz="UTC")
    assert len(ticks) == 12_477
    assert ticks[0] == ("XRPETH", 1_570_752_011_620_000_000, 0.00141342, 23.0, "", None, 13519807)
    ids = [t[6] for t in ticks]
    assert ids == list(range(ids[0], ids[0] + len(ids)))  # contiguous, per the README


def test_naive_times_are_read_in_the_zone_with_dst(tmp_path: Path):
    path = write(tmp_path / "t.csv", "time,price,size\n"
                 "2023-03-10 09:30:00,1,1\n"     # EST, -05:00
                 "2023-03-12 02:30:00,2,1\n"     # does not exist: bad row
                 "2023-03-13 09:30:00,3,1\n"     # EDT, -04:00
                 "2023-11-05 01:30:00,4,1\n"     # ambiguous: first occurrence (EDT)
                 "2023-11-06 09:30:00,5,1\n")  # fmt: skip
    report = ReadReport(str(path))
    ticks = ticks_of(path, report=report)
    assert [t[1] for t in ticks] == [
        ns("2023-03-10T14:30:00+00:00"), ns("2023-03-13T13:30:00+00:00"),
        ns("2023-11-05T05:30:00+00:00"), ns("2023-11-06T14:30:00+00:00")]  # fmt: skip
    assert report.bad_rows == 1 and report.bad_lines == [3]
    utc = ticks_of(path, tz="UTC")
    assert utc[0][1] == ns("2023-03-10T09:30:00+00:00") and len(utc) == 5


def test_nq_candles_naive_eastern(shared_data: Path):
    candles = load_candles(shared_data / "nq_1min_20231119_20231204_et.csv", "NQ")
    assert len(candles) == 14_714
    c = candles[0]
    assert (c.symbol, c.start, c.open, c.high, c.low, c.close, c.volume) == (
        "NQ",
        ns("2023-11-19T23:00:00+00:00"),
        15895.0,
        15903.75,
        15888.0,
        15893.25,
        571,
    )
    assert all(b.start > a.start for a, b in zip(candles, candles[1:], strict=False))


def test_chunks_are_bounded_and_join_to_the_whole(tmp_path: Path):
    rows = "".join(f"2024-01-02T15:{m:02d}:{s:02d}Z,{100 + m},{s + 1}\n"
                   for m in range(10) for s in range(0, 60, 3))  # fmt: skip
    path = write(tmp_path / "t.csv.gz", "timestamp,price,qty\n" + rows)
    chunks = list(iter_tick_chunks(path, "X", chunk_rows=37))
    assert max(len(c) for c in chunks) == 37 and len(chunks) == 6
    assert [t for c in chunks for t in c] == ticks_of(path, chunk_rows=10_000)
    assert chunks[0][0][1] == ns("2024-01-02T15:00:00+00:00")


def test_conditions_suspicious_and_symbol_column(tmp_path: Path):
    path = write(tmp_path / "t.csv", "timestamp,symbol,price,size,exchange,conditions,suspicious\n"
                 "2024-01-02T15:00:01Z,AAA,10,1,Q,@,0\n"
                 "2024-01-02T15:00:02Z,AAA,99,1,Q,@ I,0\n"
                 "2024-01-02T15:00:03Z,BBB,50,2,N,,1\n"
                 "2024-01-02T15:00:04Z,,11,1,Q,@,1\n")  # fmt: skip
    ticks = ticks_of(path, "DEFAULT")
    assert [(t[0], t[4], t[5]) for t in ticks] == [
        ("AAA", "Q", "@"), ("AAA", "Q", ("@", "I")), ("BBB", "N", (SUSPICIOUS,)),
        ("DEFAULT", "Q", ("@", SUSPICIOUS))]  # fmt: skip
    agg = CandleAggregator(SaleConditionPolicy(["I"]))
    agg.process(ticks)
    by_symbol = {c.symbol: c for c in agg.flush()}
    assert (by_symbol["AAA"].high, by_symbol["AAA"].volume) == (10, 2)
    assert by_symbol["DEFAULT"].open == 11  # only an excluded print: its price, no history
    assert agg.stats()["excluded_from_ohlc"] == 3


def test_exclude_conditions_are_counted_in_the_report(tmp_path: Path):
    path = write(tmp_path / "t.csv", "timestamp,price,size,condition\n"
                 "2024-01-02T15:00:01Z,1,1,20\n2024-01-02T15:00:02Z,1,1,20002000\n"
                 "2024-01-02T15:00:03Z,1,1,20\n")  # fmt: skip
    report = ReadReport(str(path))
    ticks = ticks_of(path, exclude_conditions=["20", "77"], report=report)
    assert [t[5] for t in ticks] == ["20", "20002000", "20"]
    assert report.excluded_rows == 2 and report.exclusions_seen == {"20"}


def test_bad_rows_are_counted_with_line_numbers_not_fatal(tmp_path: Path):
    path = write(tmp_path / "t.csv", "timestamp,price,size\n"
                 "2024-01-02T15:00:01Z,10,1\n"
                 "2024-01-02T15:00:02Z,abc,1\n"
                 "not a time,11,1\n"
                 "2024-01-02T15:00:04Z,12,1,extra,fields\n"
                 "2024-01-02T15:00:05Z,13\n"
                 "2024-01-02T15:00:06Z,14,2\n")  # fmt: skip
    report = ReadReport(str(path))
    ticks = ticks_of(path, report=report)
    assert [t[2] for t in ticks] == [10, 14]
    assert report.rows == 6 and report.bad_rows == 4
    assert sorted(report.bad_lines) == [3, 4, 5, 6]
    assert "4 bad" in report.summary()


def test_candle_file_bad_row_and_symbol(tmp_path: Path):
    path = write(tmp_path / "c.csv", "date,open,high,low,close,volume\n"
                 "2019-10-11 00:00:00+00:00,1,2,0.5,1.5,10\n"
                 "2019-10-11 00:01:00+00:00,1,x,0.5,1.5,10\n"
                 "2019-10-11 00:02:00+00:00,2,3,1.5,2.5,20\n")  # fmt: skip
    report = ReadReport(str(path))
    candles = [c for ch in iter_candle_chunks(path, "ABC", "UTC", report=report) for c in ch]
    assert [(c.symbol, c.start, c.close) for c in candles] == [
        ("ABC", ns("2019-10-11T00:00:00+00:00"), 1.5), ("ABC", ns("2019-10-11T00:02:00+00:00"),
                                                         2.5)]  # fmt: skip
    assert report.bad_lines == [3]


@pytest.mark.parametrize(
    ("content", "call", "message"),
    [
        (None, "ticks", "file not found"),
        ("", "kind", "is empty"),
        ("when,price,size\n1,2,3\n", "kind", "no time column"),
        ("timestamp,bid,ask\n1,2,3\n", "kind", "neither a tick file"),
        ("timestamp,price\n2024-01-02T15:00:01Z,1\n", "ticks", "missing size"),
        ("timestamp,open,close\n2024-01-02T15:00:01Z,1,1\n", "candles", "missing high, low"),
        ("timestamp,price,size\n2024-01-02T15:00:01Z,1,1\n", "tz", "unknown time zone"),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path: Path, content, call, message):
    path = tmp_path / "f.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(UsageError, match=message) as info:
        if call == "kind":
            detect_kind(path)
        elif call == "ticks":
            ticks_of(path)
        elif call == "candles":
            load_candles(path, "X")
        else:
            ticks_of(path, tz="Mars/Olympus")
    assert "\n" not in str(info.value)


def test_a_folder_without_tick_or_candle_files_is_refused(tmp_path: Path):
    # a folder of daily files is an input now (issue 17); one holding none is still refused
    (tmp_path / "notes.txt").write_text("not market data\n")
    with pytest.raises(UsageError, match="folder holds no tick or candle files"):
        detect_kind(tmp_path)


@pytest.mark.parametrize(
    ("name", "tz"),
    [("spy_trades_20131007_et.csv.gz", "America/New_York"),
     ("xrpeth_trades_20191011_20191013_utc.csv", "UTC")],
)  # fmt: skip
def test_fast_and_tolerant_readers_agree_on_real_files(shared_data: Path, name: str, tz: str):
    fast = ticks_of(shared_data / name, "S", tz=tz, chunk_rows=30_000)
    tolerant = ticks_of(shared_data / name, "S", tz=tz, chunk_rows=30_000, reader="pandas")
    assert fast == tolerant and len(fast) > 10_000


def test_fast_reader_hands_over_to_the_tolerant_one_mid_file(tmp_path: Path):
    """A bad row past the first pyarrow block: rows before it come once, the bad one is
    reported with its line number, and the rest still arrives."""
    rows = [f"2024-01-02T15:{(k // 60) % 60:02d}:{k % 60:02d}.{k % 1000:03d}Z,{100 + k % 50},"
            f"{1 + k % 9},Q,@" for k in range(60_000)]  # fmt: skip
    rows[45_000] = "2024-01-02T15:00:00.000Z,not-a-price,1,Q,@"
    path = write(tmp_path / "big.csv", "timestamp,price,size,exchange,conditions\n"
                 + "\n".join(rows) + "\n")  # fmt: skip
    assert path.stat().st_size > 2 * (1 << 20)  # more than one pyarrow block before the bad row
    report = ReadReport(str(path))
    chunks = list(iter_tick_chunks(path, "X", chunk_rows=10_000, report=report))
    got = [t for c in chunks for t in c]
    expected = [t for c in iter_tick_chunks(path, "X", reader="pandas") for t in c]
    assert got == expected and len(got) == 59_999
    assert report.rows == 60_000 and report.bad_rows == 1 and report.bad_lines == [45_002]


def test_rows_going_back_in_time_are_counted_per_symbol_across_chunks(tmp_path: Path):
    """Line numbers stay right after a bad row and across chunk edges; another symbol's
    earlier time is not out of order."""
    path = write(tmp_path / "t.csv", "timestamp,price,size,symbol\n"
                 "2024-01-02T15:00:05Z,1,1,A\n"  # line 2
                 "2024-01-02T15:00:01Z,1,1,B\n"  # 3: B's first row, not backwards
                 "oops,1,1,A\n"                  # 4: unreadable
                 "2024-01-02T15:00:06Z,1,1,A\n"  # 5
                 "2024-01-02T15:00:02Z,1,1,A\n"  # 6: backwards (after 15:00:06)
                 "2024-01-02T15:00:03Z,1,1,A\n"  # 7: still backwards
                 "2024-01-02T15:00:01Z,1,1,B\n")  # 8: B at its latest time  # fmt: skip
    report = ReadReport("t")
    ticks = ticks_of(path, chunk_rows=2, report=report)
    assert len(ticks) == 6 and report.bad_rows == 1
    order = report.order
    assert order.backwards == 2 and order.repeated == 1
    first = order.first_backward
    assert first is not None and first.line == 6
    assert (first.ts, first.after_ts) == (ns("2024-01-02T15:00:02+00:00"),
                                          ns("2024-01-02T15:00:06+00:00"))  # fmt: skip


def test_repeated_and_backward_candle_minutes_are_told_apart(tmp_path: Path):
    path = write(tmp_path / "c.csv.gz", "timestamp,open,high,low,close\n"
                 "2024-01-02 10:00:00,1,1,1,1\n"
                 "2024-01-02 10:01:00,1,1,1,1\n"
                 "2024-01-02 10:01:00,1,1,1,1\n"  # line 4: repeated minute
                 "2024-01-02 09:59:00,1,1,1,1\n")  # line 5: backwards  # fmt: skip
    report = ReadReport("c")
    load_candles(path, "X", report=report)
    assert report.order.backwards == 1 and report.order.first_backward.line == 5
    assert report.order.repeated == 1 and report.order.first_repeated_line == 4


def test_every_shared_file_is_in_time_order(shared_data: Path):
    for p in sorted(shared_data.glob("*.csv*")):
        report = ReadReport(str(p))
        if detect_kind(p) == "ticks":
            ticks_of(p, report=report)
        else:
            load_candles(p, "X", report=report)
        assert report.order.backwards == 0, (p.name, report.order)


@pytest.mark.parametrize("name", ["deep.csv", "deep.csv.gz"])
@pytest.mark.parametrize("piece", [1 << 20, 4096, 997])
def test_a_long_line_deep_in_a_file_is_named_by_its_number(tmp_path: Path, name, piece):
    """The line number is counted again only when a line is refused (not as pieces pass):
    it must still be the line's, whatever the pieces' size and wherever they cut."""
    from slob_tui.feeds.bounded import InputLimitError, InputLimits, open_bounded

    rows = "".join(f"2024-01-02T15:00:{i % 60:02d}Z,10.5,{i}\n" for i in range(40_000))
    text = "timestamp,price,size\n" + rows + "2024-01-02T15:01:00Z," + "9" * 5000 + ",1\n"
    path = write(tmp_path / name, text + rows[:1000])
    stream = open_bounded(path, InputLimits(max_line_bytes=4000))
    with stream, pytest.raises(InputLimitError, match="line 40002 is longer than 4,000 bytes"):
        while stream.read(piece):
            pass


def _gunzip_all(path: Path, piece: int) -> bytes:
    from slob_tui.feeds.bounded import open_bounded

    parts = []
    with open_bounded(path) as stream:
        while part := stream.read(piece):
            assert len(part) <= piece
            parts.append(part)
    return b"".join(parts)


@pytest.mark.parametrize("piece", [1 << 20, 4096, 997])
def test_gzip_reads_as_the_gzip_module_does(tmp_path: Path, piece):
    """Several members, zero padding after one (gzip's rule), a member with a file name in
    its header, and an empty member: the bytes are the gzip module's, whatever the piece."""
    import random

    from slob_tui.feeds.bounded import open_bounded

    rng = random.Random(7)
    first = "".join(f"2024-01-02T15:00:{i % 60:02d}Z,{rng.random():.4f},{i}\n"
                    for i in range(30_000))  # fmt: skip
    second = bytes(rng.randrange(256) for _ in range(300_000))  # incompressible
    path = tmp_path / "members.csv.gz"
    with open(path, "wb") as raw:
        raw.write(gzip.compress(("timestamp,price,size\n" + first).encode()))
        raw.write(b"\0" * 1000)
        with gzip.GzipFile(filename="inner.csv", mode="wb", fileobj=raw) as named:
            named.write(second)
        raw.write(gzip.compress(b""))
        raw.write(gzip.compress(b"tail\n", compresslevel=1))
    with gzip.open(path, "rb") as reference:
        expected = reference.read()
    assert _gunzip_all(path, piece) == expected
    assert len(expected) > 1_000_000
    with open_bounded(path) as stream:
        assert stream.read(0) == b""  # as any file's read(0)
        assert stream.read(10) == expected[:10]


def test_an_empty_gzip_file_reads_as_empty(tmp_path: Path):
    path = tmp_path / "empty.csv.gz"
    path.write_bytes(b"")
    assert _gunzip_all(path, 4096) == b""


def test_broken_gzip_files_fail_as_with_the_gzip_module(tmp_path: Path):
    """Cut short inside a member: the gzip module's EOFError; a flipped byte in the trailer's
    checksum, zeros before the first member or no gzip at all: its BadGzipFile. The stream
    raises either as a `DamagedFileError` naming the file (a one-line error, exit status 2)."""
    from slob_tui.feeds.bounded import DamagedFileError

    data = gzip.compress(("timestamp,price,size\n" + "2024-01-02T15:00:00Z,10,1\n" * 5000).encode())
    cases = {
        "cut.csv.gz": (data[: len(data) // 2], EOFError),
        "no_trailer.csv.gz": (data[:-8], EOFError),
        "crc.csv.gz": (data[:-8] + bytes([data[-8] ^ 1]) + data[-7:], gzip.BadGzipFile),
        "zeros_first.csv.gz": (b"\0\0" + data, gzip.BadGzipFile),
        "not_gzip.csv.gz": (b"timestamp,price,size\n", gzip.BadGzipFile),
    }
    for name, (content, error) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(error):
            gzip.open(path).read()
        with pytest.raises(DamagedFileError, match=name) as caught:
            _gunzip_all(path, 4096)
        assert type(caught.value.__cause__) is error, name
