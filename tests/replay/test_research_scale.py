"""Replay at research scale (issue 17): Parquet, folders and globs, chunked columnar reading
and whole-chunk batches give exactly the candles of the live per-tick path.

The per-tick reference reads the file with the tolerant row-by-row reader and hands the
validator and the aggregator one tick at a time, as a live feed that delivers one trade per
message would; the replay under test reads with pyarrow in chunks and hands the engine whole
chunks (validator on)."""

from __future__ import annotations

import asyncio
import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slob_tui.core.models import Candle
from slob_tui.engine.aggregator import CandleAggregator, SaleConditionPolicy
from slob_tui.engine.engine import LiveTradingEngine
from slob_tui.engine.quality import DataQualityValidator, QualityPolicy
from slob_tui.feeds.files import iter_tick_chunks
from slob_tui.feeds.replay import ReplayFeed

SPY = "spy_trades_20131007_et.csv.gz"
XRP = "xrpeth_trades_20191011_20191013_utc.csv"
SPY_CODES = ("20", "20000020", "20100000", "20100200")
REPO = Path(__file__).resolve().parents[2]


def per_tick_candles(path: Path | str, symbol: str, tz: str, policy: SaleConditionPolicy
                     ) -> list[Candle]:  # fmt: skip
    """The live per-tick path: one tick at a time through the validator and the aggregator."""
    validator = DataQualityValidator(QualityPolicy(), sale_policy=policy)
    agg = CandleAggregator(policy)
    out: list[Candle] = []
    for chunk in iter_tick_chunks(path, symbol, tz, chunk_rows=50_000, reader="pandas"):
        for tick in chunk:
            out.extend(agg.process(validator.filter_ticks([tick])))
    return out + agg.flush()


def replayed_candles(feed: ReplayFeed, policy: SaleConditionPolicy) -> list[Candle]:
    """The engine over a replay feed (validator on, no store, no tracker): every candle."""
    seen: list[Candle] = []
    engine = LiveTradingEngine(feed, store=None, policy=policy, quality=QualityPolicy(),
                               candle_consumers=(seen.append,), enable_tracker=False)  # fmt: skip
    asyncio.run(engine.run())
    return seen


