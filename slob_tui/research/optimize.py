"""One optimize run: cut the windows, ship the candles, search each window, prove each choice."""

from __future__ import annotations

from dataclasses import dataclass

from slob_tui.core.models import Candle
from slob_tui.research.runners import Datasets, Runner, make_runner
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
    """Search and prove; `candles` are one symbol's, in time order, strictly increasing.

    The runner starts on a thread of its own (a Dask client connects and scatters the candles,
    ~0.2 s) while the storage opens (Optuna loads its schema migrations, ~0.15 s) and the
    studies load: the two waits overlap instead of adding up.
    """
    from concurrent.futures import ThreadPoolExecutor

    windows = plan_windows(candles, space, k)
    datasets = datasets_for(candles, windows)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="slob-runner-start") as starter:
        starting = starter.submit(make_runner, datasets, jobs, scheduler)
        runner: Runner | None = None
        try:
            storage = open_storage(settings.storage)
            writer = TrialWriter(storage)
            try:
                studies = [
                    WindowStudy(
                        storage,
                        study_name(
                            settings,
                            space,
                            w,
                            datasets[dataset_name(w.index, "in")],
                            len(windows),
                        ),
                        w,
                        space,
                        settings,
                        writer,
                    )
                    for w in windows
                ]
                runner = starting.result()
                label = runner.label
                choices = search(studies, space, settings, runner, progress)
            finally:
                writer.close()
        finally:
            if runner is None and starting.exception() is None:
                runner = starting.result()  # the search failed before it took the runner
            if runner is not None:
                runner.close()
    return OptimizeResult(settings, space, choices, k is not None, label)
