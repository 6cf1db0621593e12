"""The real command in a subprocess: headless demo, graceful stop on each signal, one-line
errors for bad input."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def slob(*args: str, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200", "SLOB_DB_PATH": "unused.db", **kw.pop("env", {})}
    return subprocess.run(
        [sys.executable, "-m", "slob_tui", *args],
        cwd=kw.pop("cwd", ROOT),
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        **kw,
    )


def stored_candles(db: Path) -> list[tuple[str, int]]:
    con = sqlite3.connect(db)
    try:
        return con.execute(
            "SELECT timestamp, backfilled FROM candles ORDER BY timestamp"
        ).fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_each_signal_stops_gracefully_and_flushes_the_forming_candle(tmp_path, sig):
    db = tmp_path / "demo.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "slob_tui", "--no-ui", "--speed", "600", "--db", str(db)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    lines = []
    deadline = time.monotonic() + 60
    live_candles = 0
    while time.monotonic() < deadline and live_candles < 3:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        live_candles += " NQ O " in line
    assert live_candles >= 3, "".join(lines)
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=60)
    lines.append(out)
    text = "".join(lines)
    assert proc.returncode == 0, text
    assert f"signal {sig.name}" in text
    rows = stored_candles(db)
    live = [r for r in rows if not r[1]]
    history = [r for r in rows if r[1]]
    assert len(history) > 300  # the demo's reference session
    # every live candle printed made it to disk, plus the one still forming at the signal
    assert len(live) >= live_candles + 1
    assert "ENGINE_STOPPED" in text


def test_duration_run_reports_its_counts(tmp_path):
    result = slob("--no-ui", "--duration", "3", "--speed", "300", "--db", str(tmp_path / "d.db"))
    assert result.returncode == 0, result.stderr
    assert "stopped (duration elapsed)" in result.stdout
    assert "history candles loaded" in result.stdout


@pytest.mark.parametrize(
    "args,needle",
    [
        (["replay", "no/such/file.csv"], "no/such/file.csv"),
        (["--no-ui", "--duration", "-1"], "--duration"),
        (["--no-ui", "--feed", "alpaca"], "ALPACA_API_KEY"),
        (["backtest", "no_file.csv"], "no_file.csv"),
        (["validate", "missing.csv.gz"], "missing.csv.gz"),
        (["check", "--minutes", "0"], "--minutes"),
        (["--no-ui", "--live"], "--i-understand-live-trading"),
        (["--no-ui", "--speed", "-1"], "--speed must be a positive number, got '-1'"),
        (["--no-ui", "--speed", "0"], "--speed must be a positive number, got '0'"),
        (["--no-ui", "--speed", "max"], "max is for file replays"),
        (["check", "--speed", "-1"], "--speed must be a positive number"),
        (["replay", "x.csv", "--no-ui", "--speed", "0"], "positive number or max"),
        (["replay", "x.csv", "--no-ui", "--speed", "-1"], "positive number or max"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, needle):
    (tmp_path / "x.csv").write_text("timestamp,price,size\n2024-01-02T15:00:01Z,10,1\n")
    result = slob(*args, cwd=tmp_path)
    assert result.returncode == 2, (result.stdout, result.stderr)
    err = result.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("slob-tui: error:") and needle in err[0], err
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("url", ["notaurl", "redis://:hunter2@host:notaport/0", "http://h:1"])
def test_a_malformed_redis_url_is_one_line_and_exit_2_without_its_value(tmp_path, url):
    result = slob("--no-ui", "--duration", "1", cwd=tmp_path, env={"REDIS_URL": url})
    assert result.returncode == 2, (result.stdout, result.stderr)
    err = result.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("slob-tui: error: REDIS_URL"), err
    assert url not in result.stderr and "hunter2" not in result.stderr  # may hold a password
    assert not (tmp_path / "unused.db").exists()


def test_a_replay_at_max_speed_still_runs(tmp_path):
    (tmp_path / "x.csv").write_text("timestamp,price,size\n2024-01-02T15:00:01Z,10,1\n")
    result = slob("replay", "x.csv", "--no-ui", "--speed", "max", "--db", "r.db", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "sent 1 ticks" in result.stdout


def test_unknown_columns_name_the_problem(tmp_path):
    bad = tmp_path / "weird.csv"
    bad.write_text("when,what\n1,2\n")
    result = slob("replay", str(bad), "--no-ui", "--db", str(tmp_path / "x.db"), cwd=tmp_path)
    assert result.returncode == 2
    assert "column" in result.stderr.lower() and "Traceback" not in result.stderr


def test_help_lists_every_command():
    result = slob("--help")
    assert result.returncode == 0
    for name in ("replay", "backtest", "check", "validate", "flatten", "parity", "--no-ui"):
        assert name in result.stdout


def test_help_builds_every_parser_without_the_engine_or_numpy():
    """`--help` builds every subcommand's parser: the command modules import the standard
    library only at their top (numpy and the file readers came in through one helper's import
    and cost 35 ms of every start)."""
    probe = (
        "import sys, contextlib, io\n"
        "from slob_tui.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    main(['--help'])\n"
        "mods = sorted(m for m in sys.modules if m.startswith(('numpy', 'slob_tui')))\n"
        "print(' '.join(mods))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout.split()  # fmt: skip
    light = ("slob_tui.cli", "slob_tui.errors", "slob_tui.commands")
    assert out and all(m == "slob_tui" or m.startswith(light) for m in out), out


def test_output_into_a_closed_pipe_ends_quietly(tmp_path):
    """A reader that stops early (`| head`) ends the command with status 1 and no traceback."""
    ticks = tmp_path / "x_ticks.csv"
    ticks.write_text("timestamp,price,size\n2024-01-02T15:00:01Z,10,1\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "slob_tui", "replay", str(ticks), "--no-ui",
         "--db", str(tmp_path / "x.db")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the summary is written
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 1
    assert "Traceback" not in err and "BrokenPipe" not in err, err


@pytest.mark.parametrize("args", [[], ["replay", "x.csv"]])
def test_the_console_without_a_terminal_says_to_use_no_ui(tmp_path, args):
    (tmp_path / "x.csv").write_text("timestamp,price,size\n2024-01-02T15:00:01Z,10,1\n")
    result = slob(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert "--no-ui" in result.stderr and "terminal" in result.stderr


def test_a_second_engine_on_the_same_database_is_refused_naming_the_first(tmp_path):
    """Two engines on one file would overwrite each other's candles: the second exits 2 with
    the running one's pid, and once the first is gone the file is free again."""
    db = tmp_path / "one.db"
    first = subprocess.Popen(
        [sys.executable, "-m", "slob_tui", "--no-ui", "--speed", "600", "--db", str(db)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    try:
        lines = []
        while True:  # running once it prints a live candle
            line = first.stdout.readline()
            assert line, "".join(lines)
            lines.append(line)
            if " NQ O " in line:
                break
        second = slob("--no-ui", "--duration", "5", "--db", str(db), cwd=tmp_path)
        assert second.returncode == 2, second.stdout + second.stderr
        assert f"in use by another engine (pid {first.pid})" in second.stderr
        assert second.stderr.count("\n") == 1 and "Traceback" not in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=60)
    assert first.returncode == 0
    again = slob("--no-ui", "--duration", "1", "--db", str(db), cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
