"""One optimize run: cut the windows, ship the candles, search each window, prove each choice."""

from __future__ import annotations

from dataclasses import dataclass

from slob_tui.core.models import Candle
from slob_tui.research.runners import Datasets, make_runner
from slob_tui.research.search import (
    Progress,
    SearchSettings,
    TrialWriter,
    WindowChoice,
    WindowStudy,
    dataset_name,
    open_storage,
    search,
    study_name,
)
from slob_tui.research.space import SearchSpace
from slob_tui.research.windows import Window, walk_forward, whole_span


@dataclass(frozen=True, slots=True)
class OptimizeResult:
    """Everything the report and the JSON need."""

    settings: SearchSettings
    space: SearchSpace
    choices: list[WindowChoice]
    walk_forward: bool
    runner: str


def plan_windows(candles: list[Candle], space: SearchSpace, k: int | None) -> list[Window]:
    """The walk-forward windows (folds by session day in the base's zone), or the whole span."""
    if k is None:
        return whole_span(candles)
    return walk_forward(candles, k, space.base.session_tz)


def datasets_for(candles: list[Candle], windows: list[Window]) -> Datasets:
    """Each window's in-sample and out-of-sample candles, by dataset name."""
    out: Datasets = {}
    for w in windows:
        out[dataset_name(w.index, "in")] = w.in_sample.slice(candles)
        if w.out_of_sample is not None:
            out[dataset_name(w.index, "out")] = w.out_of_sample.slice(candles)
    return out


def optimize(
    candles: list[Candle],
    space: SearchSpace,
    settings: SearchSettings,
    k: int | None,
    jobs: int = 1,
    scheduler: str | None = None,
    progress: Progress | None = None,
) -> OptimizeResult:
    """Search and prove; `candles` are one symbol's, in time order, strictly increasing."""
    windows = plan_windows(candles, space, k)
    datasets = datasets_for(candles, windows)
    storage = open_storage(settings.storage)
    writer = TrialWriter(storage)
    studies = [
        WindowStudy(
            storage,
            study_name(settings, space, w, datasets[dataset_name(w.index, "in")], len(windows)),
            w,
            space,
            settings,
            writer,
        )
        for w in windows
    ]
    try:
        runner = make_runner(datasets, jobs, scheduler)
        try:
            label = runner.label
            choices = search(studies, space, settings, runner, progress)
        finally:
            runner.close()
    finally:
        writer.close()
    return OptimizeResult(settings, space, choices, k is not None, label)
