"""`slob-tui backtest` and `slob-tui parity` end to end on small files written under tmp_path."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from slob_tui.commands import backtest as backtest_cmd
from slob_tui.commands import parity as parity_cmd
from slob_tui.errors import UsageError
from slob_tui.feeds.demo import demo_candles, demo_ticks

from .helpers import sto_ns, worked_example


def _args(module, *argv: str) -> argparse.Namespace:  # noqa: ANN001
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    return parser.parse_args(list(argv))


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S")


def write_candles(path: Path, candles: list) -> Path:  # noqa: ANN001
    rows = ["timestamp,open,high,low,close,volume"]
    rows += [f"{_iso(c.start)},{c.open},{c.high},{c.low},{c.close},{c.volume}" for c in candles]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_backtest_json_has_the_issue_schema(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    f = write_candles(tmp_path / "nq_example.csv", worked_example())
    out = tmp_path / "report.json"
    rc = backtest_cmd.run(_args(backtest_cmd, str(f), "--tz", "UTC", "--json", str(out)))
    assert rc == 0
    text = capsys.readouterr().out
    assert "win rate 100.0%" in text and "equity" in text
    doc = json.loads(out.read_text())
    assert set(doc) == {"params", "setups", "stats"}
    assert doc["params"]["high_confirm"] == 5
    trig = next(s for s in doc["setups"] if s["state"] == "TRIGGERED")
    assert list(trig) == list(backtest_cmd.SETUP_KEYS)
    assert trig["id"] == "NQ-SHORT-20260106T143000Z"
    assert (trig["trigger_time"], trig["entry_time"], trig["exit_time"]) == (
        "2026-01-06T15:31:00Z",
        "2026-01-06T15:32:00Z",
        "2026-01-06T15:55:00Z",
    )
    assert (trig["entry"], trig["stop"], trig["target"], trig["exit"]) == (
        25572.0,
        25593.0,
        25501.0,
        25501.0,
    )
    assert trig["outcome"] == "win" and trig["r_multiple"] == pytest.approx(71 / 21)
    assert doc["stats"]["wins"] == 1 and doc["stats"]["equity"][0][0] == "2026-01-06T15:55:00Z"


def test_backtest_params_override_changes_the_result(tmp_path: Path) -> None:
    f = write_candles(tmp_path / "nq_example.csv", worked_example())
    out = tmp_path / "r.json"
    backtest_cmd.run(
        _args(
            backtest_cmd,
            str(f),
            "--tz",
            "UTC",
            "--param",
            "min_rr=5",
            "--json",
            str(out),
            "--no-plot",
        )
    )
    doc = json.loads(out.read_text())
    assert doc["params"]["min_rr"] == 5.0
    assert doc["stats"]["by_reason"].get("BAD_RR") == 1 and doc["stats"]["trades"] == 0


def test_tick_file_backtests_like_its_candles(tmp_path: Path) -> None:
    start, minutes = sto_ns(9, 0), 9 * 60  # reference session and part of the trade window
    tick_file = tmp_path / "nq_ticks.csv"
    tick_file.write_text(
        "timestamp,price,size\n"
        + "".join(f"{t[1]},{t[2]},{t[3]}\n" for t in demo_ticks(7, start, minutes))
    )
    candle_file = write_candles(tmp_path / "nq_candles.csv", demo_candles(7, start, minutes))
    docs = []
    for f in (tick_file, candle_file):
        out = tmp_path / f"{f.stem}.json"
        assert (
            backtest_cmd.run(
                _args(backtest_cmd, str(f), "--tz", "UTC", "--json", str(out), "--no-plot")
            )
            == 0
        )
        docs.append(json.loads(out.read_text()))
    assert docs[0]["setups"] == docs[1]["setups"]
    assert docs[0]["stats"]["by_state"].get("TRIGGERED", 0) >= 1


def test_parity_command_passes_and_fails_on_a_violation(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = write_candles(tmp_path / "nq_example.csv", worked_example())
    assert parity_cmd.run(_args(parity_cmd, str(f), "--tz", "UTC")) == 0
    assert "verdict: PASS" in capsys.readouterr().out
    import slob_tui.strategy.parity as parity_mod

    real = parity_mod.reference_setups
    monkeypatch.setattr(parity_mod, "reference_setups", lambda c, p: real(c, p)[1:])
    assert parity_cmd.run(_args(parity_cmd, str(f), "--tz", "UTC")) == 1
    out = capsys.readouterr().out
    assert "VIOLATION" in out and "verdict: FAIL" in out


def _junk(path: Path) -> Path:
    path.write_text("timestamp,open,high,low,close,volume\nnot-a-time,x,1,1,1,1\n")
    return path


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: [str(d / "missing.csv")], "file not found"),
        (lambda d: [str(_junk(d / "nq_e.csv")), "--tz", "UTC"], "no candles"),
        (
            lambda d: [str(write_candles(d / "nq_a.csv", worked_example())), "--param", "zzz=1"],
            "unknown parameter 'zzz'",
        ),
        (
            lambda d: [
                str(write_candles(d / "nq_b.csv", worked_example())),
                "--json",
                str(d / "no" / "such" / "dir" / "x.json"),
                "--no-plot",
            ],
            "cannot write",
        ),
    ],
)
def test_bad_input_is_one_line_usage_error(tmp_path: Path, setup, message: str) -> None:  # noqa: ANN001
    with pytest.raises(UsageError, match=message) as info:
        backtest_cmd.run(_args(backtest_cmd, *setup(tmp_path)))
    assert "\n" not in str(info.value)
