"""The file commands (backtest, validate, parity, replay) as a user meets them: what they print
and their exit status, for empty, hostile, backwards and ordinary files."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from slob_tui.cli import main

COMMANDS = ("backtest", "validate", "parity", "replay")
MiB = 1 << 20


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run in an empty folder (no .env) with no live database or Redis configured."""
    monkeypatch.chdir(tmp_path)
    for name in ("SLOB_DB_PATH", "REDIS_URL", "SLOB_TZ", "SLOB_FEED"):
        monkeypatch.delenv(name, raising=False)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def argv_for(command: str, path: Path) -> list[str]:
    if command == "replay":
        return [command, str(path), "--no-ui"]
    if command == "backtest":
        return [command, str(path), "--no-plot"]
    return [command, str(path)]


def assert_one_line_error(code: int, err: str, needle: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1, lines
    assert lines[0].startswith("slob-tui: error:") and needle in lines[0], lines
    assert "Traceback" not in err


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    "header", ["timestamp,open,high,low,close,volume\n", "timestamp,price,size\n\n\n"]
)
def test_a_file_with_only_a_header_is_one_line_and_exit_2(capsys, tmp_path, command, header):
    path = tmp_path / "empty.csv"
    path.write_text(header)
    code, out, err = run(capsys, *argv_for(command, path))
    assert_one_line_error(code, err, "no data rows")
    assert not (tmp_path / "data").exists()  # nothing was created for a file not read


def long_line_file(path: Path) -> Path:
    """A tick file whose second row is 3 MiB without a newline."""
    with open(path, "wb") as fh:
        fh.write(b"timestamp,price,size\n2024-01-02T15:00:01Z,10,1\n")
        fh.write(b"7" * (3 * MiB))
    return path


def long_header_file(path: Path) -> Path:
    path.write_bytes(b"timestamp," + b"x" * (2 * MiB))
    return path


def gzip_bomb(path: Path) -> Path:
    """80 KiB of gzip that expands to 40 MiB of candle rows: past 200:1 after 8 MiB."""
    row = b"2024-01-02 10:00:00,1,1,1,1\n" * 40_000
    with gzip.open(path, "wb", compresslevel=9) as fh:
        fh.write(b"timestamp,open,high,low,close\n")
        for _ in range(40):
            fh.write(row)
    assert path.stat().st_size < 200_000
    return path


def gzip_long_line(path: Path) -> Path:
    """A small gzip tick file whose third line is 64 MiB of zeros without a newline."""
    with gzip.open(path, "wb", compresslevel=9) as fh:
        fh.write(b"timestamp,price,size\n2024-01-02T15:00:01Z,10,1\n")
        zeros = b"0" * MiB
        for _ in range(64):
            fh.write(zeros)
    return path


