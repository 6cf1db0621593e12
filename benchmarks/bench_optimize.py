"""Parameter search: trials/s of `slob-tui optimize` against bare backtests/s of the same
parameter sets, on the NQ file, in this process and on a two-worker Dask cluster on loopback.

    .venv/bin/python -m benchmarks.bench_optimize [--data ../shared/data] [--quick]

Also registered in `python -m benchmarks` as the figure `optimize`. The search is timed whole
(storage, studies, runner set-up, every trial, the final proof backtest); the peer runs the very
parameter sets the search evaluated, through the same runner, with nothing around them. The
issue's goal: the search costs at most twice the backtests it runs (ratio >= 0.5).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.inputs import NQ_CANDLES, ours, tmp_path
from benchmarks.suite import Context, Record, Skip, figure, goal, locate_data, rate, render_table

TRIALS = 64
QUICK_TRIALS = 16


def engine_candles(ctx: Context) -> list[Any]:
    """The NQ file's candles as `slob-tui optimize` loads them (through the engine's aggregator).

    Not `benchmarks.inputs.load_candles`: under pandas 3 its timestamps are microseconds read
    as nanoseconds, so every candle falls in one quarter hour of 1970, no session opens and
    each backtest finds nothing (a cheap, meaningless trial).
    """

    def build() -> list[Any]:
        from slob_tui.commands._strategy_data import load_engine_candles

        path = ctx.data_dir / NQ_CANDLES
        if not path.is_file():
            raise Skip(f"{path} is missing")
        return load_engine_candles(str(path), "NQ", "America/New_York")

    return ctx.cached(f"engine-candles:{NQ_CANDLES}", build)


def _search(candles: list[Any], trials: int, storage: Path, scheduler: str | None) -> Any:
    """Seconds of one whole search without walk-forward, and the parameter sets it tried.

    Only `optimize` is timed; reading the trials back from storage for the peer is not.
    """
    import time

    import optuna

    from slob_tui.research.objectives import objective_named
    from slob_tui.research.optimize import optimize
    from slob_tui.research.search import SearchSettings, open_storage
    from slob_tui.research.space import default_space
    from slob_tui.strategy.params import SlobParams

    space = default_space(SlobParams())
    url = f"sqlite:///{storage}"
    settings = SearchSettings("NQ", objective_named("total_r"), 1, trials, 0, url)
    start = time.perf_counter()
    optimize(candles, space, settings, None, 1, scheduler)
    seconds = time.perf_counter() - start
    store = open_storage(url)
    (summary,) = optuna.get_all_study_summaries(store)
    study = optuna.load_study(study_name=summary.study_name, storage=store)
    return seconds, space, [t.params for t in study.get_trials(deepcopy=False)]


def _bare(candles: list[Any], space: Any, values: list[dict[str, Any]], scheduler: str | None
          ) -> tuple[float, int]:  # fmt: skip
    """Seconds to backtest every parameter set once through the same kind of runner."""
    import time

    from slob_tui.errors import UsageError
    from slob_tui.research.evaluate import EvalRequest
    from slob_tui.research.runners import make_runner

    requests = []
    for v in values:
        try:
            requests.append(EvalRequest("w0-in", "NQ", space.params_for(v), "total_r", 1))
        except UsageError:
            continue
    runner = make_runner({"w0-in": candles}, 1, scheduler)
    try:
        runner.run(requests[:2])  # workers warm, candles shipped: only the backtests are timed
        start = time.perf_counter()
        runner.run(requests)
        return time.perf_counter() - start, len(requests)
    finally:
        runner.close()


def measure(ctx: Context, label: str, scheduler: str | None) -> Record:
    """Median trials/s and bare backtests/s for one place of work."""
    from slob_tui.research.search import open_storage

    candles = engine_candles(ctx)
    trials = QUICK_TRIALS if ctx.quick else TRIALS
    open_storage(f"sqlite:///{tmp_path(ctx, 'optimize-warm.db')}")  # imports, once a process
    search_s: list[float] = []
    bare_s: list[float] = []
    for rep in range(ctx.reps):
        store = tmp_path(ctx, f"optimize-{label.split()[0]}-{rep}.db")
        seconds, space, values = _search(candles, trials, store, scheduler)
        search_s.append(seconds)
        seconds, count = _bare(candles, space, values, scheduler)
        bare_s.append(seconds * len(values) / count)  # invalid combinations cost no backtest
    ours_rate, peer_rate = rate(trials, search_s), rate(trials, bare_s)
    ratio = ours_rate / peer_rate if ours_rate and peer_rate else None
    text, met = goal("trials/s", ours_rate, ratio=ratio, min_ratio=0.5)
    return Record(
        f"optimize NQ trials/s, {label}",
        ours_rate,
        "trials/s",
        "bare backtests of the same parameter sets",
        peer_rate,
        ratio,
        text,
        met,
        note=f"{len(candles):,} candles (engine-loaded), {trials} trials, multivariate TPE "
        "with one fit per batch of 8, "
        "SQLite storage; search timed whole (storage, studies, runner set-up, trials, proof) "
        "after a first import of Optuna and SQLAlchemy",
        reps=ctx.reps,
    )


@figure("optimize", "optimize trials/s vs bare backtests/s (NQ), in process and on 2 Dask workers")
def optimize_figures(ctx: Context) -> Iterator[Record]:
    ours("slob_tui.research.optimize", "optimize")
    yield measure(ctx, "in process", None)
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:  # fmt: skip
        yield measure(ctx, "2 Dask workers", cluster.scheduler_address)


def main(argv: list[str] | None = None) -> int:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--quick", action="store_true", help="16 trials, one repetition")
    parser.add_argument("--reps", type=int, default=None)
    args = parser.parse_args(argv)
    try:
        data = locate_data(args.data)
    except Exception as exc:  # noqa: BLE001 - DataMissing: one line
        print(f"bench_optimize: error: {exc}", file=sys.stderr)
        return 2
    reps = args.reps or (1 if args.quick else 3)
    with tempfile.TemporaryDirectory(prefix="slob-bench-") as scratch:
        ctx = Context(data_dir=data, quick=args.quick, reps=reps, work_dir=Path(scratch))
        print(render_table(list(optimize_figures(ctx))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
