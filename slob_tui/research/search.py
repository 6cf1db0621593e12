"""The seeded search: one Optuna study per window, asked and told in fixed batches.

Reproducibility rests on three choices (docs/OPTIMIZE.md):

- The sampler is TPE, rebuilt for every ask with a seed derived from (seed, window, trial
  number), so a trial's draw depends only on those and on the trials told before its batch,
  never on which process asked first or on a sampler's hidden state (which storage loses).
- Trials are asked in batches of `BATCH` (a constant, not `--jobs`): every ask of a batch
  sees the same history, the batch is evaluated anywhere, and results are told in trial order.
- The unit of parallel work is one trial's backtest; all windows' batches go out together.

An interrupted study resumes: trials asked but never told are evaluated again (their
parameters are in the storage), the rest of their batch is asked, and the search goes on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slob_tui.core.models import Candle
from slob_tui.errors import SlobError, UsageError
from slob_tui.research.evaluate import EvalRequest, Evaluation
from slob_tui.research.objectives import Objective, Score
from slob_tui.research.runners import Runner
from slob_tui.research.space import Choice, IntRange, SearchSpace
from slob_tui.research.windows import Window

BATCH = 8


@dataclass(frozen=True, slots=True)
class SearchSettings:
    """What, with which seed, and how many trials each window's search runs."""

    symbol: str
    objective: Objective
    min_trades: int
    trials: int
    seed: int
    storage: str


@dataclass(frozen=True, slots=True)
class Proposal:
    """One asked trial waiting for its score."""

    window: int
    number: int
    values: dict[str, Any]


def dataset_name(window: int, part: str) -> str:
    return f"w{window}-{part}"


def candles_digest(candles: list[Candle]) -> str:
    """A digest of the candles' times and prices: a study belongs to exactly this data."""
    h = hashlib.sha256()
    for c in candles:
        h.update(f"{c.start},{c.open!r},{c.high!r},{c.low!r},{c.close!r},{c.volume!r};".encode())
    return h.hexdigest()