def gzip_cut_short(path: Path) -> Path:
    """A tick file's gzip cut in half, as an interrupted download leaves it."""
    rows = "".join(f"2024-01-02T15:{i // 60 % 60:02d}:{i % 60:02d}Z,10,1\n" for i in range(20_000))
    data = gzip.compress(("timestamp,price,size\n" + rows).encode())
    path.write_bytes(data[: len(data) // 2])
    return path


def gzip_bad_checksum(path: Path) -> Path:
    """A whole tick file's gzip with one bit of its trailer's CRC flipped."""
    data = gzip.compress(b"timestamp,price,size\n2024-01-02T15:00:01Z,10,1\n")
    path.write_bytes(data[:-8] + bytes([data[-8] ^ 1]) + data[-7:])
    return path


HOSTILE = {
    "long.csv": (long_line_file, "line 3 is longer than 1 MiB"),
    "header.csv": (long_header_file, "line 1 is longer than 1 MiB"),
    "bomb.csv.gz": (gzip_bomb, "expands more than 200 times"),
    "zeros.csv.gz": (gzip_long_line, "line 3 is longer than 1 MiB"),
    "cut.csv.gz": (gzip_cut_short, "the gzip data ends before its end marker"),
    "crc.csv.gz": (gzip_bad_checksum, "incorrect data check"),
}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_files_are_one_line_and_exit_2(capsys, tmp_path, command, name):
    make, needle = HOSTILE[name]
    path = make(tmp_path / name)
    code, out, err = run(capsys, *argv_for(command, path))
    assert_one_line_error(code, err, needle)
    assert name in err


DESCENDING_CANDLES = """timestamp,open,high,low,close,volume
2024-01-02 10:03:00,103,104,102,103.5,10
2024-01-02 10:02:00,102,103,101,102.5,10
2024-01-02 10:01:00,101,102,100,101.5,10
2024-01-02 10:00:00,100,101,99,100.5,10
"""
DESCENDING_TICKS = """timestamp,price,size
2024-01-02 10:03:10,103,1
2024-01-02 10:02:10,102,1
2024-01-02 10:01:10,101,1
2024-01-02 10:00:10,100,1
"""
BACKWARDS = "3 of 4 rows out of time order"
FIRST_CANDLE = "first at line 3: 2024-01-02 10:02:00 after 2024-01-02 10:03:00 (America/New_York)"
FIRST_TICK = "first at line 3: 2024-01-02 10:02:10 after 2024-01-02 10:03:10 (America/New_York)"


@pytest.mark.parametrize("command", ["backtest", "validate", "parity"])
@pytest.mark.parametrize(
    ("content", "first", "dropped"),
    [
        (DESCENDING_CANDLES, FIRST_CANDLE, "dropped, as live: 3 candle rows at or before"),
        (DESCENDING_TICKS, FIRST_TICK, "dropped, as live: 3 ticks of a minute already closed"),
    ],
)
def test_rows_going_back_in_time_are_named_with_counts(
    capsys, tmp_path, command, content, first, dropped
):
    path = tmp_path / "desc.csv"
    path.write_text(content)
    code, out, err = run(capsys, *argv_for(command, path))
    assert code == 0, err
    assert BACKWARDS in out and first in out, out
    assert "no findings" not in out
    if command != "validate":
        assert dropped in out, out


def test_validate_json_carries_the_time_order(capsys, tmp_path):
    import json

    path = tmp_path / "desc.csv"
    path.write_text(DESCENDING_CANDLES)
    code, _, err = run(capsys, "validate", str(path), "--json", str(tmp_path / "r.json"))
    assert code == 0, err
    order = json.loads((tmp_path / "r.json").read_text())["time_order"]
    assert order["rows_out_of_order"] == 3 and order["first_out_of_order"]["line"] == 3


def test_in_order_files_report_no_order_problem(capsys, shared_data):
    code, out, err = run(capsys, "validate", str(shared_data / "spy_1min_20131007_et.csv"))
    assert code == 0, err
    assert "out of time order" not in out and "repeat the minute" not in out


def test_backtest_says_how_many_unreadable_rows_it_skipped(capsys, tmp_path):
    path = tmp_path / "rep.csv"
    path.write_text(
        "timestamp,open,high,low,close,volume\n"
        "2024-01-02 10:00:00,1,2,0.5,1.5,1\n"
        "2024-01-02 10:01:00,1,2,0.5,1.5,1\n"
        "2024-01-02 10:01:00,1,2,0.5,1.5,1\n"
        "not a time,1,1,1,1,1\n"
    )
    code, out, err = run(capsys, "backtest", str(path), "--no-plot")
    assert code == 0, err
    assert "1 unreadable row skipped (line 5: unparseable time or price)" in out
    assert "1 row repeats the minute of a row above; first at line 4" in out


def test_backtest_prints_entries_and_exits_in_the_file_zone(capsys, tmp_path, shared_data):
    """The NQ file is New York time; its trades print at those times, labelled, not in UTC."""
    import json
    from datetime import datetime
    from zoneinfo import ZoneInfo

    doc = tmp_path / "bt.json"
    nq = shared_data / "nq_1min_20231119_20231204_et.csv"
    tz = "America/New_York"
    code, out, err = run(capsys, "backtest", str(nq), "--no-plot", "--tz", tz, "--json", str(doc))
    assert code == 0, err
    assert f"trades (times in {tz})" in out
    header = next(line for line in out.splitlines() if "entry time" in line).split()
    assert header[:2] == ["entry", "time"] and "exit" in header and header.count("time") == 2
    trades = [s for s in json.loads(doc.read_text())["setups"] if s["outcome"] in ("win", "loss")]
    assert trades

    def local(iso: str) -> str:
        utc = datetime.fromisoformat(iso.replace("Z", "+00:00"))
        return utc.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")

    rows = [line.split() for line in out.splitlines()]
    for s in trades:
        entry_day, entry_time = local(s["entry_time"]).split()
        exit_day, exit_time = local(s["exit_time"]).split()
        row = next((r for r in rows if r[:2] == [entry_day, entry_time] and exit_time in r), None)
        assert row is not None, (s, out)
        assert float(row[row.index(exit_time) + 1]) == s["exit"]
        assert row[row.index(exit_time) + 2] == s["outcome"]


def test_piped_backtest_output_has_no_colour_codes(tmp_path, shared_data):
    import os
    import subprocess
    import sys

    nq = shared_data / "nq_1min_20231119_20231204_et.csv"
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "FORCE_COLOR")}
    result = subprocess.run([sys.executable, "-m", "slob_tui", "backtest", str(nq)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300, env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "equity (cumulative R per closed trade)" in result.stdout
    assert "loss" in result.stdout and "exit time" in result.stdout
    assert "\x1b" not in result.stdout


def kill_switch_database(path: Path) -> bytes:
    """A live database whose kill switch the console left on; returns its bytes."""
    import asyncio

    from slob_tui.storage.state import StateManager

    async def make() -> None:
        state = await StateManager(path).open()
        try:
            await state.set_value("kill_switch", {"reason": "left on from the console"})
        finally:
            await state.close()

    asyncio.run(make())
    return path.read_bytes()


def test_replay_never_touches_the_live_database_or_redis(
    capsys, tmp_path, shared_data, monkeypatch
):
    live = tmp_path / "live.db"
    before = kill_switch_database(live)
    monkeypatch.setenv("SLOB_DB_PATH", str(live))
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # nothing listens there
    spy = str(shared_data / "spy_1min_20131007_et.csv")
    code, out, err = run(capsys, "replay", spy, "--no-ui")
    assert code == 0, err
    assert "setups: 6 started, 1 triggered, 5 invalidated; orders: 2 fills, 0 rejected" in out
    assert "trades: 1 closed (0 won), P&L -0.02 (paper)" in out
    assert "store a temporary database, deleted now (--db FILE keeps one): 907 candle rows" in out
    assert live.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["live.db"]

    # named with --db, the live database is used, and its kill switch blocks the entry
    code, out, err = run(capsys, "replay", spy, "--no-ui", "--db", str(live))
    assert code == 0, err
    assert "orders: 0 fills, 1 rejected" in out and "trades: 0 closed" in out


def test_replay_names_backward_rows_instead_of_calling_them_duplicates(capsys, tmp_path):
    candles = tmp_path / "desc.csv"
    candles.write_text(DESCENDING_CANDLES)
    code, out, err = run(capsys, "replay", str(candles), "--no-ui")
    assert code == 0, err
    assert BACKWARDS in out and FIRST_CANDLE in out
    assert (
        "3 candle rows dropped (at or before a minute already closed): 3 out of time order, "
        "0 repeated minutes, 0 already stored"
    ) in out

    ticks = tmp_path / "desct.csv"
    ticks.write_text(DESCENDING_TICKS)
    code, out, err = run(capsys, "replay", str(ticks), "--no-ui")
    assert code == 0, err
    assert BACKWARDS in out and FIRST_TICK in out
    assert "validator: stale_ts 3; 3 ticks rejected" in out


def test_replay_failing_mid_file_prints_its_error_once(tmp_path):
    """The engine's 'feed failed' log line is not printed beside the command's own line."""
    import os
    import subprocess
    import sys

    path = gzip_bomb(tmp_path / "bomb.csv.gz")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLOB_", "REDIS_"))}
    result = subprocess.run([sys.executable, "-m", "slob_tui", "replay", str(path), "--no-ui"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300,
                            env=env)  # fmt: skip
    assert_one_line_error(result.returncode, result.stderr, "expands more than 200 times")
