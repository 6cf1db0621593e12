"""The batched TPE sampler: a batch of one is Optuna's own TPE draw, a batch is a function of
its seed and history, and after start-up it searches (its draws gather near the good trials)."""

from __future__ import annotations

import warnings
from typing import Any

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from slob_tui.research.sampler import BatchTPESampler

DISTS = {"x": FloatDistribution(0.0, 10.0), "y": FloatDistribution(0.0, 10.0)}
BEST = (3.0, 7.0)


def _score(params: dict[str, float]) -> float:
    return -abs(params["x"] - BEST[0]) - abs(params["y"] - BEST[1])


def _study(told: int, dists: dict[str, Any] = DISTS) -> optuna.Study:
    """A study with `told` finished trials spread over the space by a seeded random sampler."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(5))
    for _ in range(told):
        trial = study.ask(dists)
        study.tell(trial, _score(trial.params))
    return study


def _batch(study: optuna.Study, seed: int, size: int = 8) -> list[dict[str, float]]:
    first = len(study.get_trials(deepcopy=False))
    study.sampler = BatchTPESampler(seed, first, size)
    return [dict(study.ask(DISTS).params) for _ in range(size)]


def test_a_batch_of_one_is_optunas_multivariate_tpe_draw() -> None:
    """Guards the reach into Optuna's TPE internals: same fit, same candidates, same pick."""
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    mixed = {**DISTS, "n": IntDistribution(1, 9), "mode": CategoricalDistribution(["a", "b"])}
    for seed in range(3):
        picks = []
        for sampler in (
            optuna.samplers.TPESampler(seed=seed, multivariate=True),
            BatchTPESampler(seed, 24, 1),
        ):
            study = _study(24, mixed)
            study.sampler = sampler
            picks.append(study.ask(mixed).params)
        assert picks[0] == picks[1]


def test_a_batch_depends_only_on_its_seed_and_history() -> None:
    assert _batch(_study(24), 1) == _batch(_study(24), 1)
    assert _batch(_study(24), 1) != _batch(_study(24), 2)
    assert _batch(_study(24), 1) != _batch(_study(16), 1)


def test_each_trial_of_a_batch_gets_its_own_draw() -> None:
    for told in (0, 24):  # start-up (random) and TPE
        batch = _batch(_study(told), 3)
        assert len({(p["x"], p["y"]) for p in batch}) == 8


def test_after_start_up_the_draws_gather_near_the_best_trials() -> None:
    """From 24 random trials, TPE's picks lie far nearer the optimum than random ones."""
    study = _study(24)
    random_batch = [t.params for t in study.get_trials()[:8]]
    tpe_batch = _batch(study, 4)
    distance = sorted(-_score(p) for p in tpe_batch)
    assert sum(distance) < sum(-_score(p) for p in random_batch) / 2
    assert distance[4] < 2.0  # the median pick lies within 2 (of 20) of the optimum


def test_a_trial_outside_the_batch_or_a_tell_inside_it_is_refused() -> None:
    study = _study(24)
    study.sampler = BatchTPESampler(0, 24, 2)
    study.ask(DISTS)
    study.ask(DISTS)
    with pytest.raises(ValueError, match="outside this sampler's batch"):
        study.ask(DISTS)

    study = _study(24)
    study.sampler = BatchTPESampler(0, 24, 2)
    study.tell(study.ask(DISTS), 0.0)
    with pytest.raises(ValueError, match="before any of them is told"):
        study.ask(DISTS)
