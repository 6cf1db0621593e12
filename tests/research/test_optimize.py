"""`slob-tui optimize` end to end on real SQLite storage: the known answer, the out-of-sample
wall, resuming, the JSON's shape, the `--param` line, and bad input."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import optuna
import pytest

from slob_tui.cli import main
from slob_tui.commands._strategy_data import load_engine_candles
from slob_tui.research.objectives import objective_named
from slob_tui.research.optimize import datasets_for, optimize, plan_windows
from slob_tui.research.report import to_json
from slob_tui.research.search import SearchSettings, dataset_name, open_storage, study_name
from slob_tui.research.space import FloatRange, SearchSpace, default_space
from slob_tui.strategy.backtest import backtest
from slob_tui.strategy.params import SlobParams, parse_param_args
from tests.research.markets import NQ_FILE, SPIKE, spiky_days, write_csv

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
ONLY_STOP = 'search = ["sl_buffer"]\n[params]\nsl_buffer = [0.0, 8.0]\n'


@pytest.fixture
def spiky(tmp_path: Path) -> tuple[Path, Path]:
    space = tmp_path / "space.toml"
    space.write_text(ONLY_STOP, encoding="utf-8")
    return write_csv(spiky_days(), tmp_path / "spiky_1min.csv"), space


def _optimize(tmp_path: Path, *args: str) -> tuple[int, dict]:
    out = tmp_path / "out.json"
    code = main(["optimize", *args, "--storage", f"sqlite:///{tmp_path / 'st.db'}",
                 "--json", str(out), "--no-plot"])  # fmt: skip
    return code, json.loads(out.read_text(encoding="utf-8")) if code == 0 else {}


def test_finds_the_known_best_stop_buffer_and_backtest_accepts_it(
    tmp_path: Path, spiky: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    csv, space = spiky
    common = [str(csv), "--symbol", "NQ", "--tz", "UTC", "--space", str(space)]
    code, doc = _optimize(tmp_path, *common, "--trials", "24", "--min-trades", "2")
    assert code == 0
    chosen = doc["best_params"]["sl_buffer"]
    assert SPIKE < chosen <= SPIKE + 1.0  # the narrowest buffer that survives the spike
    (window,) = doc["windows"]
    assert window["out_of_sample"] is None and window["trades"]["in_sample"] == 8
    assert window["in_sample_score"] == pytest.approx(8 * 71 / (20 + chosen), abs=1e-5)

    line = capsys.readouterr().out.split("for `slob-tui backtest`:\n")[1].splitlines()[0]
    flags = line.split()
    assert flags == ["--param", f"sl_buffer={round(chosen, 6)!r}"]
    assert main(["backtest", str(csv), "--symbol", "NQ", "--tz", "UTC", "--no-plot", *flags]) == 0
    params = SlobParams.from_overrides(parse_param_args(flags[1::2]))
    assert backtest(spiky_days(), "NQ", params).stats["wins"] == 8


def test_walk_forward_json_has_the_issues_shape(tmp_path: Path, spiky: tuple[Path, Path]) -> None:
    csv, space = spiky
    code, doc = _optimize(tmp_path, str(csv), "--symbol", "NQ", "--tz", "UTC", "--space",
                          str(space), "--trials", "16", "--min-trades", "1", "--walk-forward",
                          "3", "--objective", "expectancy", "--seed", "7")  # fmt: skip
    assert code == 0
    assert list(doc) == ["objective", "seed", "trials", "best_params", "windows"]
    assert (doc["objective"], doc["seed"], doc["trials"]) == ("expectancy", 7, 16)
    assert len(doc["windows"]) == 3
    for w in doc["windows"]:
        assert list(w) == ["in_sample", "out_of_sample", "params", "in_sample_score",
                           "out_of_sample_score", "trades"]  # fmt: skip
        assert all(ISO.match(t) for t in w["in_sample"] + w["out_of_sample"])
        assert w["in_sample"][1] <= w["out_of_sample"][0]
        assert w["params"]["sl_buffer"] > SPIKE  # every window finds a surviving stop
        assert w["trades"] == {"in_sample": 2, "out_of_sample": 2}
        assert w["out_of_sample_score"] == pytest.approx(71 / (20 + w["params"]["sl_buffer"]))
    assert doc["best_params"] == doc["windows"][-1]["params"]


def _nq_settings(tmp_path: Path, name: str, trials: int = 8) -> SearchSettings:
    return SearchSettings("NQ", objective_named("total_r"), 1, trials, 3,
                          f"sqlite:///{tmp_path / name}")  # fmt: skip


def test_out_of_sample_candles_cannot_change_the_windows_choice(
    tmp_path: Path, shared_data: Path
) -> None:
    candles = load_engine_candles(str(shared_data / NQ_FILE), "NQ", "America/New_York")
    space = default_space(SlobParams())
    first = optimize(candles, space, _nq_settings(tmp_path, "a.db"), 2)
    oos = first.choices[0].window.out_of_sample
    assert oos is not None and first.choices[0].values is not None
    # Play window 1's out-of-sample span backwards: other setups, other trades.
    changed = list(candles)
    for i in range(oos.lo, oos.hi):
        c, src = candles[i], candles[oos.hi - 1 - (i - oos.lo)]
        changed[i] = replace(c, open=src.close, high=src.high, low=src.low, close=src.open)
    second = optimize(changed, space, _nq_settings(tmp_path, "b.db"), 2)
    a, b = first.choices[0], second.choices[0]
    assert a.values == b.values
    assert a.in_sample == b.in_sample
    assert a.out_of_sample != b.out_of_sample  # the change did reach the out-of-sample proof


def test_an_interrupted_study_resumes_to_the_same_result(tmp_path: Path) -> None:
    candles = spiky_days()
    space = SearchSpace(SlobParams(), {"sl_buffer": FloatRange(0.0, 8.0)})
    fresh = to_json(optimize(candles, space, _nq_settings(tmp_path, "fresh.db", 24), 2))

    # A run stopped while its second batch was being stored: 8 + 3 trials per window on disk.
    cut = _nq_settings(tmp_path, "resumed.db", 11)
    optimize(candles, space, cut, 2)
    settings = replace(cut, trials=24)
    resumed = to_json(optimize(candles, space, settings, 2))
    assert resumed == fresh

    windows = plan_windows(candles, space, 2)
    data = datasets_for(candles, windows)
    storage = open_storage(settings.storage)
    for w in windows:
        name = study_name(settings, space, w, data[dataset_name(w.index, "in")], len(windows))
        study = optuna.load_study(study_name=name, storage=storage)
        numbers = [t.number for t in study.get_trials()]
        assert numbers == list(range(24))  # each trial stored once, none lost


def test_resume_keeps_unusable_trials_unusable(tmp_path: Path, shared_data: Path) -> None:
    """On NQ most settings trade under 3 times in a fold: pruned trials must reload as such."""
    candles = load_engine_candles(str(shared_data / NQ_FILE), "NQ", "America/New_York")
    space = default_space(SlobParams())
    settings = replace(_nq_settings(tmp_path, "fresh.db", 16), min_trades=3)
    fresh = to_json(optimize(candles, space, settings, 1))
    cut = replace(settings, storage=f"sqlite:///{tmp_path / 'cut.db'}")
    optimize(candles, space, replace(cut, trials=11), 1)
    assert to_json(optimize(candles, space, cut, 1)) == fresh
    (summary,) = optuna.get_all_study_summaries(open_storage(cut.storage))
    states = [
        t.state
        for t in optuna.load_study(
            study_name=summary.study_name, storage=open_storage(cut.storage)
        ).get_trials()
    ]
    assert len(states) == 16 and optuna.trial.TrialState.PRUNED in states


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--param", "bogus=1"], "unknown parameter 'bogus'"),
        (["--walk-forward", "8"], "too few candles for 8 walk-forward windows"),
        (["--objective", "sharpe"], "unknown objective 'sharpe'"),
        (["--trials", "0"], "--trials must be at least 1"),
        (["--storage", "nosuchdb://x"], "cannot open Optuna storage"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, spiky: tuple[Path, Path], capsys: pytest.CaptureFixture[str],
    extra: list[str], message: str,
) -> None:  # fmt: skip
    csv, _ = spiky
    args = ["optimize", str(csv), "--symbol", "NQ", "--tz", "UTC", "--trials", "8",
            "--storage", f"sqlite:///{tmp_path / 'st.db'}", *extra]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_empty_range_in_the_space_file(
    tmp_path: Path, spiky: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    csv, space = spiky
    space.write_text("[params]\nretrace_pct = [0.6, 0.2]\n", encoding="utf-8")
    assert main(["optimize", str(csv), "--tz", "UTC", "--space", str(space)]) == 2
    assert "retrace_pct: empty range [0.6, 0.2]" in capsys.readouterr().err
