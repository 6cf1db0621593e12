"""The seeded search: one Optuna study per window, asked and told in fixed batches.

Reproducibility rests on three choices (docs/OPTIMIZE.md):

- The sampler is multivariate TPE, rebuilt for every batch with a seed derived from (seed,
  window, first trial number) and drawing the whole batch from one fit (`sampler.py`), so a
  trial's draw depends only on those and on the trials told before its batch, never on which
  process asked first or on a sampler's hidden state (which storage loses).
- Trials are asked in batches of `BATCH` (a constant, not `--jobs`): every ask of a batch
  sees the same history, the batch is evaluated anywhere, and results are told in trial order.
- The unit of parallel work is one trial's backtest; all windows' batches go out together.

An interrupted study resumes: the stored trials of whole batches are loaded, and a batch
cut short is asked again from its first trial, which draws the same values (same seeds, same
history), so the result equals that of an uninterrupted run.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sqlite3
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
            "sampler": "batch-tpe",
            "space": space.describe(),
            "candles": candles_digest(in_sample),
        },
        sort_keys=True,
        default=str,
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    place = f"w{window.index + 1}of{windows}"
    return f"slob-{settings.symbol}-{settings.objective.name}-{place}-{digest}"


def _batch_seed(seed: int, window: int, first: int) -> int:
    """The seed of the batch starting at trial `first`: a function of these three only."""
    raw = hashlib.sha256(f"{seed}/{window}/{first}".encode()).digest()
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


def _sqlite_connection(path: str) -> sqlite3.Connection:
    """A SQLite connection in WAL mode without a sync per commit.

    Optuna commits once per parameter of every trial; with SQLite's default full sync that is
    ~15 ms of disk flush each, more than the backtest. WAL with synchronous=NORMAL keeps every
    committed trial across a crash of this process (the resume case) and skips the flushes.
    """
    conn = sqlite3.connect(path, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def open_storage(url: str) -> Any:
    """The Optuna storage at `url` (a SQLite file or any RDB URL), or one clear line."""
    import optuna

    engine_kwargs: dict[str, Any] = {}
    fresh = False
    path = url.removeprefix("sqlite:///")
    if path != url and path and path != ":memory:":
        engine_kwargs["creator"] = functools.partial(_sqlite_connection, path)
        # A file Optuna is about to create has its schema: checking it reloads every schema
        # migration (~70 ms). An existing file is checked.
        fresh = not os.path.exists(path)
    try:
        return optuna.storages.RDBStorage(
            url, engine_kwargs=engine_kwargs, skip_compatibility_check=fresh
        )
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy raises many kinds; all mean "bad URL"
        raise UsageError(f"cannot open Optuna storage {url!r}: {exc}".splitlines()[0]) from None


class TrialWriter:
    """Stores finished trials, many per transaction, on a thread of its own, in told order.

    Optuna's own `add_trial` spends a query and a flush per parameter (~50 ms a trial on
    SQLite, more than a backtest); here the rows of a whole batch of trials go in one
    transaction through Optuna's storage models. The order is kept, so the storage always
    holds a prefix of each study's trials, which is what resuming needs.
    """

    FLUSH_EVERY = 64

    def __init__(self, storage: Any) -> None:
        import queue
        import threading

        self._storage = storage
        self._pending: list[tuple[int, Any]] = []
        self._queue: queue.Queue[list[tuple[int, Any]] | None] = queue.Queue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name="optuna-writer", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while (items := self._queue.get()) is not None:
            if self._error is None:
                try:
                    _store_trials(self._storage, items)
                except Exception as exc:  # noqa: BLE001 - reported by close()
                    self._error = exc

    def put(self, study_id: int, frozen: Any) -> None:
        self._pending.append((study_id, frozen))
        if len(self._pending) >= self.FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            self._queue.put(self._pending)
            self._pending = []

    def close(self) -> None:
        """Wait until every trial is stored; a storage failure becomes one clear line."""
        self.flush()
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise SlobError(f"cannot store trials: {self._error}".splitlines()[0])


def _store_trials(storage: Any, items: list[tuple[int, Any]]) -> None:
    """Insert finished trials (the rows Optuna's `add_trial` writes) in one transaction.

    SQLAlchemy Core, not the ORM: a trial row each (its id is needed), then all parameter and
    value rows in two multi-row inserts. The ORM's unit of work cost ~2 ms a trial.
    """
    from optuna.distributions import distribution_to_json
    from optuna.storages._rdb import models

    trials = models.TrialModel.__table__
    params: list[dict[str, Any]] = []
    values: list[dict[str, Any]] = []
    dist_json: dict[int, str] = {}
    session = storage.scoped_session()
    try:
        for study_id, trial in items:
            row = {
                "study_id": study_id,
                "number": trial.number,
                "state": trial.state,
                "datetime_start": trial.datetime_start,
                "datetime_complete": trial.datetime_complete,
            }
            trial_id = session.execute(trials.insert().values(row)).inserted_primary_key[0]
            for name, value in trial.params.items():
                dist = trial.distributions[name]
                if id(dist) not in dist_json:
                    dist_json[id(dist)] = distribution_to_json(dist)
                params.append(
                    {
                        "trial_id": trial_id,
                        "param_name": name,
                        "param_value": dist.to_internal_repr(value),
                        "distribution_json": dist_json[id(dist)],
                    }
                )
            if trial.value is not None:
                stored, kind = models.TrialValueModel.value_to_stored_repr(trial.value)
                values.append(
                    {"trial_id": trial_id, "objective": 0, "value": stored, "value_type": kind}
                )
        if params:
            session.execute(models.TrialParamModel.__table__.insert(), params)
        if values:
            session.execute(models.TrialValueModel.__table__.insert(), values)
        session.commit()
    except BaseException:
        session.rollback()
        raise


class WindowStudy:
    """One window's study: proposes batches of trials and records their scores.

    The sampler works on an in-memory copy (Optuna's RDB storage costs a transaction per
    parameter per ask, several times a backtest); each told trial is then written to the
    storage in one transaction. On opening, the stored trials of whole batches are loaded;
    the trials of a batch cut short are asked again, which draws them again identically.
    """

    def __init__(
        self,
        storage: Any,
        name: str,
        window: Window,
        space: SearchSpace,
        settings: SearchSettings,
        writer: TrialWriter,
    ) -> None:
        import optuna
        from optuna.trial import TrialState

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self._stored = optuna.create_study(
            storage=storage, study_name=name, direction="maximize", load_if_exists=True
        )
        self._memory = optuna.create_study(direction="maximize")
        self._study_id = storage.get_study_id_from_name(name)
        self._writer = writer
        self._window = window
        self._settings = settings
        self._dists = distributions(space)
        stored = self._stored.get_trials(
            deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)
        )
        stored.sort(key=lambda t: t.number)
        self._stored_count = len(stored)
        whole = len(stored) if len(stored) >= settings.trials else len(stored) // BATCH * BATCH
        self._memory.add_trials(stored[:whole])

    @property
    def window(self) -> Window:
        return self._window

    def told(self) -> int:
        """Trials whose score is known (complete or unusable)."""
        return len(self._memory.get_trials(deepcopy=False))

    def next_batch(self) -> list[Proposal]:
        """The next batch of asks, all drawn by one sampler seeded for the batch (it draws the
        whole batch, so a batch cut short by the trial count draws the same first values)."""
        from slob_tui.research.sampler import BatchTPESampler

        asked = len(self._memory.get_trials(deepcopy=False))
        end = min((asked // BATCH + 1) * BATCH, self._settings.trials)
        seed = _batch_seed(self._settings.seed, self._window.index, asked)
        self._memory.sampler = BatchTPESampler(seed, asked, BATCH)
        out: list[Proposal] = []
        while asked < end:
            trial = self._memory.ask(self._dists)
            out.append(Proposal(self._window.index, trial.number, dict(trial.params)))
            asked += 1
        return out

    def tell(self, proposal: Proposal, score: Score) -> None:
        """Record a score (None: unusable, told as pruned) and store the finished trial."""
        from optuna.trial import TrialState

        if score.value is None:
            frozen = self._memory.tell(proposal.number, state=TrialState.PRUNED)
        else:
            frozen = self._memory.tell(proposal.number, score.value)
        if proposal.number == self._stored_count:
            self._writer.put(self._study_id, frozen)
            self._stored_count += 1
        elif proposal.number > self._stored_count:
            raise SlobError(
                f"study {self._stored.study_name}: trial {proposal.number} would "
                f"leave a gap after {self._stored_count} stored trials"
            )

    def best(self) -> tuple[dict[str, Any], float] | None:
        """The best scored trial's values; ties go to the earliest trial (any storage)."""
        from optuna.trial import TrialState

        done = [
            t
            for t in self._memory.get_trials(deepcopy=False)
            if t.state == TrialState.COMPLETE and t.number < self._settings.trials
        ]
        scored = [(t.value, -t.number, t) for t in done if t.value is not None]
        if not scored:
            return None
        value, _, top = max(scored, key=lambda v: (v[0], v[1]))
        return dict(top.params), float(value)


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
