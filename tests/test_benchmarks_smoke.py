"""The benchmark suite runs, writes well-formed records, and says why a peer is missing.

No timing is asserted: the figures belong to `python -m benchmarks`, not to the test run.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.suite import Record, assert_same_rows, goal, render_table, speedup

REPO = Path(__file__).resolve().parent.parent
KEYS = {"figure", "value", "unit", "peer", "peer_value", "ratio", "goal", "met"}


def run_suite(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def load_records(path: Path) -> tuple[dict, list[dict]]:
    payload = json.loads(path.read_text(encoding="utf-8"))
    return payload["meta"], payload["records"]


def check_record(rec: dict) -> None:
    assert KEYS <= rec.keys(), rec
    assert rec["status"] in ("ok", "skipped"), rec
    if rec["status"] == "skipped":
        assert rec["value"] is None and rec["note"], rec
        return
    assert isinstance(rec["value"], float) and rec["value"] > 0 and math.isfinite(rec["value"])
    if rec["peer_value"] is not None:
        assert rec["peer_value"] > 0
        expected = speedup(rec["value"], rec["peer_value"], rec["higher_is_better"])
        assert rec["ratio"] == pytest.approx(expected)


def test_quick_run_writes_well_formed_json(tmp_path: Path, shared_data: Path) -> None:
    out = tmp_path / "results.json"
    proc = run_suite(
        tmp_path, "--quick", "--reps", "1", "--only", "aggregator", "startup", "--json", str(out)
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    meta, records = load_records(out)
    assert meta["quick"] is True and meta["reps"] == 1 and meta["python"]
    for rec in records:
        check_record(rec)
    by_name = {r["figure"]: r for r in records}
    # The aggregator exists: its figure must run and its candles must have matched the peers'.
    agg = by_name["aggregator ticks/s vs pandas"]
    assert agg["status"] == "ok" and agg["peer_value"] is not None
    assert "aggregator ticks/s vs Nautilus" in by_name
    assert "aggregator ticks/s vs pandas" in proc.stdout  # the printed table


def test_missing_nautilus_is_recorded_with_its_reason(tmp_path: Path, shared_data: Path) -> None:
    """A machine with only the test extra: an import of nautilus_trader fails like this."""
    shadow = tmp_path / "shadow" / "nautilus_trader"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text('raise ImportError("not installed here")\n')
    out = tmp_path / "results.json"
    proc = run_suite(
        tmp_path,
        "--quick",
        "--reps",
        "1",
        "--only",
        "aggregator",
        "--json",
        str(out),
        env={"PYTHONPATH": str(tmp_path / "shadow")},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    meta, records = load_records(out)
    assert "not installed here" in meta["peer_nautilus"]
    nt = next(r for r in records if r["figure"] == "aggregator ticks/s vs Nautilus")
    check_record(nt)
    assert nt["peer_value"] is None and nt["ratio"] is None and nt["met"] is None
    assert "peer unavailable" in nt["note"] and "not installed here" in nt["note"]
    pandas_peer = next(r for r in records if r["figure"] == "aggregator ticks/s vs pandas")
    assert pandas_peer["peer_value"] is not None


def test_missing_data_and_unknown_figure_are_one_line_errors(tmp_path: Path) -> None:
    proc = run_suite(tmp_path, "--data", str(tmp_path / "nowhere"), "--only", "startup")
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "nowhere" in proc.stderr
    assert not (REPO / "benchmarks" / "results.json.tmp").exists()
    proc = run_suite(tmp_path, "--only", "no_such_figure")
    assert proc.returncode == 2 and "unknown figure 'no_such_figure'" in proc.stderr


def test_speedup_is_above_one_when_ours_wins_either_way() -> None:
    assert speedup(8e6, 2e6, True) == 4  # throughput: higher wins
    assert speedup(0.1, 0.4, False) == 4  # seconds: lower wins
    assert speedup(0.4, 0.1, False) == 0.25
    assert speedup(None, 1.0, True) is None and speedup(1.0, 0.0, True) is None


def test_goal_needs_every_part_and_knows_when_it_cannot_tell() -> None:
    assert goal("ticks/s", 5e6, 2.5, min_ratio=2, min_value=4e6) == (
        ">= 2x peer, >= 4.00 Mticks/s",
        True,
    )
    assert goal("ticks/s", 3e6, 2.5, min_ratio=2, min_value=4e6)[1] is False
    assert goal("ticks/s", 5e6, 1.5, min_ratio=2, min_value=4e6)[1] is False
    assert goal("ticks/s", 5e6, None, min_ratio=2)[1] is None
    assert goal("ms", 151.0, max_value=150)[1] is False


def test_candle_equality_check_catches_any_difference() -> None:
    rows = [(0, 1.0, 2.0, 0.5, 1.5, 100.0), (60, 1.5, 1.5, 1.5, 1.5, 10.0)]
    assert_same_rows(rows, list(rows), "peer")
    with pytest.raises(AssertionError, match="count differs"):
        assert_same_rows(rows, rows[:1], "peer")
    with pytest.raises(AssertionError, match="differs from peer"):
        assert_same_rows(rows, [rows[0], (60, 1.5, 1.5, 1.5, 1.5, 10.5)], "peer")
    with pytest.raises(AssertionError, match="differs from peer"):
        assert_same_rows(rows, [rows[0], (120, 1.5, 1.5, 1.5, 1.5, 10.0)], "peer")


def test_table_shows_skips_with_their_reason() -> None:
    text = render_table(
        [
            Record("a", 2e6, "ticks/s", "peer", 1e6, 2.0, ">= 2x peer", True),
            Record("b", None, "", status="skipped", note="part b does not exist yet"),
        ]
    )
    assert "2.00 Mticks/s" in text and "2.00x" in text and "SKIPPED" in text
    assert "b: skipped: part b does not exist yet" in text
