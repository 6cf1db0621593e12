"""ReplayFeed: batches, data-driven clock, pacing, pause/stop, and the real engine end to end."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from slob_tui.commands import replay as replay_cmd
from slob_tui.core.models import NS_PER_SECOND, Candle
from slob_tui.engine.aggregator import CandleAggregator, SaleConditionPolicy
from slob_tui.errors import UsageError
from slob_tui.feeds.files import iter_tick_chunks, load_candles
from slob_tui.feeds.replay import ReplayFeed
from slob_tui.storage.candles import CandleStore

T0 = 1_704_207_600 * NS_PER_SECOND  # 2024-01-02 15:00 UTC


class RecordingSink:
    """A FeedSink that keeps everything it is given, in order."""

    def __init__(self, on_batch: Any = None) -> None:
        self.ticks: list[tuple] = []
        self.batches: list[list[tuple]] = []
        self.candles: list[Candle] = []
        self.times: list[int] = []
        self.on_batch = on_batch

    def put_ticks(self, ticks: Sequence[tuple]) -> None:
        raise AssertionError("replay must use put_ticks_wait (no loss)")

    async def put_ticks_wait(self, ticks: Sequence[tuple]) -> None:
        self.batches.append(list(ticks))
        self.ticks.extend(ticks)
        if self.on_batch is not None:
            await self.on_batch(self)

    async def put_candles(self, candles: Sequence[Candle]) -> None:
        self.candles.extend(candles)

    def set_time(self, ns: int) -> None:
        self.times.append(ns)

    def feed_event(self, event: Any) -> None:
        pass

    def last_candle_start(self, symbol: str) -> int | None:
        return None


def tick_file(path: Path, seconds: Sequence[float]) -> Path:
    lines = ["timestamp,price,size"]
    for k, s in enumerate(seconds):
        whole, frac = divmod(int(s * 1000), 1000)
        lines.append(f"2024-01-02T15:{whole // 60:02d}:{whole % 60:02d}.{frac:03d}Z,{100 + k},1")
    path.write_text("\n".join(lines) + "\n")
    return path


async def test_ticks_arrive_in_order_in_bounded_batches_with_the_clock_after_each(tmp_path):
    secs = [k * 0.5 for k in range(400)]  # 200 s of data
    feed = ReplayFeed(tick_file(tmp_path / "aaa_ticks.csv", secs), tz="UTC", batch_rows=64,
                      chunk_rows=150, max_batch_span_s=20)  # fmt: skip
    sink = RecordingSink()
    await feed.run(sink)
    assert feed.symbol == "AAA" and feed.mode == "REPLAY" and feed.kind == "ticks"
    assert [t[1] for t in sink.ticks] == [T0 + int(s * NS_PER_SECOND) for s in secs]
    assert all(len(b) <= 64 for b in sink.batches)
    assert all(b[-1][1] - b[0][1] <= 20 * NS_PER_SECOND for b in sink.batches)
    # the clock goes to each batch's first tick, then its last: never behind, never ahead
    expected = [t for b in sink.batches for t in (b[0][1], b[-1][1])]
    assert sink.times == expected
    assert feed.health().counters["ticks_sent"] == 400 and feed.health().state == "finished"


async def test_candle_files_go_through_put_candles(shared_data: Path):
    path = shared_data / "xrpeth_1min_20191011_20191013_utc.csv"
    feed = ReplayFeed(path, symbol="XRPETH", tz="UTC", batch_rows=500)
    sink = RecordingSink()
    await feed.run(sink)
    assert sink.candles == load_candles(path, "XRPETH", tz="UTC")
    assert sink.ticks == [] and feed.candles_sent == 2469
    assert sink.times[-1] == sink.candles[-1].end


async def test_speed_keeps_data_time_within_wall_time_times_speed(tmp_path, monkeypatch):
    secs = [k * 0.25 for k in range(200)]  # 50 s of data
    now = [100.0]  # a fake wall clock (seconds): no real time is measured or waited for
    sent_at: list[tuple[int, float]] = []

    async def advance(sink):
        sent_at.append((sink.batches[-1][-1][1], now[0]))
        now[0] += 0.05  # handing a batch over takes a little wall time

    real_sleep = asyncio.sleep

    async def fake_sleep(delay: float, *a: Any) -> None:
        now[0] += delay  # the feed waits: move the fake wall clock instead
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    feed = ReplayFeed(tick_file(tmp_path / "t.csv", secs), tz="UTC", speed=10.0,
                      wall=lambda: now[0])  # fmt: skip
    sink = RecordingSink(on_batch=advance)
    await feed.run(sink)
    monkeypatch.undo()
    assert len(sink.ticks) == 200
    start = sink.ticks[0][1]
    for last_ts, wall in sent_at:  # no tick is handed over before it is due at 10x
        assert (last_ts - start) / NS_PER_SECOND <= (wall - 100.0) * 10.0 + 1e-9
    total_wall = sent_at[-1][1] - 100.0
    assert 49.75 / 10 <= total_wall <= 49.75 / 10 + 1.0  # and it does not lag behind either
    assert len(sink.batches) > 10  # paced: many small batches
    fast = RecordingSink()
    await ReplayFeed(tick_file(tmp_path / "t.csv", secs), tz="UTC", max_batch_span_s=100).run(fast)
    assert len(fast.batches) == 1  # flat out, the same file is one batch


async def test_pause_holds_the_feed_and_stop_ends_it(tmp_path):
    secs = [k * 0.1 for k in range(1000)]
    feed = ReplayFeed(tick_file(tmp_path / "t.csv", secs), tz="UTC", batch_rows=10)

    async def pause_after_first(sink):
        if len(sink.batches) == 1:
            feed.pause()

    sink = RecordingSink(on_batch=pause_after_first)
    task = asyncio.create_task(feed.run(sink))
    for _ in range(1000):  # the file is parsed in a worker thread: wait for the first batch
        if sink.batches:
            break
        await asyncio.sleep(0.01)
    for _ in range(50):
        await asyncio.sleep(0)
    assert len(sink.batches) == 1 and feed.health().state == "paused"
    feed.resume()
    for _ in range(5):
        await asyncio.sleep(0)
    await feed.stop()
    await asyncio.wait_for(task, 10)
    assert 1 < len(sink.ticks) < 1000 and feed.state == "stopped"


def test_bad_input_is_refused_up_front(tmp_path):
    with pytest.raises(UsageError, match="file not found"):
        ReplayFeed(tmp_path / "nope.csv")
    (tmp_path / "q.csv").write_text("timestamp,bid,ask\n1,2,3\n")
    with pytest.raises(UsageError, match="neither a tick file"):
        ReplayFeed(tmp_path / "q.csv")
    tick_file(tmp_path / "t.csv", [1, 2])
    with pytest.raises(UsageError, match="speed"):
        ReplayFeed(tmp_path / "t.csv", speed=0)
    with pytest.raises(UsageError, match="--speed"):
        replay_cmd.parse_speed("fast")
    assert replay_cmd.parse_speed("max") is None and replay_cmd.parse_speed("2.5") == 2.5
    with pytest.raises(UsageError, match="at least one code"):
        replay_cmd.parse_conditions(" , ")


def run_replay_command(argv: list[str], capsys) -> str:
    """`slob-tui replay ...` through the real command-line entry point."""
    from slob_tui.cli import main

    assert main(["replay", *argv]) == 0
    return capsys.readouterr().out


async def test_engine_with_replay_feed_stores_exactly_the_direct_aggregation(
    shared_data: Path, tmp_path: Path
):
    """The live pipeline (no validator) adds and loses nothing: store == aggregator alone."""
    from slob_tui.engine.engine import LiveTradingEngine

    path = shared_data / "spy_trades_20131007_et.csv.gz"
    policy_codes = ["20", "20000020", "20100000", "20100200"]
    engine = LiveTradingEngine(
        ReplayFeed(path, symbol="SPY", batch_rows=5_000),
        store=CandleStore(tmp_path / "e.db"),
        policy=SaleConditionPolicy(policy_codes),
    )
    await engine.run()
    agg = CandleAggregator(SaleConditionPolicy(policy_codes))
    direct: list[Candle] = []
    for chunk in iter_tick_chunks(path, "SPY"):
        direct += agg.process(chunk)
    direct += agg.flush()
    async with CandleStore(tmp_path / "e.db") as store:
        assert await store.candles("SPY") == direct
    stats = engine.aggregator.stats()
    assert stats["ticks"] == 250_601 and stats["late_ticks"] == 0
    assert stats["excluded_from_ohlc"] == 117_101


def test_replay_command_reproduces_the_vendor_bars_in_the_store(
    shared_data: Path, tmp_path: Path, capsys
):
    from tests.replay.test_vendor_bars import compare

    db = tmp_path / "spy.db"
    codes = "20,20000020,20100000,20100200"
    spy = str(shared_data / "spy_trades_20131007_et.csv.gz")
    out = run_replay_command([spy, "--no-ui", "--speed", "max", "--db", str(db),
                              "--exclude-conditions", codes], capsys)  # fmt: skip
    assert "250601 rows, 0 bad" in out and "0 late ticks" in out

    async def stored() -> list[Candle]:
        async with CandleStore(db) as store:
            return await store.candles("SPY")

    first = asyncio.run(stored())
    vendor = load_candles(shared_data / "spy_1min_20131007_et.csv", "SPY")
    counts = compare(first, vendor)
    print(f"through `replay`: {counts['exact']}/{len(vendor)} vendor bars exact; {counts}")
    assert counts["exact"] / len(vendor) >= 0.995 and counts["missing"] == 0
    assert f"{len(first)} candle rows" in out

    # replaying again adds nothing: the stored minutes are already closed
    out2 = run_replay_command([spy, "--no-ui", "--db", str(db)], capsys)
    assert asyncio.run(stored()) == first and "250601 late ticks" in out2


def test_replay_command_reproduces_all_xrpeth_candles_in_the_store(
    shared_data: Path, tmp_path: Path, capsys
):
    from tests.replay.test_vendor_bars import compare

    db = tmp_path / "xrp.db"
    out = run_replay_command([str(shared_data / "xrpeth_trades_20191011_20191013_utc.csv"),
                              "--no-ui", "--tz", "UTC", "--db", str(db)], capsys)  # fmt: skip
    assert "12477 rows, 0 bad" in out

    async def stored() -> list[Candle]:
        async with CandleStore(db) as store:
            return await store.candles("XRPETH")

    vendor = load_candles(shared_data / "xrpeth_1min_20191011_20191013_utc.csv", "XRPETH", "UTC")
    counts = compare(asyncio.run(stored()), vendor, rel=1e-9)
    print(f"XRP/ETH through `replay`: {counts}")
    assert counts["exact"] == 2469 and counts["extra"] == 0


def test_replay_command_reports_bad_rows_and_unused_codes(tmp_path: Path, capsys):
    path = tmp_path / "abc_ticks.csv"
    path.write_text("timestamp,price,size,condition\n2024-01-02T15:00:01Z,10,1,@\n"
                    "2024-01-02T15:00:02Z,oops,1,@\n2024-01-02T15:01:03Z,11,1,@\n")  # fmt: skip
    out = run_replay_command([str(path), "--no-ui", "--db", str(tmp_path / "x.db"), "--tz", "UTC",
                              "--exclude-conditions", "Q9"], capsys)  # fmt: skip
    assert "3 rows, 1 bad (lines 3)" in out and "line 3: unparseable" in out
    assert "never seen in the file: Q9" in out and "2 candle rows" in out


def test_replay_command_bad_flags_and_files_raise_usage_errors(tmp_path: Path):
    parser = argparse.ArgumentParser()
    replay_cmd.add_arguments(parser)
    with pytest.raises(UsageError, match="file not found"):
        replay_cmd.run(parser.parse_args([str(tmp_path / "none.csv"), "--db",
                                          str(tmp_path / "x.db")]))  # fmt: skip
    with pytest.raises(UsageError, match="--speed"):
        replay_cmd.run(parser.parse_args([str(tmp_path / "none.csv"), "--speed", "-1"]))


async def test_replay_health_counts_rows_out_of_time_order(tmp_path: Path):
    from slob_tui.engine.engine import LiveTradingEngine

    path = tmp_path / "back.csv"
    path.write_text("timestamp,price,size\n2024-01-02T15:02:00Z,10,1\n"
                    "2024-01-02T15:01:00Z,11,1\n2024-01-02T15:03:00Z,12,1\n")  # fmt: skip
    feed = ReplayFeed(path, symbol="X")
    engine = LiveTradingEngine(feed, store=None, enable_tracker=False)
    await engine.run()
    health = feed.health()
    assert health.counters["rows_read"] == 3 and health.counters["rows_out_of_order"] == 1


class ColumnRecordingSink(RecordingSink):
    """A sink that also takes column chunks (as the engine does at `--speed max`)."""

    async def put_tick_columns(self, chunk: Any) -> None:
        self.ticks.extend(chunk.tuples())


@pytest.mark.parametrize("sink_type", [RecordingSink, ColumnRecordingSink])
async def test_reading_started_before_the_loop_gives_the_same_ticks(tmp_path, sink_type):
    """`start_reading` parses before the engine runs (a headless replay does it while it is
    still starting); the sink gets exactly the ticks of a feed that starts reading in `run`,
    as columns or as tuples, whichever it takes."""
    secs = [k * 0.37 for k in range(3_000)]
    path = tick_file(tmp_path / "aaa_ticks.csv", secs)
    plain = RecordingSink()
    await ReplayFeed(path, tz="UTC", chunk_rows=256, batch_rows=100).run(plain)
    early = ReplayFeed(path, tz="UTC", chunk_rows=256, batch_rows=100)
    early.start_reading()
    sink = sink_type()
    await early.run(sink)
    assert sink.ticks == plain.ticks and len(sink.ticks) == 3_000
    assert early.report.summary() == "3000 rows, 0 bad" and early.state == "finished"