def study_name(
    settings: SearchSettings,
    space: SearchSpace,
    window: Window,
    in_sample: list[Candle],
    windows: int,
) -> str:
    """Names a study by everything its trials depend on (not the trial count: more trials
    continue it)."""
    key = json.dumps(
        {
            "symbol": settings.symbol,
            "objective": settings.objective.name,
            "min_trades": settings.min_trades,
            "seed": settings.seed,
            "batch": BATCH,
            "space": space.describe(),
            "candles": candles_digest(in_sample),
        },
        sort_keys=True,
        default=str,
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    place = f"w{window.index + 1}of{windows}"
    return f"slob-{settings.symbol}-{settings.objective.name}-{place}-{digest}"


def _trial_seed(seed: int, window: int, number: int) -> int:
    raw = hashlib.sha256(f"{seed}/{window}/{number}".encode()).digest()
    return int.from_bytes(raw[:4], "big")


def distributions(space: SearchSpace) -> dict[str, Any]:
    """Optuna distributions of the searched dimensions, in name order."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    out: dict[str, Any] = {}
    for name in sorted(space.dimensions):
        dim = space.dimensions[name]
        if isinstance(dim, Choice):
            out[name] = CategoricalDistribution(list(dim.options))
        elif isinstance(dim, IntRange):
            out[name] = IntDistribution(dim.low, dim.high)
        else:
            out[name] = FloatDistribution(dim.low, dim.high)
    return out


def open_storage(url: str) -> Any:
    """The Optuna storage at `url` (a SQLite file or any RDB URL), or one clear line."""
    import optuna

    try:
        return optuna.storages.RDBStorage(url)
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy raises many kinds; all mean "bad URL"
        raise UsageError(f"cannot open Optuna storage {url!r}: {exc}".splitlines()[0]) from None


class WindowStudy:
    """One window's study: proposes batches of trials and records their scores."""

    def __init__(
        self, storage: Any, name: str, window: Window, space: SearchSpace, settings: SearchSettings
    ) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self._study = optuna.create_study(
            storage=storage, study_name=name, direction="maximize", load_if_exists=True
        )
        self._window = window
        self._space = space
        self._settings = settings
        self._dists = distributions(space)

    @property
    def window(self) -> Window:
        return self._window

    def told(self) -> int:
        """Trials whose score is stored (complete or unusable)."""
        from optuna.trial import TrialState

        return sum(
            1
            for t in self._study.get_trials(deepcopy=False)
            if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
        )

    def next_batch(self) -> list[Proposal]:
        """Trials asked but not told, plus new asks up to the end of their batch."""
        import optuna
        from optuna.trial import TrialState

        trials = self._study.get_trials(deepcopy=False)
        running = [
            t for t in trials if t.state == TrialState.RUNNING and t.number < self._settings.trials
        ]
        asked = len(trials)
        batch = running[0].number // BATCH if running else asked // BATCH
        end = min((batch + 1) * BATCH, self._settings.trials)
        out = [Proposal(self._window.index, t.number, dict(t.params)) for t in running]
        while asked < end:
            self._study.sampler = optuna.samplers.TPESampler(
                seed=_trial_seed(self._settings.seed, self._window.index, asked)
            )
            trial = self._study.ask(self._dists)
            if trial.number != asked:
                raise SlobError(
                    f"study {self._study.study_name}: another process is adding "
                    "trials; run one search per study at a time"
                )
            out.append(Proposal(self._window.index, trial.number, dict(trial.params)))
            asked += 1
        return out

    def tell(self, proposal: Proposal, score: Score) -> None:
        from optuna.trial import TrialState

        if score.value is None:
            self._study.tell(proposal.number, state=TrialState.PRUNED)
        else:
            self._study.tell(proposal.number, score.value)

    def best(self) -> tuple[dict[str, Any], float] | None:
        """The best scored trial's values; ties go to the earliest trial (any storage)."""
        from optuna.trial import TrialState

        done = [
            t
            for t in self._study.get_trials(deepcopy=False)
            if t.state == TrialState.COMPLETE and t.number < self._settings.trials
        ]
        if not done:
            return None
        top = max(done, key=lambda t: (t.value, -t.number))
        return dict(top.params), float(top.value)


Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class WindowChoice:
    """A window's chosen values (None: no usable trial) and the scores that prove them."""

    window: Window
    values: dict[str, Any] | None
    in_sample: Evaluation | None
    out_of_sample: Evaluation | None


def _request(
    settings: SearchSettings, dataset: str, params: Any, min_trades: int | None = None
) -> EvalRequest:
    return EvalRequest(
        dataset,
        settings.symbol,
        params,
        settings.objective.name,
        settings.min_trades if min_trades is None else min_trades,
    )


def search(
    studies: list[WindowStudy],
    space: SearchSpace,
    settings: SearchSettings,
    runner: Runner,
    progress: Progress | None = None,
) -> list[WindowChoice]:
    """Run every window's search to `settings.trials`, then score each choice once."""
    total = settings.trials * len(studies)
    done = sum(min(s.told(), settings.trials) for s in studies)
    if progress:
        progress(done, total)
    while True:
        proposals = [p for s in studies for p in s.next_batch()]
        if not proposals:
            break
        requests: list[EvalRequest] = []
        scores: dict[int, Score] = {}
        for i, p in enumerate(proposals):
            try:
                params = space.params_for(p.values)
            except UsageError as exc:
                scores[i] = Score(None, 0, str(exc))
                continue
            requests.append(_request(settings, dataset_name(p.window, "in"), params))
        results = iter(runner.run(requests))
        by_window = {s.window.index: s for s in studies}
        for i, p in enumerate(proposals):
            score = scores[i] if i in scores else next(results).score
            by_window[p.window].tell(p, score)
        done += len(proposals)
        if progress:
            progress(done, total)
    return _prove(studies, space, settings, runner)


def _prove(
    studies: list[WindowStudy], space: SearchSpace, settings: SearchSettings, runner: Runner
) -> list[WindowChoice]:
    """Score each window's best values once in-sample and once out-of-sample."""
    picks = [(s.window, s.best()) for s in studies]
    requests: list[EvalRequest] = []
    for window, best in picks:
        if best is None:
            continue
        params = space.params_for(best[0])
        requests.append(_request(settings, dataset_name(window.index, "in"), params))
        if window.out_of_sample is not None:
            # The proof reports what happened out of sample, however few the trades.
            requests.append(_request(settings, dataset_name(window.index, "out"), params, 0))
    results = iter(runner.run(requests))
    choices: list[WindowChoice] = []
    for window, best in picks:
        if best is None:
            choices.append(WindowChoice(window, None, None, None))
            continue
        ins = next(results)
        outs = next(results) if window.out_of_sample is not None else None
        choices.append(WindowChoice(window, best[0], ins, outs))
    return choices
