"""Batched multivariate TPE: one fit of the two densities per batch of trials, not per trial.

Imported only when a search runs (it imports Optuna at module level).

Optuna's TPE fits a density of the good trials and one of the others, draws `n_ei_candidates`
from the good one and keeps the candidate with the best ratio, on every ask. Every ask of one of
our batches sees the same history (docs/OPTIMIZE.md), so those fits are identical; refitting them
for each of the 8 trials cost ~10 ms a trial, more than a backtest. Here the batch's first ask
fits once and scores all its candidates in one vectorised call, `BATCH` groups of
`n_ei_candidates`; each trial takes the best candidate of its own group. A group is an
independent TPE draw from that history, as a sampler seeded per trial would give.

This reaches into Optuna's TPE internals (`_sample`, `_split_trials`), stable through Optuna 4;
the tests in tests/research/test_sampler.py fail if that changes.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import TPESampler
from optuna.samplers._tpe.sampler import _split_trials
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


class BatchTPESampler(TPESampler):
    """Multivariate TPE that serves the trials `first .. first + size - 1` from one fit.

    Build one per batch, seeded for that batch, and ask the batch's trials in order. Before
    TPE's start-up count of finished trials, the draws are TPE's seeded random ones.
    """

    def __init__(self, seed: int, first: int, size: int) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            super().__init__(seed=seed, multivariate=True)
        self._first = first
        self._size = size
        self._picks: list[dict[str, Any]] | None = None
        self._history = -1

    def _sample(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        slot = trial.number - self._first
        if not 0 <= slot < self._size:
            raise ValueError(
                f"trial {trial.number} is outside this sampler's batch "
                f"{self._first}..{self._first + self._size - 1}"
            )
        trials = study._get_trials(deepcopy=False, states=_FINISHED, use_cache=True)
        if self._picks is None:
            self._picks = self._draw(study, trials, search_space)
            self._history = len(trials)
        elif len(trials) != self._history:
            raise ValueError("a batch's trials must all be asked before any of them is told")
        return dict(self._picks[slot])

    def _draw(
        self,
        study: Study,
        trials: list[FrozenTrial],
        search_space: dict[str, BaseDistribution],
    ) -> list[dict[str, Any]]:
        """The best candidate of each of `size` groups, all scored against one fit."""
        below, above = _split_trials(study, trials, self._gamma(len(trials)), False)
        good = self._build_parzen_estimator(study, search_space, below, handle_below=True)
        rest = self._build_parzen_estimator(study, search_space, above, handle_below=False)
        n = self._n_ei_candidates
        candidates = good.sample(self._rng.rng, n * self._size)
        ratio = self._compute_acquisition_func(candidates, good, rest).reshape(self._size, n)
        best = ratio.argmax(axis=1) + np.arange(self._size) * n
        return [
            {
                name: search_space[name].to_external_repr(values[i].item())
                for name, values in candidates.items()
            }
            for i in best
        ]