def write_parquet(csv_path: Path, target: Path, row_group: int = 40_000) -> Path:
    """The same rows as a Parquet file (times as UTC timestamps, text kept as text)."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    from slob_tui.feeds.bounded import open_bounded

    with open_bounded(csv_path) as stream:
        table = pcsv.read_csv(stream, convert_options=pcsv.ConvertOptions(column_types={
            "timestamp": pa.timestamp("ns", tz="UTC"), "condition": pa.string(),
            "exchange": pa.string()}))  # fmt: skip
    pq.write_table(table, target, row_group_size=row_group)
    return target


@pytest.fixture(scope="module")
def spy_reference(shared_data: Path) -> list[Candle]:
    return per_tick_candles(shared_data / SPY, "SPY", "America/New_York",
                            SaleConditionPolicy(SPY_CODES))  # fmt: skip


def test_spy_replay_in_whole_chunks_equals_the_per_tick_path(shared_data, spy_reference):
    policy = SaleConditionPolicy(SPY_CODES)
    feed = ReplayFeed(shared_data / SPY, symbol="SPY")
    got = replayed_candles(feed, policy)
    assert feed.batches < 40  # whole chunks, not one batch per few trades
    assert len(got) == len(spy_reference) > 800 and got == spy_reference


def test_xrp_replay_equals_the_per_tick_path(shared_data: Path):
    policy = SaleConditionPolicy.none()
    want = per_tick_candles(shared_data / XRP, "XRPETH", "UTC", policy)
    got = replayed_candles(ReplayFeed(shared_data / XRP, symbol="XRPETH", tz="UTC"), policy)
    assert len(got) == len(want) > 2400 and got == want


def test_parquet_gives_the_candles_of_the_csv(shared_data, spy_reference, tmp_path):
    parquet = write_parquet(shared_data / SPY, tmp_path / "spy_trades.parquet")
    got = replayed_candles(ReplayFeed(parquet, symbol="SPY"), SaleConditionPolicy(SPY_CODES))
    assert got == spy_reference


def split_days(shared_data: Path, folder: Path) -> list[Path]:
    """The SPY day as three files cut at 09:30 and 16:00 New York time, named in time order."""
    from datetime import UTC, datetime

    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    whole = pq.read_table(write_parquet(shared_data / SPY, folder.parent / "whole.parquet"))
    stamp = pa.timestamp("ns", tz="UTC")
    cuts = [
        pa.scalar(datetime(2013, 10, 7, h, m, tzinfo=UTC), stamp) for h, m in ((13, 30), (20, 0))
    ]
    masks = [pc.less(whole["timestamp"], cuts[0]),
             pc.and_(pc.greater_equal(whole["timestamp"], cuts[0]),
                     pc.less(whole["timestamp"], cuts[1])),
             pc.greater_equal(whole["timestamp"], cuts[1])]  # fmt: skip
    folder.mkdir()
    parts = []
    for k, mask in enumerate(masks):
        part = folder / f"part{k}.parquet"
        pq.write_table(whole.filter(mask), part)
        parts.append(part)
    return parts


def test_a_folder_of_parts_equals_their_concatenation(shared_data, spy_reference, tmp_path):
    folder = tmp_path / "SPY"
    parts = split_days(shared_data, folder)
    rows = [t for chunk in iter_tick_chunks(folder, "SPY") for t in chunk]
    concat = [t for p in parts for chunk in iter_tick_chunks(p, "SPY") for t in chunk]
    assert len(rows) == 250_601 and rows == concat
    policy = SaleConditionPolicy(SPY_CODES)
    assert replayed_candles(ReplayFeed(folder), policy) == spy_reference
    glob = str(folder / "part*.parquet")
    assert replayed_candles(ReplayFeed(glob, symbol="SPY"), policy) == spy_reference


def test_an_out_of_order_folder_is_refused_naming_both_files(shared_data, tmp_path, capsys):
    from slob_tui.cli import main

    folder = tmp_path / "SPY"
    parts = split_days(shared_data, folder)
    parts[0].rename(folder / "part9.parquet")  # the early morning now comes last
    assert main(["replay", str(folder), "--no-ui", "--db", str(tmp_path / "x.db")]) == 2
    err = capsys.readouterr().err
    assert "part9.parquet starts at 2013-10-07 08:00:00 UTC, before" in err
    assert "part2.parquet" in err and "not in time order" in err
    assert err.count("\n") == 1


def test_overlapping_files_are_refused_while_reading(tmp_path: Path):
    from slob_tui.errors import UsageError

    folder = tmp_path / "ABC"
    folder.mkdir()
    (folder / "a.csv").write_text("timestamp,price,size\n2024-01-02T15:00:00Z,1,1\n"
                                  "2024-01-02T15:10:00Z,1,1\n")  # fmt: skip
    (folder / "b.csv").write_text("timestamp,price,size\n2024-01-02T15:05:00Z,1,1\n")
    with pytest.raises(UsageError, match=r"b\.csv starts at 2024-01-02 15:05:00 UTC, before "
                                         r".*a\.csv ends at 2024-01-02 15:10:00 UTC"):  # fmt: skip
        list(iter_tick_chunks(folder, "ABC", tz="UTC"))


ticks_strategy = st.lists(
    st.tuples(
        st.integers(0, 4_000),  # ms after the previous trade (bursts and quiet spells)
        st.sampled_from([100.0, 100.01, 100.02, 99.99, 100.5, 150.0]),
        st.integers(1, 500),
        st.sampled_from(["@", "@ I", "@ Z", "T", ""]),
        st.sampled_from([0, 0, 0, 1]),
    ),
    min_size=1,
    max_size=400,
)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=ticks_strategy, chunk=st.integers(1, 64), batch=st.integers(1, 64),
       parquet=st.booleans())  # fmt: skip
def test_any_chunk_and_batch_split_gives_the_per_tick_candles(tmp_path_factory, rows, chunk,
                                                              batch, parquet):  # fmt: skip
    folder = tmp_path_factory.mktemp("hyp")
    path = folder / "hyp_trades.csv"
    ts = 1_704_207_600_000  # 2024-01-02 15:00 UTC, in ms
    lines = ["timestamp,price,size,exchange,condition,suspicious"]
    for gap, price, size, cond, flag in rows:
        ts += gap
        lines.append(f"{ts},{price},{size},V,{cond},{flag}")
    path.write_text("\n".join(lines) + "\n")
    if parquet:
        import pyarrow.csv as pcsv
        import pyarrow.parquet as pq

        table = pcsv.read_csv(path, convert_options=pcsv.ConvertOptions(
            strings_can_be_null=False))  # fmt: skip
        path = folder / "hyp_trades.parquet"
        pq.write_table(table, path, row_group_size=max(1, chunk // 2 + 1))
    policy = SaleConditionPolicy(("I", "Z"))
    want = per_tick_candles(folder / "hyp_trades.csv", "HYP", "UTC", policy)
    feed = ReplayFeed(path, tz="UTC", chunk_rows=chunk, batch_rows=batch)
    assert replayed_candles(feed, policy) == want


def _spawn(argv: list[str], tty: bool) -> str:
    env = {**os.environ, "COLUMNS": "120", "TERM": "xterm"}
    if not tty:
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout + done.stderr
    pid, fd = pty.fork()
    if pid == 0:  # the child: the command with a terminal on stdin, stdout and stderr
        os.execvpe(argv[0], argv, env)
    out = b""
    while True:
        ready, _, _ = select.select([fd], [], [], 120)
        if not ready:
            break
        try:
            data = os.read(fd, 65536)
        except OSError:  # the terminal closes when the child exits
            break
        if not data:
            break
        out += data
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, out[-2000:]
    return out.decode("utf-8", "replace")


def test_progress_bar_on_a_terminal_only(shared_data: Path, tmp_path: Path):
    exe = str(Path(sys.executable).with_name("slob-tui"))
    argv = [exe, "replay", str(shared_data / SPY), "--no-ui", "--db", str(tmp_path / "p.db")]
    on_tty = _spawn(argv, tty=True)
    assert "replayed spy_trades_20131007_et.csv.gz" in on_tty
    assert "trades/s" in on_tty and "rows" in on_tty and "replay spy_trades" in on_tty
    in_pipe = _spawn([*argv[:-2], "--db", str(tmp_path / "q.db")], tty=False)
    assert "replayed spy_trades_20131007_et.csv.gz" in in_pipe and "trades/s" not in in_pipe
    quiet = _spawn([*argv[:-2], "--db", str(tmp_path / "r.db"), "--quiet"], tty=True)
    assert "replayed spy_trades" in quiet and "trades/s" not in quiet
