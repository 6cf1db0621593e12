"""Where evaluations run: this process, a local process pool (`--jobs`), or a Dask cluster.

Every runner is handed the candle lists up front (by dataset name) and ships them to its
workers once; requests then name a dataset. A runner returns results in request order, so the
search that tells them to Optuna sees the same sequence whatever ran them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from slob_tui.core.models import Candle
from slob_tui.errors import UsageError
from slob_tui.research.evaluate import (
    CandleBlock,
    EvalRequest,
    Evaluation,
    evaluate,
    evaluate_block,
)

Datasets = dict[str, list[Candle]]


class Runner(Protocol):
    """Evaluates a batch of requests and returns their results in the same order."""

    def run(self, requests: Sequence[EvalRequest]) -> list[Evaluation]: ...

    def close(self) -> None: ...

    @property
    def label(self) -> str: ...


class InProcessRunner:
    """Evaluates one request after the other in this process (the default, `--jobs 1`)."""

    def __init__(self, datasets: Datasets) -> None:
        self._datasets = datasets

    @property
    def label(self) -> str:
        return "in process"

    def run(self, requests: Sequence[EvalRequest]) -> list[Evaluation]:
        return [evaluate(self._datasets[r.dataset], r) for r in requests]

    def close(self) -> None:
        return None


_WORKER_DATASETS: Datasets = {}


def _install_datasets(blocks: dict[str, CandleBlock]) -> None:
    """Process-pool initializer: each worker process receives the candles once."""
    _WORKER_DATASETS.clear()
    _WORKER_DATASETS.update({name: block.candles for name, block in blocks.items()})


def _evaluate_in_worker(request: EvalRequest) -> Evaluation:
    return evaluate(_WORKER_DATASETS[request.dataset], request)


class ProcessPoolRunner:
    """`--jobs N`: N spawned worker processes on this machine."""

    def __init__(self, datasets: Datasets, jobs: int) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self._jobs = jobs
        self._pool = ProcessPoolExecutor(
            max_workers=jobs,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_install_datasets,
            initargs=({name: CandleBlock(candles) for name, candles in datasets.items()},),
        )

    @property
    def label(self) -> str:
        return f"{self._jobs} local processes"

    def run(self, requests: Sequence[EvalRequest]) -> list[Evaluation]:
        return list(self._pool.map(_evaluate_in_worker, requests))

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)


class DaskRunner:
    """`--scheduler tcp://HOST:PORT`: tasks on an existing Dask distributed cluster.

    The candles are scattered to every worker once (workers may share no file system); each
    task then names its candles by the scattered future.
    """

    def __init__(self, datasets: Datasets, address: str, timeout: float = 5.0) -> None:
        from dask.distributed import Client

        try:
            # dask.distributed ships py.typed but leaves Client's methods unannotated
            self._client = Client(address, timeout=timeout, set_as_default=False)  # type: ignore[no-untyped-call]
        except (OSError, TimeoutError, ValueError) as exc:
            raise UsageError(f"cannot reach Dask scheduler {address}: {exc}") from None
        self._address = address
        self._data: dict[str, Any] = {
            name: self._client.scatter(CandleBlock(candles), broadcast=True, hash=False)  # type: ignore[no-untyped-call]  # dask: unannotated
            for name, candles in datasets.items()
        }

    @property
    def label(self) -> str:
        workers = len(self._client.scheduler_info().get("workers", {}))
        return f"Dask cluster {self._address} ({workers} workers)"

    def run(self, requests: Sequence[EvalRequest]) -> list[Evaluation]:
        futures = [
            self._client.submit(evaluate_block, self._data[r.dataset], r, pure=False)
            for r in requests
        ]
        return list(self._client.gather(futures))  # type: ignore[no-untyped-call]  # dask: unannotated

    def close(self) -> None:
        self._client.close()  # type: ignore[no-untyped-call]  # dask: unannotated


def make_runner(datasets: Datasets, jobs: int, scheduler: str | None) -> Runner:
    """The runner the flags ask for: Dask if a scheduler is named, else local processes."""
    if scheduler:
        return DaskRunner(datasets, scheduler)
    if jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {jobs}")
    if jobs == 1:
        return InProcessRunner(datasets)
    return ProcessPoolRunner(datasets, jobs)
